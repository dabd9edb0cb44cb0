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

use super::select::{self, Cand, DagCtx, Env, Pin, SetOutcome};
use super::{Capacity, Packing, Replica};
use crate::hardware::Hardware;
use crate::load::Load;
use crate::model;
use crate::options;
use crate::plan::{Choice, Plan, PlanError, PlanInput};
use crate::planners::fastest_latency;
use crate::prices::Prices;

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

/// A shared function: where it appears and its options.
struct Shared {
    name: String,
    at: Vec<(usize, usize)>,
    /// Per appearance, the input with the merged load.
    merged: Vec<PlanInput>,
    opts: Vec<options::Opt>,
}

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
    // Best effort for the degraded ones: first as many as can be deployed, each with its cheapest
    // plan at the loosest SLA (highest priority first, then the leanest), then each, highest priority
    // first, as fast as fits beside all the others.
    let lean: BTreeMap<usize, f64> = degraded
        .iter()
        .map(|&(d, _)| {
            let c = best_effort(d, &bases, &chosen, &shared, &reserved, &env, &LOOSEST);
            (d, leanest_demand(&c, cap))
        })
        .collect();
    degraded.sort_by(|(a, _), (b, _)| prio(*b).cmp(&prio(*a)).then(lean[a].total_cmp(&lean[b])));
    for (d, _) in &degraded {
        if lean[d].is_finite()
            && let Some(c) = best_effort(*d, &bases, &chosen, &shared, &reserved, &env, &LOOSEST)
        {
            chosen.insert(*d, (c, Vec::new()));
        }
    }
    let relaxed: &[f64] = if env.fast { &FAST_RELAXED } else { &RELAXED };
    let mut degradations = Vec::new();
    for (d, reason) in degraded {
        let kept = chosen.remove(&d);
        let got = best_effort(d, &bases, &chosen, &shared, &reserved, &env, relaxed)
            .or(kept.map(|k| k.0));
        degradations.push(Degradation {
            dag: bases[d].dag.name.clone(),
            sla_s: bases[d].sla_s,
            reason,
            predicted_latency_s: got.as_ref().map(|c| c.plan.predicted_latency_s),
        });
        if let Some(c) = got {
            chosen.insert(d, (c, Vec::new()));
        }
    }
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

/// The functions named by several DAGs, with their merged loads and options.
fn shared_functions(bases: &[PlanInput]) -> Vec<Shared> {
    let mut at: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
    for (d, b) in bases.iter().enumerate() {
        for (f, n) in b.dag.nodes.iter().enumerate() {
            at.entry((b.dag.namespace.clone(), n.name.clone()))
                .or_default()
                .push((d, f));
        }
    }
    at.into_iter()
        .filter(|(_, v)| v.len() > 1)
        .filter_map(|((_, name), at)| {
            let loads: Vec<Load> = at.iter().map(|&(d, _)| bases[d].load).collect();
            let rate: f64 = loads.iter().map(|l| l.rate_per_s).sum();
            let bursts: f64 = loads.iter().map(|l| 1.0 / l.interarrival_s).sum();
            let load = Load::new(Some(rate), Some(1.0 / bursts)).ok()?;
            let close: Option<f64> = at
                .iter()
                .map(|&(d, _)| bases[d].close_rate_per_s)
                .sum::<Option<f64>>();
            let merged: Vec<PlanInput> = at
                .iter()
                .map(|&(d, _)| {
                    let mut m = bases[d].clone();
                    m.load = load;
                    m.close_rate_per_s = close;
                    m.space.policies.pre_warm = false;
                    m
                })
                .collect();
            let f0 = at[0].1;
            let t = options::build_for_capacity(
                &merged[0],
                &merged[0].space,
                &options::CapacityTerms {
                    penalty: &|_, _| 0.0,
                    resource_aware: true,
                },
            );
            let opts = t.opts.into_iter().nth(f0)?;
            Some(Shared {
                name,
                at,
                merged,
                opts,
            })
        })
        .collect()
}

/// The pin of shared function `s` at its `k`-th appearance with `choice`.
fn pin(s: &Shared, bases: &[PlanInput], k: usize, choice: &Choice) -> (usize, Pin) {
    let (d, f) = s.at[k];
    let m = &s.merged[k];
    let b = model::behaviour(m, f, choice);
    let init_est = m.profiles[f]
        .init(choice.hardware)
        .estimate(m.params.init_std_factor);
    let mut opt = options::to_opt(*choice, b, init_est);
    opt.cost = 0.0;
    let share = bases[d].load.rate_per_s / m.load.rate_per_s;
    let pin = Pin {
        node: f,
        opt,
        behaviour: b,
        cost_share: b.cost_h * share,
    };
    (d, pin)
}

/// Plans the DAGs `set` with the shared functions' choices searched from outside (module doc); `fixed`:
/// shared functions already decided.
fn solve_with_shared(
    bases: &[PlanInput],
    set: &[usize],
    shared: &[Shared],
    reserved: &[Replica],
    env: &Env,
    fixed: &BTreeMap<String, Choice>,
) -> Solved {
    // The shared functions this set decides: named by at least two of its DAGs.
    let open: Vec<&Shared> = shared
        .iter()
        .filter(|s| !fixed.contains_key(&s.name))
        .filter(|s| s.at.iter().filter(|(d, _)| set.contains(d)).count() > 1)
        .collect();
    let eval = |assign: &BTreeMap<String, Choice>| -> (Option<f64>, Solved) {
        let mut ctxs: Vec<DagCtx> = set
            .iter()
            .map(|&d| DagCtx {
                input: bases[d].clone(),
                pins: Vec::new(),
            })
            .collect();
        let mut res = reserved.to_vec();
        let mut shared_cost = 0.0;
        for s in shared {
            let Some(choice) = assign.get(&s.name).or_else(|| fixed.get(&s.name)) else {
                continue;
            };
            let mut counted = false;
            for k in 0..s.at.len() {
                let (d, p) = pin(s, bases, k, choice);
                if let Some(i) = set.iter().position(|&x| x == d) {
                    if !counted && assign.contains_key(&s.name) {
                        shared_cost += p.behaviour.cost_h;
                        let burst = s.merged[k].load.burst_size();
                        res.extend(super::requests(&s.name, choice, burst));
                        counted = true;
                    }
                    ctxs[i].pins.push(p);
                }
            }
        }
        match select::solve_set(&ctxs, &res, env) {
            SetOutcome::Fit { cands, proven } => {
                let total = shared_cost + cands.iter().map(|c| c.own_cost).sum::<f64>();
                (
                    Some(total),
                    Solved::Fit {
                        cands,
                        pins: assign.clone(),
                        proven: proven && open.is_empty(),
                    },
                )
            }
            SetOutcome::NoFit { leanest } => (None, Solved::NoFit { leanest }),
        }
    };
    let mut assign: BTreeMap<String, Choice> = BTreeMap::new();
    for s in &open {
        // Start from its fastest option (the most likely to meet every SLA).
        if let Some(o) = s.opts.iter().min_by(|a, b| a.lat().total_cmp(&b.lat())) {
            assign.insert(s.name.clone(), o.choice);
        }
    }
    let (mut best_cost, mut best) = eval(&assign);
    for _round in 0..2 {
        if open.is_empty() {
            break;
        }
        let mut improved = false;
        for s in &open {
            let mut order: Vec<&options::Opt> = s.opts.iter().collect();
            order.sort_by(|a, b| a.cost.total_cmp(&b.cost));
            for o in order {
                if best_cost.is_some_and(|b| o.cost >= b) {
                    break; // the shared function alone costs more than the best plan
                }
                if assign.get(&s.name) == Some(&o.choice) {
                    continue;
                }
                let mut trial = assign.clone();
                trial.insert(s.name.clone(), o.choice);
                let (c, r) = eval(&trial);
                if c.is_some_and(|c| best_cost.is_none_or(|b| c < b - 1e-12)) {
                    best_cost = c;
                    best = r;
                    assign = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    best
}

/// Above this many functions in all, the search is cut to fit milliseconds (`select::Env::fast`).
const FAST_ABOVE: usize = 16;

/// The SLA of a degraded DAG, relaxed step by step (multiples of its fastest latency).
const RELAXED: [f64; 8] = [1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0];
/// The steps of a large instance (each one search of the DAG alone, taken if it fits as it is).
const FAST_RELAXED: [f64; 3] = [1.0, 2.0, 10.0];
/// No step: the DAG's leanest plan (`select::lean`), whatever its latency.
const LOOSEST: [f64; 0] = [];

/// The fastest plan of degraded DAG `d`, its SLA relaxed by `factors` in turn (none: its leanest
/// plan), that fits beside `chosen` (module doc), if any.
fn best_effort(
    d: usize,
    bases: &[PlanInput],
    chosen: &Chosen,
    shared: &[Shared],
    reserved: &[Replica],
    env: &Env,
    factors: &[f64],
) -> Option<Cand> {
    let cap = env.cap;
    let mut res = reserved.to_vec();
    let mut fixed: BTreeMap<String, Choice> = BTreeMap::new();
    for (c, pins) in chosen.values() {
        res.extend(c.replicas.iter().cloned());
        fixed.extend(pins.iter().cloned());
    }
    for s in shared {
        if let Some(ch) = fixed.get(&s.name) {
            let burst = s.merged[0].load.burst_size();
            res.extend(super::requests(&s.name, ch, burst));
        }
    }
    let base = &bases[d];
    let fastest = if base.space.hardware.all().next().is_some() {
        fastest_latency(base)
    } else {
        return None;
    };
    let mut ctx = DagCtx {
        input: base.clone(),
        pins: Vec::new(),
    };
    for s in shared {
        if let Some(choice) = fixed.get(&s.name) {
            for k in 0..s.at.len() {
                let (dk, p) = pin(s, bases, k, choice);
                if dk == d {
                    ctx.pins.push(p);
                }
            }
        }
    }
    let fits = |c: &Cand| {
        let mut all = res.clone();
        all.extend(c.replicas.iter().cloned());
        cap.pack(&all).fits()
    };
    let relabel = |mut c: Cand| {
        c.plan.sla_s = base.sla_s;
        c.plan.meets_sla = c.plan.predicted_latency_s <= base.sla_s * (1.0 + 1e-9);
        c
    };
    if factors.is_empty() {
        // The leanest plan, whatever its latency.
        return select::lean(&ctx, env).filter(fits).map(relabel);
    }
    if env.fast {
        // A large instance: the DAG's own plan at each relaxed SLA, if it fits as it is.
        return factors.iter().find_map(|&factor| {
            ctx.input.sla_s = fastest * factor;
            select::solve(&ctx, (0.0, 0.0), env)
                .filter(fits)
                .map(relabel)
        });
    }
    for &factor in factors {
        let mut one = base.clone();
        one.sla_s = fastest.max(base.sla_s.min(fastest)) * factor;
        let only = [d];
        let mut bases_one = bases.to_vec();
        bases_one[d] = one;
        if let Solved::Fit { mut cands, .. } =
            solve_with_shared(&bases_one, &only, shared, &res, env, &fixed)
        {
            let mut c = cands.pop()?;
            c.plan.sla_s = base.sla_s;
            c.plan.meets_sla = c.plan.predicted_latency_s <= base.sla_s * (1.0 + 1e-9);
            return Some(c);
        }
    }
    None
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
        .sum();
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
