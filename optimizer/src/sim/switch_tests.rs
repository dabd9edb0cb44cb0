//! Hand-computed plan changes: a hardware switch while a request waits for an initialising replica,
//! a plan change that makes one function faster and another slower, and an always-on scale-down while
//! replicas initialise. Deterministic init and inference; the load the controller sees is scripted.
use std::collections::BTreeMap;

use crate::dag::Dag;
use crate::hardware::Hardware;
use crate::load::{GapModel, Load};
use crate::plan::{Choice, ColdStart, Plan, PlanError, PlanInput, Policy};
use crate::profile::{InitStats, LatencyModel, PerDevice, Profile, ProfileSet};
use crate::search::plan_from_choices;

use super::tests::toy;
use super::{Controller, LoadEstimator, SimOptions, SimResult, simulate};

fn cpu(cores: u32) -> Hardware {
    Hardware::Cpu { cores }
}

/// An estimator that reports gap `gap` from time `from` on, per `(from, gap)` phase.
struct Scripted(Vec<(f64, f64)>);

impl LoadEstimator for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn observe(&mut self, _t: f64) {}
    fn estimate(&mut self, now: f64) -> Load {
        let gap = self
            .0
            .iter()
            .rev()
            .find(|p| now >= p.0)
            .map_or(100.0, |p| p.1);
        Load {
            rate_per_s: 1.0 / gap,
            interarrival_s: gap,
            gaps: GapModel::Exponential,
        }
    }
}

/// Plans by the estimated gap: `choices(gap)`, one choice per function.
struct ByGap(fn(f64) -> Vec<Choice>);

impl Policy for ByGap {
    fn name(&self) -> &'static str {
        "by-gap"
    }
    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        Ok(plan_from_choices(
            input,
            (self.0)(input.load.interarrival_s),
            "by-gap",
        ))
    }
}

fn on(hardware: Hardware, policy: ColdStart, replicas: u32) -> Choice {
    Choice {
        hardware,
        batch: 1,
        replicas,
        policy,
    }
}

/// A profile: CPU init `init` s, a call of `work / cores + 0` s (no per-call overhead).
fn scalable(init: f64, work: f64) -> Profile {
    let lat = LatencyModel {
        a: work,
        b: 0.0,
        c: 0.0,
    };
    Profile {
        init: PerDevice {
            cpu: InitStats {
                mean_s: init,
                std_s: 0.0,
            },
            gpu: InitStats {
                mean_s: init,
                std_s: 0.0,
            },
        },
        infer: PerDevice { cpu: lat, gpu: lat },
        memory_mb: 512,
        image_mb: None,
    }
}

/// Runs the chain `profiles` under `policy` with the load scripted by `phases`.
fn run(
    profiles: &[(&str, Profile)],
    sla: f64,
    policy: ByGap,
    phases: Vec<(f64, f64)>,
    arrivals: &[f64],
    duration: f64,
) -> SimResult {
    let members: Vec<(String, Option<String>, Vec<String>)> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let next = profiles.get(i + 1).map(|n| vec![n.0.to_string()]);
            (p.0.to_string(), None, next.unwrap_or_default())
        })
        .collect();
    let dag = Dag::build("chain", "openfaas-fn", &members, None).unwrap();
    let set = ProfileSet {
        source: "test".into(),
        profiles: profiles
            .iter()
            .map(|(n, p)| (n.to_string(), p.clone()))
            .collect::<BTreeMap<_, _>>(),
    };
    let input = PlanInput::new(dag, &set, sla, Load::new(Some(0.01), None).unwrap()).unwrap();
    let c = Controller::new(
        Box::new(policy),
        Box::new(Scripted(phases)),
        input.clone(),
        0.0,
    );
    let opts = SimOptions {
        infer_cv: 0.0,
        ..SimOptions::default()
    };
    simulate(&input, c, arrivals, duration, opts).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A request at 0.5 starts a cpu:2 replica (init 2 s, ready at 2.5). At the 1-s tick the load changes
/// and the plan moves to cpu:1 (half the price). Make before break: the cpu:2 replica keeps
/// initialising and serves the request at 2.5 (latency 2.5), while its cpu:1 replacement comes up at
/// 3.0. Cancelling it instead, as the simulator did, left the request waiting for the cpu:1 replica
/// started at the switch: ready at 3.0, latency 3.0.
#[test]
fn a_switch_keeps_the_initialising_replica_a_request_waits_for() {
    let r = run(
        &[("f", toy(2.0, 0.5))],
        10.0,
        ByGap(|gap| {
            let keep = ColdStart::KeepAlive { seconds: 60.0 };
            vec![on(cpu(if gap > 30.0 { 2 } else { 1 }), keep, 1)]
        }),
        vec![(0.0, 100.0), (1.0, 10.0)],
        &[0.5],
        10.0,
    );
    assert_eq!(r.latencies.len(), 1);
    assert!(close(r.latencies[0], 2.5), "{:?}", r.latencies);
    assert_eq!(
        r.summary.inits, 2,
        "the cpu:2 replica and its cpu:1 replacement"
    );
}

/// f: 1 s of work per core-second (cpu:8 0.125 s, cpu:1 1 s), init 1 s; g: the same work, init 5 s
/// (cpu:1 1 s, cpu:2 0.5 s). Sparse load: f on cpu:8, g on cpu:1 (1.125 s). Dense load from t = 20:
/// f on cpu:1, g on cpu:2 (1.5 s, a third of the price). SLA 1.6 s. Switched together, f's cpu:1 is
/// ready at 21 and g's cpu:2 only at 25: a request at 22 would take f's new cpu:1 (1 s) and g's old
/// cpu:1 (1 s), 2.0 s. Staged, f keeps cpu:8 until g's switch is done (25): 0.125 + 1 = 1.125 s; the
/// request at 30 runs the new plan, 1.5 s.
#[test]
fn a_switch_that_slows_a_function_waits_for_the_switches_that_speed_others_up() {
    let r = run(
        &[("f", scalable(1.0, 1.0)), ("g", scalable(5.0, 1.0))],
        1.6,
        ByGap(|gap| {
            let (f, g) = if gap > 30.0 { (8, 1) } else { (1, 2) };
            vec![
                on(cpu(f), ColdStart::AlwaysOn, 1),
                on(cpu(g), ColdStart::AlwaysOn, 1),
            ]
        }),
        vec![(0.0, 100.0), (20.0, 10.0)],
        &[10.0, 22.0, 30.0],
        40.0,
    );
    let want = [1.125, 1.125, 1.5];
    assert!(
        r.latencies.len() == 3 && r.latencies.iter().zip(want).all(|(&l, w)| close(l, w)),
        "{:?}",
        r.latencies
    );
    assert_eq!(r.summary.sla_violations, 0);
    assert_eq!(r.summary.hw_switches, 2, "g at 20, f at 25");
}

/// Always-on, 2 replicas (init 5 s, warm from 5); at 20 the plan wants 4 (two start initialising),
/// at 22 two again. Scaling down cancels the two initialising replicas and keeps the warm ones, as
/// the live runtime does, so the request at 22.5 is served at once (0.5 s). Before, the two warm
/// replicas (idle the longest) were released and the request waited for an initialising one until
/// 25 (3.0 s).
#[test]
fn an_always_on_scale_down_keeps_the_warm_replicas() {
    let r = run(
        &[("f", toy(5.0, 0.5))],
        10.0,
        ByGap(|gap| {
            let n = if (15.0..50.0).contains(&gap) { 4 } else { 2 };
            vec![on(cpu(1), ColdStart::AlwaysOn, n)]
        }),
        vec![(0.0, 100.0), (20.0, 20.0), (22.0, 100.0)],
        &[22.5],
        30.0,
    );
    assert!(close(r.latencies[0], 0.5), "{:?}", r.latencies);
    assert_eq!(r.summary.cold_on_critical_path, 0);
    assert_eq!(
        r.summary.inits, 4,
        "two warm, two cancelled while initialising"
    );
}
