//! The option tables for capacity-aware planning (`crate::capacity`): a price on what an option
//! requests, and a Pareto reduction that keeps every option that requests less.
use super::{Opt, Tables, build_with, fastest_of};
use crate::hardware::Hardware;
use crate::hold::{holds_no_longer, peak_replicas};
use crate::load::Load;
use crate::plan::{Choice, PlanInput, SearchSpace};

/// How [`build_for_capacity`] weighs and keeps options when the cluster's capacity binds.
pub struct CapacityTerms<'a> {
    /// Added to an option's cost ($/h) for what it requests (`capacity::requests`); an infinite
    /// penalty drops the option (it cannot be placed).
    pub penalty: &'a dyn Fn(&Choice, u32) -> f64,
    /// An option dominates another only if it also requests no more: the same device kind, no larger a
    /// replica, no more replicas at peak (so a cheap but large option does not hide a small one).
    pub resource_aware: bool,
}

impl CapacityTerms<'_> {
    pub(super) const NONE: CapacityTerms<'static> = CapacityTerms {
        penalty: &|_, _| 0.0,
        resource_aware: false,
    };
}

/// [`build`] for capacity-aware planning (`crate::capacity`): each option's cost carries `cap.penalty`
/// (the search then minimises cost plus the price put on capacity; the plan's own cost is evaluated
/// without it), and with `cap.resource_aware` the Pareto reduction keeps an option whenever every option
/// that beats it requests more. The group pruning is off then (it ignores requests).
pub fn build_for_capacity(
    input: &PlanInput,
    space: &SearchSpace,
    cap: &CapacityTerms<'_>,
) -> Tables {
    build_with(input, space, !cap.resource_aware, cap)
}

/// Resource-aware tables `t` (built by [`build_for_capacity`] without a penalty) with `penalty` added
/// to every option's cost, the options it makes infinite dropped, each node's options re-sorted by
/// cost and its minima and fastest option recomputed. An option a priced build drops is beaten here
/// by one that requests no more (its penalty is no larger), so a search over these tables finds what
/// it finds over the priced build's; only the unpriced tables are built once per DAG.
pub fn with_penalty(t: &Tables, m: u32, penalty: &dyn Fn(&Choice, u32) -> f64) -> Tables {
    let mut out = Tables {
        opts: Vec::with_capacity(t.opts.len()),
        min_cost: Vec::with_capacity(t.opts.len()),
        min_alpha: t.min_alpha.clone(),
        min_beta: t.min_beta.clone(),
        fastest: Vec::with_capacity(t.opts.len()),
        enumerated: t.enumerated,
        sorted: t.sorted,
        sinks: t.sinks.clone(),
    };
    for (f, opts) in t.opts.iter().enumerate() {
        let mut kept: Vec<Opt> = opts
            .iter()
            .filter_map(|o| {
                let p = penalty(&o.choice, m);
                p.is_finite().then_some(Opt {
                    cost: o.cost + p,
                    ..*o
                })
            })
            .collect();
        kept.sort_by(|a, b| a.cost.total_cmp(&b.cost));
        let fastest = fastest_of(&kept);
        out.min_cost
            .push(kept.iter().map(|o| o.cost).fold(f64::INFINITY, f64::min));
        if kept.len() < opts.len() {
            out.min_alpha[f] = kept.iter().map(|o| o.alpha).fold(f64::INFINITY, f64::min);
            out.min_beta[f] = kept.iter().map(|o| o.beta).fold(f64::INFINITY, f64::min);
        }
        out.fastest.push(fastest);
        out.opts.push(kept);
    }
    out
}

/// Whether `a` requests no more than `b` (same device kind, no larger replica, no more at peak, held
/// no longer: see `hold::holds_no_longer`).
pub(super) fn requests_no_more(a: &Choice, b: &Choice, m: u32, load: &Load) -> bool {
    let size = |h: Hardware| match h {
        Hardware::Cpu { cores } => (0, cores),
        Hardware::Gpu { share_pct } => (1, share_pct),
    };
    let ((ka, sa), (kb, sb)) = (size(a.hardware), size(b.hardware));
    ka == kb
        && sa <= sb
        && peak_replicas(a, m) <= peak_replicas(b, m)
        && holds_no_longer(a, b, load)
}
