//! IceBreaker (Roy, Patel, Tiwari, "IceBreaker: Warming Serverless Functions Better with Heterogeneous
//! Servers", ASPLOS 2022): predict each function's probability of being invoked in the next interval
//! (its Fourier-based FIP predictor) and, per function, keep it warm on an expensive high-end server when
//! that probability is high, on a cheap low-end server when it is moderate, and not at all (cold start on
//! demand) when it is low. It plans per function: it knows neither the DAG nor the SLA.
//!
//! Rendering over our models:
//! - The probability comes from the forecast the other planners get: `p = P(gap ≤ τ)` for the next
//!   interval τ = 60 s (the one-minute granularity of the Azure trace IceBreaker was built on).
//! - Thresholds 1/3 and 2/3 on `p` (the artifact's rendering of IceBreaker's utility ranking).
//! - High-end = a GPU at the smallest share the space offers (the artifact's 10 % unit); low-end =
//!   2 CPU cores (the artifact's function template, c6g.large), or the space's nearest size.
//! - Warm = kept alive for the next interval τ; cold = released after use (keep-alive 0).
//! - No batching (batch 1).
use super::replicas_for;
use crate::hardware::Hardware;
use crate::plan::{Choice, ColdStart, Plan, PlanError, PlanInput, Policy};
use crate::search::plan_from_choices;

/// The decision interval.
pub const INTERVAL_S: f64 = 60.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct IceBreaker;

impl Policy for IceBreaker {
    fn name(&self) -> &'static str {
        "icebreaker"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        let space = &input.space.hardware;
        let cheap = space
            .cpu_cores
            .iter()
            .copied()
            .min_by_key(|&c| c.abs_diff(2))
            .map(|cores| Hardware::Cpu { cores })
            .ok_or_else(|| PlanError::InvalidInput("icebreaker needs a CPU size".into()))?;
        let expensive = space
            .gpu_shares
            .iter()
            .copied()
            .min()
            .map(|share_pct| Hardware::Gpu { share_pct });
        let p = 1.0 - input.load.p_gap_exceeds(INTERVAL_S);
        let choices = (0..input.dag.len())
            .map(|f| {
                let (hw, policy) = if p >= 2.0 / 3.0 {
                    (
                        expensive.unwrap_or(cheap),
                        ColdStart::KeepAlive {
                            seconds: INTERVAL_S,
                        },
                    )
                } else if p >= 1.0 / 3.0 {
                    (
                        cheap,
                        ColdStart::KeepAlive {
                            seconds: INTERVAL_S,
                        },
                    )
                } else {
                    (cheap, ColdStart::KeepAlive { seconds: 0.0 })
                };
                let (replicas, b) = replicas_for(input, f, hw, 1);
                Choice {
                    hardware: hw,
                    batch: b,
                    replicas,
                    policy,
                }
            })
            .collect();
        Ok(plan_from_choices(input, choices, "icebreaker"))
    }
}
