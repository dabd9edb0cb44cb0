//! When a plan's replicas exist during one burst, and the peak set of replicas a DAG requests
//! (docs/capacity.md, "What a plan requests").
//!
//! A replica reserves its pod's requests only while it exists. Per function, its [`Span`] on one
//! burst's timeline (seconds after the burst arrives):
//! - **always-on**, and **keep-alive** whose window covers the mean gap between bursts (it stays up
//!   through the typical gap): the whole time;
//! - **keep-alive** with a shorter window: from when the burst reaches it (its on-demand start, or
//!   the warm replica being used) to its finish plus the window;
//! - **pre-warm**: from its placed start (the offset, where initialisation begins) to its finish;
//!   in a chain, it overlaps its predecessor only where its initialisation runs
//!   beside the predecessor's inference.
//!
//! Times are the model's without queueing: a burst that arrives while an earlier one is still being
//! served queues for the same replicas rather than adding any (the model's queueing term).
//!
//! During its span a function holds [`peak_replicas`] replicas (the burst's). The DAG's peak set is
//! the *envelope* of the sets alive at each instant: per device kind, the sizes alive at an instant
//! sorted largest first, and position by position the largest over all instants. Every instant's
//! set is, replica by replica, no larger than the envelope, so wherever a packing puts the envelope,
//! each instant's replicas fit in the same places: the envelope placed is an honest reservation.
use super::{Replica, peak_replicas};
use crate::hardware::Hardware;
pub use crate::hold::{held_always, holds_no_longer};
use crate::model::{keep_alive_is_warm, prewarm_lower_offset};
use crate::plan::{Choice, ColdStart, Plan, PlanInput};

/// Spans closer than this (seconds) touch rather than overlap.
const TOUCH_S: f64 = 1e-9;

/// Where one function's replicas exist on one burst's timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// The function's index in its DAG.
    pub function: usize,
    pub hardware: Hardware,
    /// Replicas alive during the span.
    pub count: u32,
    /// Seconds after the burst arrives; `-∞ .. +∞` for a replica that is always up.
    pub from_s: f64,
    pub to_s: f64,
}

impl Span {
    pub fn always(&self) -> bool {
        self.from_s == f64::NEG_INFINITY
    }
    /// Alive at `t`, `from ≤ t < to`; spans that meet within [`TOUCH_S`] do not overlap (a
    /// successor's start recomputed from its own start and init differs from its predecessor's finish
    /// in the last bits).
    fn alive_at(&self, t: f64) -> bool {
        self.from_s <= t + TOUCH_S && t < self.to_s - TOUCH_S
    }
}

/// The span of function `f` under the placed choice `c`: `s0` is when its last predecessor finishes
/// and `finish_s` when it finishes, both without queueing (a burst that finds an earlier one still
/// being served waits for the same replicas; docs/capacity.md).
pub fn span(input: &PlanInput, f: usize, c: &Choice, s0: f64, finish_s: f64) -> Span {
    let load = &input.load;
    let (from_s, to_s) = if held_always(c, load) {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        match c.policy {
            ColdStart::KeepAlive { seconds } => (s0, finish_s + seconds.max(0.0)),
            ColdStart::PreWarm { offset_s } => (offset_s.max(prewarm_lower_offset(load)), finish_s),
            ColdStart::AlwaysOn => (f64::NEG_INFINITY, f64::INFINITY),
        }
    };
    Span {
        function: f,
        hardware: c.hardware,
        count: peak_replicas(c, load.burst_size()),
        from_s,
        to_s,
    }
}

/// The spans of `plan`'s functions (its choices placed, its start and finish times evaluated), for
/// the functions `keep` accepts.
pub fn plan_spans(input: &PlanInput, plan: &Plan, keep: impl Fn(usize) -> bool) -> Vec<Span> {
    let q = input.params.sla_quantile;
    plan.functions
        .iter()
        .enumerate()
        .filter(|(f, _)| keep(*f))
        .map(|(f, fp)| {
            // The no-wait start is `s0 + delay` but for a pre-warm replica that was ready late; a
            // keep-alive replica that is cold more often than the quantile allows initialises first.
            let s0 = match fp.choice.policy {
                ColdStart::KeepAlive { seconds }
                    if !keep_alive_is_warm(&input.load, seconds, q) =>
                {
                    fp.start_s
                        - input.profiles[f]
                            .init(fp.choice.hardware)
                            .estimate(input.params.init_std_factor)
                }
                _ => fp.start_s,
            };
            let finish = fp.start_s + crate::model::behaviour(input, f, &fp.choice).service;
            span(input, f, &fp.choice, s0, finish)
        })
        .collect()
}

/// Replica sizes, each with a function (index) that has a replica of that size.
pub type Sizes = Vec<(u32, usize)>;

/// The envelope of `spans` (module doc): per device kind, sizes largest first, each with the index of
/// a function that reaches it. CPU sizes are cores, GPU sizes shares in percent.
pub fn envelope(spans: &[Span]) -> (Sizes, Sizes) {
    let mut instants: Vec<f64> = spans
        .iter()
        .filter(|s| !s.always() && s.from_s < s.to_s - TOUCH_S)
        .map(|s| s.from_s)
        .collect();
    if instants.is_empty() {
        instants.push(0.0);
    }
    instants.sort_by(f64::total_cmp);
    instants.dedup();
    let (mut cpu_env, mut gpu_env): (Sizes, Sizes) = (vec![], vec![]);
    let (mut cpu, mut gpu): (Sizes, Sizes) = (vec![], vec![]);
    for &t in &instants {
        cpu.clear();
        gpu.clear();
        for s in spans.iter().filter(|s| s.alive_at(t)) {
            let (list, size) = match s.hardware {
                Hardware::Cpu { cores } => (&mut cpu, cores),
                Hardware::Gpu { share_pct } => (&mut gpu, share_pct),
            };
            list.extend(std::iter::repeat_n((size, s.function), s.count as usize));
        }
        for (list, env) in [(&mut cpu, &mut cpu_env), (&mut gpu, &mut gpu_env)] {
            list.sort_unstable_by_key(|x| std::cmp::Reverse(x.0));
            for (i, &x) in list.iter().enumerate() {
                match env.get_mut(i) {
                    Some(e) if e.0 < x.0 => *e = x,
                    Some(_) => {}
                    None => env.push(x),
                }
            }
        }
    }
    (cpu_env, gpu_env)
}

/// The envelope of `spans` as replicas, named after `name(function)`.
pub fn peak_set(spans: &[Span], name: impl Fn(usize) -> String) -> Vec<Replica> {
    let (cpu, gpu) = envelope(spans);
    let cpu = cpu.into_iter().map(|(cores, f)| Replica {
        function: name(f),
        hardware: Hardware::Cpu { cores },
    });
    let gpu = gpu.into_iter().map(|(share_pct, f)| Replica {
        function: name(f),
        hardware: Hardware::Gpu { share_pct },
    });
    gpu.chain(cpu).collect()
}

/// The peak set of replicas of `plan` (its functions that `keep` accepts), as a scheduler reserving
/// pod requests would need them at the worst instant of a burst.
pub fn plan_peak(input: &PlanInput, plan: &Plan, keep: impl Fn(usize) -> bool) -> Vec<Replica> {
    let spans = plan_spans(input, plan, keep);
    peak_set(&spans, |f| plan.functions[f].name.clone())
}

/// The peak set of replicas of `choices` (one per DAG node, pre-warm offsets placed) under `input`.
pub fn peak_requests(input: &PlanInput, choices: &[Choice]) -> Vec<Replica> {
    let ev = crate::model::evaluate(input, choices);
    let spans: Vec<Span> = (0..input.dag.len())
        .map(|f| {
            let s0 = input.dag.pred[f]
                .iter()
                .map(|&p| no_wait_finish(input, p, &choices[p], &ev))
                .fold(0.0, f64::max);
            span(
                input,
                f,
                &choices[f],
                s0,
                no_wait_finish(input, f, &choices[f], &ev),
            )
        })
        .collect();
    peak_set(&spans, |f| input.dag.nodes[f].name.clone())
}

/// `p`'s finish without queueing, from its no-wait start.
fn no_wait_finish(input: &PlanInput, p: usize, c: &Choice, ev: &crate::model::Evaluation) -> f64 {
    ev.start[p] + crate::model::behaviour(input, p, c).service
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dag::Dag;
    use crate::load::Load;
    use crate::profile::ProfileSet;

    /// `a → b → c`, one request every 10 s; calls take 3 s and initialisation 2 s (no spread).
    fn chain() -> PlanInput {
        let members = [
            ("a".to_string(), None, vec!["b".to_string()]),
            ("b".to_string(), None, vec!["c".to_string()]),
            ("c".to_string(), None, vec![]),
        ];
        let dag = Dag::build("chain", "openfaas-fn", &members, None).unwrap();
        let profiles = ProfileSet {
            source: "test".into(),
            profiles: ["a", "b", "c"]
                .iter()
                .map(|n| (n.to_string(), crate::model::tests::flat(3.0)))
                .collect(),
        };
        PlanInput::new(dag, &profiles, 30.0, Load::new(Some(0.1), None).unwrap()).unwrap()
    }

    fn choice(cores: u32, policy: ColdStart) -> Choice {
        Choice {
            hardware: Hardware::Cpu { cores },
            batch: 1,
            replicas: 1,
            policy,
        }
    }

    /// Pre-warm placed as the co-optimiser places it: initialisation (2 s) ending when the
    /// predecessor's 3-s call ends: `a` 0–5 s, `b` 3–8 s, `c` 6–11 s.
    fn pre(at: f64) -> ColdStart {
        ColdStart::PreWarm { offset_s: at }
    }

    #[test]
    fn peak_table() {
        let input = chain();
        let on = ColdStart::AlwaysOn;
        let covering = ColdStart::KeepAlive { seconds: 10.0 };
        let short = ColdStart::KeepAlive { seconds: 1.0 };
        // (a, b, c) as (cores, policy); the envelope's CPU sizes.
        type Case = ([(u32, ColdStart); 3], Vec<u32>);
        let cases: Vec<Case> = vec![
            // A pre-warmed chain overlaps two at a time: 2 cores, not the 3 of summed peaks.
            ([(1, pre(0.0)), (1, pre(3.0)), (1, pre(6.0))], vec![1, 1]),
            // A keep-alive that covers the 10-s gap stays up: counted at every instant.
            ([(1, covering), (1, pre(3.0)), (1, pre(6.0))], vec![1, 1, 1]),
            // A shorter one is up from the request (cold: its init first) to 1 s after its call:
            // 0–6 s, gone when `c` starts at 6 s.
            ([(1, short), (1, pre(3.0)), (1, pre(6.0))], vec![1, 1]),
            ([(1, on), (1, on), (1, on)], vec![1, 1, 1]),
            // Sizes: the largest at each position over the instants (2+1 at 3 s, 1+1 at 6 s).
            ([(2, pre(0.0)), (1, pre(3.0)), (1, pre(6.0))], vec![2, 1]),
            // A pre-warm placed late (no overlap with its predecessor): one at a time.
            ([(1, pre(0.0)), (1, pre(5.0)), (1, pre(10.0))], vec![1]),
        ];
        for (i, (fns, want)) in cases.into_iter().enumerate() {
            let choices: Vec<Choice> = fns.iter().map(|&(c, p)| choice(c, p)).collect();
            let got: Vec<u32> = peak_requests(&input, &choices)
                .iter()
                .map(|r| match r.hardware {
                    Hardware::Cpu { cores } => cores,
                    Hardware::Gpu { .. } => 0,
                })
                .collect();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn spans_follow_the_policy() {
        let input = chain();
        let s = |p, s0, fin| {
            let sp = span(&input, 1, &choice(1, p), s0, fin);
            (sp.from_s, sp.to_s)
        };
        let inf = f64::INFINITY;
        assert_eq!(s(ColdStart::AlwaysOn, 3.0, 6.0), (-inf, inf));
        assert_eq!(
            s(ColdStart::KeepAlive { seconds: 10.0 }, 3.0, 6.0),
            (-inf, inf)
        );
        assert_eq!(
            s(ColdStart::KeepAlive { seconds: 4.0 }, 3.0, 8.0),
            (3.0, 12.0)
        );
        assert_eq!(s(pre(1.0), 3.0, 6.0), (1.0, 6.0));
        // Unpredictable gaps: initialisation cannot begin before the burst arrives.
        assert_eq!(s(pre(-2.0), 0.0, 5.0), (0.0, 5.0));
        let a = choice(1, pre(0.0));
        let k = |t| choice(1, ColdStart::KeepAlive { seconds: t });
        assert!(holds_no_longer(
            &a,
            &choice(1, ColdStart::AlwaysOn),
            &input.load
        ));
        assert!(!holds_no_longer(
            &choice(1, ColdStart::AlwaysOn),
            &a,
            &input.load
        ));
        assert!(holds_no_longer(&k(1.0), &k(2.0), &input.load));
        assert!(!holds_no_longer(&k(2.0), &k(1.0), &input.load));
        assert!(!holds_no_longer(&k(1.0), &a, &input.load));
    }
}
