//! Plans beyond the co-optimiser's: every plan of a small DAG that no cheaper plan requesting no
//! more beats (the exact polish of the menus), and a DAG's leanest plan (for degraded DAGs).
use super::{Cand, DagCtx, Env, candidate};
use crate::capacity::{peak_replicas, timeline};
use crate::hardware::Hardware;
use crate::options::{self, Opt};
use crate::plan::{ColdStart, SearchStats};
use crate::search;

/// The resource-aware option tables of `ctx` (every option that requests less kept), unpriced, its
/// pinned functions fixed.
fn resource_tables(ctx: &DagCtx, env: &Env) -> options::Tables {
    let mut t = (*env.tables(&ctx.input, true)).clone();
    for p in &ctx.pins {
        t.opts[p.node] = vec![p.opt];
    }
    t
}

/// An enumerated plan: cost, CPU cores and GPU shares per replica (largest first), picks.
type Found = (f64, Vec<u32>, Vec<u32>, Vec<usize>);

/// Most plans [`enumerate`] evaluates per DAG.
const ENUMERATE_BUDGET: usize = 50_000;

/// Every SLA-meeting plan of `ctx` over its resource-aware option tables that no cheaper plan
/// requesting no more (replica by replica) beats; `None` when there are more than
/// [`ENUMERATE_BUDGET`] combinations.
pub(super) fn enumerate(ctx: &DagCtx, env: &Env) -> Option<Vec<Cand>> {
    let input = &ctx.input;
    let t = resource_tables(ctx, env);
    let combos = t
        .opts
        .iter()
        .try_fold(1usize, |a, o| a.checked_mul(o.len()))?;
    if combos == 0 || combos > ENUMERATE_BUDGET {
        return None;
    }
    let n = input.dag.len();
    let sla = input.sla_s * (1.0 + search::SLA_EPS);
    let mut picks = vec![0usize; n];
    let mut finish = vec![0.0; 2 * n];
    // (cost, CPU cores and GPU shares per replica, largest first, picks)
    let mut found: Vec<Found> = Vec::new();
    let pinned = |f: usize| ctx.pins.iter().any(|p| p.node == f);
    let mut spans = Vec::with_capacity(n);
    'all: loop {
        let (c, l) = search::quick_eval(input, &t, &picks, &mut finish);
        if l <= sla {
            spans.clear();
            for (f, &j) in picks.iter().enumerate() {
                if pinned(f) {
                    continue;
                }
                let o = &t.opts[f][j];
                let s0 = search::starts(input, f, &finish).0;
                let placed = search::place(o, s0, input.space.prewarm, input);
                spans.push(timeline::span(input, f, &placed, s0, finish[n + f]));
            }
            let (cpu, gpu) = timeline::envelope(&spans);
            let sizes = |v: Vec<(u32, usize)>| v.into_iter().map(|x| x.0).collect();
            found.push((c, sizes(cpu), sizes(gpu), picks.clone()));
        }
        for (p, o) in picks.iter_mut().zip(&t.opts) {
            *p += 1;
            if *p < o.len() {
                continue 'all;
            }
            *p = 0;
        }
        break;
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let within = |x: &[u32], y: &[u32]| x.len() <= y.len() && x.iter().zip(y).all(|(a, b)| a <= b);
    let mut kept: Vec<&Found> = Vec::new();
    for f in &found {
        if !kept
            .iter()
            .any(|k| within(&k.1, &f.1) && within(&k.2, &f.2))
        {
            kept.push(f);
        }
    }
    Some(
        kept.into_iter()
            .map(|k| candidate(ctx, &t, &k.3, SearchStats::default()))
            .collect(),
    )
}

/// The plan of `ctx` that holds the least, whatever its latency: per function the option with the
/// smallest share of the cluster per replica, then the fewest replicas at peak, then the shortest
/// hold (released right after use, pre-warmed, a short keep-alive, always up), then the cheapest.
pub(crate) fn lean(ctx: &DagCtx, env: &Env) -> Option<Cand> {
    let cap = env.cap;
    let input = &ctx.input;
    let t = resource_tables(ctx, env);
    let (cpu, gpu) = cap.totals();
    let m = input.load.burst_size();
    let key = |o: &Opt| {
        let share = match o.choice.hardware {
            Hardware::Cpu { cores } => f64::from(cores) * 1000.0 / cpu.max(1) as f64,
            Hardware::Gpu { share_pct } => f64::from(share_pct) / f64::from(gpu.max(1)),
        };
        let hold = if timeline::held_always(&o.choice, &input.load) {
            f64::INFINITY
        } else {
            match o.choice.policy {
                ColdStart::KeepAlive { seconds } if seconds <= 0.0 => 0.0,
                ColdStart::PreWarm { .. } => 0.5,
                ColdStart::KeepAlive { seconds } => 1.0 + seconds,
                ColdStart::AlwaysOn => f64::INFINITY,
            }
        };
        (share, peak_replicas(&o.choice, m), hold, o.cost)
    };
    let picks: Vec<usize> = t
        .opts
        .iter()
        .map(|opts| {
            (0..opts.len()).min_by(|&a, &b| {
                let (x, y) = (key(&opts[a]), key(&opts[b]));
                x.0.total_cmp(&y.0)
                    .then(x.1.cmp(&y.1))
                    .then(x.2.total_cmp(&y.2))
                    .then(x.3.total_cmp(&y.3))
            })
        })
        .collect::<Option<_>>()?;
    Some(candidate(ctx, &t, &picks, SearchStats::default()))
}
