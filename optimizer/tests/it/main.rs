//! Integration tests of the optimizer crate (one binary): DAG validation, the model against an
//! independent re-computation, the co-optimiser against the exhaustive optimum (property tests), the
//! paper's DAGs at SLA 2–6 s (table tests), and the baselines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod baselines;
mod batching;
mod capacity;
mod dag;
mod oracle;
mod paper;
mod props;
mod sim;
