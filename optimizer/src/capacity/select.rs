//! The search under capacity for a set of DAGs that must all meet their SLAs.
//!
//! 1. Each DAG is planned alone by the co-optimiser; if the plans' requests fit, that is the answer
//!    (the capacity does not bind; optimal as far as each DAG's plan is).
//! 2. Otherwise the binding resource is priced (a Lagrangian relaxation of the capacity): each option
//!    pays `t ×` its requested cores or GPU share at the list price, on a ladder of growing `t`, over
//!    option tables that keep every option that requests less ([`options::build_for_capacity`]). Every
//!    DAG plan met on the ladder joins that DAG's menu.
//! 3. One plan per DAG is chosen from the menus: the cheapest combination (true cost, without the
//!    price on capacity) whose requests fit, by a budgeted depth-first search in cost order.
//!
//! Every search is remembered ([`memo`]); above 16 functions in all the searches are quick ones and
//! the ladder, the selection and the degraded DAGs' steps shorter (docs/capacity.md).
mod memo;
mod menus;

pub(crate) use memo::{Env, solve};
use memo::{key, solve_with};

use menus::enumerate;
pub(crate) use menus::lean;

use super::{Capacity, Replica, timeline};
use crate::hardware::Hardware;
use crate::model::{self, Behaviour};
use crate::options::{self, Opt};
use crate::plan::{Choice, Plan, PlanInput, SearchStats};
use crate::planners::search_tables;
use crate::search;

/// A function whose option is fixed from outside the DAG (a shared function): the option as this
/// DAG's search sees it (cost 0: the joint planner counts it once) and its behaviour.
#[derive(Clone, Debug)]
pub(crate) struct Pin {
    pub node: usize,
    pub opt: Opt,
    pub behaviour: Behaviour,
    /// The part of the shared function's cost this DAG's plan shows ($/h).
    pub cost_share: f64,
}

/// One DAG to plan: its input (the hardware space already cut to what fits a node) and its pins.
#[derive(Clone, Debug)]
pub(crate) struct DagCtx {
    pub input: PlanInput,
    pub pins: Vec<Pin>,
}

/// A candidate plan of one DAG.
#[derive(Clone, Debug)]
pub(crate) struct Cand {
    pub plan: Plan,
    /// True cost without the pinned functions ($/h).
    pub own_cost: f64,
    /// Requests of the functions that are not pinned.
    pub replicas: Vec<Replica>,
}

/// The price on requests: `(t_cpu, t_gpu)` times the list price of a core and of a whole GPU.
pub(crate) type Penalty = (f64, f64);

/// Plans `ctx` with `pen` on its requests; `None` when no plan meets its SLA within the space.
pub(super) fn solve_uncached(ctx: &DagCtx, pen: Penalty, env: &Env) -> Option<Cand> {
    let input = &ctx.input;
    let cap = env.cap;
    let (cpu_total, gpu_total) = cap.totals();
    let prices = input.prices;
    let penalty = |c: &Choice, m: u32| -> f64 {
        let n = f64::from(super::peak_replicas(c, m));
        let (size, total, price, t) = match c.hardware {
            Hardware::Cpu { cores } => (
                f64::from(cores),
                cpu_total as f64 / 1000.0,
                prices.cpu_core_hour,
                pen.0,
            ),
            Hardware::Gpu { share_pct } => (
                f64::from(share_pct) / 100.0,
                f64::from(gpu_total) / 100.0,
                prices.gpu_hour,
                pen.1,
            ),
        };
        if n * size > total + 1e-9 {
            f64::INFINITY // more than the whole cluster has
        } else {
            t * price * n * size
        }
    };
    let priced = pen != (0.0, 0.0);
    let mut t = if priced {
        options::with_penalty(&env.tables(input, true), input.load.burst_size(), &penalty)
    } else {
        (*env.tables(input, false)).clone()
    };
    for p in &ctx.pins {
        t.opts[p.node] = vec![p.opt];
        t.min_cost[p.node] = p.opt.cost;
        t.min_alpha[p.node] = p.opt.alpha;
        t.min_beta[p.node] = p.opt.beta;
        t.fastest[p.node] = 0;
    }
    if t.opts.iter().any(Vec::is_empty) {
        return None;
    }
    let (picks, stats) = search_tables(input, &t).ok()?;
    Some(candidate(ctx, &t, &picks, stats))
}

/// The plan of `picks`, evaluated without the price on capacity and with the pinned behaviours.
fn candidate(ctx: &DagCtx, t: &options::Tables, picks: &[usize], stats: SearchStats) -> Cand {
    let input = &ctx.input;
    let mut plan = search::materialise(input, t, picks, input.space.prewarm, "smiless", stats);
    if !ctx.pins.is_empty() {
        let mut bs: Vec<Behaviour> = plan
            .functions
            .iter()
            .enumerate()
            .map(|(f, fp)| model::behaviour(input, f, &fp.choice))
            .collect();
        for p in &ctx.pins {
            bs[p.node] = p.behaviour;
        }
        let ev = model::evaluate_behaviours(input, &bs);
        for (f, fp) in plan.functions.iter_mut().enumerate() {
            fp.start_s = ev.start[f];
            fp.finish_s = ev.finish[f];
            fp.cost_per_hour = ev.cost[f];
        }
        for p in &ctx.pins {
            plan.functions[p.node].cost_per_hour = p.cost_share;
        }
        plan.predicted_latency_s = ev.latency_s;
        plan.cost_per_hour = plan.functions.iter().map(|f| f.cost_per_hour).sum();
        plan.meets_sla = ev.latency_s <= input.sla_s * (1.0 + search::SLA_EPS);
    }
    let pinned = |f: usize| ctx.pins.iter().any(|p| p.node == f);
    let own_cost = plan
        .functions
        .iter()
        .enumerate()
        .filter(|(f, _)| !pinned(*f))
        .map(|(_, fp)| fp.cost_per_hour)
        .fold(0.0, |a, b| a + b); // +0 when every function is pinned
    let replicas = timeline::plan_peak(input, &plan, |f| !pinned(f));
    Cand {
        plan,
        own_cost,
        replicas,
    }
}

/// The ladder of `t` (step 2).
const LADDER: [f64; 9] = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0];
/// The ladder of a large instance.
const FAST_LADDER: [f64; 4] = [0.1, 1.0, 10.0, 1000.0];

/// Most combinations the menu selection examines.
const SELECT_BUDGET: u64 = 200_000;
/// The same for a large instance.
const FAST_SELECT_BUDGET: u64 = 500;

/// The outcome of [`solve_set`].
pub(crate) enum SetOutcome {
    /// One plan per DAG, fitting with the reserved replicas; `proven`: no price on capacity was needed
    /// and every DAG plan is proven optimal.
    Fit { cands: Vec<Cand>, proven: bool },
    /// No combination found that fits; per DAG its least-requesting plan met (for the degradation
    /// rule), `None` where a DAG has no plan at all in its space.
    NoFit { leanest: Vec<Option<Cand>> },
}

/// Plans `ctxs` together so that their requests and `reserved` fit `cap` (module doc).
pub(crate) fn solve_set(ctxs: &[DagCtx], reserved: &[Replica], env: &Env) -> SetOutcome {
    let cap = env.cap;
    let free: Vec<Option<Cand>> = ctxs.iter().map(|c| solve(c, (0.0, 0.0), env)).collect();
    if free.iter().any(Option::is_none) {
        return SetOutcome::NoFit { leanest: free };
    }
    let free: Vec<Cand> = free.into_iter().flatten().collect();
    let all = |cands: &[&Cand]| -> Vec<Replica> {
        let mut r = reserved.to_vec();
        cands
            .iter()
            .for_each(|c| r.extend(c.replicas.iter().cloned()));
        r
    };
    let packing = cap.pack(&all(&free.iter().collect::<Vec<_>>()));
    if packing.fits() && env.fast {
        // The quick plans fit: the capacity does not bind, so plan each DAG in full.
        let full: Vec<Option<Cand>> = ctxs
            .iter()
            .map(|c| solve_with(c, (0.0, 0.0), env, true))
            .collect();
        let full: Vec<&Cand> = full.iter().flatten().collect();
        if full.len() == ctxs.len() && cap.pack(&all(&full)).fits() {
            let proven = full.iter().all(|c| c.plan.stats.proven_optimal);
            return SetOutcome::Fit {
                cands: full.into_iter().cloned().collect(),
                proven,
            };
        }
    }
    if packing.fits() {
        let proven = free.iter().all(|c| c.plan.stats.proven_optimal);
        return SetOutcome::Fit {
            cands: free,
            proven,
        };
    }
    let binds = |p: &super::Packing, kind_gpu: bool| {
        p.unplaced
            .iter()
            .any(|r| matches!(r.hardware, Hardware::Gpu { .. }) == kind_gpu)
    };
    let (mut cpu, mut gpu) = (binds(&packing, false), binds(&packing, true));
    let mut menus: Vec<Vec<Cand>> = free.into_iter().map(|c| vec![c]).collect();
    let mut fits_seen = 0;
    for &t in env.ladder() {
        let pen = (if cpu { t } else { 0.0 }, if gpu { t } else { 0.0 });
        let cands: Vec<Option<Cand>> = ctxs.iter().map(|c| solve(c, pen, env)).collect();
        let got: Vec<&Cand> = cands.iter().flatten().collect();
        if got.len() == ctxs.len() {
            let p = cap.pack(&all(&got));
            if p.fits() {
                fits_seen += 1;
            } else {
                cpu |= binds(&p, false);
                gpu |= binds(&p, true);
            }
        }
        for (menu, c) in menus.iter_mut().zip(cands) {
            if let Some(c) = c
                && !menu.iter().any(|m| same_plan(m, &c))
            {
                menu.push(c);
            }
        }
        if fits_seen >= 2 {
            break;
        }
    }
    // Greedy fills: the DAGs one at a time, each the cheapest plan on its own ladder that fits beside
    // those before it; largest requests first, then smallest first.
    let mut order: Vec<usize> = (0..ctxs.len()).collect();
    order.sort_by(|&a, &b| {
        demand(&menus[b][0].replicas, cap).total_cmp(&demand(&menus[a][0].replicas, cap))
    });
    for _ in 0..2 {
        let mut taken = reserved.to_vec();
        for &d in &order {
            let Some(c) = fit_one(&ctxs[d], &taken, env) else {
                break;
            };
            taken.extend(c.replicas.iter().cloned());
            if !menus[d].iter().any(|m| same_plan(m, &c)) {
                menus[d].push(c);
            }
        }
        order.reverse();
    }
    // Small enough: every plan of every DAG that no cheaper plan requesting no more beats.
    let complete: Vec<Option<Vec<Cand>>> = if env.fast {
        vec![None; ctxs.len()]
    } else {
        ctxs.iter()
            .map(|c| {
                let k = key(c, (0.0, 0.0), true);
                if let Some(e) = env.enumerated.borrow().get(&k) {
                    return e.clone();
                }
                let e = enumerate(c, env);
                env.enumerated.borrow_mut().insert(k, e.clone());
                e
            })
            .collect()
    };
    let exact = complete.iter().all(Option::is_some);
    for (menu, all) in menus.iter_mut().zip(complete) {
        for c in all.into_iter().flatten() {
            if !menu.iter().any(|m| same_plan(m, &c)) {
                menu.push(c);
            }
        }
    }
    let budget = if env.fast {
        FAST_SELECT_BUDGET
    } else {
        SELECT_BUDGET
    };
    match select(&menus, reserved, cap, budget) {
        Some(pick) => SetOutcome::Fit {
            cands: pick
                .iter()
                .zip(&menus)
                .map(|(&i, m)| m[i].clone())
                .collect(),
            proven: exact,
        },
        None => SetOutcome::NoFit {
            leanest: menus
                .into_iter()
                .map(|m| {
                    m.into_iter().min_by(|a, b| {
                        demand(&a.replicas, cap).total_cmp(&demand(&b.replicas, cap))
                    })
                })
                .collect(),
        },
    }
}

/// The cheapest plan of `ctx` met on its ladder whose requests fit beside `taken`.
fn fit_one(ctx: &DagCtx, taken: &[Replica], env: &Env) -> Option<Cand> {
    let cap = env.cap;
    let fits = |c: &Cand| {
        let mut all = taken.to_vec();
        all.extend(c.replicas.iter().cloned());
        cap.pack(&all)
    };
    let c = solve(ctx, (0.0, 0.0), env)?;
    let p = fits(&c);
    if p.fits() {
        return Some(c);
    }
    let gpu_short = p
        .unplaced
        .iter()
        .any(|r| matches!(r.hardware, Hardware::Gpu { .. }));
    let cpu_short = p.unplaced.len() > usize::from(gpu_short) || !gpu_short;
    let mut best: Option<Cand> = None;
    for &t in env.ladder() {
        for pen in [
            (
                if cpu_short { t } else { 0.0 },
                if gpu_short { t } else { 0.0 },
            ),
            (t, t),
        ] {
            if let Some(c) = solve(ctx, pen, env)
                && fits(&c).fits()
                && best.as_ref().is_none_or(|b| c.own_cost < b.own_cost)
            {
                best = Some(c);
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

fn same_plan(a: &Cand, b: &Cand) -> bool {
    a.plan
        .functions
        .iter()
        .zip(&b.plan.functions)
        .all(|(x, y)| x.choice == y.choice)
}

/// Requests as a fraction of the cluster: cores over all cores plus GPU share over all GPUs.
pub(crate) fn demand(replicas: &[Replica], cap: &Capacity) -> f64 {
    let (cpu, gpu) = cap.totals();
    replicas
        .iter()
        .map(|r| match r.hardware {
            Hardware::Cpu { cores } => f64::from(cores) * 1000.0 / (cpu.max(1) as f64),
            Hardware::Gpu { share_pct } => f64::from(share_pct) / f64::from(gpu.max(1)),
        })
        .fold(0.0, |a, b| a + b)
}

/// The cheapest choice of one menu entry per DAG whose requests, with `reserved`, fit (step 3).
fn select(
    menus: &[Vec<Cand>],
    reserved: &[Replica],
    cap: &Capacity,
    budget: u64,
) -> Option<Vec<usize>> {
    // Per menu, entries in cost order.
    let order: Vec<Vec<usize>> = menus
        .iter()
        .map(|m| {
            let mut o: Vec<usize> = (0..m.len()).collect();
            o.sort_by(|&a, &b| m[a].own_cost.total_cmp(&m[b].own_cost));
            o
        })
        .collect();
    let min_rest: Vec<f64> = (0..=menus.len())
        .map(|d| {
            menus[d..]
                .iter()
                .map(|m| m.iter().map(|c| c.own_cost).fold(f64::INFINITY, f64::min))
                .sum()
        })
        .collect();
    struct Dfs<'a> {
        menus: &'a [Vec<Cand>],
        order: &'a [Vec<usize>],
        min_rest: &'a [f64],
        cap: &'a Capacity,
        stack: Vec<Replica>,
        pick: Vec<usize>,
        best: Option<(f64, Vec<usize>)>,
        budget: u64,
    }
    impl Dfs<'_> {
        fn go(&mut self, d: usize, cost: f64) {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            if d == self.menus.len() {
                if self.cap.pack(&self.stack).fits() {
                    self.best = Some((cost, self.pick.clone()));
                }
                return;
            }
            for &i in &self.order[d] {
                let c = &self.menus[d][i];
                let bound = cost + c.own_cost + self.min_rest[d + 1];
                if self.best.as_ref().is_some_and(|b| bound >= b.0 - 1e-12) {
                    break;
                }
                let len = self.stack.len();
                self.stack.extend(c.replicas.iter().cloned());
                self.pick.push(i);
                self.go(d + 1, cost + c.own_cost);
                self.pick.pop();
                self.stack.truncate(len);
            }
        }
    }
    let mut dfs = Dfs {
        menus,
        order: &order,
        min_rest: &min_rest,
        cap,
        stack: reserved.to_vec(),
        pick: Vec::new(),
        best: None,
        budget,
    };
    dfs.go(0, 0.0);
    dfs.best.map(|(_, p)| p)
}
