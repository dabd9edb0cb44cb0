//! The searches over the option tables: the co-optimiser ([`beam`], DESIGN §7's top-K multi-way tree)
//! and the exhaustive optimum ([`exact`], branch and bound), with their shared admissible bounds and the
//! step that turns picked options into a [`Plan`].
//!
//! Both walk the DAG's functions in topological order. A partial plan fixes the options of the first `k`
//! functions, hence their finish times: two per function, the no-wait `f⁰` and the SLA-quantile `fʷ`
//! with the path's bottleneck wait (model module doc; [`Opt::finish`], [`Opt::finish_tail`]). The
//! bounds below stay admissible because every function's `fʷ ≥ max(sʷ + α, β, s⁰ + α + wait)` (the last
//! since `fʷ ≥ f⁰ + wait` and `f⁰ ≥ s⁰ + α`). Its bounds:
//! - **cost** ≥ cost so far + Σ over the remaining functions u of the cheapest option of u that can still
//!   meet the SLA given the earliest u can start (its fixed predecessors' finishes, `fʷ` and `f⁰`, or the
//!   fastest finish of the open ones): `est_u + α + tail_u ≤ SLA`, `est⁰_u + α + wait + tail_u ≤ SLA` and
//!   `β + tail_u ≤ SLA`. The wait term matters: without it a single-replica option (wait ≈ its service
//!   time) looked as fast as a replicated one, and at the root the bound was 35–60 % of the optimum on
//!   diamonds, so neither the beam's ranking nor the polish's cut could tell the right prefixes apart.
//!   Maintained incrementally: fixing f changes only f's own term and its successors' (their earliest
//!   starts can only grow);
//! - **latency** ≥ max( max over fixed f of finish_f + tail_f, max over open u of β_min(u) + tail_u ),
//!   where `tail_f` is the longest path after `f` counting every later function at its smallest added
//!   latency α_min (no wait). Both are admissible (never above the best completion), and the latency bound is
//!   exact for a complete plan (it is the max over sinks of `fʷ`).
pub mod beam;
pub mod exact;
pub mod lagrange;

use crate::model::{self, prewarm_lower_offset};
use crate::options::{Opt, Tables};
use crate::plan::{
    Alternative, Choice, ColdStart, FunctionPlan, Plan, PlanError, PlanInput, PrewarmMode,
    SearchStats,
};

/// Relative slack on SLA comparisons (floating-point noise only).
pub(crate) const SLA_EPS: f64 = 1e-9;

/// How many options the cost bound [`Bounds::h`] examines per call before settling for a weaker bound.
const H_SCAN: usize = 8;

/// Precomputed bound ingredients.
#[derive(Clone, Debug)]
pub struct Bounds {
    pub order: Vec<usize>,
    /// pos[f]: f's position in `order`.
    pub pos: Vec<usize>,
    /// tail[f]: lower bound on the time from f's finish to the end of the DAG.
    pub tail: Vec<f64>,
    /// ef[f]: lower bound on f's finish (every function at its fastest).
    pub ef: Vec<f64>,
    /// open_lb[k]: max over functions at positions ≥ k of β_min + tail (0 at k = n).
    pub open_lb: Vec<f64>,
    /// frontier[k]: fixed functions (positions < k) with a successor at a position ≥ k.
    pub frontier: Vec<Vec<usize>>,
    /// Per node, over its options whose β meets the SLA, in cost order: cost, prefix minima of α and of
    /// α + wait, and each option's own α and α + wait.
    h_cost: Vec<Vec<f64>>,
    h_alpha: Vec<Vec<f64>>,
    h_alpha_wait: Vec<Vec<f64>>,
    h_own: Vec<Vec<(f64, f64)>>,
    sla: f64,
}

impl Bounds {
    pub fn new(input: &PlanInput, t: &Tables) -> Bounds {
        let dag = &input.dag;
        let n = dag.len();
        let sla = input.sla_s * (1.0 + SLA_EPS);
        let order = dag.topo.clone();
        let mut pos = vec![0; n];
        for (k, &f) in order.iter().enumerate() {
            pos[f] = k;
        }
        let mut tail = vec![0.0; n];
        for &f in order.iter().rev() {
            tail[f] = dag.succ[f]
                .iter()
                .map(|&w| t.min_alpha[w] + tail[w])
                .fold(0.0, f64::max);
        }
        let mut ef = vec![0.0_f64; n];
        for &f in &order {
            let s = dag.pred[f].iter().map(|&p| ef[p]).fold(0.0, f64::max);
            ef[f] = (s + t.min_alpha[f]).max(t.min_beta[f]);
        }
        let mut open_lb = vec![0.0_f64; n + 1];
        for k in (0..n).rev() {
            let f = order[k];
            open_lb[k] = open_lb[k + 1].max(t.min_beta[f] + tail[f]);
        }
        let frontier = (0..=n)
            .map(|k| {
                order[..k]
                    .iter()
                    .copied()
                    .filter(|&f| dag.succ[f].iter().any(|&w| pos[w] >= k))
                    .collect()
            })
            .collect();
        let mut h_cost = Vec::with_capacity(n);
        let mut h_alpha = Vec::with_capacity(n);
        let mut h_alpha_wait = Vec::with_capacity(n);
        let mut h_own = Vec::with_capacity(n);
        for (f, opts) in t.opts.iter().enumerate() {
            let mut costs = Vec::new();
            let mut alphas = Vec::new();
            let mut alpha_waits = Vec::new();
            let mut own = Vec::new();
            let (mut run, mut run_w) = (f64::INFINITY, f64::INFINITY);
            for o in opts {
                if o.beta + tail[f] <= sla {
                    run = run.min(o.alpha);
                    run_w = run_w.min(o.alpha + o.wait);
                    costs.push(o.cost);
                    alphas.push(run);
                    alpha_waits.push(run_w);
                    own.push((o.alpha, o.alpha + o.wait));
                }
            }
            h_cost.push(costs);
            h_alpha.push(alphas);
            h_alpha_wait.push(alpha_waits);
            h_own.push(own);
        }
        Bounds {
            order,
            pos,
            tail,
            ef,
            open_lb,
            frontier,
            h_cost,
            h_alpha,
            h_alpha_wait,
            h_own,
            sla,
        }
    }

    /// Lower bound on the cost of function `w` given that its SLA-quantile start cannot be before `est`
    /// and its no-wait start not before `est0` (≤ `est`): its cheapest option that can still meet the
    /// SLA from there (∞ if none). An option's SLA-quantile finish is at least `est + α` and at least
    /// its no-wait finish plus its own queueing wait, `est0 + α + wait`; the second matters for the
    /// single-replica options, whose wait is as long as their service.
    #[inline]
    pub fn h(&self, w: usize, est: f64, est0: f64) -> f64 {
        let budget = self.sla - self.tail[w] - est;
        let budget0 = self.sla - self.tail[w] - est0;
        // Prefix minima are non-increasing: no option before the first index at or under each budget
        // meets it; from the later of the two, the first option that meets both. The scan stops after
        // `H_SCAN` options with the cost reached so far, still a lower bound (costs are sorted) and
        // still non-decreasing in `est` and `est0`, which the searches' incremental updates rely on.
        let i = self.h_alpha[w].partition_point(|&a| a > budget);
        let own = &self.h_own[w];
        // Most often the wait does not bind: the first option fast enough without it is the answer.
        match own.get(i) {
            None => return f64::INFINITY,
            Some(&(_, aw)) if aw <= budget0 => return self.h_cost[w][i],
            _ => {}
        }
        let j = self.h_alpha_wait[w].partition_point(|&a| a > budget0);
        let start = i.max(j);
        let end = own.len().min(start + H_SCAN);
        let k = (start..end)
            .find(|&k| own[k].0 <= budget && own[k].1 <= budget0)
            .unwrap_or(end);
        self.h_cost[w].get(k).copied().unwrap_or(f64::INFINITY)
    }

    /// The bound on the cost of every function, before anything is fixed.
    pub fn h_root(&self, input: &PlanInput) -> f64 {
        let dag = &input.dag;
        (0..dag.len())
            .map(|u| {
                let est = dag.pred[u].iter().map(|&q| self.ef[q]).fold(0.0, f64::max);
                self.h(u, est, est)
            })
            .sum()
    }

    /// For the successors of `f` (fixed at `level`): the earliest SLA-quantile and no-wait starts without
    /// `f` and the current bound. `row` and `row0` hold the fixed functions' SLA-quantile and no-wait
    /// finishes.
    pub fn successor_info(
        &self,
        input: &PlanInput,
        f: usize,
        level: usize,
        row: &[f64],
        row0: &[f64],
        out: &mut Vec<SuccInfo>,
    ) {
        out.clear();
        for &w in &input.dag.succ[f] {
            let (mut est, mut est0) = (0.0_f64, 0.0_f64);
            for &q in input.dag.pred[w].iter().filter(|&&q| q != f) {
                if self.pos[q] < level {
                    est = est.max(row[q]);
                    est0 = est0.max(row0[q]);
                } else {
                    est = est.max(self.ef[q]);
                    est0 = est0.max(self.ef[q]);
                }
            }
            let before = self.h(w, est.max(self.ef[f]), est0.max(self.ef[f]));
            out.push(SuccInfo {
                w,
                est,
                est0,
                before,
            });
        }
    }

    /// The bound's change for a successor when `f` finishes at `fi` (SLA-quantile) and `fi0` (no-wait).
    #[inline]
    pub fn successor_delta(&self, s: &SuccInfo, fi: f64, fi0: f64) -> f64 {
        self.h(s.w, s.est.max(fi), s.est0.max(fi0)) - s.before
    }
}

/// A successor's earliest starts without the function being fixed, and its bound before.
#[derive(Clone, Copy, Debug)]
pub struct SuccInfo {
    pub w: usize,
    pub est: f64,
    pub est0: f64,
    pub before: f64,
}

/// The no-wait start `s⁰` and the SLA-quantile start `sʷ` of `f` from a finish buffer laid out as
/// [`quick_eval`]'s: `fʷ` in `finish[..n]`, `f⁰` in `finish[n..]`.
#[inline]
pub fn starts(input: &PlanInput, f: usize, finish: &[f64]) -> (f64, f64) {
    let n = input.dag.len();
    let mut s0 = 0.0_f64;
    let mut sw = 0.0_f64;
    for &p in &input.dag.pred[f] {
        sw = sw.max(finish[p]);
        s0 = s0.max(finish[n + p]);
    }
    (s0, sw)
}

/// Cost and latency of a complete pick vector (one option index per node), along the DAG. `finish`
/// (length `2n`) receives the SLA-quantile finishes `fʷ` in `[..n]` and the no-wait ones in `[n..]`.
pub fn quick_eval(
    input: &PlanInput,
    t: &Tables,
    picks: &[usize],
    finish: &mut [f64],
) -> (f64, f64) {
    let dag = &input.dag;
    let n = dag.len();
    let mut cost = 0.0;
    for &f in &dag.topo {
        let (s0, sw) = starts(input, f, finish);
        let o = &t.opts[f][picks[f]];
        let f0 = o.finish(s0);
        finish[n + f] = f0;
        finish[f] = o.finish_tail(f0, sw);
        cost += o.cost_at(s0);
    }
    let lat = t.sinks.iter().map(|&f| finish[f]).fold(0.0, f64::max);
    (cost, lat)
}

/// One-swap local improvement: for each function, the cheapest other option that keeps the plan within
/// the SLA, repeated until nothing improves. Returns the cost.
pub fn improve(input: &PlanInput, t: &Tables, picks: &mut [usize]) -> f64 {
    let n = input.dag.len();
    let sla = input.sla_s * (1.0 + SLA_EPS);
    let mut finish = vec![0.0; 2 * n];
    let (mut cost, _) = quick_eval(input, t, picks, &mut finish);
    loop {
        let mut improved = false;
        for f in 0..n {
            let cur = picks[f];
            // Options are in cost order, so only earlier ones can be cheaper (up to idle time).
            for j in 0..cur {
                picks[f] = j;
                let (c, l) = quick_eval(input, t, picks, &mut finish);
                if l <= sla && c < cost - 1e-12 {
                    cost = c;
                    improved = true;
                    break;
                }
                picks[f] = cur;
            }
        }
        if !improved {
            return cost;
        }
    }
}

/// The fastest plan's latency; an error when even it misses the SLA.
pub fn check_feasible(input: &PlanInput, t: &Tables) -> Result<(), PlanError> {
    let mut finish = vec![0.0; 2 * input.dag.len()];
    let (_, fastest) = quick_eval(input, t, &t.fastest, &mut finish);
    if fastest > input.sla_s * (1.0 + SLA_EPS) {
        return Err(PlanError::Infeasible {
            fastest_s: fastest,
            sla_s: input.sla_s,
        });
    }
    Ok(())
}

/// Places a picked option's pre-warm once its no-wait start `s` is known.
pub(crate) fn place(o: &Opt, s: f64, mode: PrewarmMode, input: &PlanInput) -> Choice {
    let mut c = o.choice;
    if let (ColdStart::PreWarm { .. }, PrewarmMode::DagAware) = (c.policy, mode) {
        let lower = prewarm_lower_offset(&input.load);
        c.policy = ColdStart::PreWarm {
            offset_s: (s - o.init_est).max(lower),
        };
    }
    c
}

/// Turns picks into a [`Plan`] evaluated by [`model::evaluate`], with rejected alternatives.
pub fn materialise(
    input: &PlanInput,
    t: &Tables,
    picks: &[usize],
    mode: PrewarmMode,
    policy: &str,
    stats: SearchStats,
) -> Plan {
    let dag = &input.dag;
    let n = dag.len();
    let mut finish = vec![0.0; 2 * n];
    let mut starts_in = vec![0.0; n];
    let mut choices: Vec<Option<Choice>> = vec![None; n];
    for &f in &dag.topo {
        let (s0, sw) = starts(input, f, &finish);
        let o = &t.opts[f][picks[f]];
        starts_in[f] = s0;
        let f0 = o.finish(s0);
        finish[n + f] = f0;
        finish[f] = o.finish_tail(f0, sw);
        choices[f] = Some(place(o, s0, mode, input));
    }
    // Every node is in the topological order, so every entry is set.
    let choices: Vec<Choice> = choices
        .into_iter()
        .map(|c| c.expect("topological order covers every node"))
        .collect();
    let ev = model::evaluate(input, &choices);
    let meets = ev.latency_s <= input.sla_s * (1.0 + SLA_EPS);
    let mut functions: Vec<FunctionPlan> = (0..n)
        .map(|f| FunctionPlan {
            name: dag.nodes[f].name.clone(),
            choice: choices[f],
            start_s: ev.start[f],
            finish_s: ev.finish[f],
            cost_per_hour: ev.cost[f],
            alternatives: Vec::new(),
        })
        .collect();
    if input.alternatives > 0 {
        let mut trial = picks.to_vec();
        let mut alts: Vec<(usize, f64, f64)> = Vec::new();
        for f in 0..n {
            alts.clear();
            for j in 0..t.opts[f].len() {
                if j == picks[f] {
                    continue;
                }
                trial[f] = j;
                let (c, l) = quick_eval(input, t, &trial, &mut finish);
                alts.push((j, c, l));
            }
            trial[f] = picks[f];
            alts.sort_by(|a, b| a.1.total_cmp(&b.1));
            let mut pick: Vec<(usize, f64, f64)> =
                alts.iter().take(input.alternatives).copied().collect();
            let ok = |l: f64| l <= input.sla_s * (1.0 + SLA_EPS);
            if !pick.iter().any(|a| ok(a.2))
                && let Some(first_ok) = alts.iter().find(|a| ok(a.2))
            {
                pick.pop();
                pick.push(*first_ok);
            }
            functions[f].alternatives = pick
                .into_iter()
                .map(|(j, c, l)| Alternative {
                    choice: place(&t.opts[f][j], starts_in[f], mode, input),
                    cost_per_hour: c,
                    latency_s: l,
                    meets_sla: ok(l),
                })
                .collect();
        }
    }
    Plan {
        dag: dag.name.clone(),
        policy: policy.to_string(),
        sla_s: input.sla_s,
        functions,
        predicted_latency_s: ev.latency_s,
        cost_per_hour: ev.cost_per_hour,
        meets_sla: meets,
        stats,
    }
}

/// A plan from explicit choices (the baselines), evaluated by the same model.
pub fn plan_from_choices(input: &PlanInput, choices: Vec<Choice>, policy: &str) -> Plan {
    let ev = model::evaluate(input, &choices);
    let functions = (0..input.dag.len())
        .map(|f| FunctionPlan {
            name: input.dag.nodes[f].name.clone(),
            choice: choices[f],
            start_s: ev.start[f],
            finish_s: ev.finish[f],
            cost_per_hour: ev.cost[f],
            alternatives: Vec::new(),
        })
        .collect();
    Plan {
        dag: input.dag.name.clone(),
        policy: policy.to_string(),
        sla_s: input.sla_s,
        functions,
        predicted_latency_s: ev.latency_s,
        cost_per_hour: ev.cost_per_hour,
        meets_sla: ev.latency_s <= input.sla_s * (1.0 + SLA_EPS),
        stats: SearchStats::default(),
    }
}
