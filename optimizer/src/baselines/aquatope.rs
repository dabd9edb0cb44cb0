//! Aquatope (Zhou, Zhang, Delimitrou, "Aquatope: QoS-and-Uncertainty-Aware Resource Management for
//! Multi-stage Serverless Workflows", ASPLOS 2023): a pool of pre-warmed containers sized by an
//! uncertainty-aware forecaster, and a Bayesian-optimisation search of each stage's resources for the
//! cheapest configuration that meets the workflow's end-to-end QoS. Built on OpenWhisk: CPU containers.
//!
//! Rendering over our models:
//! - **Pool**: containers are kept warm for the forecast load, so every function is warm for the SLA
//!   quantile of bursts (always-on or the quantile keep-alive window, whichever is cheaper). Aquatope
//!   does not stagger initialisation along the DAG and does not batch (batch 1).
//! - **Resource search**: CPU sizes only. In place of Bayesian optimisation (a sample-efficient
//!   approximation of the best configuration) it gets the *exact* optimum of its space from our branch
//!   and bound: an upper bound on what its search can find, so the comparison is generous to it.
use crate::plan::{Plan, PlanError, PlanInput, Policy, PolicySet, SearchSpace};
use crate::planners::Exhaustive;

#[derive(Clone, Copy, Debug, Default)]
pub struct Aquatope;

impl Policy for Aquatope {
    fn name(&self) -> &'static str {
        "aquatope"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        let space = SearchSpace {
            hardware: input.space.hardware.cpu_only(),
            batches: vec![1],
            batch_opt_in: input.space.batch_opt_in,
            policies: PolicySet {
                always_on: true,
                keep_alive_warm: true,
                keep_alive_break_even: false,
                pre_warm: false,
            },
            prewarm: input.space.prewarm,
            spread_replicas: input.space.spread_replicas,
        };
        Exhaustive {
            seed_with_beam: true,
        }
        .plan_in(input, &space, "aquatope")
    }
}
