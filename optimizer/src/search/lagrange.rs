//! A second source of candidate plans for the co-optimiser on deep DAGs, where a top-K beam can spend the
//! SLA's slack too early: Lagrangian relaxation of the path constraints. Pricing each function's added
//! latency at `λ_f` makes the problem separable (each function takes the option minimising
//! `cost + λ_f·α`); for the time-cost trade-off on a DAG the prices of the path constraints add up to a
//! flow, so the subgradient step raises `λ` on the critical path of a plan that misses the SLA and lowers
//! it otherwise. Every relaxed plan is repaired greedily (speed up the critical function with the best
//! latency gained per dollar until the SLA holds) and improved by one-swap local search; the cheapest
//! repaired plan, after local search, is a candidate. A heuristic: the branch-and-bound polish, not this, decides optimality.
use super::{SLA_EPS, improve, quick_eval, starts};
use crate::options::Tables;
use crate::plan::PlanInput;

/// Marks the functions on the critical path of the plan whose finish times are `finish` (laid out as
/// [`quick_eval`]'s; the SLA-quantile finishes lead).
fn critical(input: &PlanInput, t: &Tables, picks: &[usize], finish: &[f64], out: &mut Vec<usize>) {
    let dag = &input.dag;
    out.clear();
    let Some(mut v) = t
        .sinks
        .iter()
        .copied()
        .max_by(|&a, &b| finish[a].total_cmp(&finish[b]))
    else {
        return;
    };
    loop {
        out.push(v);
        let o = &t.opts[v][picks[v]];
        // The predecessor that determines v's start, if its start is not set by its own readiness.
        let s = dag.pred[v].iter().map(|&p| finish[p]).fold(0.0, f64::max);
        if s + o.alpha < o.beta - 1e-12 {
            return;
        }
        match dag.pred[v]
            .iter()
            .copied()
            .find(|&p| (finish[p] - s).abs() <= 1e-12)
        {
            Some(p) => v = p,
            None => return,
        }
    }
}

/// Speeds up critical functions, best latency per dollar first, until the plan meets the SLA.
fn repair(
    input: &PlanInput,
    t: &Tables,
    picks: &mut [usize],
    finish: &mut [f64],
    crit: &mut Vec<usize>,
) -> Option<f64> {
    let sla = input.sla_s * (1.0 + SLA_EPS);
    let n = input.dag.len();
    for _ in 0..n * 32 {
        let (cost, lat) = quick_eval(input, t, picks, finish);
        if lat <= sla {
            return Some(cost);
        }
        critical(input, t, picks, finish, crit);
        let mut best: Option<(f64, usize, usize)> = None;
        for &v in crit.iter() {
            let cur = t.opts[v][picks[v]];
            let (s0, sw) = starts(input, v, finish);
            let now = cur.finish_tail(cur.finish(s0), sw);
            for (j, o) in t.opts[v].iter().enumerate() {
                let gain = now - o.finish_tail(o.finish(s0), sw);
                if gain > 1e-12 {
                    let ratio = (o.cost - cur.cost).max(0.0) / gain;
                    if best.is_none_or(|b| ratio < b.0) {
                        best = Some((ratio, v, j));
                    }
                }
            }
        }
        let (_, v, j) = best?;
        picks[v] = j;
    }
    None
}

/// Runs `iters` subgradient steps; the cheapest repaired plan, if any.
pub fn search(input: &PlanInput, t: &Tables, iters: usize) -> Option<(Vec<usize>, f64)> {
    let n = input.dag.len();
    let sla = input.sla_s * (1.0 + SLA_EPS);
    let mut lam = vec![0.0_f64; n];
    let mut picks = vec![0usize; n];
    let mut trial = vec![0usize; n];
    let mut finish = vec![0.0_f64; 2 * n];
    let mut crit = Vec::with_capacity(n);
    let mut trial_finish = vec![0.0_f64; 2 * n];
    let mut trial_crit = Vec::with_capacity(n);
    let mut best: Option<(Vec<usize>, f64)> = None;
    // Step: the steepest cost-per-second trade-off any function offers, so one step can move a choice.
    let mut step = t
        .opts
        .iter()
        .map(|o| {
            let (lo, hi) = (o.first(), o.last());
            match (lo, hi) {
                (Some(a), Some(b)) if (a.lat() - b.lat()).abs() > 1e-9 => {
                    (b.cost - a.cost).abs() / (a.lat() - b.lat()).abs()
                }
                _ => 0.0,
            }
        })
        .fold(0.0, f64::max)
        .max(1e-9);
    for _ in 0..iters {
        for f in 0..n {
            let l = lam[f];
            picks[f] = (0..t.opts[f].len())
                .min_by(|&a, &b| {
                    let (x, y) = (&t.opts[f][a], &t.opts[f][b]);
                    (x.cost + l * x.lat()).total_cmp(&(y.cost + l * y.lat()))
                })
                .unwrap_or(0);
        }
        let (_, lat) = quick_eval(input, t, &picks, &mut finish);
        critical(input, t, &picks, &finish, &mut crit);
        let violated = lat > sla;
        trial.copy_from_slice(&picks);
        // The repair gets its own scratch buffers (it overwrites them before reading), so `picks`'s
        // finish times and critical path survive for the step below without evaluating it again.
        if let Some(cost) = repair(input, t, &mut trial, &mut trial_finish, &mut trial_crit)
            && best.as_ref().is_none_or(|b| cost < b.1)
        {
            best = Some((trial.clone(), cost));
        }
        // Subgradient: the critical path's price goes up when the SLA is missed, every price decays
        // otherwise.
        if violated {
            for &v in &crit {
                lam[v] += step;
            }
        } else {
            lam.iter_mut().for_each(|l| *l = (*l - 0.5 * step).max(0.0));
        }
        step *= 0.85;
    }
    // Local search once, on the best repaired plan (it is the expensive part).
    best.map(|(mut p, _)| {
        let cost = improve(input, t, &mut p);
        (p, cost)
    })
}

/// A larger neighbourhood than one swap: make one function cheaper even if the SLA breaks, repair by
/// speeding up the critical path where it is cheapest, then local-search; keep it if the plan got cheaper.
/// Passes over all functions until one pass improves nothing (at most `passes`). Returns the cost.
pub fn downgrade_and_repair(
    input: &PlanInput,
    t: &Tables,
    picks: &mut [usize],
    mut cost: f64,
    passes: usize,
) -> f64 {
    let n = input.dag.len();
    let mut trial = picks.to_vec();
    let mut finish = vec![0.0_f64; 2 * n];
    let mut crit = Vec::with_capacity(n);
    for _ in 0..passes {
        let mut improved = false;
        for f in 0..n {
            for j in 0..picks[f] {
                trial.copy_from_slice(picks);
                trial[f] = j;
                let Some(c) = repair(input, t, &mut trial, &mut finish, &mut crit) else {
                    continue;
                };
                if c < cost - 1e-12 {
                    let c = improve(input, t, &mut trial);
                    picks.copy_from_slice(&trial);
                    cost = c;
                    improved = true;
                    break;
                }
            }
        }
        if !improved {
            break;
        }
    }
    cost
}

/// The reverse move: make one function faster (one of its next faster options), then make its ancestors
/// and descendants (the functions whose slack that frees) cheaper one swap at a time; keep it if the
/// plan got cheaper. One pass over the functions. Returns the cost.
pub fn upgrade_and_improve(
    input: &PlanInput,
    t: &Tables,
    picks: &mut [usize],
    mut cost: f64,
) -> f64 {
    let dag = &input.dag;
    let n = dag.len();
    let sla = input.sla_s * (1.0 + SLA_EPS);
    // related[f]: f's ancestors and descendants.
    let mut related: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut seen = vec![false; n];
    let mut stack = Vec::new();
    for (f, rel) in related.iter_mut().enumerate() {
        seen.iter_mut().for_each(|s| *s = false);
        for edges in [&dag.succ, &dag.pred] {
            stack.clear();
            stack.push(f);
            while let Some(v) = stack.pop() {
                for &w in &edges[v] {
                    if !seen[w] {
                        seen[w] = true;
                        rel.push(w);
                        stack.push(w);
                    }
                }
            }
        }
    }
    let mut trial = picks.to_vec();
    let mut finish = vec![0.0_f64; 2 * n];
    for f in 0..n {
        let cur = t.opts[f][picks[f]];
        let faster: Vec<usize> = (0..t.opts[f].len())
            .filter(|&j| t.opts[f][j].lat() < cur.lat() - 1e-12)
            .take(3)
            .collect();
        for j in faster {
            trial.copy_from_slice(picks);
            trial[f] = j;
            let (mut c, _) = quick_eval(input, t, &trial, &mut finish);
            for &v in &related[f] {
                let was = trial[v];
                for k in 0..was {
                    trial[v] = k;
                    let (ck, lk) = quick_eval(input, t, &trial, &mut finish);
                    if lk <= sla && ck < c - 1e-12 {
                        c = ck;
                        break;
                    }
                    trial[v] = was;
                }
            }
            let (c, l) = quick_eval(input, t, &trial, &mut finish);
            if l <= sla && c < cost - 1e-12 {
                picks.copy_from_slice(&trial);
                cost = c;
            }
        }
    }
    cost
}
