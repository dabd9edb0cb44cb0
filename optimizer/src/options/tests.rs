//! Tests of the option tables (the parent module).
#![allow(clippy::unwrap_used)]
use super::*;
use crate::{Load, ProfileSet, testkit};

#[test]
fn table_rows_match_the_reference_model_and_are_a_pareto_set() {
    let input = PlanInput::new(
        testkit::paper_dag("voice-assistant").unwrap(),
        &ProfileSet::paper(),
        3.0,
        Load::new(Some(8.0), Some(2.0)).unwrap(),
    )
    .unwrap();
    let t = build(&input, &input.space);
    for (node, opts) in t.opts.iter().enumerate() {
        assert!(!opts.is_empty());
        for (i, o) in opts.iter().enumerate() {
            if !matches!(o.choice.policy, ColdStart::PreWarm { .. }) {
                let b = model::behaviour(&input, node, &o.choice);
                assert!(
                    (b.cost_h - o.cost).abs() < 1e-12
                        && (b.delay + b.service - o.alpha).abs() < 1e-12
                        && b.wait == o.wait
                );
            }
            for (j, other) in opts.iter().enumerate() {
                assert!(
                    i == j || !other.dominates(o),
                    "{node}: option {i} dominated by {j}"
                );
            }
        }
        let f = &opts[t.fastest[node]];
        assert_eq!((f.alpha, f.beta), (t.min_alpha[node], t.min_beta[node]));
        assert_eq!(
            f.wait,
            opts.iter().map(|o| o.wait).fold(f64::INFINITY, f64::min)
        );
    }
}

/// The per-group pruning only shrinks the sort: on every shape, load, gap model, deployment and
/// pre-warm mode the tables (options, their order, the minima, the fastest) are exactly those built
/// without it, and it does drop options.
#[test]
fn group_pruning_leaves_the_tables_unchanged() {
    use crate::load::GapModel;
    use crate::testkit::Shape;
    let set = ProfileSet::paper();
    let loads = [
        (Some(8.0), Some(2.0)),
        (Some(0.5), None),
        (Some(2.0), Some(0.5)),
        (Some(30.0), Some(1.0)),
    ];
    let mut inputs = Vec::new();
    for (i, shape) in [
        Shape::Chain,
        Shape::Diamond,
        Shape::FanOut,
        Shape::FanIn,
        Shape::Random,
    ]
    .into_iter()
    .enumerate()
    {
        for (j, &(rate, gap)) in loads.iter().enumerate() {
            let dag = testkit::random_dag(7 + (i * 10 + j) as u64, 5, shape);
            let mut input = PlanInput::new(dag, &set, 3.0, Load::new(rate, gap).unwrap()).unwrap();
            if j == 1 {
                input.load = input.load.with_gaps(GapModel::Deterministic);
            }
            if j == 2 {
                input.close_rate_per_s = Some(6.0);
                input.space.prewarm = PrewarmMode::AtArrival;
                let first = input.dag.nodes[0].name.clone();
                input.current.insert(first, Hardware::Cpu { cores: 2 });
            }
            if j == 3 {
                input.params.queueing = false;
            }
            inputs.push(input);
        }
    }
    for name in testkit::PAPER_DAGS {
        let dag = testkit::paper_dag(name).unwrap();
        let load = Load::new(Some(8.0), Some(2.0)).unwrap();
        inputs.push(PlanInput::new(dag, &set, 3.0, load).unwrap());
    }
    let mut sorted_fewer = 0;
    for input in &inputs {
        let pruned = build_with(input, &input.space, true, &CapacityTerms::NONE);
        let full = build_with(input, &input.space, false, &CapacityTerms::NONE);
        assert_eq!(pruned.opts, full.opts);
        assert_eq!(
            (&pruned.min_cost, &pruned.min_alpha, &pruned.min_beta),
            (&full.min_cost, &full.min_alpha, &full.min_beta)
        );
        assert_eq!(pruned.fastest, full.fastest);
        assert_eq!(pruned.enumerated, full.enumerated);
        sorted_fewer += usize::from(pruned.sorted < full.sorted);
    }
    assert!(
        sorted_fewer > inputs.len() / 2,
        "pruned in {sorted_fewer} cases"
    );
}

#[test]
fn a_dearer_line_option_with_no_smaller_alpha_is_pruned() {
    let opt = |cost: f64, alpha: f64, beta: f64, idle_rate: f64| Opt {
        choice: Choice {
            hardware: Hardware::Cpu { cores: 1 },
            batch: 1,
            replicas: 1,
            policy: ColdStart::AlwaysOn,
        },
        cost,
        alpha,
        beta,
        ready: 0.0,
        idle_rate,
        wait: 0.0,
        init_est: 1.0,
    };
    // Always-on (dearer) and a warm keep-alive with the same α; a pre-warm dearer and slower than
    // the keep-alive; a break-even keep-alive cheaper but later (kept).
    let mut all = vec![
        opt(9.0, 1.0, 1.0, 0.0),
        opt(9.0, 1.0, 1.0, 0.0),
        opt(2.0, 1.0, 1.0, 0.0),
        opt(3.0, 1.0, 4.0, 0.0),
        opt(1.0, 5.0, 5.0, 0.0),
        opt(2.5, 1.0, 1.5, 0.5),
    ];
    prune_group(&mut all, 1);
    let costs: Vec<f64> = all.iter().map(|o| o.cost).collect();
    assert_eq!(costs, [9.0, 2.0, 1.0]);
}
