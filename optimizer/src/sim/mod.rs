//! The trace-driven simulator (DESIGN §2, §6–§9): any [`crate::Policy`] run against a workload of DAG
//! request arrivals, with replicas that initialise, idle and serve, billed per provisioned
//! resource-second.
//!
//! - [`estimate`]: [`LoadEstimator`] (observed arrivals → [`crate::Load`]), a recent-window estimator
//!   and the oracle that knows the future (for "OPT").
//! - [`control`]: [`Controller::decide`], the one decision step the simulator and the live control loop
//!   share.
//! - [`joint`]: [`JointController::decide`], every DAG decided together against one capacity (the
//!   joint planner behind each DAG's hysteresis), shared by the live loop and [`lockstep`], which
//!   simulates several DAGs together under it.
//! - [`engine`]: the discrete-event engine, [`simulate`]: the world that [`crate::exec::Executor`] (the
//!   replica lifecycle the live control loop also runs) acts in.
//! - [`metrics`]: what a run measures ([`Summary`]).
//! - [`workload`]: a small Poisson / bursty arrival generator for tests and benchmarks (the CLI takes
//!   real workloads from the predictor crate).
//! - [`bound`]: the offline lower bound on a trace's cost within its SLA (`smiless / bound`).
//! - [`experiment`], [`report`], [`paper`]: the evaluation matrix, its tables and plots, and the
//!   paper's experiment rendered from them.
pub mod bound;
pub mod control;
pub mod engine;
pub mod estimate;
pub mod experiment;
pub mod joint;
pub mod lockstep;
pub mod metrics;
pub mod paper;
pub mod report;
pub mod workload;
mod world;

pub use control::{ControlStats, Controller, Decision, Observations};
pub use engine::{SimOptions, SimResult, simulate, simulate_in};
pub use estimate::{LoadEstimator, Oracle, RecentWindow};
pub use joint::{JointController, JointDecision, JointMember, JointStats, JointStep};
pub use lockstep::{JointDag, JointSimResult, JointTick, simulate_joint};
pub use metrics::{Ledger, Summary};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod joint_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod switch_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
