//! Per-function option tables, built once per plan call: every (hardware × batch × replicas × policy)
//! the space allows, reduced to its Pareto set (an option worse or equal in cost, in added latency, in
//! readiness and in queueing wait than another is dropped; the drop is exact because a function's finish
//! times and cost are monotone in those numbers).
mod capacity;

use capacity::requests_no_more;
pub use capacity::{CapacityTerms, build_for_capacity, with_penalty};

use crate::hardware::Hardware;
use crate::model::{self, Behaviour, Pieces, Pol, min_replicas, prewarm_lower_offset, service};
use crate::plan::{Choice, ColdStart, PlanInput, PrewarmMode, SearchSpace};

/// One option of one function, as the search sees it: the no-wait finish `finish(s) = max(s + alpha, beta)`,
/// the SLA-quantile finish `finish_tail(finish(s0), sw) = max(finish(sw), finish(s0) + wait)` (the
/// path's bottleneck wait, model module doc), `cost(s0) = cost + idle_rate · max(0, s0 − ready)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Opt {
    pub choice: Choice,
    pub cost: f64,
    pub alpha: f64,
    pub beta: f64,
    pub ready: f64,
    pub idle_rate: f64,
    /// The queueing wait at the SLA quantile (not in `alpha`/`beta`).
    pub wait: f64,
    /// Initialisation estimate on this hardware (to place a pre-warm).
    pub init_est: f64,
}

impl Opt {
    #[inline]
    pub fn finish(&self, s: f64) -> f64 {
        (s + self.alpha).max(self.beta)
    }
    /// The SLA-quantile finish, given this option's no-wait finish `f0` and the start `sw` with the
    /// bottleneck wait so far.
    #[inline]
    pub fn finish_tail(&self, f0: f64, sw: f64) -> f64 {
        self.finish(sw).max(f0 + self.wait)
    }
    /// Added latency with the own wait (for the heuristics' trade-offs, not for bounds).
    #[inline]
    pub fn lat(&self) -> f64 {
        self.alpha + self.wait
    }
    #[inline]
    pub fn cost_at(&self, s: f64) -> f64 {
        if self.idle_rate > 0.0 {
            self.cost + self.idle_rate * (s - self.ready).max(0.0)
        } else {
            self.cost
        }
    }

    fn dominates(&self, o: &Opt) -> bool {
        const EPS: f64 = 1e-12;
        self.cost <= o.cost + EPS
            && self.alpha <= o.alpha + EPS
            && self.beta <= o.beta + EPS
            && self.wait <= o.wait + EPS
            && (self.idle_rate == 0.0 || (self.idle_rate <= o.idle_rate && self.ready >= o.ready))
    }
}

/// The option tables of every node plus the per-node minima the bounds use.
#[derive(Clone, Debug)]
pub struct Tables {
    /// Per node, Pareto options sorted by cost.
    pub opts: Vec<Vec<Opt>>,
    pub min_cost: Vec<f64>,
    pub min_alpha: Vec<f64>,
    pub min_beta: Vec<f64>,
    /// Per node, the option with the smallest (beta + wait, alpha + wait): the fastest.
    pub fastest: Vec<usize>,
    /// Options enumerated before the Pareto reduction (for reporting).
    pub enumerated: usize,
    /// Options left to sort for the Pareto pass after the exact pre-filters (for reporting).
    pub sorted: usize,
    /// The DAG's sinks in index order (`Dag::sinks`), kept here because the search evaluates plans
    /// tens of thousands of times per call and finding them was a sizeable part of each evaluation.
    pub sinks: Vec<usize>,
}

pub(crate) fn to_opt(choice: Choice, b: Behaviour, init_est: f64) -> Opt {
    let alpha = b.delay + b.service;
    Opt {
        choice,
        cost: b.cost_h,
        alpha,
        beta: (b.ready + b.service).max(alpha),
        ready: b.ready,
        idle_rate: b.idle_rate_h,
        wait: b.wait,
        init_est,
    }
}

/// Most replicas beyond one per call the options offer against queueing.
const MAX_QUEUE_EXTRA: u32 = 4;

/// A key whose integer order is exactly `f64::total_cmp`'s order (the same bit transform it applies).
#[inline]
fn total_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Builds the tables for `space` (which may be narrower than `input.space`, e.g. for the CPU-only variant).
///
/// Cheap exact reductions before the Pareto pass: a larger size of the same device kind whose call time
/// is no shorter is skipped (same latency, same init, higher price); and every option no better than the
/// function's fastest option in all of cost, α and β is dropped before sorting.
pub fn build(input: &PlanInput, space: &SearchSpace) -> Tables {
    build_with(input, space, true, &CapacityTerms::NONE)
}

/// The index of the fastest of `opts`: the smallest (β + wait, α + wait); 0 when there is none.
fn fastest_of(opts: &[Opt]) -> usize {
    (0..opts.len())
        .min_by(|&a, &b| {
            (opts[a].beta + opts[a].wait)
                .total_cmp(&(opts[b].beta + opts[b].wait))
                .then(opts[a].lat().total_cmp(&opts[b].lat()))
        })
        .unwrap_or(0)
}

/// Whether `p` comes before `o` in the Pareto pass's order: `total_cmp` on (cost, α, β), then the
/// position (`ip`, `io`) in the enumeration.
fn precedes(p: &Opt, ip: usize, o: &Opt, io: usize) -> bool {
    p.cost
        .total_cmp(&o.cost)
        .then(p.alpha.total_cmp(&o.alpha))
        .then(p.beta.total_cmp(&o.beta))
        .then(ip.cmp(&io))
        .is_lt()
}

/// Drops, from the options `all[start..]` of one (hardware, batch, replicas) (hence one wait), every option that a
/// "line" option of the same group (β = α, no idle cost) comes before in the Pareto pass's order with
/// an α no larger. The pass would drop it anyway: when it reaches such an option, that line option
/// (or, if the line option was itself dropped, whatever dominated it, which then dominates this one
/// too) is already behind it. Since a dropped option is never kept, the pass over the rest keeps
/// exactly the same options in the same order; the point is a smaller sort (with the queueing term's
/// extra replica counts, the sort was a fifth of a plan call). Typically always-on and the warm
/// keep-alive of a group have the same α, and the dearer one goes.
fn prune_group(all: &mut Vec<Opt>, start: usize) {
    let g = &all[start..];
    debug_assert!(g.len() <= 32, "one option per policy");
    let mut dropped = 0u32;
    for (io, o) in g.iter().enumerate() {
        let hidden = g.iter().enumerate().any(|(ip, p)| {
            ip != io
                && p.beta == p.alpha
                && p.idle_rate == 0.0
                && p.alpha <= o.alpha
                && precedes(p, ip, o, io)
        });
        if hidden {
            dropped |= 1 << io;
        }
    }
    if dropped == 0 {
        return;
    }
    let mut w = start;
    for i in 0..all.len() - start {
        if dropped & (1 << i) == 0 {
            all[w] = all[start + i];
            w += 1;
        }
    }
    all.truncate(w);
}

/// [`build`], with the per-group pruning switchable (off only to test that it changes nothing).
fn build_with(
    input: &PlanInput,
    space: &SearchSpace,
    prune_groups: bool,
    cap: &CapacityTerms<'_>,
) -> Tables {
    let n = input.dag.len();
    let m = input.load.burst_size();
    let mut tables = Tables {
        opts: Vec::with_capacity(n),
        min_cost: Vec::with_capacity(n),
        min_alpha: Vec::with_capacity(n),
        min_beta: Vec::with_capacity(n),
        fastest: Vec::with_capacity(n),
        enumerated: 0,
        sorted: 0,
        sinks: input.dag.sinks().collect(),
    };
    let mut batches = space.batches.clone();
    batches.sort_unstable();
    batches.dedup();
    let mut hardware: Vec<Hardware> = space.hardware.all().collect();
    hardware.sort_unstable();
    let load = &input.load;
    let warm = load.warm_window(input.params.sla_quantile);
    let warm_pol = Pol::KeepAlive {
        p_cold: load.p_gap_exceeds(warm),
        idle: load.expected_idle(warm),
    };
    let lower = prewarm_lower_offset(load);
    let close = model::close_rate(input);
    let mut replica_opts: Vec<u32> = Vec::with_capacity(8);
    let mut exp_memo = model::ExpMemo::default();
    let mut all: Vec<Opt> = Vec::with_capacity(512);
    let mut keys: Vec<(i64, i64, i64, u32)> = Vec::with_capacity(512);
    // Call time of the previous (smaller) size of the same kind, per batch index.
    let mut prev_t: Vec<f64> = vec![f64::INFINITY; batches.len()];
    for node in 0..n {
        all.clear();
        let mut enumerated = 0;
        let p = &input.profiles[node];
        let current = input.current.get(&input.dag.nodes[node].name).copied();
        let max_batch = node_max_batch(input, space, node);
        let mut prev_kind = None;
        for &hw in &hardware {
            if prev_kind != Some(hw.kind()) {
                prev_t.iter_mut().for_each(|t| *t = f64::INFINITY);
                prev_kind = Some(hw.kind());
            }
            let init = p.init(hw);
            let init_est = init.estimate(input.params.init_std_factor);
            let price = input.prices.per_second(hw);
            let break_even = (init.mean_s < warm || !space.policies.keep_alive_warm).then(|| {
                (
                    init.mean_s,
                    Pol::KeepAlive {
                        p_cold: load.p_gap_exceeds(init.mean_s),
                        idle: load.expected_idle(init.mean_s),
                    },
                )
            });
            let prewarm_offset = lower.max(-init_est);
            let mut last_b = 0;
            for (bi, &batch) in batches.iter().enumerate() {
                if batch > max_batch {
                    continue; // more than the function takes in one call (docs/batching.md)
                }
                let svc = service(p, hw, batch, m);
                if svc.b == last_b {
                    continue; // same effective batch as a smaller cap
                }
                last_b = svc.b;
                if svc.t_b >= prev_t[bi] {
                    continue; // a smaller size of this kind is as fast and cheaper
                }
                prev_t[bi] = svc.t_b;
                let n_min = min_replicas(svc.busy, load, input.params.util_cap);
                let n_spread = n_min.max(svc.calls);
                replica_opts.clear();
                replica_opts.push(n_min);
                if space.spread_replicas {
                    replica_opts.push(n_spread);
                    if input.params.queueing {
                        // Up to the count whose queueing wait is zero at the SLA quantile.
                        let n_free = model::queue_free_replicas_memo(
                            close,
                            svc.t_b,
                            1.0 - input.params.sla_quantile,
                            n_spread + MAX_QUEUE_EXTRA,
                            &mut exp_memo,
                        );
                        replica_opts.extend(n_spread + 1..=n_free);
                    }
                    replica_opts.sort_unstable();
                    replica_opts.dedup();
                }
                let mut last_wait = f64::INFINITY;
                for &replicas in &replica_opts {
                    let reinit_h = match current {
                        Some(now) if now != hw => {
                            price * f64::from(replicas) * init.mean_s * 3600.0
                                / input.params.horizon_s
                        }
                        _ => 0.0,
                    };
                    let mut pieces = Pieces {
                        price,
                        per_hour: load.bursts_per_hour() * price,
                        svc,
                        n: replicas,
                        init_mean: init.mean_s,
                        init_est,
                        reinit_h,
                        lower_offset: lower,
                        quantile: input.params.sla_quantile,
                        wait: 0.0,
                        m,
                    };
                    pieces.wait = model::wait_for_memo(input, &pieces, &mut exp_memo);
                    if replicas > n_spread && pieces.wait >= last_wait {
                        // More replicas, no less waiting: dominated by the smaller count (exact skip).
                        continue;
                    }
                    last_wait = pieces.wait;
                    let group = all.len();
                    let mut push = |policy: ColdStart, pol: Pol, dag_aware_prewarm: bool| {
                        let choice = Choice {
                            hardware: hw,
                            batch: svc.b,
                            replicas,
                            policy,
                        };
                        let mut b = model::core(&pieces, pol);
                        if dag_aware_prewarm {
                            // Placed to be ready exactly when needed (search::materialise): no idle wait.
                            b.idle_rate_h = 0.0;
                        }
                        b.cost_h += (cap.penalty)(&choice, m);
                        if b.cost_h.is_finite() {
                            all.push(to_opt(choice, b, init_est));
                        }
                    };
                    if space.policies.always_on {
                        push(ColdStart::AlwaysOn, Pol::AlwaysOn, false);
                    }
                    if space.policies.keep_alive_warm {
                        push(ColdStart::KeepAlive { seconds: warm }, warm_pol, false);
                    }
                    if let (true, Some((t, pol))) =
                        (space.policies.keep_alive_break_even, break_even)
                    {
                        push(ColdStart::KeepAlive { seconds: t }, pol, false);
                    }
                    if cap.resource_aware
                        && (space.policies.keep_alive_warm || space.policies.keep_alive_break_even)
                    {
                        // Release right after use (initialised on demand each time): the option
                        // that holds a replica the shortest, for a capacity that binds
                        // (`capacity::timeline`); never cheaper or faster than the others.
                        let release = Pol::KeepAlive {
                            p_cold: load.p_gap_exceeds(0.0),
                            idle: load.expected_idle(0.0),
                        };
                        push(ColdStart::KeepAlive { seconds: 0.0 }, release, false);
                    }
                    if space.policies.pre_warm {
                        // The placeholder offset gives the earliest readiness.
                        push(
                            ColdStart::PreWarm {
                                offset_s: prewarm_offset,
                            },
                            Pol::PreWarm {
                                offset: prewarm_offset,
                            },
                            space.prewarm == PrewarmMode::DagAware,
                        );
                    }
                    enumerated += all.len() - group;
                    if prune_groups {
                        prune_group(&mut all, group);
                    }
                }
            }
        }
        tables.enumerated += enumerated;
        let fast = (0..all.len())
            .min_by(|&a, &b| {
                (all[a].beta + all[a].wait)
                    .total_cmp(&(all[b].beta + all[b].wait))
                    .then(all[a].lat().total_cmp(&all[b].lat()))
                    .then(all[a].cost.total_cmp(&all[b].cost))
            })
            .unwrap_or(0);
        let fastest_opt = all.get(fast).copied();
        keys.clear();
        keys.extend(all.iter().enumerate().filter_map(|(i, o)| {
            let dominated = i != fast
                && fastest_opt.is_some_and(|f| {
                    f.dominates(o)
                        && (!cap.resource_aware
                            || requests_no_more(&f.choice, &o.choice, m, &input.load))
                });
            (!dominated).then_some((
                total_key(o.cost),
                total_key(o.alpha),
                total_key(o.beta),
                i as u32,
            ))
        }));
        // Integer keys order exactly as `total_cmp` on (cost, α, β) then the index, but compare
        // without re-deriving the order per field: this sort was a third of a plan call's time.
        tables.sorted += keys.len();
        keys.sort_unstable();
        // Pareto pass in cost order. Options with β = α and no idle cost ("line" options: every policy but
        // a pre-warm) dominate exactly the later options with α and wait at least theirs, so their
        // (α, wait) staircase replaces a full dominance check; the few others are checked one by one.
        let mut kept: Vec<Opt> = Vec::with_capacity(32);
        let mut others: Vec<Opt> = Vec::with_capacity(16);
        let mut lines: Vec<(f64, f64)> = Vec::with_capacity(16);
        for &(_, _, _, i) in &keys {
            let o = &all[i as usize];
            if cap.resource_aware {
                if kept.iter().any(|k| {
                    k.dominates(o) && requests_no_more(&k.choice, &o.choice, m, &input.load)
                }) {
                    continue;
                }
                kept.push(*o);
                continue;
            }
            if lines
                .iter()
                .any(|&(a, w)| a <= o.alpha + 1e-12 && w <= o.wait + 1e-12)
                || others.iter().any(|k| k.dominates(o))
            {
                continue;
            }
            kept.push(*o);
            if o.beta == o.alpha && o.idle_rate == 0.0 {
                lines.push((o.alpha, o.wait));
            } else {
                others.push(*o);
            }
        }
        let fastest = fastest_of(&kept);
        tables
            .min_cost
            .push(kept.iter().map(|o| o.cost).fold(f64::INFINITY, f64::min));
        tables
            .min_alpha
            .push(kept.iter().map(|o| o.alpha).fold(f64::INFINITY, f64::min));
        tables
            .min_beta
            .push(kept.iter().map(|o| o.beta).fold(f64::INFINITY, f64::min));
        tables.fastest.push(fastest);
        tables.opts.push(kept);
    }
    tables
}

#[cfg(test)]
mod tests;

/// The largest batch cap `node` may get: what it declares (`com.smiless.batch`), else 1 under
/// `batch_opt_in` (it answers one request per call) and any cap otherwise.
pub fn node_max_batch(input: &PlanInput, space: &SearchSpace, node: usize) -> u32 {
    match input.dag.nodes.get(node).and_then(|n| n.max_batch) {
        Some(n) => n.max(1),
        None if space.batch_opt_in => 1,
        None => u32::MAX,
    }
}
