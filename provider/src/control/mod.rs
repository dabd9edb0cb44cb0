//! The live control loop (DESIGN §3, §7): every tick (1 s), per ready DAG, observe the DAG arrivals, ask
//! the shared decision step ([`optimizer::sim::Controller`], the same code the simulator runs) for a plan,
//! and execute the difference: replicas per member by its cold-start policy ([`decide::target`], pure),
//! and after each DAG arrival the pre-warm of downstream members at their planned offsets
//! ([`on_arrival`]).
//!
//! Times: the planner works in profile seconds; a run with `SMILESS_TIME_SCALE = s` (shared with the
//! `smiless-fn` emulator) divides observed times by `s` and multiplies planned durations by `s`.
//!
//! Hardware: the planner's space is what the host has ([`decide::space`]); the plan's hardware is applied
//! through [`crate::backend::Backend::place`] (CPU affinity and thread counts, or a GPU share's MPS
//! environment), a change rolling the replicas.
//!
//! Not done here yet (see docs/live.md): batching (the watchdog serves one request per call) and the
//! predictor's forecasters (a recent-window estimator stands in).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use optimizer::sim::{Controller, LoadEstimator, Observations, RecentWindow};
use optimizer::{Dag, Load, PlanInput, ProfileSet};

use crate::api::AppState;
use crate::dag::DagState;
use crate::dag::live::PlanView;

pub mod decide;
pub mod refresh;

/// The control tick.
pub const TICK: Duration = Duration::from_secs(1);
/// Trailing window of the load estimate, in profile seconds.
const WINDOW_S: f64 = 60.0;
/// Planning headroom: plan for SLA × (1 − this) to absorb noise the models do not see.
const HEADROOM: f64 = 0.1;

/// The profiles the live planner uses: `SMILESS_PROFILES` (a file) or the paper's set.
fn profiles() -> ProfileSet {
    let path = std::env::var_os(crate::emulator::ENV_PROFILES).map(std::path::PathBuf::from);
    crate::emulator::load_profiles(path.as_deref()).unwrap_or_else(|e| {
        tracing::error!("control loop: {e}; planning with the paper's profiles");
        ProfileSet::paper()
    })
}

/// Environment variable: how many GPUs the planner may use (default: the GPUs discovered, zero without a
/// CUDA driver; set it to plan GPU shares on a host without one, where `smiless-fn` emulates their timing).
pub const ENV_GPUS: &str = "SMILESS_GPUS";

/// The host as the planner sees it.
pub fn host() -> decide::Host {
    decide::Host {
        cpus: crate::emulator::affinity_cores(),
        gpus: std::env::var(ENV_GPUS)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(crate::gpu::visible_count),
    }
}

/// What the planner may use: the backend's hardware when it knows it (a cluster's nodes), else this host.
pub fn host_of(backend: &dyn crate::backend::Backend) -> decide::Host {
    backend
        .hardware()
        .map_or_else(host, |(cpus, gpus)| decide::Host { cpus, gpus })
}

/// One DAG's controller and a parallel estimator whose load is reported (the controller's is private).
struct DagControl {
    dag: Dag,
    controller: Controller,
    estimator: RecentWindow,
    /// The hardware applied to each member (what the planner sees as deployed: hysteresis).
    applied: BTreeMap<String, optimizer::Hardware>,
}

/// Runs the control loop until the process ends.
pub async fn run(state: web::Data<AppState>) {
    let profiles = profiles();
    let mut controls: HashMap<(String, String), DagControl> = HashMap::new();
    let mut first_seen: HashMap<(String, String), f64> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dags = state.dags.current(&state.catalog);
        state
            .dags
            .live
            .retain_plans(|k| dags.by_key.contains_key(k));
        controls.retain(|k, _| dags.by_key.contains_key(k));
        for (k, e) in &dags.by_key {
            let (DagState::Ready, Some(dag)) = (&e.state, &e.dag) else {
                continue;
            };
            let view = step(&state, &profiles, &mut controls, &mut first_seen, k, dag).await;
            state.dags.live.set_plan(&k.0, &k.1, view);
        }
    }
}

fn view(reason: String) -> PlanView {
    PlanView {
        plan: None,
        load: None,
        reason,
        decided_at: jiff::Timestamp::now(),
        actions: Vec::new(),
        hardware_applied: false,
    }
}

/// One tick for one DAG: decide, then execute.
async fn step(
    state: &web::Data<AppState>,
    profiles: &ProfileSet,
    controls: &mut HashMap<(String, String), DagControl>,
    first_seen: &mut HashMap<(String, String), f64>,
    key: &(String, String),
    dag: &Dag,
) -> PlanView {
    let live = &state.dags.live;
    let scale = live.time_scale;
    let arrivals: Vec<f64> = live
        .take_arrivals(&key.0, &key.1)
        .into_iter()
        .map(|t| t / scale)
        .collect();
    let Some(sla) = dag.sla_s else {
        return view(format!(
            "not planned: the entry has no {} annotation; members are started when a request arrives",
            optimizer::dag::ANN_SLA
        ));
    };
    if controls.get(key).is_none_or(|c| c.dag != *dag) {
        let mut input = match PlanInput::new(
            dag.clone(),
            profiles,
            sla,
            Load::new(None, Some(WINDOW_S)).unwrap_or(Load {
                rate_per_s: 1.0 / WINDOW_S,
                interarrival_s: WINDOW_S,
                gaps: optimizer::GapModel::Exponential,
            }),
        ) {
            Ok(i) => i,
            Err(e) => {
                controls.remove(key);
                return view(format!(
                    "not planned: {e}; members are started when a request arrives"
                ));
            }
        };
        input.space.hardware = decide::space(host_of(&*state.backend));
        let Some(policy) = optimizer::policy_by_name("smiless") else {
            return view("not planned: the smiless policy is missing".into());
        };
        let controller = Controller::new(
            policy,
            Box::new(RecentWindow::new(WINDOW_S, None)),
            input,
            HEADROOM,
        );
        controls.insert(
            key.clone(),
            DagControl {
                dag: dag.clone(),
                controller,
                estimator: RecentWindow::new(WINDOW_S, None),
                applied: BTreeMap::new(),
            },
        );
    }
    let Some(c) = controls.get_mut(key) else {
        return view("not planned".into());
    };
    let now_real = live.now();
    let now = now_real / scale;
    for &t in &arrivals {
        c.estimator.observe(t);
    }
    let load = c.estimator.estimate(now);
    // The hardware applied so far: the planner charges a change its re-initialisation, so it switches
    // only when the saving over its horizon pays for it (with the load quantisation: the hysteresis).
    let current = c.applied.clone();
    // Planning is CPU work (milliseconds, more for large DAGs): keep it off the async workers' queue.
    let decided = tokio::task::block_in_place(|| {
        c.controller
            .decide(
                now,
                &Observations {
                    arrivals: &arrivals,
                    current: &current,
                },
            )
            .map(|d| (d.plan.clone(), d.changed))
    });
    let (plan, changed) = match decided {
        Ok(d) => d,
        Err(e) => return view(format!("planning failed: {e}")),
    };
    let reason = if changed {
        format!(
            "re-planned for {:.3} req/s, a burst every {:.1} s (profile time): {} at {:.3} $/h, predicted {:.3} s against the SLA {sla} s",
            load.rate_per_s,
            load.interarrival_s,
            plan.policy,
            plan.cost_per_hour,
            plan.predicted_latency_s
        )
    } else {
        "plan unchanged: the load stayed within the hysteresis band".into()
    };
    let reason = if plan.predicted_latency_s > sla * (1.0 + 1e-9) {
        format!(
            "{reason}; the SLA cannot be met with this host's hardware: running the fastest plan found ({:.3} s)",
            plan.predicted_latency_s
        )
    } else {
        reason
    };
    let mut actions = Vec::new();
    let host = host_of(&*state.backend);
    let mut slot = 0usize;
    let mut hardware_applied = true;
    for fp in &plan.functions {
        let Some(rec) = state.catalog.function(&dag.namespace, &fp.name) else {
            continue;
        };
        let hw = fp.choice.hardware;
        let at = slot;
        slot += match hw {
            optimizer::Hardware::Cpu { cores } => usize::try_from(cores).unwrap_or(1),
            optimizer::Hardware::Gpu { .. } => 1,
        };
        if c.applied.get(&fp.name) != Some(&hw) {
            // A change of hardware rolls the replicas (make-before-break in the runtime).
            match state
                .backend
                .place(&rec, Some(decide::placement(hw, at, host)))
                .await
            {
                Ok(true) => {
                    actions.push(format!("{}: placed on {hw}", fp.name));
                    c.applied.insert(fp.name.clone(), hw);
                }
                Ok(false) => hardware_applied = false,
                Err(e) => {
                    hardware_applied = false;
                    actions.push(format!("{}: placing on {hw} failed: {e}", fp.name));
                }
            }
        }
        let fkey = (dag.namespace.clone(), fp.name.clone());
        let u = live.member_use(&dag.namespace, &fp.name);
        let since = u
            .last_used
            .unwrap_or_else(|| *first_seen.entry(fkey).or_insert(now_real));
        let m = decide::MemberState {
            replicas: rec.replicas,
            in_flight: u.in_flight,
            idle_s: (now_real - since).max(0.0),
            reserved: u.reserved_until.is_some_and(|r| r > now_real),
        };
        let t = decide::target(&fp.choice, m, scale);
        if t.replicas != rec.replicas {
            match state
                .scale(&dag.namespace, &fp.name, u64::from(t.replicas))
                .await
            {
                Ok(_) => actions.push(format!(
                    "{}: {} -> {} replicas ({})",
                    fp.name, rec.replicas, t.replicas, t.why
                )),
                Err(e) => actions.push(format!("{}: scaling failed: {e}", fp.name)),
            }
        } else {
            actions.push(format!(
                "{}: {} replicas ({})",
                fp.name, rec.replicas, t.why
            ));
        }
    }
    PlanView {
        plan: Some(plan),
        load: Some(load),
        reason,
        decided_at: jiff::Timestamp::now(),
        actions,
        hardware_applied,
    }
}

/// A DAG request arrived: start its downstream members ahead of need, so their initialisation overlaps
/// their predecessors' work. With a plan, members whose policy is pre-warm start at their planned offset
/// after the arrival; without one (no SLA, no profile), every member at 0 replicas starts at once.
pub fn on_arrival(state: &web::Data<AppState>, dag: &Dag) {
    let live = &state.dags.live;
    let scale = live.time_scale;
    let plan = live.plan(&dag.namespace, &dag.name).and_then(|v| v.plan);
    let now = live.now();
    let hold = plan
        .as_ref()
        .map_or(f64::INFINITY, |p| p.predicted_latency_s * scale)
        .min(state.read_timeout.as_secs_f64());
    for w in decide::prewarms(dag, plan.as_ref(), scale) {
        let (node, offset, replicas) = (&dag.nodes[w.node], w.offset_s, w.replicas);
        let Some(rec) = state.catalog.function(&dag.namespace, &node.name) else {
            continue;
        };
        if rec.replicas > 0 && offset == 0.0 {
            live.reserve(&dag.namespace, &node.name, now + hold + 1.0);
            continue;
        }
        let state = state.clone();
        let (ns, f, dname) = (dag.namespace.clone(), node.name.clone(), dag.name.clone());
        actix_web::rt::spawn(async move {
            tokio::time::sleep(Duration::try_from_secs_f64(offset).unwrap_or_default()).await;
            let live = &state.dags.live;
            live.reserve(&ns, &f, live.now() + hold + 1.0);
            if state
                .catalog
                .function(&ns, &f)
                .is_some_and(|r| r.replicas == 0)
            {
                match state.scale(&ns, &f, u64::from(replicas)).await {
                    Ok(rec) => {
                        live.prewarm(&ns, &dname);
                        if crate::dag::runner::takes_warmup(&rec.deployment.env_process)
                            && crate::dag::runner::warm_up(&state, &ns, &f).await
                        {
                            live.warmup(&ns, &dname);
                        }
                    }
                    Err(e) => tracing::warn!("pre-warm of {f}.{ns} failed: {e}"),
                }
            }
        });
    }
}

/// Starts the control loop on the current tokio runtime.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(web::Data::from(state)))
}
