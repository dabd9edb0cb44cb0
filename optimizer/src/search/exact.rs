//! The exhaustive optimum: depth-first branch and bound over the same option tables and bounds as the
//! co-optimiser. It is exact: the Pareto reduction of each function's options only drops options that
//! are no better in cost, added latency and readiness than a kept one (finish times and cost are monotone
//! in those), and a branch is cut only when its admissible cost bound reaches the best complete plan
//! found or its admissible latency bound exceeds the SLA. Options are tried cheapest first, so the first
//! plans found are good and the cost cut bites early. A node budget bounds the run on large DAGs; the
//! result then says it is not proven optimal.
use super::{Bounds, SLA_EPS};
use crate::options::Tables;
use crate::plan::PlanInput;

pub struct ExactResult {
    pub picks: Vec<usize>,
    pub cost: f64,
    pub expanded: u64,
    /// False when the node budget ran out before the search space was closed.
    pub proven: bool,
}

struct Dfs<'a> {
    input: &'a PlanInput,
    t: &'a Tables,
    b: &'a Bounds,
    sla: f64,
    /// SLA-quantile finishes in `[..n]`, no-wait ones in `[n..]` (as [`super::quick_eval`]'s).
    finish: Vec<f64>,
    picks: Vec<usize>,
    best_cost: f64,
    best: Option<Vec<usize>>,
    expanded: u64,
    limit: u64,
    aborted: bool,
}

impl Dfs<'_> {
    fn go(&mut self, level: usize, cost: f64, amax: f64, hsum: f64) {
        let n = self.input.dag.len();
        if level == n {
            if cost < self.best_cost {
                self.best_cost = cost;
                self.best = Some(self.picks.clone());
            }
            return;
        }
        let f = self.b.order[level];
        let (s0, s) = super::starts(self.input, f, &self.finish);
        let base = hsum - self.b.h(f, s, s0);
        if !base.is_finite() {
            return;
        }
        let mut succ_info = Vec::new();
        let (row, row0) = self.finish.split_at(n);
        self.b
            .successor_info(self.input, f, level, row, row0, &mut succ_info);
        let open = self.b.open_lb[level + 1];
        let tail = self.b.tail[f];
        for j in 0..self.t.opts[f].len() {
            let o = self.t.opts[f][j];
            if cost + o.cost + base >= self.best_cost {
                break; // sorted by cost, and the successors' terms only grow: no later option can do better
            }
            self.expanded += 1;
            if self.expanded > self.limit {
                self.aborted = true;
                return;
            }
            let fi0 = o.finish(s0);
            let fi = o.finish_tail(fi0, s);
            let a = amax.max(fi + tail);
            if a.max(open) > self.sla {
                continue;
            }
            let mut h = base;
            for si in &succ_info {
                h += self.b.successor_delta(si, fi, fi0);
            }
            let c = cost + o.cost_at(s0);
            if !(c + h).is_finite() || c + h >= self.best_cost {
                continue;
            }
            self.finish[f] = fi;
            self.finish[n + f] = fi0;
            self.picks[f] = j;
            self.go(level + 1, c, a, h);
            if self.aborted {
                return;
            }
        }
    }
}

/// Branch and bound; `incumbent` (picks and cost of a known feasible plan) may seed the cost cut.
pub fn search(
    input: &PlanInput,
    t: &Tables,
    b: &Bounds,
    incumbent: Option<(Vec<usize>, f64)>,
    limit: u64,
) -> Option<ExactResult> {
    let n = input.dag.len();
    let (best, best_cost) = match incumbent {
        // Strictly better plans only, so a tie keeps the incumbent.
        Some((p, c)) => (Some(p), c),
        None => (None, f64::INFINITY),
    };
    let mut dfs = Dfs {
        input,
        t,
        b,
        sla: input.sla_s * (1.0 + SLA_EPS),
        finish: vec![0.0; 2 * n],
        picks: vec![0; n],
        best_cost,
        best,
        expanded: 0,
        limit,
        aborted: false,
    };
    let h0 = b.h_root(input);
    dfs.go(0, 0.0, 0.0, h0);
    let proven = !dfs.aborted;
    let expanded = dfs.expanded;
    let cost = dfs.best_cost;
    dfs.best.map(|picks| ExactResult {
        picks,
        cost,
        expanded,
        proven,
    })
}
