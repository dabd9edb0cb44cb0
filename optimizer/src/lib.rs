//! Pure planning for smiless (DESIGN §6–§7): no network or process I/O; inputs in, a plan out.
//!
//! - [`dag`]: DAGs from the `com.smiless.*` annotations, validated.
//! - [`hardware`], [`prices`], [`profile`] (+ [`refit`], the paper's profiles made physical), [`load`]:
//!   the inputs.
//! - [`model`]: cost and latency of a function's choice and of a whole plan.
//! - [`options`], [`search`]: per-function option tables, the top-K co-optimiser and the exact optimum.
//! - [`capacity`]: the cluster's nodes, what a plan requests, the packing, and the joint planner of
//!   every DAG and standalone function against them.
//! - [`planners`], [`baselines`]: everything that implements [`Policy`], and [`policy_by_name`].
//! - [`exec`]: the executor, what a plan means at run time (replica lifecycle), driven by the
//!   simulator and the live control loop alike.
//! - [`testkit`]: the paper's DAGs and seeded random DAGs.
//! - [`hash`]: FNV-1a, the workspace's one stable hash.
//! - [`hold`]: what a choice holds of a cluster (replicas at peak, for how long).
#![forbid(unsafe_code)]
pub mod baselines;
pub mod capacity;
pub mod dag;
pub mod exec;
pub mod hardware;
pub mod hash;
pub mod hold;
pub mod load;
pub mod model;
pub mod options;
pub mod plan;
pub mod planners;
pub mod prices;
pub mod profile;
pub mod refit;
pub mod search;
pub mod sim;
pub mod testkit;

pub use dag::{Dag, DagError, FunctionSpec, dags_from_functions, parse_duration_s};
pub use hardware::{DeviceKind, Hardware, HardwareSpace};
pub use hash::{Fnv1a, fnv1a};
pub use load::{GapModel, Load, LoadError};
pub use plan::{
    Alternative, Choice, ColdStart, FunctionPlan, ModelParams, Plan, PlanError, PlanInput, Policy,
    PolicySet, PrewarmMode, SearchSpace,
};
pub use planners::{CoOptimiser, Exhaustive};
pub use prices::{PriceError, Prices};
pub use profile::{Profile, ProfileError, ProfileSet};

/// Every planner's name, as `smiless plan --policy` takes it.
pub const POLICY_NAMES: [&str; 10] = [
    "smiless",
    "opt",
    "orion",
    "icebreaker",
    "aquatope",
    "grandslam",
    "homo",
    "no-dag",
    "esg",
    "jolteon",
];

/// The planner called `name`.
pub fn policy_by_name(name: &str) -> Option<Box<dyn Policy + Send + Sync>> {
    Some(match name {
        "smiless" => Box::new(CoOptimiser::SMILESS),
        "opt" => Box::new(Exhaustive::default()),
        "orion" => Box::new(baselines::Orion),
        "icebreaker" => Box::new(baselines::IceBreaker),
        "aquatope" => Box::new(baselines::Aquatope),
        "grandslam" => Box::new(baselines::GrandSlam),
        "homo" => Box::new(CoOptimiser::HOMO),
        "no-dag" => Box::new(CoOptimiser::NO_DAG),
        "esg" => Box::new(baselines::Esg),
        "jolteon" => Box::new(baselines::Jolteon),
        _ => return None,
    })
}
