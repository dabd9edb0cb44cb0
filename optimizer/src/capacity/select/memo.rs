//! The searches done so far in one joint plan, remembered: a DAG searched again with the same SLA,
//! pinned shared functions and price gets the same answer (degradation rounds, greedy fills and the
//! ladder repeat them), and each DAG's unpriced option tables are built once.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{Cand, DagCtx, FAST_LADDER, LADDER, Penalty, solve_uncached};
use crate::capacity::Capacity;
use crate::options;
use crate::plan::PlanInput;

/// The polish budget of a large instance's quick searches.
const FAST_POLISH_NODES: u64 = 1_000;
/// The beam width of a large instance's quick searches.
const FAST_BEAM_WIDTH: usize = 16;

/// What identifies a DAG search: the DAG, its SLA, its pins and the price on requests.
type Key = (String, String, u64, Vec<(usize, String)>, u64, u64, bool);

/// The capacity, the effort and the searches done so far (a DAG searched again with the same SLA,
/// pins and price gets the same answer: degradation rounds, greedy fills and the ladder repeat them).
pub(crate) struct Env<'a> {
    pub cap: &'a Capacity,
    /// Large instances: priced searches without the polish and the Lagrangian candidate, a shorter
    /// ladder, no enumeration.
    pub fast: bool,
    pub(super) solved: RefCell<HashMap<Key, Option<Cand>>>,
    pub(super) enumerated: RefCell<HashMap<Key, Option<Vec<Cand>>>>,
    /// Per DAG and resource-awareness, its unpriced option tables (they do not depend on the SLA).
    pub(super) tables: RefCell<HashMap<(String, String, bool), Rc<options::Tables>>>,
}

impl<'a> Env<'a> {
    pub fn new(cap: &'a Capacity, fast: bool) -> Env<'a> {
        Env {
            cap,
            fast,
            solved: RefCell::default(),
            enumerated: RefCell::default(),
            tables: RefCell::default(),
        }
    }

    /// The unpriced option tables of `input` (resource-aware or not), built once.
    pub(super) fn tables(&self, input: &PlanInput, resource_aware: bool) -> Rc<options::Tables> {
        let k = (
            input.dag.namespace.clone(),
            input.dag.name.clone(),
            resource_aware,
        );
        if let Some(t) = self.tables.borrow().get(&k) {
            return t.clone();
        }
        let t = Rc::new(options::build_for_capacity(
            input,
            &input.space,
            &options::CapacityTerms {
                penalty: &|_, _| 0.0,
                resource_aware,
            },
        ));
        self.tables.borrow_mut().insert(k, t.clone());
        t
    }

    pub(super) fn ladder(&self) -> &'static [f64] {
        if self.fast { &FAST_LADDER } else { &LADDER }
    }
}

pub(super) fn key(ctx: &DagCtx, pen: Penalty, full: bool) -> Key {
    let d = &ctx.input.dag;
    (
        d.namespace.clone(),
        d.name.clone(),
        ctx.input.sla_s.to_bits(),
        ctx.pins
            .iter()
            .map(|p| (p.node, format!("{:?}", p.opt.choice)))
            .collect(),
        pen.0.to_bits(),
        pen.1.to_bits(),
        full,
    )
}

/// [`solve_uncached`], remembered in `env`; on a large instance with the quick settings.
pub(crate) fn solve(ctx: &DagCtx, pen: Penalty, env: &Env) -> Option<Cand> {
    solve_with(ctx, pen, env, !env.fast)
}

/// [`solve_uncached`], remembered in `env`: with the DAG's own search settings when `full`, else
/// with the quick ones (a narrower beam, a small polish, no Lagrangian candidate).
pub(super) fn solve_with(ctx: &DagCtx, pen: Penalty, env: &Env, full: bool) -> Option<Cand> {
    let k = key(ctx, pen, full);
    if let Some(c) = env.solved.borrow().get(&k) {
        return c.clone();
    }
    let c = if full {
        solve_uncached(ctx, pen, env)
    } else {
        let mut quick = ctx.clone();
        quick.input.polish_nodes = quick.input.polish_nodes.min(FAST_POLISH_NODES);
        quick.input.lagrange_iters = 0;
        quick.input.beam_width = FAST_BEAM_WIDTH;
        solve_uncached(&quick, pen, env)
    };
    env.solved.borrow_mut().insert(k, c.clone());
    c
}
