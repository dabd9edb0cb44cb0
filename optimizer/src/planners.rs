//! The planners built on the search: the co-optimiser (`smiless`), the exhaustive optimum (`opt`) and the
//! two SMIless ablations of the paper, SMIless-Homo (CPU only) and SMIless-No-DAG (every function
//! pre-warmed as if it were the entry, ignoring its DAG position).
use crate::options::{self, Tables};
use crate::plan::{
    Plan, PlanError, PlanInput, Policy, PrewarmMode, SearchSpace, SearchStats, auto_beam_width,
};
use crate::search::{self, Bounds, beam, exact, lagrange};

/// The co-optimiser and its ablations.
#[derive(Clone, Copy, Debug)]
pub struct CoOptimiser {
    name: &'static str,
    cpu_only: bool,
    prewarm: PrewarmMode,
}

impl CoOptimiser {
    /// SMIless: the full space.
    pub const SMILESS: CoOptimiser = CoOptimiser {
        name: "smiless",
        cpu_only: false,
        prewarm: PrewarmMode::DagAware,
    };
    /// SMIless-Homo: CPU only.
    pub const HOMO: CoOptimiser = CoOptimiser {
        name: "homo",
        cpu_only: true,
        prewarm: PrewarmMode::DagAware,
    };
    /// SMIless-No-DAG: pre-warm ignores DAG position.
    pub const NO_DAG: CoOptimiser = CoOptimiser {
        name: "no-dag",
        cpu_only: false,
        prewarm: PrewarmMode::AtArrival,
    };

    fn space(&self, input: &PlanInput) -> SearchSpace {
        let mut space = input.space.clone();
        if self.cpu_only {
            space.hardware = space.hardware.cpu_only();
        }
        space.prewarm = self.prewarm;
        space
    }
}

fn validate(input: &PlanInput) -> Result<(), PlanError> {
    if input.profiles.len() != input.dag.len() {
        return Err(PlanError::InvalidInput(format!(
            "{} profiles for {} functions",
            input.profiles.len(),
            input.dag.len()
        )));
    }
    if input.space.batches.is_empty() || input.space.batches.contains(&0) {
        return Err(PlanError::InvalidInput(
            "batch sizes must be non-empty and positive".into(),
        ));
    }
    if input.space.hardware.all().next().is_none() {
        return Err(PlanError::InvalidInput("no hardware to choose from".into()));
    }
    Ok(())
}

/// The co-optimiser's candidate search: the top-K beam, one-swap local search, and the Lagrangian
/// candidate; the cheapest plan found, with the number of partial plans the beam evaluated.
fn candidates(
    input: &PlanInput,
    t: &Tables,
    b: &Bounds,
) -> Result<(Vec<usize>, f64, u64), PlanError> {
    let k = if input.beam_width == 0 {
        auto_beam_width(input.dag.len())
    } else {
        input.beam_width
    };
    let r = beam::search(input, t, b, k).ok_or(PlanError::Infeasible {
        fastest_s: f64::NAN,
        sla_s: input.sla_s,
    })?;
    let mut picks = r.picks;
    let mut cost = search::improve(input, t, &mut picks);
    if input.lagrange_iters > 0
        && let Some((p, c)) = lagrange::search(input, t, input.lagrange_iters)
        && c < cost
    {
        picks = p;
        cost = c;
    }
    if input.lagrange_iters > 0 {
        cost = lagrange::upgrade_and_improve(input, t, &mut picks, cost);
        cost = lagrange::downgrade_and_repair(input, t, &mut picks, cost, 4);
    }
    Ok((picks, cost, r.expanded))
}

impl Policy for CoOptimiser {
    fn name(&self) -> &'static str {
        self.name
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        validate(input)?;
        let space = self.space(input);
        if space.hardware.all().next().is_none() {
            return Err(PlanError::InvalidInput(format!(
                "{}: no hardware left in its space",
                self.name
            )));
        }
        let t = options::build(input, &space);
        let (picks, stats) = search_tables(input, &t)?;
        Ok(search::materialise(
            input,
            &t,
            &picks,
            space.prewarm,
            self.name,
            stats,
        ))
    }
}

/// The co-optimiser's search on prepared option tables (the capacity planner's tables carry a price
/// on what an option requests): candidates, then the budgeted branch-and-bound polish. The picks (one
/// option index per node) and the statistics; an error when no plan meets the SLA.
pub(crate) fn search_tables(
    input: &PlanInput,
    t: &Tables,
) -> Result<(Vec<usize>, SearchStats), PlanError> {
    search::check_feasible(input, t)?;
    let b = Bounds::new(input, t);
    let (mut picks, cost, expanded) = candidates(input, t, &b)?;
    let mut stats = SearchStats {
        expanded,
        proven_optimal: false,
    };
    if input.polish_nodes > 0 {
        // A budgeted branch and bound seeded with the best candidate: it can only find cheaper plans,
        // and when it closes the tree within budget the plan is proven optimal.
        if let Some(e) = exact::search(
            input,
            t,
            &b,
            Some((picks.clone(), cost)),
            input.polish_nodes,
        ) {
            picks = e.picks;
            stats.expanded += e.expanded;
            stats.proven_optimal = e.proven;
        }
    }
    Ok((picks, stats))
}

/// The latency of the fastest plan in the input's space (the SLA below which nothing is feasible).
pub fn fastest_latency(input: &PlanInput) -> f64 {
    let t = options::build(input, &input.space);
    let mut finish = vec![0.0; 2 * input.dag.len()];
    search::quick_eval(input, &t, &t.fastest, &mut finish).1
}

/// The exhaustive optimum over the co-optimiser's space (branch and bound, exact).
#[derive(Clone, Copy, Debug)]
pub struct Exhaustive {
    /// Seed the cost cut with the co-optimiser's candidate plan (faster; still exact: only strictly
    /// cheaper plans replace it). Tests turn it off to keep the optimum independent of the co-optimiser.
    pub seed_with_beam: bool,
}

impl Default for Exhaustive {
    fn default() -> Self {
        Exhaustive {
            seed_with_beam: true,
        }
    }
}

impl Exhaustive {
    /// Runs the search over `space` and returns the plan.
    pub fn plan_in(
        &self,
        input: &PlanInput,
        space: &SearchSpace,
        name: &str,
    ) -> Result<Plan, PlanError> {
        validate(input)?;
        let t = options::build(input, space);
        search::check_feasible(input, &t)?;
        let b = Bounds::new(input, &t);
        let seed = if self.seed_with_beam {
            candidates(input, &t, &b).ok().map(|(p, c, _)| (p, c))
        } else {
            None
        };
        let (picks, stats) = match exact::search(input, &t, &b, seed, input.exact_node_limit) {
            Some(r) => (
                r.picks,
                SearchStats {
                    expanded: r.expanded,
                    proven_optimal: r.proven,
                },
            ),
            // Only when the budget ran out before any plan was complete: the fastest plan is feasible.
            None => (
                t.fastest.clone(),
                SearchStats {
                    expanded: input.exact_node_limit,
                    proven_optimal: false,
                },
            ),
        };
        Ok(search::materialise(
            input,
            &t,
            &picks,
            space.prewarm,
            name,
            stats,
        ))
    }
}

impl Policy for Exhaustive {
    fn name(&self) -> &'static str {
        "opt"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        self.plan_in(input, &input.space, "opt")
    }
}
