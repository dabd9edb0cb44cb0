//! GrandSLAm (Kannan et al., "GrandSLAm: Guaranteeing SLAs for Jobs in Microservices Execution
//! Frameworks", EuroSys 2019): estimate each stage's latency (a linear model in the batch size), split the
//! job's end-to-end SLA into per-stage *slack* in proportion to the stages' latencies, and batch each
//! stage's requests as much as its slack allows. Stages are long-running microservices: always warm.
//!
//! Rendering over our models:
//! - **Device class**: one for the whole DAG (GrandSLAm schedules on a given cluster): CPU, unless even the
//!   single-core CPU critical path exceeds the SLA, then GPU (the artifact's rendering).
//! - **Slack**: `SLA · t_f / (longest path through f of t)`, with `t` the single-request latency on the
//!   smallest size of the class; along a chain this is exactly proportional splitting.
//! - **Size and batch**: for each function the smallest size of the class, then the largest batch cap,
//!   whose burst time fits its slack; if none fits, the largest size at batch 1.
//! - **Policy**: always-on.
use super::replicas_for;
use crate::hardware::Hardware;
use crate::model;
use crate::plan::{Choice, ColdStart, Plan, PlanError, PlanInput, Policy};
use crate::search::plan_from_choices;

#[derive(Clone, Copy, Debug, Default)]
pub struct GrandSlam;

fn longest_through(input: &PlanInput, t: &[f64]) -> Vec<f64> {
    let dag = &input.dag;
    let n = dag.len();
    let mut to = vec![0.0; n]; // longest path ending at f, including f
    let mut from = vec![0.0; n]; // longest path starting at f, including f
    for &f in &dag.topo {
        to[f] = t[f] + dag.pred[f].iter().map(|&p| to[p]).fold(0.0, f64::max);
    }
    for &f in dag.topo.iter().rev() {
        from[f] = t[f] + dag.succ[f].iter().map(|&s| from[s]).fold(0.0, f64::max);
    }
    (0..n).map(|f| to[f] + from[f] - t[f]).collect()
}

impl Policy for GrandSlam {
    fn name(&self) -> &'static str {
        "grandslam"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PlanError> {
        let n = input.dag.len();
        let hw_space = &input.space.hardware;
        let mut cpu: Vec<Hardware> = hw_space
            .cpu_cores
            .iter()
            .map(|&cores| Hardware::Cpu { cores })
            .collect();
        let mut gpu: Vec<Hardware> = hw_space
            .gpu_shares
            .iter()
            .map(|&share_pct| Hardware::Gpu { share_pct })
            .collect();
        cpu.sort();
        gpu.sort();
        let base = |class: &[Hardware]| -> Option<Vec<f64>> {
            let hw = *class.first()?;
            Some(
                (0..n)
                    .map(|f| input.profiles[f].infer_time(hw, 1))
                    .collect(),
            )
        };
        let cpu_t = base(&cpu);
        let use_gpu = match &cpu_t {
            Some(t) => {
                longest_through(input, t)
                    .iter()
                    .fold(0.0_f64, |a, &b| a.max(b))
                    > input.sla_s
                    && !gpu.is_empty()
            }
            None => true,
        };
        let (class, t) = if use_gpu {
            let t = base(&gpu);
            (gpu, t)
        } else {
            (cpu, cpu_t)
        };
        let t = t.ok_or_else(|| PlanError::InvalidInput("grandslam needs hardware".into()))?;
        let through = longest_through(input, &t);
        let mut batches = input.space.batches.clone();
        batches.sort_unstable_by(|a, b| b.cmp(a));
        let m = input.load.burst_size();
        let choices = (0..n)
            .map(|f| {
                let slack = input.sla_s * t[f] / through[f].max(1e-12);
                let fits = class.iter().find_map(|&hw| {
                    batches.iter().find_map(|&b| {
                        let (replicas, eff) = replicas_for(input, f, hw, b);
                        let svc = model::service(&input.profiles[f], hw, eff, m);
                        let d = f64::from(svc.calls.div_ceil(replicas)) * svc.t_b;
                        (d <= slack).then_some((hw, eff, replicas))
                    })
                });
                let (hw, batch, replicas) = fits.unwrap_or_else(|| {
                    let hw = *class
                        .last()
                        .expect("non-empty: `t` came from its first element");
                    let (replicas, eff) = replicas_for(input, f, hw, 1);
                    (hw, eff, replicas)
                });
                Choice {
                    hardware: hw,
                    batch,
                    replicas,
                    policy: ColdStart::AlwaysOn,
                }
            })
            .collect();
        Ok(plan_from_choices(input, choices, "grandslam"))
    }
}
