//! What one simulated run measures (DESIGN §6's cost metric and the paper's evaluation metrics,
//! reference: smiless-artifact §10), and the accumulators the engine fills.
use serde::Serialize;

use super::control::Controller;
use super::engine::{Sim, SimResult};

pub use crate::exec::{Billed, Ledger};

/// One run's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub dag: String,
    pub policy: String,
    pub sla_s: f64,
    /// DAG requests that arrived, and that completed.
    pub requests: u64,
    pub completed: u64,
    /// Total cost in $ (init + busy + idle).
    pub cost: f64,
    pub ledger: Ledger,
    /// Share of the cost spent on GPU replicas.
    pub gpu_cost_share: f64,
    pub p50_latency_s: f64,
    pub p99_latency_s: f64,
    pub max_latency_s: f64,
    pub mean_latency_s: f64,
    pub sla_violations: u64,
    pub violation_ratio: f64,
    /// Requests whose critical path waited for a replica's initialisation.
    pub cold_on_critical_path: u64,
    /// Replica initialisations (on demand, pre-warm and after hardware switches).
    pub inits: u64,
    /// The paper's re-initialisation ratio: per function (replicas started − 1) / rounds, averaged.
    pub reinit_fraction: f64,
    /// Hardware changes applied (each re-initialises the function's replicas).
    pub hw_switches: u64,
    /// Rounds: bursts of arrivals (arrivals less than 1 s apart form one).
    pub rounds: u64,
    pub plans_computed: u64,
    pub infeasible_plans: u64,
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank; 0 for none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Sim<'_> {
    /// The run's summary and latencies, once every replica is released.
    pub(crate) fn finish(self, controller: &Controller) -> SimResult {
        let mut lat = self.latencies;
        let completed = lat.len() as u64;
        let mean = if lat.is_empty() {
            0.0
        } else {
            lat.iter().sum::<f64>() / lat.len() as f64
        };
        let mut sorted = lat.clone();
        sorted.sort_by(f64::total_cmp);
        let rounds = super::estimate::bursts(self.arrivals).len() as u64;
        let members = self.exec.members();
        let nf = members.len().max(1) as f64;
        let reinit = if rounds == 0 {
            0.0
        } else {
            members
                .iter()
                .map(|f| (f.inits.saturating_sub(1)) as f64 / rounds as f64)
                .sum::<f64>()
                / nf
        };
        let ledger = *self.exec.ledger();
        let cost = ledger.total();
        let summary = Summary {
            dag: self.input.dag.name.clone(),
            policy: controller.policy_name().to_string(),
            sla_s: self.input.sla_s,
            requests: self.arrivals.len() as u64,
            completed,
            cost,
            ledger,
            gpu_cost_share: if cost > 0.0 {
                ledger.gpu_cost / cost
            } else {
                0.0
            },
            p50_latency_s: quantile(&sorted, 0.5),
            p99_latency_s: quantile(&sorted, 0.99),
            max_latency_s: sorted.last().copied().unwrap_or(0.0),
            mean_latency_s: mean,
            sla_violations: self.violations,
            violation_ratio: if completed > 0 {
                self.violations as f64 / completed as f64
            } else {
                0.0
            },
            cold_on_critical_path: self.cold_cp,
            inits: members.iter().map(|f| f.inits).sum(),
            reinit_fraction: reinit,
            hw_switches: self.exec.hw_switches(),
            rounds,
            plans_computed: controller.stats.plans_computed,
            infeasible_plans: controller.stats.infeasible,
        };
        lat.shrink_to_fit();
        SimResult {
            summary,
            latencies: lat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
