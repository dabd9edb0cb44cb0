//! The planner's input and output types and the [`Policy`] trait every planner implements (the
//! co-optimiser, the exhaustive optimum and the baselines), so the simulator can run any of them on the
//! same inputs.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::dag::Dag;
use crate::hardware::{Hardware, HardwareSpace};
use crate::load::Load;
use crate::prices::Prices;
use crate::profile::{Profile, ProfileError, ProfileSet};

/// What happens to a replica between bursts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ColdStart {
    /// Provisioned all the time.
    AlwaysOn,
    /// Kept warm for `seconds` after its last use, then released; the next use after that pays a full
    /// initialisation on demand.
    KeepAlive { seconds: f64 },
    /// Released after use and re-initialised `offset_s` seconds after the next DAG request arrives
    /// (negative: before it, only possible when arrivals are predicted exactly), so that it is ready when
    /// its predecessors finish.
    PreWarm { offset_s: f64 },
}

impl ColdStart {
    pub fn kind(&self) -> &'static str {
        match self {
            ColdStart::AlwaysOn => "always-on",
            ColdStart::KeepAlive { .. } => "keep-alive",
            ColdStart::PreWarm { .. } => "pre-warm",
        }
    }

    /// The keep-alive window or the pre-warm offset.
    pub fn seconds(&self) -> Option<f64> {
        match *self {
            ColdStart::AlwaysOn => None,
            ColdStart::KeepAlive { seconds } => Some(seconds),
            ColdStart::PreWarm { offset_s } => Some(offset_s),
        }
    }
}

/// One function's decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Choice {
    pub hardware: Hardware,
    /// Most requests one inference call serves.
    pub batch: u32,
    pub replicas: u32,
    pub policy: ColdStart,
}

/// Which cold-start policies a planner may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicySet {
    pub always_on: bool,
    /// Keep-alive for the shortest window that is warm for the SLA quantile of bursts.
    pub keep_alive_warm: bool,
    /// Keep-alive for the ski-rental break-even window (= the init time), cold more often.
    pub keep_alive_break_even: bool,
    pub pre_warm: bool,
}

impl PolicySet {
    pub const ALL: PolicySet = PolicySet {
        always_on: true,
        keep_alive_warm: true,
        keep_alive_break_even: true,
        pre_warm: true,
    };
}

/// Where a pre-warmed replica's initialisation is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrewarmMode {
    /// Ready exactly when its predecessors finish (SMIless's staggered pre-warm).
    DagAware,
    /// As early as possible after (or, with predicted arrivals, before) the DAG request arrives, as if
    /// every function were the entry (SMIless-No-DAG): ready early, then idle until needed.
    AtArrival,
}

/// The search space.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSpace {
    pub hardware: HardwareSpace,
    /// Batch caps to consider (default {1, 4, 16}); a function that declares a largest batch
    /// (`com.smiless.batch = N`) is never given more than N.
    pub batches: Vec<u32>,
    /// Only functions that declare batching (`com.smiless.batch`) get a batch cap above 1: what the live
    /// planner needs, since an undeclared function answers one request per call. Off (the default), the
    /// simulator and `smiless plan` explore batching for every function, as the paper does.
    pub batch_opt_in: bool,
    pub policies: PolicySet,
    pub prewarm: PrewarmMode,
    /// Consider both the fewest replicas the utilisation cap allows and one replica per call.
    pub spread_replicas: bool,
}

impl Default for SearchSpace {
    fn default() -> Self {
        SearchSpace {
            hardware: HardwareSpace::default(),
            batches: vec![1, 4, 16],
            batch_opt_in: false,
            policies: PolicySet::ALL,
            prewarm: PrewarmMode::DagAware,
            spread_replicas: true,
        }
    }
}

/// Model parameters (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelParams {
    /// Init time on the latency path is `mean + n·std`; the paper uses n = 3.
    pub init_std_factor: f64,
    /// The SLA must hold for this fraction of bursts: a keep-alive replica counts as warm when it is warm
    /// for at least this fraction.
    pub sla_quantile: f64,
    /// Highest busy fraction of a replica when sizing replicas.
    pub util_cap: f64,
    /// Seconds over which a hardware change's re-initialisation is amortised.
    pub horizon_s: f64,
    /// Add the queueing term to a function's latency: the wait, at the SLA quantile, of a burst that
    /// arrives while earlier bursts still hold the function's replicas (see `model::queue_wait`).
    /// Off, the model is the paper's (each burst finds its replicas free).
    pub queueing: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            init_std_factor: 3.0,
            sla_quantile: 0.99,
            util_cap: 0.8,
            horizon_s: 3600.0,
            queueing: true,
        }
    }
}

/// Everything a planner needs.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub dag: Dag,
    /// One profile per DAG node, in node order.
    pub profiles: Vec<Profile>,
    pub prices: Prices,
    pub sla_s: f64,
    pub load: Load,
    /// Rate (per second) bounding how often a burst follows the previous one closely: the forecast's
    /// lower gap tail as a hazard rate, `P(gap < x) ≤ 1 − e^{−rate·x}` over service-time scales. `None`:
    /// the exponential gap model's own `1 / interarrival`. Drives the queueing term.
    pub close_rate_per_s: Option<f64>,
    /// The hardware each function runs on now (a change costs a re-initialisation).
    pub current: BTreeMap<String, Hardware>,
    pub space: SearchSpace,
    pub params: ModelParams,
    /// K of the co-optimiser's top-K beam; 0 = automatic ([`auto_beam_width`]).
    pub beam_width: usize,
    /// How many rejected alternatives to report per function.
    pub alternatives: usize,
    /// Node budget of the exhaustive search (it reports whether it proved optimality).
    pub exact_node_limit: u64,
    /// Node budget of the co-optimiser's final branch-and-bound polish (0: beam and local search only);
    /// by DAG size by default ([`auto_polish_nodes`]).
    pub polish_nodes: u64,
    /// Subgradient iterations of the co-optimiser's Lagrangian candidate (0: off).
    pub lagrange_iters: usize,
}

/// The default K: automatic (see [`auto_beam_width`] and docs/planning.md for how it was chosen).
pub const DEFAULT_BEAM_WIDTH: usize = 0;

/// K by DAG size. Up to 8 functions the branch-and-bound polish closes the tree anyway, so a narrow beam
/// only has to be fast; from 9 to 32 functions a wider beam finds the optimum on long chains, where the
/// Pareto front of partial plans is long; above 32 the width is held at 16 to stay within milliseconds and
/// the Lagrangian candidate carries the quality.
pub fn auto_beam_width(functions: usize) -> usize {
    match functions {
        0..=8 => 32,
        9..=32 => 64,
        _ => 16,
    }
}
/// The default polish budget (partial plans) above [`SMALL_DAG`] functions.
pub const DEFAULT_POLISH_NODES: u64 = 20_000;

/// Up to this many functions the polish gets [`SMALL_DAG_POLISH_NODES`].
pub const SMALL_DAG: usize = 8;

/// The polish budget up to [`SMALL_DAG`] functions: enough to close the branch and bound on nearly every
/// such DAG. On 50 000 random ones of 1–8 functions (SLA 1–3× the fastest plan) it left 1 open, none off
/// the optimum; 200 000 left 4 open, worst +0.88 %; 20 000 left 119 open and 8 over 1 % (worst +12 %):
/// chains, at a loose SLA or a tight one under load, whose trees reach 10⁵–10⁶ partial plans. Most trees
/// close in a few thousand, so only those rare ones take longer (about 25 ms at the full budget).
pub const SMALL_DAG_POLISH_NODES: u64 = 1_000_000;

/// The polish budget by DAG size.
pub fn auto_polish_nodes(functions: usize) -> u64 {
    if functions <= SMALL_DAG {
        SMALL_DAG_POLISH_NODES
    } else {
        DEFAULT_POLISH_NODES
    }
}

impl PlanInput {
    /// Resolves each node's profile (its `com.smiless.profile`, else its own name) in `profiles`.
    pub fn new(
        dag: Dag,
        profiles: &ProfileSet,
        sla_s: f64,
        load: Load,
    ) -> Result<PlanInput, PlanError> {
        if !(sla_s.is_finite() && sla_s > 0.0) {
            return Err(PlanError::InvalidInput(format!(
                "SLA {sla_s} s must be positive"
            )));
        }
        let resolved = dag
            .nodes
            .iter()
            .map(|n| {
                profiles
                    .get(n.profile.as_deref().unwrap_or(&n.name))
                    .cloned()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let polish_nodes = auto_polish_nodes(dag.len());
        Ok(PlanInput {
            dag,
            profiles: resolved,
            prices: Prices::default(),
            sla_s,
            load,
            close_rate_per_s: None,
            current: BTreeMap::new(),
            space: SearchSpace::default(),
            params: ModelParams::default(),
            beam_width: DEFAULT_BEAM_WIDTH,
            alternatives: 3,
            exact_node_limit: 50_000_000,
            polish_nodes,
            lagrange_iters: 24,
        })
    }
}

/// A rejected alternative for one function: the whole plan's cost and latency with it swapped in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alternative {
    pub choice: Choice,
    pub cost_per_hour: f64,
    pub latency_s: f64,
    pub meets_sla: bool,
}

/// One function's part of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionPlan {
    pub name: String,
    pub choice: Choice,
    /// When the function starts and finishes, seconds after the burst arrives.
    pub start_s: f64,
    pub finish_s: f64,
    pub cost_per_hour: f64,
    pub alternatives: Vec<Alternative>,
}

/// Search statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SearchStats {
    /// Partial plans evaluated.
    pub expanded: u64,
    /// True when the planner proved the plan optimal in its space.
    pub proven_optimal: bool,
}

/// A plan for one DAG.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub dag: String,
    pub policy: String,
    pub sla_s: f64,
    pub functions: Vec<FunctionPlan>,
    pub predicted_latency_s: f64,
    pub cost_per_hour: f64,
    pub meets_sla: bool,
    pub stats: SearchStats,
}

/// Why no plan came out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("infeasible: the fastest plan takes {fastest_s:.3} s, above the SLA of {sla_s} s")]
    Infeasible { fastest_s: f64, sla_s: f64 },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("invalid planning input: {0}")]
    InvalidInput(String),
}

/// A planner.
pub trait Policy {
    /// Short name (`smiless`, `opt`, `orion`, …).
    fn name(&self) -> &'static str;
    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError>;
}
