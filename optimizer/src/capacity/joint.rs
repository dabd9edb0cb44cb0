//! The joint planner: every DAG and standalone function against one [`Capacity`] (docs/capacity.md).
//!
//! - **Standalone functions** are not planned here (their labels' autoscaler sizes them): their
//!   replicas are reserved first.
//! - **Shared functions**: a function (same namespace and name) named by several DAGs is one
//!   deployment with one choice. Its load is the superposition of those DAGs' loads (rates add, burst
//!   rates add); each DAG's latency sees its behaviour under that load; its cost counts once in the
//!   total, and each DAG's plan shows the part of it in proportion to that DAG's rate. It is always-on
//!   or keep-alive, never pre-warmed (a pre-warm is placed on one DAG's clock). Its option is searched
//!   from outside the DAGs: every option of one shared function, cheapest first, cut when its cost plus
//!   the other functions' lower bounds cannot beat the best; several shared functions one at a time,
//!   twice over.
//! - **Degradation rule**: when no combination meets every SLA within capacity, the DAG with the
//!   lowest priority (default 0), then the one whose leanest SLA-meeting plan requests the largest
//!   fraction of the cluster, is degraded, until the rest fit. A DAG whose SLA is below its fastest
//!   possible latency on this cluster is degraded first. Then as many degraded DAGs as fit are
//!   deployed with their leanest plans (highest priority first, then the leanest), and each, highest
//!   priority first, gets the fastest plan that fits beside all the others (its SLA relaxed step by
//!   step: 1.25×, 1.5×, 2×, 3×, 5×, 10×, 100× its fastest latency), or keeps its leanest; one that
//!   does not fit at all is not deployed. [`Degradation`] says which and why.
use std::collections::BTreeMap;

use serde::Serialize;

mod degrade;
mod shared;

use super::select::{self, Cand, Env};
use super::{Capacity, Packing, Replica};
use crate::hardware::Hardware;
use crate::model;
use crate::plan::{Choice, Plan, PlanError, PlanInput};
use crate::planners::fastest_latency;
use crate::prices::Prices;
use shared::{Shared, shared_functions, solve_with_shared};

/// A function in no DAG, sized by its own autoscaler: its replicas are reserved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Standalone {
    pub name: String,
    pub hardware: Hardware,
    /// Replicas to reserve (its maximum, or its current count).
    pub replicas: u32,
}

/// Everything the joint planner needs.
#[derive(Clone, Debug)]
pub struct JointInput {
    /// One input per DAG (its own SLA, load, prices and search settings).
    pub dags: Vec<PlanInput>,
    pub standalone: Vec<Standalone>,
    pub capacity: Capacity,
    /// Degradation priority by DAG name (higher is degraded later); absent: 0.
    pub priority: BTreeMap<String, i32>,
    /// Prices of the standalone replicas (always on).
    pub prices: Prices,
}

impl JointInput {
    /// The DAGs against `capacity`: no standalone functions, every priority 0, default prices.
    pub fn new(dags: Vec<PlanInput>, capacity: Capacity) -> JointInput {
        JointInput {
            dags,
            standalone: Vec::new(),
            capacity,
            priority: BTreeMap::new(),
            prices: Prices::default(),
        }
    }
}

/// Why a DAG does not meet its SLA.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DegradeReason {
    /// Even its fastest plan on this cluster's hardware is slower than the SLA.
    SlaBelowFastest { fastest_s: f64 },
    /// The capacity cannot hold every DAG at its SLA; the rule chose this one: its priority and the
    /// fraction of the cluster its leanest SLA-meeting plan requests.
    Capacity { priority: i32, demand: f64 },
}

/// A DAG that does not meet its SLA.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Degradation {
    pub dag: String,
    pub sla_s: f64,
    pub reason: DegradeReason,
    /// The latency of the plan it got; `None`: nothing of it fits, it is not deployed.
    pub predicted_latency_s: Option<f64>,
}

/// A function planned once for several DAGs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SharedFunction {
    pub name: String,
    pub dags: Vec<String>,
    pub choice: Choice,
    pub cost_per_hour: f64,
}

/// The joint plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JointPlan {
    /// Per input DAG, in input order; `None`: degraded and not deployed.
    pub plans: Vec<Option<Plan>>,
    pub shared: Vec<SharedFunction>,
    pub degraded: Vec<Degradation>,
    /// Where every requested replica goes (standalone ones included).
    pub packing: Packing,
    /// Total $/h: every DAG function once, plus the standalone replicas always on.
    pub cost_per_hour: f64,
    /// No price on capacity was needed, there is no shared function, and each DAG plan is proven optimal.
    pub proven_optimal: bool,
}

/// Why no joint plan came out.
#[derive(Debug, thiserror::Error)]
pub enum JointError {
    #[error("DAG {0:?} is given twice")]
    DuplicateDag(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Above this many functions in all, the search is cut to fit milliseconds (`select::Env::fast`).
const FAST_ABOVE: usize = 16;

/// Plans every DAG of `input` together (module doc).
pub fn plan_all(input: &JointInput) -> Result<JointPlan, JointError> {
    let cap = &input.capacity;
    let mut names = std::collections::BTreeSet::new();
    for d in &input.dags {
        if !names.insert((d.dag.namespace.as_str(), d.dag.name.as_str())) {
            return Err(JointError::DuplicateDag(d.dag.name.clone()));
        }
    }
    let bases: Vec<PlanInput> = input
        .dags
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.space.hardware = cap.space(&d.space.hardware);
            d.alternatives = 0;
            d
        })
        .collect();
    let shared = shared_functions(&bases);
    let reserved: Vec<Replica> = input
        .standalone
        .iter()
        .flat_map(|s| {
            (0..s.replicas).map(|_| Replica {
                function: s.name.clone(),
                hardware: s.hardware,
            })
        })
        .collect();
    let functions: usize = bases.iter().map(|b| b.dag.len()).sum();
    let env = Env::new(cap, functions > FAST_ABOVE);
    let prio = |d: usize| input.priority.get(&bases[d].dag.name).copied().unwrap_or(0);
    let mut degraded: Vec<(usize, DegradeReason)> = Vec::new();
    let mut must: Vec<usize> = Vec::new();
    for (d, b) in bases.iter().enumerate() {
        let fastest = if b.space.hardware.all().next().is_some() {
            fastest_latency(b)
        } else {
            f64::INFINITY
        };
        if fastest > b.sla_s * (1.0 + 1e-9) {
            degraded.push((d, DegradeReason::SlaBelowFastest { fastest_s: fastest }));
        } else {
            must.push(d);
        }
    }
    let (mut chosen, proven) = loop {
        match solve_with_shared(&bases, &must, &shared, &reserved, &env, &BTreeMap::new()) {
            Solved::Fit {
                cands,
                pins,
                proven,
            } => break (plans_of(&must, cands, pins), proven),
            Solved::NoFit { leanest } => {
                let Some(k) = (0..must.len()).min_by(|&a, &b| {
                    prio(must[a]).cmp(&prio(must[b])).then(
                        leanest_demand(&leanest[b], cap)
                            .total_cmp(&leanest_demand(&leanest[a], cap)),
                    )
                }) else {
                    break (BTreeMap::new(), false);
                };
                let d = must.remove(k);
                let demand = leanest_demand(&leanest[k], cap);
                degraded.push((
                    d,
                    DegradeReason::Capacity {
                        priority: prio(d),
                        demand,
                    },
                ));
            }
        }
    };
    let degradations = degrade::place(
        &mut chosen,
        degraded,
        &bases,
        &shared,
        &reserved,
        &env,
        &prio,
    );
    Ok(assemble(
        input,
        &bases,
        chosen,
        &shared,
        reserved,
        degradations,
        proven,
    ))
}

/// The plans chosen so far, by DAG index, with the shared functions' choices they were planned with.
type Chosen = BTreeMap<usize, (Cand, Vec<(String, Choice)>)>;

enum Solved {
    Fit {
        cands: Vec<Cand>,
        pins: BTreeMap<String, Choice>,
        proven: bool,
    },
    NoFit {
        leanest: Vec<Option<Cand>>,
    },
}

fn leanest_demand(c: &Option<Cand>, cap: &Capacity) -> f64 {
    c.as_ref()
        .map_or(f64::INFINITY, |c| select::demand(&c.replicas, cap))
}

fn plans_of(set: &[usize], cands: Vec<Cand>, pins: BTreeMap<String, Choice>) -> Chosen {
    set.iter()
        .zip(cands)
        .map(|(&d, c)| (d, (c, pins.clone().into_iter().collect())))
        .collect()
}

/// The joint plan from the chosen candidates.
fn assemble(
    input: &JointInput,
    bases: &[PlanInput],
    chosen: Chosen,
    shared: &[Shared],
    reserved: Vec<Replica>,
    degraded: Vec<Degradation>,
    proven: bool,
) -> JointPlan {
    let mut replicas = reserved;
    let mut cost: f64 = input
        .standalone
        .iter()
        .map(|s| input.prices.per_second(s.hardware) * 3600.0 * f64::from(s.replicas))
        // From +0 (an empty f64 sum is -0, which prints as "-0.0000").
        .fold(0.0, |a, b| a + b);
    let mut plans: Vec<Option<Plan>> = vec![None; bases.len()];
    let mut decided: BTreeMap<String, Choice> = BTreeMap::new();
    for (d, (c, pins)) in chosen {
        replicas.extend(c.replicas);
        cost += c.own_cost;
        decided.extend(pins);
        plans[d] = Some(c.plan);
    }
    let mut out_shared = Vec::new();
    for s in shared {
        let Some(choice) = decided.get(&s.name) else {
            continue;
        };
        let b = model::behaviour(&s.merged[0], s.at[0].1, choice);
        cost += b.cost_h;
        replicas.extend(super::requests(
            &s.name,
            choice,
            s.merged[0].load.burst_size(),
        ));
        out_shared.push(SharedFunction {
            name: s.name.clone(),
            dags: s
                .at
                .iter()
                .map(|&(d, _)| bases[d].dag.name.clone())
                .collect(),
            choice: *choice,
            cost_per_hour: b.cost_h,
        });
    }
    let packing = input.capacity.pack(&replicas);
    JointPlan {
        plans,
        shared: out_shared,
        degraded,
        packing,
        cost_per_hour: cost,
        proven_optimal: proven,
    }
}
