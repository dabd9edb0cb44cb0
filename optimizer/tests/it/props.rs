//! Property tests: on random DAGs of up to 8 functions (chains, diamonds, fan-in, fan-out, random), the
//! co-optimiser with its default K is within 1 % of the exhaustive optimum, is never infeasible when a
//! feasible plan exists, and never predicts a latency below the plan's independently recomputed critical
//! path (nor above the SLA).
use std::collections::BTreeMap;

use optimizer::planners::fastest_latency;
use optimizer::{
    CoOptimiser, Exhaustive, GapModel, Hardware, Load, PlanError, PlanInput, Policy, ProfileSet,
    testkit,
};
use proptest::prelude::*;

use crate::oracle::critical_path;

fn input_for(
    seed: u64,
    n: usize,
    shape: usize,
    sla_factor: f64,
    load_kind: usize,
    det: bool,
    current: bool,
) -> PlanInput {
    let dag = testkit::random_dag(seed, n, testkit::SHAPES[shape]);
    let (rate, gap) = [(0.1, 10.0), (8.0, 2.0), (1.0 / 60.0, 60.0), (2.0, 2.0)][load_kind];
    let mut load = Load::new(Some(rate), Some(gap)).unwrap();
    if det {
        load = load.with_gaps(GapModel::Deterministic);
    }
    let mut input = PlanInput::new(dag, &ProfileSet::paper(), 1.0, load).unwrap();
    if current {
        // Half the functions currently run on 2 cores: a change costs a re-initialisation.
        let names: Vec<String> = input
            .dag
            .nodes
            .iter()
            .step_by(2)
            .map(|n| n.name.clone())
            .collect();
        input.current = names
            .into_iter()
            .map(|n| (n, Hardware::Cpu { cores: 2 }))
            .collect::<BTreeMap<_, _>>();
    }
    input.sla_s = fastest_latency(&input) * sla_factor;
    input
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn co_optimiser_is_near_exhaustive(
        seed in any::<u64>(),
        n in 1usize..=8,
        shape in 0usize..5,
        sla_factor in 0.9f64..3.0,
        load_kind in 0usize..4,
        det in any::<bool>(),
        current in any::<bool>(),
    ) {
        let input = input_for(seed, n, shape, sla_factor, load_kind, det, current);
        let opt = Exhaustive { seed_with_beam: false }.plan(&input);
        let ours = CoOptimiser::SMILESS.plan(&input);
        match (&opt, &ours) {
            (Err(PlanError::Infeasible { .. }), Err(PlanError::Infeasible { .. })) => {
                prop_assert!(sla_factor < 1.0 + 1e-9);
            }
            (Ok(opt), Ok(ours)) => {
                prop_assert!(opt.stats.proven_optimal, "exhaustive ran out of budget");
                prop_assert!(ours.meets_sla && opt.meets_sla);
                prop_assert!(ours.cost_per_hour <= opt.cost_per_hour * 1.01 + 1e-12,
                    "co-optimiser {} vs optimum {} ({:?})", ours.cost_per_hour, opt.cost_per_hour, input.dag.name);
                prop_assert!(ours.cost_per_hour >= opt.cost_per_hour * (1.0 - 1e-9) - 1e-12,
                    "below the optimum: {} < {}", ours.cost_per_hour, opt.cost_per_hour);
                for plan in [ours, opt] {
                    let cp = critical_path(&input, plan);
                    prop_assert!(plan.predicted_latency_s >= cp - 1e-9, "{} < critical path {}", plan.predicted_latency_s, cp);
                    prop_assert!(plan.predicted_latency_s <= input.sla_s * (1.0 + 1e-9));
                }
            }
            (a, b) => prop_assert!(false, "disagree on feasibility: opt {:?} vs ours {:?}", a.as_ref().err(), b.as_ref().err()),
        }
    }
}

/// The beam alone (no Lagrangian candidate, no branch-and-bound polish), with local search: how often it is within 1 % of the
/// optimum on a fixed set of 500 random instances. It is a heuristic, so this is a rate, not a guarantee;
/// the co-optimiser's polish closes the rest (property above).
#[test]
fn beam_alone_is_within_one_percent_on_most_instances() {
    let mut within = 0;
    let mut total = 0;
    let mut worst: f64 = 1.0;
    for seed in 0..500u64 {
        let mut input = input_for(
            seed.wrapping_mul(0x9E37_79B9),
            3 + (seed as usize % 6),
            (seed % 5) as usize,
            1.0 + (seed % 13) as f64 / 6.0,
            (seed % 4) as usize,
            seed % 3 == 0,
            false,
        );
        input.polish_nodes = 0;
        input.lagrange_iters = 0;
        let opt = Exhaustive {
            seed_with_beam: false,
        }
        .plan(&input)
        .unwrap();
        let beam = CoOptimiser::SMILESS.plan(&input).unwrap();
        let r = beam.cost_per_hour / opt.cost_per_hour;
        worst = worst.max(r);
        total += 1;
        if r <= 1.01 {
            within += 1;
        }
    }
    println!(
        "beam alone (K = {}): within 1 % on {within}/{total}, worst ratio {worst:.4}",
        optimizer::plan::auto_beam_width(8)
    );
    assert!(within * 100 >= total * 97, "{within}/{total}");
}

/// The branch and bound's cost bound must never exceed the best completion (admissible), or the
/// "exhaustive optimum" the property above compares against would be wrong with it. Checked against
/// brute-force enumeration of every combination of the same Pareto option tables on small DAGs.
#[test]
fn exhaustive_equals_brute_force_on_small_dags() {
    use optimizer::options;
    use optimizer::search::{self, Bounds, exact};
    let mut checked = 0;
    for seed in 0..40u64 {
        let n = 2 + (seed as usize % 3);
        let input = input_for(
            seed.wrapping_mul(0x2545_F491_4F6C_DD1D),
            n,
            (seed % 5) as usize,
            1.0 + (seed % 7) as f64 / 4.0,
            (seed % 4) as usize,
            seed % 3 == 0,
            seed % 2 == 1,
        );
        let t = options::build(&input, &input.space);
        let combos: usize = t.opts.iter().map(Vec::len).product();
        if combos > 200_000 {
            continue;
        }
        let sla = input.sla_s * (1.0 + 1e-9);
        let mut picks = vec![0usize; n];
        let mut finish = vec![0.0; 2 * n];
        let mut best = f64::INFINITY;
        'all: loop {
            let (c, l) = search::quick_eval(&input, &t, &picks, &mut finish);
            if l <= sla {
                best = best.min(c);
            }
            // The next combination (an odometer over the option indices).
            for (p, opts) in picks.iter_mut().zip(&t.opts) {
                *p += 1;
                if *p < opts.len() {
                    continue 'all;
                }
                *p = 0;
            }
            break;
        }
        let b = Bounds::new(&input, &t);
        let e = exact::search(&input, &t, &b, None, u64::MAX).unwrap();
        assert!(e.proven);
        assert!(
            (e.cost - best).abs() <= 1e-9 * best.max(1.0),
            "seed {seed}: branch and bound {} vs brute force {best}",
            e.cost
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} instances small enough");
}
