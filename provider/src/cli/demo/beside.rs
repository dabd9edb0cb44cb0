//! The demo's yardstick: the same trace, DAGs and SLAs under **always-on** (every function's replicas
//! provisioned for the whole run, the fastest plan that meets the SLA) and under smiless, both
//! **simulated** on this host's hardware with the paper's profiles (the ones the emulated functions
//! reproduce). The live run is measured; these two rows are not, and the report says so. Simulating
//! always-on rather than running it keeps the demo at one replay; the live e2e (`e2e/live.sh`,
//! docs/live.md) measures always-on live on the same rig and finds the simulator within a few percent.
use anyhow::{Context, Result};
use control::LivePolicy;
use optimizer::sim::SimOptions;
use optimizer::sim::experiment::{self, Matrix, Row};
use optimizer::{ProfileSet, SearchSpace, dags_from_functions};
use serde::Serialize;
use serde_json::Value;

use super::Traffic;
use super::sla::specs;

/// One simulated (DAG, policy) on the demo's trace.
#[derive(Debug, Clone, Serialize)]
pub struct Simulated {
    pub dag: String,
    pub policy: String,
    pub sla_s: f64,
    pub requests: u64,
    pub cost_usd: f64,
    pub sla_attainment: f64,
    pub p99_latency_s: f64,
}

impl Simulated {
    fn of(row: &Row, policy: LivePolicy) -> Simulated {
        Simulated {
            dag: row.dag.clone(),
            policy: policy.to_string(),
            sla_s: row.sla_s,
            requests: row.requests,
            cost_usd: row.cost,
            sla_attainment: 1.0 - row.violation_ratio,
            p99_latency_s: row.p99_latency_s,
        }
    }
}

/// Simulates always-on and smiless for every DAG of `traffic` at the SLA its entry declares in `deployments`
/// (DAGs without one are left out), on `host`, over `duration_s` of profile time.
pub fn simulate(
    deployments: &[Value],
    traffic: &[Traffic],
    host: contract::backend::host::Host,
    duration_s: f64,
) -> Result<Vec<Simulated>> {
    let dags = dags_from_functions(&specs(deployments)).context("the stack's DAGs")?;
    let profiles = ProfileSet::paper();
    let space = SearchSpace {
        hardware: contract::backend::host::space(host),
        // As the live planner: only members that declare `com.smiless.batch` are batched.
        batch_opt_in: true,
        ..SearchSpace::default()
    };
    let factory = crate::cli::sim::estimator::estimator_factory("recent")?;
    let mut out = Vec::new();
    for t in traffic {
        let Some(dag) = dags.iter().find(|d| d.name == t.dag) else {
            continue;
        };
        let Some(sla) = dag.sla_s else {
            continue;
        };
        for policy in [LivePolicy::AlwaysOn, LivePolicy::Smiless] {
            // The live baselines are the smiless planner held to their cold-start policies
            // (`LivePolicy::policy_set`); the simulator runs them the same way.
            let m = Matrix {
                dags: vec![(dag.clone(), t.arrivals.as_slice())],
                profiles: &profiles,
                world: None,
                slas: vec![sla],
                policies: vec!["smiless".to_owned()],
                duration_s,
                opts: SimOptions::default(),
                headroom: control::HEADROOM,
                sla_quantile: optimizer::ModelParams::default().sla_quantile,
                threads: 1,
                space: Some(SearchSpace {
                    policies: policy.policy_set(),
                    ..space.clone()
                }),
            };
            let outs = experiment::run(&m, &*factory, &|_, _, _| {})
                .with_context(|| format!("simulating {} ({policy}) beside the live run", t.dag))?;
            out.extend(outs.iter().map(|o| Simulated::of(&o.row, policy)));
        }
    }
    Ok(out)
}

/// The simulated row of `dag` under `policy`.
pub fn find<'a>(rows: &'a [Simulated], dag: &str, policy: &str) -> Option<&'a Simulated> {
    rows.iter().find(|r| r.dag == dag && r.policy == policy)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// On the demo's own trace (20 min of the default workload, its SLAs on a 2-core host),
    /// always-on pays for every idle second: smiless must be cheaper, both billed for the same
    /// requests.
    #[test]
    fn always_on_costs_more_than_smiless_on_the_demo_trace() {
        let text = include_str!("../../../../stack.yml");
        let mut deployments = super::super::stack::deployments(text, 0.1).unwrap();
        let host = contract::backend::host::Host { cpus: 2, gpus: 0 };
        super::super::sla::apply(&mut deployments, &Default::default(), host).unwrap();
        let w: predictor::Workload = super::super::DEFAULT_WORKLOAD.parse().unwrap();
        let series = w.load().unwrap();
        let duration = 1200.0;
        let traffic: Vec<Traffic> = ["amber-alert", "image-query", "voice-assistant"]
            .iter()
            .enumerate()
            .map(|(k, d)| Traffic {
                dag: (*d).to_owned(),
                arrivals: series[k % series.len()]
                    .arrival_times_s()
                    .into_iter()
                    .filter(|&t| t < duration)
                    .collect(),
            })
            .collect();
        let rows = simulate(&deployments, &traffic, host, duration).unwrap();
        for t in &traffic {
            let on = find(&rows, &t.dag, "always-on").unwrap();
            let sm = find(&rows, &t.dag, "smiless").unwrap();
            assert_eq!(on.requests, t.arrivals.len() as u64);
            assert_eq!(sm.requests, on.requests);
            assert!(
                sm.cost_usd < on.cost_usd,
                "{}: smiless ${} vs always-on ${}",
                t.dag,
                sm.cost_usd,
                on.cost_usd
            );
        }
    }
}
