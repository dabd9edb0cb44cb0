//! The evaluation matrix: DAGs × SLAs × policies on one workload per DAG, run in parallel, with each
//! row's cost normalised to OPT's on the same (DAG, SLA) (the paper's "Norm. total cost",
//! reference: smiless-artifact §10).
//!
//! Two oracles, both the exhaustive planner:
//! - `opt` plans every window with the *true* load of the next [`OPT_WINDOW_S`] seconds
//!   ([`WindowOracle`]: a perfect load forecast, gaps inside the window still random to the planner);
//!   costs are normalised to it.
//! - `opt-gap` knows every next burst ([`Oracle`]: its true gap and size, pre-warms placed before it),
//!   like the paper's OPT whose oracle predictor returns the actual next inter-arrival time: a
//!   clairvoyant near-lower bound that no online policy can approach on random arrivals.
//!
//! Beside OPT every row carries the offline lower bound of its (DAG, SLA) ([`super::bound`]): the least
//! any schedule meeting the SLA for every request can cost on that trace, clairvoyance included.
//!
//! Every other policy gets the estimator the caller's factory builds (the same one for all, so the
//! comparison is of the planners, not of their forecasts).
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::dag::Dag;
use crate::plan::{PlanError, PlanInput};
use crate::profile::ProfileSet;

use super::estimate::{LoadEstimator, Oracle, WindowOracle};
use super::{Controller, SimOptions, Summary, simulate_in};

/// Look-ahead of `opt`'s window oracle, and its tail quantile (the default online estimator's).
pub const OPT_WINDOW_S: f64 = 600.0;
pub const OPT_TAIL: Option<f64> = Some(0.99);

/// The policies the simulator runs: the planners plus the clairvoyant `opt-gap`.
pub const SIM_POLICIES: [&str; 11] = [
    "smiless",
    "opt",
    "opt-gap",
    "orion",
    "icebreaker",
    "aquatope",
    "grandslam",
    "homo",
    "no-dag",
    "esg",
    "jolteon",
];

/// One row of the results (the `--json` output of `smiless sim`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub dag: String,
    pub sla_s: f64,
    pub policy: String,
    pub requests: u64,
    /// $ over the run.
    pub cost: f64,
    /// cost / OPT's cost on the same DAG and SLA (absent without an OPT row).
    pub cost_vs_opt: Option<f64>,
    /// The offline lower bound on the cost of serving this DAG's trace within the SLA ($, see
    /// [`super::bound`]; absent when no hardware can meet the SLA).
    pub bound: Option<f64>,
    /// cost / the bound.
    pub cost_vs_bound: Option<f64>,
    pub sla_violations: u64,
    pub violation_ratio: f64,
    pub p50_latency_s: f64,
    pub p99_latency_s: f64,
    pub max_latency_s: f64,
    pub reinit_fraction: f64,
    pub gpu_cost_share: f64,
    pub cold_on_critical_path: u64,
    pub hw_switches: u64,
    pub cpu_core_s: f64,
    pub gpu_s: f64,
    pub cost_init: f64,
    pub cost_busy: f64,
    pub cost_idle: f64,
    pub plans_computed: u64,
    pub infeasible_plans: u64,
}

impl Row {
    fn from_summary(s: &Summary) -> Row {
        Row {
            dag: s.dag.clone(),
            sla_s: s.sla_s,
            policy: s.policy.clone(),
            requests: s.requests,
            cost: s.cost,
            cost_vs_opt: None,
            bound: None,
            cost_vs_bound: None,
            sla_violations: s.sla_violations,
            violation_ratio: s.violation_ratio,
            p50_latency_s: s.p50_latency_s,
            p99_latency_s: s.p99_latency_s,
            max_latency_s: s.max_latency_s,
            reinit_fraction: s.reinit_fraction,
            gpu_cost_share: s.gpu_cost_share,
            cold_on_critical_path: s.cold_on_critical_path,
            hw_switches: s.hw_switches,
            cpu_core_s: s.ledger.cpu_core_s,
            gpu_s: s.ledger.gpu_s,
            cost_init: s.ledger.cost_init,
            cost_busy: s.ledger.cost_busy,
            cost_idle: s.ledger.cost_idle,
            plans_computed: s.plans_computed,
            infeasible_plans: s.infeasible_plans,
        }
    }
}

/// A row and the end-to-end latencies behind it.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub row: Row,
    pub latencies: Vec<f64>,
}

/// Builds the estimator of a non-oracle policy (name, SLA in seconds) from the DAG's arrivals (which it must only read as they
/// arrive; the factory gets them so it can fit on a training prefix if it wants).
pub type EstimatorFactory<'a> = dyn Fn(&str, f64, &[f64]) -> Box<dyn LoadEstimator> + Sync + 'a;

/// The matrix to run.
#[derive(Clone, Debug)]
pub struct Matrix<'a> {
    /// DAGs with the arrivals of their workload.
    pub dags: Vec<(Dag, &'a [f64])>,
    pub profiles: &'a ProfileSet,
    /// The profiles the simulated replicas follow, when they differ from what the planners know
    /// (`profiles`): e.g. the timings a live host measured.
    pub world: Option<&'a ProfileSet>,
    pub slas: Vec<f64>,
    pub policies: Vec<String>,
    pub duration_s: f64,
    pub opts: SimOptions,
    /// Planning SLA headroom (fraction) for inference noise.
    pub headroom: f64,
    /// The planners' SLA quantile: a keep-alive window counts as warm when it covers this fraction of
    /// bursts (`ModelParams::sla_quantile`).
    pub sla_quantile: f64,
    pub threads: usize,
    /// The planners' search space instead of the default one (e.g. what one live host offers: its core
    /// counts, no GPU shares, batch 1), so a simulation can be compared with a live run.
    pub space: Option<crate::plan::SearchSpace>,
}

/// Why a matrix could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("unknown policy {0:?}; known: {known}", known = SIM_POLICIES.join(", "))]
    UnknownPolicy(String),
    #[error("DAG {dag}, SLA {sla_s} s, policy {policy}: {source}")]
    Plan {
        dag: String,
        sla_s: f64,
        policy: String,
        source: PlanError,
    },
}

/// Runs every (DAG, SLA, policy) and fills `cost_vs_opt`. `progress` is called after each run.
pub fn run(
    m: &Matrix<'_>,
    estimator: &EstimatorFactory<'_>,
    progress: &(dyn Fn(usize, usize, &Row) + Sync),
) -> Result<Vec<Outcome>, ExperimentError> {
    for p in &m.policies {
        if !SIM_POLICIES.contains(&p.as_str()) {
            return Err(ExperimentError::UnknownPolicy(p.clone()));
        }
    }
    let mut cases = Vec::new();
    for d in 0..m.dags.len() {
        for &sla in &m.slas {
            for p in &m.policies {
                cases.push((d, sla, p.as_str()));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Outcome, ExperimentError>>>> =
        Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..m.threads.clamp(1, 64) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(d, sla, policy)) = cases.get(i) else {
                        break;
                    };
                    let out = run_one(m, d, sla, policy, estimator);
                    let k = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Ok(o) = &out {
                        progress(k, cases.len(), &o.row);
                    }
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(out);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut outs = Vec::with_capacity(results.len());
    for r in results.into_iter().flatten() {
        outs.push(r?);
    }
    normalise(&mut outs);
    attach_bounds(m, &mut outs);
    Ok(outs)
}

/// The offline lower bound of `dag`'s trace at `sla` in the matrix's world ($), or `None` when no
/// hardware of the space can meet the SLA.
pub fn bound_of(m: &Matrix<'_>, d: usize, sla: f64) -> Option<f64> {
    let (dag, arrivals) = (&m.dags[d].0, m.dags[d].1);
    let load = crate::load::Load::new(Some(0.1), None).ok()?;
    let input = PlanInput::new(dag.clone(), m.world.unwrap_or(m.profiles), sla, load).ok()?;
    let space = m.space.clone().unwrap_or_default();
    let billed = &arrivals[..arrivals.partition_point(|&t| t < m.duration_s)];
    super::bound::lower_bound(&super::bound::BoundInput {
        dag,
        profiles: &input.profiles,
        prices: &input.prices,
        hardware: &space.hardware,
        max_batch: space.batches.iter().copied().max().unwrap_or(1),
        sla_s: sla,
        infer_cv: m.opts.infer_cv,
        arrivals: billed,
    })
    .ok()
    .map(|b| b.total)
}

/// Fills `bound` and `cost_vs_bound` of every row (one bound per DAG and SLA).
pub fn attach_bounds(m: &Matrix<'_>, outs: &mut [Outcome]) {
    let mut cache: Vec<(String, f64, Option<f64>)> = Vec::new();
    for o in outs.iter_mut() {
        let key =
            |c: &(String, f64, Option<f64>)| c.0 == o.row.dag && (c.1 - o.row.sla_s).abs() < 1e-9;
        let b = match cache.iter().find(|c| key(c)) {
            Some(c) => c.2,
            None => {
                let b = m
                    .dags
                    .iter()
                    .position(|(d, _)| d.name == o.row.dag)
                    .and_then(|d| bound_of(m, d, o.row.sla_s));
                cache.push((o.row.dag.clone(), o.row.sla_s, b));
                b
            }
        };
        o.row.bound = b;
        o.row.cost_vs_bound = b.filter(|&b| b > 0.0).map(|b| o.row.cost / b);
    }
}

fn run_one(
    m: &Matrix<'_>,
    d: usize,
    sla: f64,
    policy: &str,
    estimator: &EstimatorFactory<'_>,
) -> Result<Outcome, ExperimentError> {
    let (dag, arrivals) = (&m.dags[d].0, m.dags[d].1);
    let err = |source| ExperimentError::Plan {
        dag: dag.name.clone(),
        sla_s: sla,
        policy: policy.to_string(),
        source,
    };
    let load = crate::load::Load::new(Some(0.1), None).expect("a constant, valid load");
    let mut input = PlanInput::new(dag.clone(), m.profiles, sla, load).map_err(err)?;
    input.params.sla_quantile = m.sla_quantile;
    if let Some(space) = &m.space {
        input.space = space.clone();
    }
    let planner = if policy == "opt-gap" { "opt" } else { policy };
    let pol = crate::policy_by_name(planner)
        .ok_or_else(|| ExperimentError::UnknownPolicy(policy.to_string()))?;
    let est: Box<dyn LoadEstimator> = match policy {
        "opt" => Box::new(WindowOracle::new(
            arrivals,
            OPT_WINDOW_S,
            OPT_TAIL,
            super::estimate::PLAN_BURST_GAP_S,
        )),
        "opt-gap" => Box::new(Oracle::new(arrivals)),
        _ => estimator(policy, sla, arrivals),
    };
    let world = match m.world {
        Some(w) => {
            PlanInput::new(dag.clone(), w, sla, load)
                .map_err(err)?
                .profiles
        }
        None => input.profiles.clone(),
    };
    let c = Controller::new(pol, est, input.clone(), m.headroom);
    let r = simulate_in(&input, &world, c, arrivals, m.duration_s, m.opts).map_err(err)?;
    let mut row = Row::from_summary(&r.summary);
    row.policy = policy.to_string();
    Ok(Outcome {
        row,
        latencies: r.latencies,
    })
}

/// Fills `cost_vs_opt` from the OPT row of the same DAG and SLA.
pub fn normalise(outs: &mut [Outcome]) {
    let opt: Vec<(String, f64, f64)> = outs
        .iter()
        .filter(|o| o.row.policy == "opt")
        .map(|o| (o.row.dag.clone(), o.row.sla_s, o.row.cost))
        .collect();
    for o in outs.iter_mut() {
        o.row.cost_vs_opt = opt
            .iter()
            .find(|(d, s, _)| *d == o.row.dag && (*s - o.row.sla_s).abs() < 1e-9)
            .and_then(|&(_, _, c)| (c > 0.0).then_some(o.row.cost / c));
    }
}
