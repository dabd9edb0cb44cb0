//! The CPU overcommit the demo runs with. The live loop plans every DAG jointly against this host's
//! cores (docs/capacity.md, "Live"); on a small host the three DAGs of `stack.yml` at their SLAs
//! request more cores than there are, so at overcommit 1 the joint planner degrades some of them (on
//! 2 cores: two of three are not deployed at 8 s). The emulated functions busy a core only while they
//! infer and sit idle between requests, so the demo, by default, chooses the smallest factor of
//! [`FACTORS`] at which the joint plan deploys every DAG at its SLA under the busiest minute of its
//! trace ([`peak_load`]), and says so before the replay. `--overcommit N` chooses instead; 1 shows the
//! degradation itself.
use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use optimizer::capacity::joint::{JointInput, plan_all};
use optimizer::{Load, PlanInput, ProfileSet, dags_from_functions};
use serde_json::Value;

use super::sla::specs;

/// The factors tried, smallest first.
pub const FACTORS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// `--overcommit`: `auto` or a factor ≥ 1.
pub fn parse(text: &str) -> Result<Option<f64>> {
    let t = text.trim();
    if t == "auto" {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(Some(f)),
        _ => bail!("--overcommit {text:?}: expected auto or a number ≥ 1"),
    }
}

/// A DAG's planning load from its trace: the busiest minute's rate (the live estimator sees such
/// minutes; planning for the average would fit a plan the peaks then outgrow).
pub fn peak_load(arrivals: &[f64]) -> Result<Load> {
    let mut peak = 1usize;
    let mut lo = 0;
    for (hi, &t) in arrivals.iter().enumerate() {
        while arrivals[lo] < t - 60.0 {
            lo += 1;
        }
        peak = peak.max(hi + 1 - lo);
    }
    Ok(Load::new(Some(peak as f64 / 60.0), None)?)
}

/// What [`choose`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub factor: f64,
    /// DAGs still degraded at `factor` (empty: every DAG deployed at its SLA).
    pub degraded: Vec<String>,
}

impl Fit {
    /// The line the demo prints.
    pub fn note(&self, cores: usize) -> String {
        if self.degraded.is_empty() {
            format!(
                "planning against {cores} cores × overcommit {} (the smallest factor at which every DAG fits at its SLA; --overcommit chooses)",
                self.factor
            )
        } else {
            format!(
                "planning against {cores} cores × overcommit {}: {} still degraded (see the report's reason lines)",
                self.factor,
                self.degraded.join(", ")
            )
        }
    }
}

/// The first factor of [`FACTORS`] at which `deployments` (SLAs already chosen) degrade no DAG, or
/// the last one tried with what it degrades.
pub fn choose(
    deployments: &[Value],
    host: contract::backend::host::Host,
    loads: &BTreeMap<String, Load>,
) -> Result<Fit> {
    let mut fit = None;
    for &factor in &FACTORS {
        let degraded = degraded_at(deployments, host, factor, loads)?;
        let done = degraded.is_empty();
        fit = Some(Fit { factor, degraded });
        if done {
            break;
        }
    }
    fit.context("no overcommit factor to try")
}

/// The DAGs the joint planner degrades on `host` × `factor`, batching only what the live planner
/// batches (members that declare it), each DAG at its load in `loads` (absent: one request a minute).
fn degraded_at(
    deployments: &[Value],
    host: contract::backend::host::Host,
    factor: f64,
    loads: &BTreeMap<String, Load>,
) -> Result<Vec<String>> {
    let dags = dags_from_functions(&specs(deployments)).context("the stack's DAGs")?;
    let profiles = ProfileSet::paper();
    let nominal = Load::new(None, Some(60.0))?;
    let cap = contract::backend::host::capacity(host).with_overcommit(factor)?;
    let inputs = dags
        .iter()
        .filter_map(|d| {
            let load = loads.get(&d.name).copied().unwrap_or(nominal);
            let mut input = PlanInput::new(d.clone(), &profiles, d.sla_s?, load).ok()?;
            input.space.hardware = cap.space(&contract::backend::host::space(host));
            input.space.batch_opt_in = true;
            Some(input)
        })
        .collect();
    let plan = plan_all(&JointInput::new(inputs, cap))?;
    Ok(plan.degraded.iter().map(|d| d.dag.clone()).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overcommit_parses_auto_and_factors_and_refuses_the_rest() {
        assert_eq!(parse("auto").unwrap(), None);
        assert_eq!(parse("4").unwrap(), Some(4.0));
        for bad in ["0.5", "-1", "NaN", "inf", "x", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_peak_load_is_the_busiest_minute() {
        let l = peak_load(&[0.0, 10.0, 100.0, 101.0, 102.0, 159.0, 300.0]).unwrap();
        assert!((l.rate_per_s - 4.0 / 60.0).abs() < 1e-12, "{l:?}");
        assert!((peak_load(&[]).unwrap().rate_per_s - 1.0 / 60.0).abs() < 1e-12);
    }

    /// On 2 cores the stack's three DAGs do not all fit at overcommit 1 (the joint planner degrades
    /// some), and the factor chosen is the smallest at which none is degraded.
    #[test]
    fn two_cores_need_an_overcommit_and_the_smallest_that_fits_is_chosen() {
        let text = include_str!("../../../../stack.yml");
        let mut deployments = super::super::stack::deployments(text, 0.1).unwrap();
        let host = contract::backend::host::Host { cpus: 2, gpus: 0 };
        super::super::sla::apply(&mut deployments, &Default::default(), host).unwrap();
        let loads = BTreeMap::new();
        let fit = choose(&deployments, host, &loads).unwrap();
        assert!(fit.degraded.is_empty(), "{fit:?}");
        assert!(fit.factor > 1.0, "{fit:?}");
        let i = FACTORS.iter().position(|&f| f == fit.factor).unwrap();
        // The factor below it still degrades a DAG: the choice is the smallest.
        assert!(
            !degraded_at(&deployments, host, FACTORS[i - 1], &loads)
                .unwrap()
                .is_empty()
        );
    }
}
