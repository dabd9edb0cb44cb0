//! The co-optimiser: a top-K beam over the multi-way tree of per-function options (DESIGN §7).
//!
//! Level k fixes the k-th function of the topological order. Each kept partial plan is expanded by every
//! Pareto option of that function; a child is pruned when its latency bound exceeds the SLA or its cost
//! bound reaches the incumbent (the cost of the fastest plan, a feasible completion that always exists).
//! Among the survivors, a child is dropped when another kept child is no dearer, has no later finish
//! (neither the no-wait nor the SLA-quantile one) on any function that still has open successors, and no larger latency bound: it cannot complete better.
//! Then K are kept: the cheapest by cost bound, plus a quarter of K reserved for the fastest by latency
//! bound, so that a tight SLA downstream still finds fast prefixes. With K at least the number of
//! non-dominated partial plans at every level the search is exact (it is then a Pareto dynamic
//! programme); the property tests check the default K against the exhaustive optimum.
use super::{Bounds, SLA_EPS};
use crate::options::Tables;
use crate::plan::PlanInput;

/// A candidate child at one level.
#[derive(Clone, Copy, Debug)]
struct Child {
    parent: u32,
    opt: u32,
    cost: f64,
    /// max over fixed f of finish_f + tail_f.
    amax: f64,
    /// SLA-quantile and no-wait finish of the function fixed at this level.
    finish: f64,
    finish0: f64,
    lat_lb: f64,
    /// Cost bound of the open functions.
    h: f64,
}

/// The result of a beam search: picks per node, cost, latency, partial plans evaluated.
pub struct BeamResult {
    pub picks: Vec<usize>,
    pub cost: f64,
    pub latency: f64,
    pub expanded: u64,
}

/// Runs the beam with width `k` (≥ 1). `None` only if no plan meets the SLA (checked before by callers).
pub fn search(input: &PlanInput, t: &Tables, b: &Bounds, k: usize) -> Option<BeamResult> {
    // Incumbent for the cost cut: the fastest plan (feasible whenever anything is), improved by a greedy
    // pass (width 1, which always completes: every kept prefix has a feasible completion).
    let mut fin_tmp = vec![0.0; 2 * input.dag.len()];
    let (fast_cost, _) = super::quick_eval(input, t, &t.fastest, &mut fin_tmp);
    let greedy = run(input, t, b, 1, 0, fast_cost);
    let ub = greedy.as_ref().map_or(fast_cost, |g| g.cost.min(fast_cost));
    if k <= 1 {
        return greedy;
    }
    let mut r = run(input, t, b, k, k / 4, ub);
    if let (Some(r), Some(g)) = (&mut r, &greedy) {
        r.expanded += g.expanded;
    }
    match (r, greedy) {
        (Some(r), Some(g)) if g.cost < r.cost => Some(BeamResult {
            expanded: r.expanded,
            ..g
        }),
        (Some(r), _) => Some(r),
        (None, g) => g,
    }
}

/// Keeps, in `kept`, up to `limit` children taken in `order` that no already-kept child dominates.
#[allow(clippy::too_many_arguments)]
fn take_non_dominated(
    order: &[(f64, u32)],
    children: &[Child],
    frontier: &[usize],
    f: usize,
    fin: &[f64],
    fin0: &[f64],
    n: usize,
    is_kept: &mut [bool],
    kept: &mut Vec<u32>,
    limit: usize,
) {
    let finish_of = |c: &Child, x: usize| {
        if x == f {
            (c.finish, c.finish0)
        } else {
            let i = c.parent as usize * n + x;
            (fin[i], fin0[i])
        }
    };
    for &(_, ci) in order {
        if kept.len() >= limit {
            return;
        }
        if is_kept[ci as usize] {
            continue;
        }
        let x = &children[ci as usize];
        let dominated = kept.iter().any(|&y| {
            let y = &children[y as usize];
            y.cost <= x.cost + 1e-12
                && y.amax <= x.amax + 1e-12
                && frontier.iter().all(|&v| {
                    let (yw, y0) = finish_of(y, v);
                    let (xw, x0) = finish_of(x, v);
                    yw <= xw + 1e-12 && y0 <= x0 + 1e-12
                })
        });
        if !dominated {
            kept.push(ci);
            is_kept[ci as usize] = true;
        }
    }
}

/// Sorts `keys` enough to read its first `want` entries in order (a partial sort: selection, then a
/// sort of the prefix), returning how many are in order.
fn partial_sort(keys: &mut [(f64, u32)], want: usize) -> usize {
    let cmp = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if want < keys.len() {
        keys.select_nth_unstable_by(want, cmp);
        keys[..want].sort_unstable_by(cmp);
        want
    } else {
        keys.sort_unstable_by(cmp);
        keys.len()
    }
}

fn run(
    input: &PlanInput,
    t: &Tables,
    b: &Bounds,
    k: usize,
    reserve: usize,
    ub: f64,
) -> Option<BeamResult> {
    let dag = &input.dag;
    let n = dag.len();
    let sla = input.sla_s * (1.0 + SLA_EPS);
    let ub = ub * (1.0 + 1e-9) + 1e-12;
    // Current level's states: cost, amax, open-cost bound, finishes (stride n).
    let mut cost = vec![0.0_f64];
    let mut amax = vec![0.0_f64];
    let mut hsum = vec![b.h_root(input)];
    let mut fin = vec![0.0_f64; n];
    let mut fin0 = vec![0.0_f64; n];
    let mut history: Vec<Vec<(u32, u32)>> = Vec::with_capacity(n);
    let mut children: Vec<Child> = Vec::with_capacity(k * 32);
    let mut keys: Vec<(f64, u32)> = Vec::new();
    let mut kept: Vec<u32> = Vec::with_capacity(k);
    let mut is_kept: Vec<bool> = Vec::new();
    let mut succ_info: Vec<super::SuccInfo> = Vec::new();
    let mut expanded = 0u64;
    let mut next_cost = Vec::with_capacity(k);
    let mut next_amax = Vec::with_capacity(k);
    let mut next_h = Vec::with_capacity(k);
    let mut next_fin = Vec::with_capacity(k * n);
    let mut next_fin0 = Vec::with_capacity(k * n);

    for level in 0..n {
        let f = b.order[level];
        let opts = &t.opts[f];
        let open = b.open_lb[level + 1];
        let tail = b.tail[f];
        children.clear();
        for i in 0..cost.len() {
            let row = &fin[i * n..(i + 1) * n];
            let row0 = &fin0[i * n..(i + 1) * n];
            let (mut s0, mut s) = (0.0_f64, 0.0_f64);
            for &p in &dag.pred[f] {
                s = s.max(row[p]);
                s0 = s0.max(row0[p]);
            }
            let base = hsum[i] - b.h(f, s, s0);
            if !base.is_finite() {
                continue;
            }
            b.successor_info(input, f, level, row, row0, &mut succ_info);
            for (j, o) in opts.iter().enumerate() {
                if cost[i] + o.cost + base > ub {
                    break; // options are sorted by cost, and the successors' terms only grow
                }
                expanded += 1;
                let fi0 = o.finish(s0);
                let fi = o.finish_tail(fi0, s);
                let a = amax[i].max(fi + tail);
                let lat_lb = a.max(open);
                if lat_lb > sla {
                    continue;
                }
                let mut h = base;
                for si in &succ_info {
                    h += b.successor_delta(si, fi, fi0);
                }
                let c = cost[i] + o.cost_at(s0);
                if !(c + h).is_finite() || c + h > ub {
                    continue; // an infinite bound: a successor could no longer meet the SLA
                }
                children.push(Child {
                    parent: i as u32,
                    opt: j as u32,
                    cost: c,
                    amax: a,
                    finish: fi,
                    finish0: fi0,
                    lat_lb,
                    h,
                });
            }
        }
        if children.is_empty() {
            return None;
        }
        kept.clear();
        if children.len() <= k {
            // Everything fits: no selection needed.
            kept.extend(0..children.len() as u32);
        } else {
            let frontier = &b.frontier[level + 1];
            is_kept.clear();
            is_kept.resize(children.len(), false);
            // Best cost bound first, examining a growing sorted prefix until enough survive dominance.
            keys.clear();
            keys.extend(
                children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.cost + c.h, i as u32)),
            );
            let mut want = (4 * k).min(keys.len());
            loop {
                let sorted = partial_sort(&mut keys, want);
                take_non_dominated(
                    &keys[..sorted],
                    &children,
                    frontier,
                    f,
                    &fin,
                    &fin0,
                    n,
                    &mut is_kept,
                    &mut kept,
                    k - reserve,
                );
                if kept.len() >= k - reserve || sorted == keys.len() {
                    break;
                }
                want = keys.len();
            }
            if reserve > 0 {
                keys.clear();
                keys.extend(
                    children
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.lat_lb, i as u32)),
                );
                let mut want = (4 * reserve).min(keys.len());
                loop {
                    let sorted = partial_sort(&mut keys, want);
                    take_non_dominated(
                        &keys[..sorted],
                        &children,
                        frontier,
                        f,
                        &fin,
                        &fin0,
                        n,
                        &mut is_kept,
                        &mut kept,
                        k,
                    );
                    if kept.len() >= k || sorted == keys.len() {
                        break;
                    }
                    want = keys.len();
                }
            }
        }
        next_cost.clear();
        next_amax.clear();
        next_h.clear();
        next_fin.clear();
        next_fin0.clear();
        let mut level_back = Vec::with_capacity(kept.len());
        for &ci in &kept {
            let c = &children[ci as usize];
            next_cost.push(c.cost);
            next_amax.push(c.amax);
            next_h.push(c.h);
            let p = c.parent as usize;
            next_fin.extend_from_slice(&fin[p * n..(p + 1) * n]);
            let last = next_fin.len() - n + f;
            next_fin[last] = c.finish;
            next_fin0.extend_from_slice(&fin0[p * n..(p + 1) * n]);
            next_fin0[last] = c.finish0;
            level_back.push((c.parent, c.opt));
        }
        history.push(level_back);
        std::mem::swap(&mut cost, &mut next_cost);
        std::mem::swap(&mut amax, &mut next_amax);
        std::mem::swap(&mut hsum, &mut next_h);
        std::mem::swap(&mut fin, &mut next_fin);
        std::mem::swap(&mut fin0, &mut next_fin0);
    }
    // Complete plans: the latency bound equals the latency, so all kept are feasible; take the cheapest.
    let best = (0..cost.len()).min_by(|&x, &y| cost[x].total_cmp(&cost[y]))?;
    let mut picks = vec![0; n];
    let mut idx = best;
    for level in (0..n).rev() {
        let (parent, opt) = history[level][idx];
        picks[b.order[level]] = opt as usize;
        idx = parent as usize;
    }
    let latency = amax[best];
    Some(BeamResult {
        picks,
        cost: cost[best],
        latency,
        expanded,
    })
}
