//! Planner benchmark: the co-optimiser (top-K beam, Lagrangian candidate and local moves, then a budgeted
//! branch-and-bound polish), the same without the polish, and the exhaustive optimum, side by side on the paper's three DAGs and on random DAGs
//! of 8, 16, 32 and 64 functions. First a table (time per plan and cost ratio to the exhaustive optimum,
//! measured with a plain loop), then criterion's own measurements of the same calls.
//!
//! Then the joint planner (capacity and every DAG together) on the paper's DAGs and on 64 functions in 8
//! DAGs.
//!
//! Run: `cargo bench -p optimizer --bench plan` (`-- --table-only` for the tables alone, `-- --joint-only`
//! for the joint table alone, `-- --quick` for a shorter criterion pass).
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use optimizer::capacity::joint::{JointInput, plan_all};
use optimizer::capacity::{Capacity, KubeNode};
use optimizer::planners::fastest_latency;
use optimizer::{
    CoOptimiser, Exhaustive, Load, Plan, PlanInput, Policy, ProfileSet, options, testkit,
};

struct Case {
    label: String,
    input: PlanInput,
}

fn cases() -> Vec<Case> {
    let set = ProfileSet::paper();
    let mut out = Vec::new();
    // Bursts of 16 requests every 2 s (the artifact's concurrency 16 and 2-s rounds): all three batch caps
    // are distinct, so each function has 4 CPU sizes × 10 GPU shares × 3 batches × 2 replica counts ×
    // 5 policies = 1 200 options before the Pareto reduction.
    for name in testkit::PAPER_DAGS {
        let mut input = PlanInput::new(
            testkit::paper_dag(name).expect("paper DAG"),
            &set,
            3.0,
            Load::new(Some(8.0), Some(2.0)).expect("load"),
        )
        .expect("input");
        input.sla_s = 3.0;
        out.push(Case {
            label: format!("{name} (m=16)"),
            input,
        });
    }
    for n in [8usize, 16, 32, 64] {
        let dag = testkit::random_dag(42 + n as u64, n, testkit::Shape::Random);
        let mut input = PlanInput::new(
            dag,
            &set,
            1.0,
            Load::new(Some(8.0), Some(2.0)).expect("load"),
        )
        .expect("input");
        input.sla_s = 1.5 * fastest_latency(&input);
        out.push(Case {
            label: format!("random {n}"),
            input,
        });
    }
    out
}

/// This thread's CPU time in ns (Linux; 0 elsewhere). On a shared machine the wall time per call
/// includes waiting for a core; the CPU time does not.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (wall per call, CPU per call, first result).
fn time_per_call(mut f: impl FnMut() -> Plan, budget: Duration) -> (Duration, Duration, Plan) {
    let first = f();
    let start = Instant::now();
    let c0 = cpu_ns();
    let mut calls = 0u32;
    while start.elapsed() < budget || calls < 3 {
        black_box(f());
        calls += 1;
    }
    let cpu = Duration::from_nanos((cpu_ns() - c0) / u64::from(calls));
    (start.elapsed() / calls, cpu, first)
}

fn table() {
    println!(
        "{:<24} {:>3} {:>9} {:>11} {:>11} {:>11} {:>13} {:>8} {:>8} {:>7}",
        "case",
        "n",
        "opts/fn",
        "co-opt",
        "co-opt cpu",
        "no polish",
        "exhaustive",
        "co/opt",
        "nopol/opt",
        "proven"
    );
    for c in cases() {
        let t = options::build(&c.input, &c.input.space);
        let per_fn = t.opts.iter().map(Vec::len).sum::<usize>() as f64 / c.input.dag.len() as f64;
        let enumerated = t.enumerated / c.input.dag.len();
        let (t_co, c_co, co) = time_per_call(
            || CoOptimiser::SMILESS.plan(&c.input).expect("plan"),
            Duration::from_millis(300),
        );
        let mut beam_in = c.input.clone(); // no polish
        beam_in.polish_nodes = 0;
        let (t_beam, _, beam) = time_per_call(
            || CoOptimiser::SMILESS.plan(&beam_in).expect("plan"),
            Duration::from_millis(300),
        );
        let mut ex_in = c.input.clone();
        ex_in.exact_node_limit = 5_000_000;
        let ex_policy = Exhaustive::default();
        let (t_ex, _, ex) = time_per_call(
            || ex_policy.plan(&ex_in).expect("plan"),
            Duration::from_millis(300),
        );
        println!(
            "{:<24} {:>3} {:>4}/{:<4} {:>9.1}µs {:>9.1}µs {:>9.1}µs {:>11.1}µs {:>8.4} {:>8.4} {:>7}",
            c.label,
            c.input.dag.len(),
            per_fn.round(),
            enumerated,
            t_co.as_secs_f64() * 1e6,
            c_co.as_secs_f64() * 1e6,
            t_beam.as_secs_f64() * 1e6,
            t_ex.as_secs_f64() * 1e6,
            co.cost_per_hour / ex.cost_per_hour,
            beam.cost_per_hour / ex.cost_per_hour,
            if ex.stats.proven_optimal {
                "yes"
            } else {
                "LIMIT"
            },
        );
    }
    println!(
        "(opts/fn: Pareto options kept / enumerated per function. Times are wall per plan, and CPU per plan"
    );
    println!(
        " for the co-optimiser. Exhaustive: branch and bound seeded with the beam, limited to 5M partial"
    );
    println!(
        " plans; LIMIT: not proven optimal, its plan is then the best it found. Ratios: plan cost over the"
    );
    println!(
        " exhaustive plan's cost. no polish: the co-optimiser without its branch-and-bound polish.)"
    );
}

/// The joint planner's cases: the three paper DAGs (as stack.yml names them) and 64 functions in 8
/// random DAGs, on the kube e2e's fake cluster (2 CPU nodes of 16 cores, 2 GPU nodes of 32 cores and
/// one GPU in 10 units) and on a 2-core host.
fn joint_cases() -> Vec<(String, JointInput)> {
    let set = ProfileSet::paper();
    let load = Load::new(Some(1.0), None).expect("load");
    let node = |name: &str, cores: u64, gpu_units| KubeNode {
        name: name.into(),
        cpu_millis: cores * 1000,
        gpu_units,
        units_per_gpu: 10,
    };
    let cluster = Capacity::from_kube_nodes(&[
        node("cpu-node-0", 16, 0),
        node("cpu-node-1", 16, 0),
        node("gpu-node-0", 32, 10),
        node("gpu-node-1", 32, 10),
    ])
    .expect("cluster");
    let paper: Vec<PlanInput> = testkit::PAPER_DAGS
        .iter()
        .map(|n| {
            PlanInput::new(testkit::stack_dag(n).expect("dag"), &set, 2.0, load).expect("input")
        })
        .collect();
    let many: Vec<PlanInput> = (0..8u64)
        .map(|i| {
            let mut dag = testkit::random_dag(100 + i, 8, testkit::SHAPES[(i % 5) as usize]);
            dag.name = format!("d{i}");
            for n in &mut dag.nodes {
                n.name = format!("d{i}-{}", n.name);
            }
            let mut input = PlanInput::new(dag, &set, 1.0, load).expect("input");
            input.sla_s = 1.5 * fastest_latency(&input);
            input
        })
        .collect();
    vec![
        (
            "3 paper DAGs, fake cluster".into(),
            JointInput::new(paper.clone(), cluster.clone()),
        ),
        (
            "3 paper DAGs, 2-core host".into(),
            JointInput::new(paper, Capacity::host(2, &[])),
        ),
        (
            "64 fns in 8 DAGs, fake cluster".into(),
            JointInput::new(many.clone(), cluster),
        ),
        (
            "64 fns in 8 DAGs, 2-core host".into(),
            JointInput::new(many, Capacity::host(2, &[])),
        ),
    ]
}

fn joint_table() {
    println!(
        "\n{:<32} {:>4} {:>11} {:>11} {:>9} {:>8} {:>14}",
        "joint case", "fns", "wall", "cpu", "$/h", "degraded", "cores used/cap"
    );
    for (label, ji) in joint_cases() {
        let fns: usize = ji.dags.iter().map(|d| d.dag.len()).sum();
        let first = plan_all(&ji).expect("joint plan");
        let start = Instant::now();
        let c0 = cpu_ns();
        let mut calls = 0u32;
        while start.elapsed() < Duration::from_millis(500) || calls < 3 {
            black_box(plan_all(&ji).expect("joint plan"));
            calls += 1;
        }
        let cpu = Duration::from_nanos((cpu_ns() - c0) / u64::from(calls));
        let wall = start.elapsed() / calls;
        let used: u64 = first
            .packing
            .nodes
            .iter()
            .map(|n| n.cpu_millis_requested)
            .sum();
        let cap: u64 = first
            .packing
            .nodes
            .iter()
            .map(|n| n.cpu_millis_capacity)
            .sum();
        println!(
            "{:<32} {:>4} {:>9.1}µs {:>9.1}µs {:>9.4} {:>8} {:>8}/{:<5}",
            label,
            fns,
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6,
            first.cost_per_hour,
            first.degraded.len(),
            used / 1000,
            cap / 1000,
        );
    }
    println!(
        "(joint: capacity::joint::plan_all, every DAG and the capacity together; time per call.)"
    );
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    for case in cases() {
        g.bench_function(format!("co-opt/{}", case.label), |b| {
            b.iter(|| CoOptimiser::SMILESS.plan(black_box(&case.input)))
        });
        if case.input.dag.len() <= 8 {
            let ex = Exhaustive::default();
            g.bench_function(format!("exhaustive/{}", case.label), |b| {
                b.iter(|| ex.plan(black_box(&case.input)))
            });
        }
    }
    for (label, ji) in joint_cases() {
        g.bench_function(format!("joint/{label}"), |b| {
            b.iter(|| plan_all(black_box(&ji)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if !std::env::args().any(|a| a == "--joint-only") {
        table();
    }
    joint_table();
    if std::env::args().any(|a| a == "--table-only" || a == "--joint-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
