//! Several DAGs simulated together, decided jointly by the [`JointController`] the live loop runs
//! (docs/capacity.md, "Live"): every DAG has its own world (engine, executor, arrivals), and every
//! tick all of them are advanced to the same time and decided in one joint step against one capacity.
//!
//! Between ticks each DAG's events run as in [`super::simulate`]; what differs is that plans change
//! only at ticks (a DAG alone also re-decides on a new burst, which would break the lockstep). Each
//! tick records what the plans handed out request per node and what the simulated worlds run (cores
//! and GPU shares of replicas alive, which includes replicas the executor starts on a queue beyond
//! the plan, and the old replicas of a make-before-break switch).
use super::control::Controller;
use super::engine::{Sim, SimOptions, SimResult};
use super::joint::{JointController, JointMember, on_demand};
use crate::capacity::joint::{Degradation, JointError};
use crate::hardware::Hardware;
use crate::plan::PlanInput;

/// One DAG of a joint simulation.
pub struct JointDag<'a> {
    pub input: &'a PlanInput,
    pub controller: Controller,
    /// DAG request arrival times (seconds, ascending).
    pub arrivals: &'a [f64],
}

/// What one tick decided.
#[derive(Clone, Debug, PartialEq)]
pub struct JointTick {
    pub t: f64,
    /// Per node (the capacity's order): CPU millicores the plans handed out request.
    pub cpu_millis_requested: Vec<u64>,
    /// Per node: allocatable CPU millicores (after overcommit).
    pub cpu_millis_capacity: Vec<u64>,
    /// Per node: GPU units requested and the node's units.
    pub gpu_units_requested: Vec<u32>,
    pub gpu_units_capacity: Vec<u32>,
    /// Cores of CPU replicas alive in the simulated worlds (all DAGs) at the tick.
    pub cores_alive: u32,
    /// The same, of the DAGs that have a plan (a DAG without one is served by scale from zero).
    pub cores_alive_planned: u32,
    /// DAGs degraded at this tick, with why.
    pub degraded: Vec<Degradation>,
    /// DAGs with no plan at this tick (degraded and not deployed).
    pub not_deployed: Vec<String>,
}

/// A joint run's result: each DAG's own, and every tick's decision.
#[derive(Clone, Debug)]
pub struct JointSimResult {
    /// Per DAG, in input order.
    pub results: Vec<SimResult>,
    pub ticks: Vec<JointTick>,
}

/// Runs `dags` together for `duration_s` seconds of arrivals, deciding every `opts.tick_s` through
/// `joint`, then lets the requests in flight finish.
pub fn simulate_joint(
    dags: Vec<JointDag<'_>>,
    joint: &mut JointController,
    duration_s: f64,
    opts: SimOptions,
) -> Result<JointSimResult, JointError> {
    let mut controllers: Vec<Controller> = Vec::with_capacity(dags.len());
    let mut sims: Vec<Sim<'_>> = Vec::with_capacity(dags.len());
    for d in dags {
        sims.push(Sim::new(
            d.input,
            &d.input.profiles,
            d.arrivals,
            duration_s,
            opts,
        ));
        controllers.push(d.controller);
    }
    let mut ticks = Vec::new();
    let mut t = 0.0;
    let mut first = true;
    while t <= duration_s {
        ticks.push(decide(joint, &mut sims, &mut controllers, t)?);
        if first {
            for (s, c) in sims.iter_mut().zip(&controllers) {
                s.first_burst(c);
            }
            first = false;
        }
        t += opts.tick_s;
        for (s, c) in sims.iter_mut().zip(controllers.iter_mut()) {
            s.run_until(t, c, duration_s)?;
        }
    }
    let mut results = Vec::with_capacity(sims.len());
    for (mut s, mut c) in sims.into_iter().zip(controllers) {
        s.run_until(f64::INFINITY, &mut c, duration_s)?;
        let end = s.now().max(duration_s);
        results.push(s.close(end, &c));
    }
    Ok(JointSimResult { results, ticks })
}

/// One joint step at `t` over every DAG's world.
fn decide(
    joint: &mut JointController,
    sims: &mut [Sim<'_>],
    controllers: &mut [Controller],
    t: f64,
) -> Result<JointTick, JointError> {
    let step = {
        let mut members: Vec<JointMember<'_>> = sims
            .iter()
            .zip(controllers.iter_mut())
            .map(|(s, c)| JointMember {
                controller: c,
                obs: s.observations(),
            })
            .collect();
        joint.decide(t, &mut members)?
    };
    let (mut cores_alive, mut cores_alive_planned) = (0, 0);
    let mut not_deployed = Vec::new();
    for ((s, d), c) in sims.iter_mut().zip(&step.decisions).zip(controllers.iter()) {
        match &d.plan {
            Some(p) => s.apply(t, Some(p), d.changed),
            None => {
                // Not deployed: the executor runs members on demand only (`joint::on_demand`).
                let parked = s.exec.plan().is_some_and(|p| p.policy == "not deployed");
                let plan = on_demand(s.input);
                s.apply(t, Some(&plan), !parked);
                not_deployed.push(c.dag_name().to_owned());
            }
        }
        let cores = (0..s.input.dag.len())
            .map(|f| match s.exec.hardware(f) {
                Hardware::Cpu { cores } => cores * s.exec.replicas(f),
                Hardware::Gpu { .. } => 0,
            })
            .sum::<u32>();
        cores_alive += cores;
        if d.plan.is_some() {
            cores_alive_planned += cores;
        }
    }
    let nodes = &step.packing.nodes;
    Ok(JointTick {
        t,
        cpu_millis_requested: nodes.iter().map(|n| n.cpu_millis_requested).collect(),
        cpu_millis_capacity: nodes.iter().map(|n| n.cpu_millis_capacity).collect(),
        gpu_units_requested: nodes.iter().map(|n| n.gpu_units_requested).collect(),
        gpu_units_capacity: nodes.iter().map(|n| n.gpu_units_capacity).collect(),
        cores_alive,
        cores_alive_planned,
        degraded: step
            .decisions
            .iter()
            .filter_map(|d| d.degradation.clone())
            .collect(),
        not_deployed,
    })
}
