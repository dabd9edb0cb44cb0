//! The degraded DAGs' plans: as many deployed as fit, each with its leanest plan, then each as fast
//! as fits beside all the others (the parent module's doc, "Degradation rule").
use std::collections::BTreeMap;

use super::shared::{Shared, pin, solve_with_shared};
use super::{Chosen, Degradation, DegradeReason, Solved, leanest_demand};
use crate::capacity::Replica;
use crate::capacity::select::{self, Cand, DagCtx, Env};
use crate::plan::{Choice, PlanInput};
use crate::planners::fastest_latency;

/// Gives the `degraded` DAGs their plans in `chosen` (module doc); `prio`: a DAG's priority.
pub(super) fn place(
    chosen: &mut Chosen,
    mut degraded: Vec<(usize, DegradeReason)>,
    bases: &[PlanInput],
    shared: &[Shared],
    reserved: &[Replica],
    env: &Env,
    prio: &dyn Fn(usize) -> i32,
) -> Vec<Degradation> {
    // Best effort for the degraded ones: first as many as can be deployed, each with its cheapest
    // plan at the loosest SLA (highest priority first, then the leanest), then each, highest priority
    // first, as fast as fits beside all the others.
    let lean: BTreeMap<usize, f64> = degraded
        .iter()
        .map(|&(d, _)| {
            let c = best_effort(d, bases, chosen, shared, reserved, env, &LOOSEST);
            (d, leanest_demand(&c, env.cap))
        })
        .collect();
    degraded.sort_by(|(a, _), (b, _)| prio(*b).cmp(&prio(*a)).then(lean[a].total_cmp(&lean[b])));
    for (d, _) in &degraded {
        if lean[d].is_finite()
            && let Some(c) = best_effort(*d, bases, chosen, shared, reserved, env, &LOOSEST)
        {
            chosen.insert(*d, (c, Vec::new()));
        }
    }
    let relaxed: &[f64] = if env.fast { &FAST_RELAXED } else { &RELAXED };
    let mut degradations = Vec::new();
    for (d, reason) in degraded {
        let kept = chosen.remove(&d);
        let got =
            best_effort(d, bases, chosen, shared, reserved, env, relaxed).or(kept.map(|k| k.0));
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
    degradations
}

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
            res.extend(crate::capacity::requests(&s.name, ch, burst));
        }
    }
    // A shared function that a deployed DAG planned as its own member (its other DAGs were
    // degraded): one deployment, so this DAG gets it pinned as it is (its requests are already in
    // that DAG's).
    for s in shared {
        if fixed.contains_key(&s.name) {
            continue;
        }
        let owned = chosen.iter().find_map(|(&o, (c, _))| {
            let &(_, f) = s.at.iter().find(|&&(dd, _)| dd == o)?;
            Some(c.plan.functions[f].choice)
        });
        if let Some(ch) = owned {
            fixed.insert(s.name.clone(), ch);
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
