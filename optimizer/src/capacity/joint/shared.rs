//! Shared functions (a function named by several DAGs): found, given their merged load and options,
//! pinned in each DAG's search, and searched from outside the DAGs (the parent module's doc).
use std::collections::BTreeMap;

use super::Solved;
use crate::capacity::Replica;
use crate::capacity::select::{self, DagCtx, Env, Pin, SetOutcome};
use crate::load::Load;
use crate::model;
use crate::options;
use crate::plan::{Choice, PlanInput};

/// A shared function: where it appears and its options.
pub(super) struct Shared {
    pub name: String,
    pub at: Vec<(usize, usize)>,
    /// Per appearance, the input with the merged load.
    pub merged: Vec<PlanInput>,
    pub opts: Vec<options::Opt>,
}

/// The functions named by several DAGs, with their merged loads and options.
pub(super) fn shared_functions(bases: &[PlanInput]) -> Vec<Shared> {
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
pub(super) fn pin(s: &Shared, bases: &[PlanInput], k: usize, choice: &Choice) -> (usize, Pin) {
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
pub(super) fn solve_with_shared(
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
                        res.extend(crate::capacity::requests(&s.name, choice, burst));
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
