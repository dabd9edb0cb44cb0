//! The joint planner against an exhaustive optimum on multi-DAG instances with capacity (up to 16
//! functions in 2–4 DAGs), and the shared-function case. The exhaustive checker enumerates every
//! combination of every function's options (the resource-aware option tables, which drop only options
//! that are no better in any respect and request no less) per DAG, keeps per DAG the SLA-meeting plans
//! that no cheaper plan requesting no more beats, then searches the DAGs' combinations in cost order for
//! the cheapest whose requests the packing places.
use optimizer::capacity::joint::{JointInput, plan_all};
use optimizer::capacity::timeline::peak_requests;
use optimizer::capacity::{Capacity, KubeNode, Replica};
use optimizer::planners::fastest_latency;
use optimizer::{
    CoOptimiser, Hardware, HardwareSpace, Load, PlanInput, Policy, PolicySet, ProfileSet, options,
    search, testkit,
};
use proptest::prelude::*;

/// Replica sizes of a plan, CPU cores and GPU shares, each sorted largest first.
type Sig = (Vec<u32>, Vec<u32>);

fn sig(reps: &[Replica]) -> Sig {
    let (mut c, mut g) = (Vec::new(), Vec::new());
    for r in reps {
        match r.hardware {
            Hardware::Cpu { cores } => c.push(cores),
            Hardware::Gpu { share_pct } => g.push(share_pct),
        }
    }
    c.sort_unstable_by(|a, b| b.cmp(a));
    g.sort_unstable_by(|a, b| b.cmp(a));
    (c, g)
}

/// `a` requests no less than `b`, replica by replica.
fn no_less(a: &Sig, b: &Sig) -> bool {
    let le = |x: &[u32], y: &[u32]| x.len() <= y.len() && x.iter().zip(y).all(|(p, q)| p <= q);
    le(&b.0, &a.0) && le(&b.1, &a.1)
}

/// Per DAG, its SLA-meeting plans (cost, replicas) that no cheaper plan requesting no more beats.
fn dag_plans(input: &PlanInput) -> Vec<(f64, Vec<Replica>)> {
    let t = options::build_for_capacity(
        input,
        &input.space,
        &options::CapacityTerms {
            penalty: &|_, _| 0.0,
            resource_aware: true,
        },
    );
    let n = input.dag.len();
    let sla = input.sla_s * (1.0 + 1e-9);
    let mut picks = vec![0usize; n];
    let mut finish = vec![0.0; 2 * n];
    let mut all: Vec<(f64, Sig, Vec<Replica>)> = Vec::new();
    'odometer: loop {
        let (c, l) = search::quick_eval(input, &t, &picks, &mut finish);
        if l <= sla {
            let choices: Vec<_> = (0..n).map(|f| t.opts[f][picks[f]].choice).collect();
            let reps = peak_requests(input, &choices);
            all.push((c, sig(&reps), reps));
        }
        for (p, o) in picks.iter_mut().zip(&t.opts) {
            *p += 1;
            if *p < o.len() {
                continue 'odometer;
            }
            *p = 0;
        }
        break;
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut kept: Vec<(f64, Sig, Vec<Replica>)> = Vec::new();
    for p in all {
        if !kept.iter().any(|k| no_less(&p.1, &k.1)) {
            kept.push(p);
        }
    }
    kept.into_iter().map(|(c, _, r)| (c, r)).collect()
}

/// The cheapest combination whose requests fit, if any.
fn exhaustive(inputs: &[PlanInput], cap: &Capacity) -> Option<f64> {
    let lists: Vec<Vec<(f64, Vec<Replica>)>> = inputs.iter().map(dag_plans).collect();
    let min_rest: Vec<f64> = (0..=lists.len())
        .map(|d| {
            lists[d..]
                .iter()
                .map(|l| l.first().map_or(f64::INFINITY, |p| p.0))
                .sum()
        })
        .collect();
    fn go(
        lists: &[Vec<(f64, Vec<Replica>)>],
        min_rest: &[f64],
        cap: &Capacity,
        d: usize,
        cost: f64,
        stack: &mut Vec<Replica>,
        best: &mut f64,
    ) {
        if d == lists.len() {
            if cap.pack(stack).fits() {
                *best = cost;
            }
            return;
        }
        for (c, reps) in &lists[d] {
            if cost + c + min_rest[d + 1] >= *best {
                break;
            }
            let len = stack.len();
            stack.extend(reps.iter().cloned());
            go(lists, min_rest, cap, d + 1, cost + c, stack, best);
            stack.truncate(len);
        }
    }
    let mut best = f64::INFINITY;
    go(&lists, &min_rest, cap, 0, 0.0, &mut Vec::new(), &mut best);
    best.is_finite().then_some(best)
}

fn instance(seed: u64, sizes: &[usize], sla_factor: f64, cap_kind: usize) -> JointInput {
    let set = ProfileSet::paper();
    let loads = [(1.0, 1.0), (8.0, 2.0), (0.1, 10.0), (4.0, 0.5)];
    let dags = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let s = seed.wrapping_add(i as u64 * 7919);
            let shape = testkit::SHAPES[(s % 5) as usize];
            let mut dag = testkit::random_dag(s, n, shape);
            dag.name = format!("d{i}");
            // Distinct names: a name in two DAGs would be one shared function.
            for node in &mut dag.nodes {
                node.name = format!("d{i}-{}", node.name);
            }
            let (r, g) = loads[(s / 5 % 4) as usize];
            let mut input =
                PlanInput::new(dag, &set, 1.0, Load::new(Some(r), Some(g)).unwrap()).unwrap();
            input.space.hardware = HardwareSpace {
                cpu_cores: vec![1, 2, 4],
                gpu_shares: vec![20, 50, 100],
            };
            input.space.batches = vec![1];
            input.space.spread_replicas = false;
            input.space.policies = PolicySet {
                pre_warm: false,
                ..PolicySet::ALL
            };
            input.sla_s = fastest_latency(&input) * sla_factor;
            input
        })
        .collect();
    let node = |name: &str, cores: u64, gpu_units| KubeNode {
        name: name.into(),
        cpu_millis: cores * 1000,
        gpu_units,
        units_per_gpu: 10,
    };
    let capacity = match cap_kind {
        0 => Capacity::host(4, &[100]),
        1 => Capacity::host(8, &[]),
        2 => Capacity::from_kube_nodes(&[node("c", 4, 0), node("g", 4, 10)]).unwrap(),
        _ => Capacity::from_kube_nodes(&[node("c0", 6, 0), node("c1", 6, 0), node("g", 2, 10)])
            .unwrap(),
    };
    JointInput::new(dags, capacity)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn joint_planner_is_near_the_exhaustive_optimum_within_capacity(
        seed in any::<u64>(),
        sizes in prop::collection::vec(1usize..=4, 2..=4),
        sla_factor in 1.05f64..3.0,
        cap_kind in 0usize..4,
    ) {
        let ji = instance(seed, &sizes, sla_factor, cap_kind);
        let got = plan_all(&ji).unwrap();
        prop_assert!(got.packing.fits(), "{:?}", got.packing.unplaced);
        for n in &got.packing.nodes {
            prop_assert!(n.cpu_millis_requested <= n.cpu_millis_capacity);
            prop_assert!(n.gpu_units_requested <= n.gpu_units_capacity);
        }
        match exhaustive(&ji.dags, &ji.capacity) {
            Some(opt) => {
                prop_assert!(got.degraded.is_empty(), "degraded {:?} where the optimum {opt} meets every SLA", got.degraded);
                prop_assert!(got.plans.iter().all(|p| p.as_ref().is_some_and(|p| p.meets_sla)));
                prop_assert!(got.cost_per_hour <= opt * 1.01 + 1e-12, "joint {} vs optimum {opt}", got.cost_per_hour);
            }
            None => prop_assert!(!got.degraded.is_empty(), "no degradation, yet no combination fits"),
        }
    }
}

/// `imagerecognition` is in amber-alert and image-query (the paper's DAGs, unprefixed): planned once,
/// for both loads, it costs less than planning the two DAGs apart, and both still meet their SLAs.
#[test]
fn a_shared_function_is_planned_once_for_less() {
    let set = ProfileSet::paper();
    let load = Load::new(Some(1.0), None).unwrap();
    let dags: Vec<PlanInput> = ["amber-alert", "image-query"]
        .iter()
        .map(|n| PlanInput::new(testkit::paper_dag(n).unwrap(), &set, 3.0, load).unwrap())
        .collect();
    let apart: f64 = dags
        .iter()
        .map(|d| CoOptimiser::SMILESS.plan(d).unwrap().cost_per_hour)
        .sum();
    let ji = JointInput::new(dags, Capacity::host(64, &[100, 100]));
    let joint = plan_all(&ji).unwrap();
    assert_eq!(joint.shared.len(), 1, "{:?}", joint.shared);
    assert_eq!(joint.shared[0].name, "imagerecognition");
    assert_eq!(joint.shared[0].dags, ["amber-alert", "image-query"]);
    assert!(joint.degraded.is_empty());
    for p in &joint.plans {
        let p = p.as_ref().unwrap();
        assert!(p.meets_sla, "{p:#?}");
        let f = p
            .functions
            .iter()
            .find(|f| f.name == "imagerecognition")
            .unwrap();
        assert_eq!(f.choice, joint.shared[0].choice);
    }
    println!(
        "shared: joint {:.4} $/h vs apart {apart:.4} $/h",
        joint.cost_per_hour
    );
    assert!(
        joint.cost_per_hour < apart,
        "joint {} vs apart {apart}",
        joint.cost_per_hour
    );
    // The DAG plans' costs add up to the total (the shared function split by rate).
    let sum: f64 = joint.plans.iter().flatten().map(|p| p.cost_per_hour).sum();
    assert!((sum - joint.cost_per_hour).abs() < 1e-9 * joint.cost_per_hour);
}
