//! Per-function option tables, built once per plan call: every (hardware × batch × replicas × policy)
//! the space allows, reduced to its Pareto set (an option worse or equal in cost, in added latency and in
//! readiness than another is dropped; the drop is exact because a function's finish time and cost are
//! monotone in those numbers).
use crate::model::{self, Behaviour, Pol, min_replicas, prewarm_lower_offset, service};
use crate::plan::{Choice, ColdStart, PlanInput, PrewarmMode, SearchSpace};

/// One option of one function, as the search sees it: `finish(s) = max(s + alpha, beta)`,
/// `cost(s) = cost + idle_rate · max(0, s − ready)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Opt {
    pub choice: Choice,
    pub cost: f64,
    pub alpha: f64,
    pub beta: f64,
    pub ready: f64,
    pub idle_rate: f64,
    /// Initialisation estimate on this hardware (to place a pre-warm).
    pub init_est: f64,
}

impl Opt {
    #[inline]
    pub fn finish(&self, s: f64) -> f64 {
        (s + self.alpha).max(self.beta)
    }
    #[inline]
    pub fn cost_at(&self, s: f64) -> f64 {
        if self.idle_rate > 0.0 { self.cost + self.idle_rate * (s - self.ready).max(0.0) } else { self.cost }
    }

    fn dominates(&self, o: &Opt) -> bool {
        const EPS: f64 = 1e-12;
        self.cost <= o.cost + EPS
            && self.alpha <= o.alpha + EPS
            && self.beta <= o.beta + EPS
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
    /// Per node, the option with the smallest (alpha, beta): the fastest.
    pub fastest: Vec<usize>,
    /// Options enumerated before the Pareto reduction (for reporting).
    pub enumerated: usize,
}

fn to_opt(choice: Choice, b: Behaviour, init_est: f64) -> Opt {
    let alpha = b.delay + b.service;
    Opt {
        choice,
        cost: b.cost_h,
        alpha,
        beta: (b.ready + b.service).max(alpha),
        ready: b.ready,
        idle_rate: b.idle_rate_h,
        init_est,
    }
}

/// Builds the tables for `space` (which may be narrower than `input.space`, e.g. for the CPU-only variant).
pub fn build(input: &PlanInput, space: &SearchSpace) -> Tables {
    let n = input.dag.len();
    let m = input.load.burst_size();
    let mut tables = Tables {
        opts: Vec::with_capacity(n),
        min_cost: Vec::with_capacity(n),
        min_alpha: Vec::with_capacity(n),
        min_beta: Vec::with_capacity(n),
        fastest: Vec::with_capacity(n),
        enumerated: 0,
    };
    let mut batches = space.batches.clone();
    batches.sort_unstable();
    let load = &input.load;
    let warm = load.warm_window(input.params.sla_quantile);
    let warm_pol = Pol::KeepAlive { p_cold: load.p_gap_exceeds(warm), idle: load.expected_idle(warm) };
    let mut all: Vec<Opt> = Vec::with_capacity(512);
    for node in 0..n {
        all.clear();
        let p = &input.profiles[node];
        for hw in space.hardware.all() {
            let init = p.init(hw);
            let init_est = init.estimate(input.params.init_std_factor);
            let break_even = (init.mean_s < warm || !space.policies.keep_alive_warm).then(|| {
                (init.mean_s, Pol::KeepAlive { p_cold: load.p_gap_exceeds(init.mean_s), idle: load.expected_idle(init.mean_s) })
            });
            let prewarm_offset = prewarm_lower_offset(load).max(-init_est);
            let mut last_b = 0;
            for &batch in &batches {
                let svc = service(p, hw, batch, m);
                if svc.b == last_b {
                    continue; // same effective batch as a smaller cap
                }
                last_b = svc.b;
                let n_min = min_replicas(svc.busy, load, input.params.util_cap);
                let n_spread = n_min.max(svc.calls);
                let replica_opts: &[u32] =
                    if space.spread_replicas && n_spread != n_min { &[n_min, n_spread] } else { &[n_min] };
                for &replicas in replica_opts {
                    let pieces = model::pieces(input, node, hw, svc.b, replicas);
                    let mut push = |policy: ColdStart, pol: Pol, dag_aware_prewarm: bool| {
                        let choice = Choice { hardware: hw, batch: svc.b, replicas, policy };
                        let mut b = model::core(&pieces, pol);
                        if dag_aware_prewarm {
                            // Placed to be ready exactly when needed (search::materialise): no idle wait.
                            b.idle_rate_h = 0.0;
                        }
                        all.push(to_opt(choice, b, init_est));
                    };
                    if space.policies.always_on {
                        push(ColdStart::AlwaysOn, Pol::AlwaysOn, false);
                    }
                    if space.policies.keep_alive_warm {
                        push(ColdStart::KeepAlive { seconds: warm }, warm_pol, false);
                    }
                    if let (true, Some((t, pol))) = (space.policies.keep_alive_break_even, break_even) {
                        push(ColdStart::KeepAlive { seconds: t }, pol, false);
                    }
                    if space.policies.pre_warm {
                        // The placeholder offset gives the earliest readiness.
                        push(
                            ColdStart::PreWarm { offset_s: prewarm_offset },
                            Pol::PreWarm { offset: prewarm_offset },
                            space.prewarm == PrewarmMode::DagAware,
                        );
                    }
                }
            }
        }
        tables.enumerated += all.len();
        all.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.alpha.total_cmp(&b.alpha)).then(a.beta.total_cmp(&b.beta)));
        let mut kept: Vec<Opt> = Vec::with_capacity(32);
        for o in &all {
            if !kept.iter().any(|k| k.dominates(o)) {
                kept.push(*o);
            }
        }
        let fastest = (0..kept.len())
            .min_by(|&a, &b| {
                kept[a].beta.total_cmp(&kept[b].beta).then(kept[a].alpha.total_cmp(&kept[b].alpha))
            })
            .unwrap_or(0);
        tables.min_cost.push(kept.iter().map(|o| o.cost).fold(f64::INFINITY, f64::min));
        tables.min_alpha.push(kept.iter().map(|o| o.alpha).fold(f64::INFINITY, f64::min));
        tables.min_beta.push(kept.iter().map(|o| o.beta).fold(f64::INFINITY, f64::min));
        tables.fastest.push(fastest);
        tables.opts.push(kept);
    }
    tables
}
