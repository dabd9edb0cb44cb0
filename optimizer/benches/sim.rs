//! Simulator benchmark: one simulated day × the paper's 3 DAGs × the 8 policies, on 2 threads, with the
//! crate's own bursty generator (the CLI runs the same matrix on the predictor's workloads). Prints the
//! wall time against the 60 s target, the events' scale and a summary table.
//!
//! `cargo bench -p optimizer --bench sim` (env `SIM_BENCH_HOURS` shortens the day, `SIM_BENCH_GAP=1` adds
//! the clairvoyant `opt-gap`, `SIM_BENCH_SLA`
//! picks the SLA, default 3 s).
use std::time::Instant;

use optimizer::sim::estimate::RecentWindow;
use optimizer::sim::experiment::{self, Matrix};
use optimizer::sim::{LoadEstimator, SimOptions, workload};
use optimizer::testkit::{PAPER_DAGS, paper_dag};
use optimizer::{POLICY_NAMES, ProfileSet};

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hours = env_f64("SIM_BENCH_HOURS", 24.0);
    let sla = env_f64("SIM_BENCH_SLA", 3.0);
    let duration = hours * 3600.0;
    let profiles = ProfileSet::paper();
    let arrivals: Vec<Vec<f64>> = (0..3u64)
        .map(|i| workload::bursty(100 + i, 0.03, 12.0, 900.0, 120.0, duration))
        .collect();
    let dags = PAPER_DAGS
        .iter()
        .zip(&arrivals)
        .map(|(name, a)| (paper_dag(name).expect("a paper DAG"), a.as_slice()))
        .collect();
    let m = Matrix {
        dags,
        profiles: &profiles,
        world: None,
        slas: vec![sla],
        policies: POLICY_NAMES
            .iter()
            .map(|s| s.to_string())
            .chain(
                std::env::var("SIM_BENCH_GAP")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|_| "opt-gap".to_string()),
            )
            .collect(),
        duration_s: duration,
        opts: SimOptions::default(),
        headroom: 0.06,
        sla_quantile: 0.999,
        threads: 2,
        space: None,
    };
    let est = |_: &str, _: f64, _: &[f64]| -> Box<dyn LoadEstimator> {
        Box::new(RecentWindow::new(600.0, Some(0.99)))
    };
    let t0 = Instant::now();
    let outs = match experiment::run(&m, &est, &|_, _, _| {}) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("simulation failed: {e}");
            std::process::exit(1);
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    let requests: usize = arrivals.iter().map(Vec::len).sum();
    println!(
        "sim bench: {hours} h × {} DAGs × {} policies = {} runs, {requests} DAG requests per policy set",
        PAPER_DAGS.len(),
        outs.len() / PAPER_DAGS.len(),
        outs.len()
    );
    println!(
        "wall time {wall:.2} s on 2 threads (target ≤ 60 s for 24 h): {:.2}× of the budget",
        wall / 60.0 * 24.0 / hours
    );
    println!(
        "| dag | policy | requests | cost $ | × OPT | violations | p99 s | re-init | GPU share | plans | cold CP |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &outs {
        let r = &o.row;
        println!(
            "| {} | {} | {} | {:.4} | {} | {:.3} % | {:.2} | {:.3} | {:.0} % | {} | {} |",
            r.dag,
            r.policy,
            r.requests,
            r.cost,
            r.cost_vs_opt.map_or("-".into(), |x| format!("{x:.2}")),
            r.violation_ratio * 100.0,
            r.p99_latency_s,
            r.reinit_fraction,
            r.gpu_cost_share * 100.0,
            r.plans_computed,
            r.cold_on_critical_path
        );
    }
}
