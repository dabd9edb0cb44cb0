//! An independent re-computation of a plan's critical-path latency and cost, written from the model's
//! definition (docs/planning.md) without the crate's evaluator, and checks that the crate agrees.
use optimizer::{ColdStart, GapModel, Load, Plan, PlanInput, Policy, ProfileSet, testkit};

/// P(N ≥ k), N ~ Poisson(mu), from the probability mass function.
fn poisson_tail(mu: f64, k: u32) -> f64 {
    let mut pmf = (-mu).exp();
    let mut below = 0.0;
    for i in 0..k {
        below += pmf;
        pmf *= mu / f64::from(i + 1);
    }
    1.0 - below
}

/// The queueing term (docs/planning.md): the SLA-quantile wait of a request at a function whose call
/// takes `d` s, with batch `b` and `n` replicas.
fn wait(input: &PlanInput, d: f64, b: u32, n: u32) -> f64 {
    if !input.params.queueing {
        return 0.0;
    }
    let g = input.load.interarrival_s;
    if input.load.gaps == GapModel::Deterministic {
        return if g < d && n < 2 * input.load.burst_size() {
            d - g
        } else {
            0.0
        };
    }
    let rate = input.close_rate_per_s.unwrap_or(0.0).max(1.0 / g);
    let eps = 1.0 - input.params.sla_quantile;
    for j in 0..4 {
        if poisson_tail(rate * d, n + j * n * b) <= eps {
            return f64::from(j) * d;
        }
    }
    4.0 * d
}

/// Latency of `plan` recomputed from first principles: a path's latency is its readiness and service
/// times plus its largest queueing wait (the bottleneck; docs/planning.md), i.e. the largest, over
/// functions `v`, of the DAG's critical path with `v`'s wait alone. Computed that way (one pass per
/// `v`), not by the crate's two-finish-time pass.
pub fn critical_path(input: &PlanInput, plan: &Plan) -> f64 {
    let dag = &input.dag;
    let m = input.load.burst_size();
    let g = input.load.interarrival_s;
    // Per function: (delay to start after s, ready time, service, wait).
    let mut parts = Vec::with_capacity(dag.len());
    for f in 0..dag.len() {
        let c = &plan.functions[f].choice;
        let p = &input.profiles[f];
        let b = c.batch.min(m).max(1);
        let calls = m.div_ceil(b);
        let waves = calls.div_ceil(c.replicas.max(1));
        let d = f64::from(waves) * p.infer_time(c.hardware, b);
        let init = p.init(c.hardware);
        let init_est = init.mean_s + input.params.init_std_factor * init.std_s;
        let (delay, ready) = match c.policy {
            ColdStart::AlwaysOn => (0.0, 0.0),
            ColdStart::KeepAlive { seconds } => {
                let p_cold = match input.load.gaps {
                    GapModel::Exponential => (-seconds / g).exp(),
                    GapModel::Deterministic => f64::from(u8::from(g > seconds)),
                };
                if p_cold > 1.0 - input.params.sla_quantile + 1e-9 {
                    (init_est, 0.0)
                } else {
                    (0.0, 0.0)
                }
            }
            ColdStart::PreWarm { offset_s } => {
                let lower = if input.load.gaps == GapModel::Exponential {
                    0.0
                } else {
                    f64::NEG_INFINITY
                };
                (0.0, offset_s.max(lower) + init_est)
            }
        };
        // A batched call may wait the gather window for its batch to fill (docs/batching.md): on the
        // latency path, not in the replica's busy time the queueing wait is computed from.
        let gather = if b > 1 {
            optimizer::exec::gather::GATHER_WINDOW_S
        } else {
            0.0
        };
        parts.push((
            delay,
            ready,
            d + gather,
            wait(input, d, b, c.replicas.max(1)),
        ));
    }
    let with_wait_at = |v: Option<usize>| {
        let mut finish = vec![0.0_f64; dag.len()];
        for &f in &dag.topo {
            let (delay, ready, d, w) = parts[f];
            let s = dag.pred[f].iter().map(|&q| finish[q]).fold(0.0, f64::max);
            let own = if v == Some(f) { w } else { 0.0 };
            finish[f] = (s + delay).max(ready) + d + own;
        }
        dag.sinks().map(|f| finish[f]).fold(0.0, f64::max)
    };
    (0..dag.len())
        .map(Some)
        .chain([None])
        .map(with_wait_at)
        .fold(0.0, f64::max)
}

#[test]
fn crate_latency_equals_the_independent_critical_path() {
    let set = ProfileSet::paper();
    for name in testkit::PAPER_DAGS {
        for (rate, gap) in [(0.1, 10.0), (8.0, 2.0), (1.0 / 60.0, 60.0)] {
            let input = PlanInput::new(
                testkit::paper_dag(name).unwrap(),
                &set,
                4.0,
                Load::new(Some(rate), Some(gap)).unwrap(),
            )
            .unwrap();
            for pol in optimizer::POLICY_NAMES {
                let plan = optimizer::policy_by_name(pol)
                    .unwrap()
                    .plan(&input)
                    .unwrap();
                let cp = critical_path(&input, &plan);
                assert!(
                    (plan.predicted_latency_s - cp).abs() < 1e-9,
                    "{name} {pol}: {} vs {cp}",
                    plan.predicted_latency_s
                );
                let sum: f64 = plan.functions.iter().map(|f| f.cost_per_hour).sum();
                assert!((sum - plan.cost_per_hour).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn prewarm_is_staggered_along_the_dag() {
    // Long gaps make pre-warming the cheap policy; downstream offsets must grow along the chain so each
    // replica is ready when its predecessor finishes (the SMIless stagger), never idle before.
    let set = ProfileSet::paper();
    let input = PlanInput::new(
        testkit::paper_dag("image-query").unwrap(),
        &set,
        6.0,
        Load::new(None, Some(120.0)).unwrap(),
    )
    .unwrap();
    let plan = optimizer::CoOptimiser::SMILESS.plan(&input).unwrap();
    for (i, f) in plan.functions.iter().enumerate() {
        if let ColdStart::PreWarm { offset_s } = f.choice.policy {
            let init = input.profiles[i].init(f.choice.hardware);
            let ready = offset_s.max(0.0) + init.mean_s + 3.0 * init.std_s;
            assert!(
                (ready - f.start_s).abs() < 1e-9,
                "{}: ready at {ready}, needed at {}",
                f.name,
                f.start_s
            );
        }
    }
    assert!(
        plan.functions
            .iter()
            .any(|f| matches!(f.choice.policy, ColdStart::PreWarm { offset_s } if offset_s > 0.0)),
        "{plan:#?}"
    );
}
