//! Which rule the live control loop runs: `smiless` (the co-optimiser's joint choice of hardware, batch
//! and cold-start policy, with pre-warms), or one of two baselines to compare it with on the same
//! machine: `always-on` (every member warm all the time, on the hardware the planner picks for an
//! always-warm DAG) and `keepalive:<dur>` (OpenFaaS' usual scale to zero: a member is released after
//! `<dur>` of idleness and cold-started on demand; same hardware as always-on).
//!
//! Durations are in profile time, like every planned duration: with `SMILESS_TIME_SCALE = s` the live
//! window is `<dur> × s`.
use std::fmt;
use std::str::FromStr;

use optimizer::{ColdStart, Plan, PlanInput, PolicySet};

/// Environment variable naming the live policy (`smiless serve --policy` sets it from the flag).
pub const ENV_POLICY: &str = "SMILESS_POLICY";

/// The live policy (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LivePolicy {
    #[default]
    Smiless,
    AlwaysOn,
    /// Release after this many idle seconds (profile time).
    KeepAlive {
        seconds: f64,
    },
}

/// A policy name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy {0:?}: expected smiless, always-on or keepalive:<duration> (e.g. keepalive:10m)"
)]
pub struct BadPolicy(pub String);

impl FromStr for LivePolicy {
    type Err = BadPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t {
            "smiless" | "" => Ok(LivePolicy::Smiless),
            "always-on" => Ok(LivePolicy::AlwaysOn),
            _ => {
                let Some(d) = t.strip_prefix("keepalive:") else {
                    return Err(BadPolicy(t.to_owned()));
                };
                let seconds = humantime::parse_duration(d.trim())
                    .map(|d| d.as_secs_f64())
                    .or_else(|_| optimizer::parse_duration_s(d.trim()))
                    .map_err(|_| BadPolicy(t.to_owned()))?;
                if seconds > 0.0 && seconds.is_finite() {
                    Ok(LivePolicy::KeepAlive { seconds })
                } else {
                    Err(BadPolicy(t.to_owned()))
                }
            }
        }
    }
}

impl fmt::Display for LivePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LivePolicy::Smiless => f.write_str("smiless"),
            LivePolicy::AlwaysOn => f.write_str("always-on"),
            LivePolicy::KeepAlive { seconds } => write!(f, "keepalive:{seconds}s"),
        }
    }
}

impl LivePolicy {
    /// The policy in `SMILESS_POLICY`, or `smiless` when unset.
    pub fn from_env() -> Result<LivePolicy, BadPolicy> {
        std::env::var(ENV_POLICY).map_or(Ok(LivePolicy::Smiless), |v| v.parse())
    }

    /// The cold-start policies the planner may choose from: all of them for smiless; always-on for the
    /// baselines (their hardware is what an always-warm DAG needs to meet the SLA).
    pub fn policy_set(self) -> PolicySet {
        match self {
            LivePolicy::Smiless => PolicySet::ALL,
            LivePolicy::AlwaysOn | LivePolicy::KeepAlive { .. } => PolicySet {
                always_on: true,
                keep_alive_warm: false,
                keep_alive_break_even: false,
                pre_warm: false,
            },
        }
    }

    /// Turns the planner's plan into this policy's: for a fixed keep-alive, every member gets the fixed
    /// window, and the plan's predicted cost and latency are re-evaluated for it (cold starts included).
    pub fn apply(self, plan: &mut Plan, input: &PlanInput) {
        plan.policy = self.to_string();
        let LivePolicy::KeepAlive { seconds } = self else {
            return;
        };
        for f in &mut plan.functions {
            f.choice.policy = ColdStart::KeepAlive { seconds };
        }
        let choices: Vec<_> = plan.functions.iter().map(|f| f.choice).collect();
        let ev = optimizer::model::evaluate(input, &choices);
        plan.cost_per_hour = ev.cost_per_hour;
        plan.predicted_latency_s = ev.latency_s;
        plan.meets_sla = ev.latency_s <= plan.sla_s;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_policies() {
        assert_eq!(
            "smiless".parse::<LivePolicy>().unwrap(),
            LivePolicy::Smiless
        );
        assert_eq!(
            "always-on".parse::<LivePolicy>().unwrap(),
            LivePolicy::AlwaysOn
        );
        assert_eq!(
            "keepalive:5m".parse::<LivePolicy>().unwrap(),
            LivePolicy::KeepAlive { seconds: 300.0 }
        );
        assert_eq!(
            "keepalive:90s".parse::<LivePolicy>().unwrap().to_string(),
            "keepalive:90s"
        );
        for bad in ["keepalive:", "keepalive:0s", "keep", "opt"] {
            let e = bad.parse::<LivePolicy>().unwrap_err().to_string();
            assert!(e.contains("expected smiless"), "{bad}: {e}");
        }
    }

    #[test]
    fn baselines_plan_always_on_and_keep_alive_rewrites_the_plan() {
        assert!(LivePolicy::Smiless.policy_set().pre_warm);
        let s = LivePolicy::AlwaysOn.policy_set();
        assert!(s.always_on && !s.pre_warm && !s.keep_alive_warm);
        let dag = optimizer::testkit::paper_dag("image-query").unwrap();
        let mut input = PlanInput::new(
            dag,
            &optimizer::ProfileSet::paper(),
            3.0,
            optimizer::Load::new(None, Some(600.0)).unwrap(),
        )
        .unwrap();
        input.space.policies = s;
        let policy = optimizer::policy_by_name("smiless").unwrap();
        let mut plan = policy.plan(&input).unwrap();
        let always_on_cost = plan.cost_per_hour;
        assert!(
            plan.functions
                .iter()
                .all(|f| f.choice.policy == ColdStart::AlwaysOn)
        );
        LivePolicy::KeepAlive { seconds: 60.0 }.apply(&mut plan, &input);
        assert!(
            plan.functions
                .iter()
                .all(|f| f.choice.policy == ColdStart::KeepAlive { seconds: 60.0 })
        );
        // A request every 10 minutes against a 1-minute window: cheaper, and cold.
        assert!(plan.cost_per_hour < always_on_cost, "{plan:?}");
        assert_eq!(plan.policy, "keepalive:60s");
    }
}
