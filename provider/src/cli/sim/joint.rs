//! `smiless sim --joint`: the DAGs simulated together in lockstep and decided jointly against one
//! capacity by the step the live loop runs (`optimizer::sim::simulate_joint`, docs/capacity.md
//! "Live"), with the smiless policy at the first `--sla`. Prints each DAG's outcome and, over every
//! tick, what the plans requested against the capacity and what the simulated replicas used.
use anyhow::{Context, Result, bail};
use optimizer::capacity::Capacity;
use optimizer::sim::{Controller, JointController, JointDag, SimOptions, simulate_joint};
use optimizer::{Load, PlanInput};

use super::{
    Args, arrivals, dags, duration_s, estimator_factory, parse_slas, profiles, search_space,
};

/// Runs `--joint` (module doc).
pub(super) fn run(args: &Args) -> Result<()> {
    let dags = dags(args)?;
    let Some(&sla) = parse_slas(&args.sla)?.first() else {
        bail!("--sla names no SLA");
    };
    let duration = duration_s(&args.duration)?;
    let series = arrivals(&args.workload)?;
    let profiles = profiles(args)?;
    let factory = estimator_factory(&args.estimator)?;
    let host = contract::backend::host::host();
    let cores = args.cpus.unwrap_or(host.cpus).max(1);
    let gpus = args.gpus.unwrap_or(host.gpus);
    let capacity =
        contract::backend::host::capacity(contract::backend::host::Host { cpus: cores, gpus })
            .with_overcommit(args.overcommit)
            .context("--overcommit")?;
    let space = search_space(args)?;
    let mut inputs = Vec::with_capacity(dags.len());
    for d in &dags {
        let mut input = PlanInput::new(d.clone(), &profiles, sla, Load::new(None, Some(60.0))?)
            .with_context(|| format!("planning input of {}", d.name))?;
        if let Some(s) = &space {
            input.space = s.clone();
        }
        input.params.sla_quantile = args.sla_quantile;
        inputs.push(input);
    }
    let members = inputs
        .iter()
        .enumerate()
        .map(|(k, input)| {
            let a = series[k % series.len()].as_slice();
            let policy = optimizer::policy_by_name("smiless").context("the smiless policy")?;
            Ok(JointDag {
                input,
                controller: Controller::new(
                    policy,
                    factory(&input.dag.name, sla, a),
                    input.clone(),
                    args.headroom,
                ),
                arrivals: a,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut joint = JointController::new(capacity.clone());
    let opts = SimOptions {
        seed: args.seed,
        warmup_s: duration_s(&args.warmup)?,
        ..SimOptions::default()
    };
    let started = std::time::Instant::now();
    let r = simulate_joint(members, &mut joint, duration, opts)?;
    let wall = started.elapsed().as_secs_f64();
    print_report(&capacity, &r, &joint, sla, wall);
    Ok(())
}

fn print_report(
    capacity: &Capacity,
    r: &optimizer::sim::JointSimResult,
    joint: &JointController,
    sla: f64,
    wall_s: f64,
) {
    println!(
        "{} DAGs decided jointly every tick against {} node(s), CPU overcommit {} (SLA {sla} s)",
        r.results.len(),
        capacity.nodes.len(),
        capacity.overcommit
    );
    println!(
        "| DAG | requests | completed | SLA violations | p99 s | cost $ | degraded at ticks | not deployed at ticks |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in &r.results {
        let s = &s.summary;
        let degraded = r
            .ticks
            .iter()
            .filter(|t| t.degraded.iter().any(|d| d.dag == s.dag))
            .count();
        let absent = r
            .ticks
            .iter()
            .filter(|t| t.not_deployed.contains(&s.dag))
            .count();
        println!(
            "| {} | {} | {} | {} ({:.1} %) | {:.3} | {:.4} | {degraded} | {absent} |",
            s.dag,
            s.requests,
            s.completed,
            s.sla_violations,
            s.violation_ratio * 100.0,
            s.p99_latency_s,
            s.cost
        );
    }
    for (i, n) in capacity.nodes.iter().enumerate() {
        let req = r
            .ticks
            .iter()
            .map(|t| t.cpu_millis_requested[i])
            .max()
            .unwrap_or(0);
        let cap = r.ticks.first().map_or(0, |t| t.cpu_millis_capacity[i]);
        let over = r
            .ticks
            .iter()
            .filter(|t| t.cpu_millis_requested[i] > t.cpu_millis_capacity[i])
            .count();
        println!(
            "node {}: planned requests at most {:.1} of {:.1} cores ({over} ticks over)",
            n.name,
            req as f64 / 1000.0,
            cap as f64 / 1000.0
        );
    }
    let alive = |f: fn(&optimizer::sim::JointTick) -> u32| r.ticks.iter().map(f).max().unwrap_or(0);
    println!(
        "cores of replicas alive in the simulated worlds: at most {} (DAGs with a plan: {}); {} ticks, {} joint plans computed, {} hysteresis overrides, {wall_s:.1} s wall",
        alive(|t| t.cores_alive),
        alive(|t| t.cores_alive_planned),
        r.ticks.len(),
        joint.stats.plans_computed,
        joint.stats.hysteresis_overridden
    );
    if let Some(t) = r.ticks.last() {
        for d in &t.degraded {
            println!(
                "at the end: {} degraded ({:?}), predicted {}",
                d.dag,
                d.reason,
                d.predicted_latency_s
                    .map_or("not deployed".into(), |l| format!("{l:.3} s"))
            );
        }
    }
}
