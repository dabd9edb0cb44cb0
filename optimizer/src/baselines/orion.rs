//! Orion (Mahgoub et al., "ORION and the Three Rights: Sizing, Bundling, and Prewarming for Serverless
//! DAGs", OSDI 2022): right-size each function's VM against the end-to-end latency target, bundle
//! parallel invocations into one instance, and pre-warm downstream functions with the right look-ahead so
//! that their cold start overlaps their predecessors' execution.
//!
//! Rendering over our models:
//! - **Sizing**: CPU only (Orion sizes AWS Lambda memory/vCPU; it has no GPU), starting every function at
//!   the smallest core count and, while the predicted end-to-end latency exceeds the SLA, upgrading the
//!   function on the critical path whose next size buys the most latency per dollar (Orion's search
//!   walks the configuration space guided by its E2E latency model; we give it our exact latency model
//!   in place of its distribution fit).
//! - **Bundling**: a burst's parallel invocations share an instance: batch = the largest cap the space
//!   allows, up to the burst size.
//! - **Pre-warming**: Orion runs under the platform's keep-alive (AWS Lambda's ten minutes, reference:
//!   anchors §4). When that keeps functions warm for the SLA quantile of bursts, every function simply
//!   stays alive; otherwise the entry keeps the platform keep-alive and every downstream function is
//!   released and pre-warmed with the look-ahead, ready when its predecessors finish.
use super::{place_prewarms, replicas_for};
use crate::model;
use crate::plan::{Choice, ColdStart, Plan, PlanError, PlanInput, Policy};
use crate::search::plan_from_choices;

/// The platform keep-alive Orion runs under (AWS Lambda).
pub const LAMBDA_KEEP_ALIVE_S: f64 = 600.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct Orion;

fn choices_for(input: &PlanInput, size_idx: &[usize], cores: &[u32], batch: u32) -> Vec<Choice> {
    let platform_warm =
        model::keep_alive_is_warm(&input.load, LAMBDA_KEEP_ALIVE_S, input.params.sla_quantile);
    let mut choices: Vec<Choice> = (0..input.dag.len())
        .map(|f| {
            let hw = crate::hardware::Hardware::Cpu {
                cores: cores[size_idx[f]],
            };
            let (replicas, b) = replicas_for(input, f, hw, batch);
            let policy = if f == input.dag.entry || platform_warm {
                ColdStart::KeepAlive {
                    seconds: LAMBDA_KEEP_ALIVE_S,
                }
            } else {
                ColdStart::PreWarm { offset_s: 0.0 }
            };
            Choice {
                hardware: hw,
                batch: b,
                replicas,
                policy,
            }
        })
        .collect();
    place_prewarms(input, &mut choices);
    choices
}

impl Policy for Orion {
    fn name(&self) -> &'static str {
        "orion"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        let mut cores = input.space.hardware.cpu_cores.clone();
        cores.sort_unstable();
        if cores.is_empty() {
            return Err(PlanError::InvalidInput("orion needs CPU sizes".into()));
        }
        let m = input.load.burst_size();
        let batch = input
            .space
            .batches
            .iter()
            .copied()
            .filter(|&b| b <= m)
            .max()
            .unwrap_or(1);
        let n = input.dag.len();
        let mut size = vec![0usize; n];
        let mut choices = choices_for(input, &size, &cores, batch);
        let mut ev = model::evaluate(input, &choices);
        while ev.latency_s > input.sla_s {
            // Functions on the critical path: finish == latency walking back along tight predecessors.
            let mut best: Option<(f64, usize, Vec<Choice>, model::Evaluation)> = None;
            for f in 0..n {
                if size[f] + 1 >= cores.len() {
                    continue;
                }
                size[f] += 1;
                let c = choices_for(input, &size, &cores, batch);
                size[f] -= 1;
                let e = model::evaluate(input, &c);
                let gain = ev.latency_s - e.latency_s;
                if gain <= 1e-12 {
                    continue;
                }
                let extra = (e.cost_per_hour - ev.cost_per_hour).max(1e-12);
                let score = gain / extra;
                if best.as_ref().is_none_or(|b| score > b.0) {
                    best = Some((score, f, c, e));
                }
            }
            let Some((_, f, c, e)) = best else { break };
            size[f] += 1;
            choices = c;
            ev = e;
        }
        Ok(plan_from_choices(input, choices, "orion"))
    }
}
