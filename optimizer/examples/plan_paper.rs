//! Plans the paper's three DAGs (bursts of 16 every 2 s, SLA 3 s: the plan benchmark's cases) in a
//! loop and prints the best-of-rounds CPU time per plan and a fingerprint of each plan. A fixed,
//! short workload for instruction-count profilers (`valgrind --tool=callgrind`) and for comparing two
//! builds side by side on a noisy machine, where criterion's long runs are hard to line up.
//!
//! Run: `cargo run --release -p optimizer --example plan_paper -- [ROUNDS] [CALLS_PER_ROUND] [DAG]`.
use std::hint::black_box;
use std::time::Instant;

use optimizer::{CoOptimiser, Load, PlanInput, Policy, ProfileSet, testkit};

/// This thread's CPU time in ns (Linux; 0 elsewhere), so that waiting for a core is not counted.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let rounds = args.next().and_then(Result::ok).unwrap_or(20);
    let calls = args.next().and_then(Result::ok).unwrap_or(200);
    // An optional third argument names the one DAG to plan (per-DAG instruction counts).
    let only = std::env::args().nth(3);
    let set = ProfileSet::paper();
    for name in testkit::PAPER_DAGS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let dag = testkit::paper_dag(name).expect("paper DAG");
        let load = Load::new(Some(8.0), Some(2.0)).expect("load");
        let mut input = PlanInput::new(dag, &set, 3.0, load).expect("input");
        input.sla_s = 3.0;
        let plan = CoOptimiser::SMILESS.plan(&input).expect("plan");
        let (mut best, mut best_wall) = (u64::MAX, u128::MAX);
        for _ in 0..rounds {
            let c0 = cpu_ns();
            let w0 = Instant::now();
            for _ in 0..calls {
                black_box(CoOptimiser::SMILESS.plan(black_box(&input)).expect("plan"));
            }
            best_wall = best_wall.min(w0.elapsed().as_nanos() / u128::from(calls.max(1)));
            best = best.min((cpu_ns() - c0) / u64::from(calls.max(1)));
        }
        let fingerprint: Vec<String> = plan
            .functions
            .iter()
            .map(|f| {
                format!(
                    "{}x{}b{}:{:?}",
                    f.choice.hardware, f.choice.replicas, f.choice.batch, f.choice.policy
                )
            })
            .collect();
        println!(
            "{name:<16} best {:>7.1} µs/plan CPU, {:>7.1} µs wall  cost {:.6} $/h  latency {:.4} s  {}",
            best as f64 / 1e3,
            best_wall as f64 / 1e3,
            plan.cost_per_hour,
            plan.predicted_latency_s,
            fingerprint.join(" ")
        );
    }
}
