//! The load estimate the live planner gets, as one [`LoadEstimator`] that `smiless sim` builds too, so a
//! live run and its simulation plan from the same estimate (one code path).
//!
//! Two estimates, chosen by `smiless serve --estimator` / `SMILESS_ESTIMATOR`:
//! - `recent` (default): the simulator's recent-window estimator (600 s window, gaps and burst sizes
//!   raised to their 99th percentile, the close-arrival rate of the gaps' lower tail for the queueing
//!   term). On the live e2e trace and the Azure-derived matrix it gave the lowest cost at the SLA (see
//!   docs/live.md, "Which estimate plans").
//! - `forecaster`: the predictor's forecasters (hybrid histogram, then the LSTM; [`super::forecast`]).
//!
//! Either way the forecaster observes every arrival and is scored window by window, so `/metrics` and
//! `/system/plan` report forecast against actual whichever estimate plans.
use std::fmt;
use std::str::FromStr;

use optimizer::Load;
use optimizer::sim::{LoadEstimator, RecentWindow};

use super::forecast::{DagForecaster, Shared};

/// Environment variable naming the estimate (`smiless serve --estimator` sets it from the flag).
pub const ENV_ESTIMATOR: &str = "SMILESS_ESTIMATOR";

/// Which estimate plans (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EstimatorKind {
    #[default]
    Recent,
    Forecaster,
}

/// An estimator name that is neither `recent` nor `forecaster`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown estimator {0:?}: expected recent or forecaster")]
pub struct BadEstimator(pub String);

impl FromStr for EstimatorKind {
    type Err = BadEstimator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "recent" | "" => Ok(EstimatorKind::Recent),
            "forecaster" => Ok(EstimatorKind::Forecaster),
            other => Err(BadEstimator(other.to_owned())),
        }
    }
}

impl fmt::Display for EstimatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EstimatorKind::Recent => "recent",
            EstimatorKind::Forecaster => "forecaster",
        })
    }
}

impl EstimatorKind {
    /// The kind named by [`ENV_ESTIMATOR`] (default `recent`).
    pub fn from_env() -> Result<EstimatorKind, BadEstimator> {
        std::env::var(ENV_ESTIMATOR).unwrap_or_default().parse()
    }
}

/// The recent-window estimator exactly as `smiless sim --estimator recent` builds it.
pub fn recent_window() -> RecentWindow {
    RecentWindow::new(600.0, Some(0.99))
}

/// The live loop's estimator: the DAG's forecaster always, plus the recent window when that plans.
pub struct LiveEstimator {
    forecaster: Shared,
    recent: Option<RecentWindow>,
}

impl LiveEstimator {
    /// After a restart the recent window starts from the restored history's last window (the
    /// forecaster persists per-second counts), so the first plan is made for the load seen before.
    pub fn new(forecaster: Shared, kind: EstimatorKind) -> LiveEstimator {
        let recent = (kind == EstimatorKind::Recent).then(|| {
            let mut r = recent_window();
            for t in forecaster.lock().recent_arrivals(r.window_s) {
                r.observe(t);
            }
            r
        });
        LiveEstimator { forecaster, recent }
    }

    /// The estimator `smiless sim --estimator recent|forecaster` replays a trace with: a fresh forecaster
    /// that trains on the caller's thread (deterministic), otherwise the live loop's code.
    pub fn for_simulation(kind: EstimatorKind) -> LiveEstimator {
        LiveEstimator::new(Shared::new(DagForecaster::blocking()), kind)
    }
}

impl LoadEstimator for LiveEstimator {
    fn name(&self) -> String {
        match &self.recent {
            Some(r) => r.name(),
            None => self.forecaster.name(),
        }
    }

    fn observe(&mut self, t: f64) {
        self.forecaster.observe(t);
        if let Some(r) = &mut self.recent {
            r.observe(t);
        }
    }

    fn estimate(&mut self, now: f64) -> Load {
        // The forecaster advances (and is scored, and trains) whichever estimate plans.
        let forecast = self.forecaster.estimate(now);
        match &mut self.recent {
            Some(r) => {
                let load = r.estimate(now);
                self.forecaster.lock().set_last_load(load);
                load
            }
            None => forecast,
        }
    }

    fn close_rate_per_s(&self) -> Option<f64> {
        self.recent
            .as_ref()
            .and_then(LoadEstimator::close_rate_per_s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn after_a_restart_the_recent_window_plans_for_the_load_seen_before() {
        // One request every 20 s for 900 s, then the state is saved and restored (the live clock
        // restarts at 0).
        let f = Shared::new(DagForecaster::default());
        let mut before = LiveEstimator::new(f.clone(), EstimatorKind::Recent);
        for k in 0..45 {
            before.observe(f64::from(k) * 20.0 + 3.0);
        }
        let l_before = before.estimate(900.0);
        let saved = f.lock().saved();
        let restored = Shared::new(DagForecaster::restore(saved, None));
        let mut after = LiveEstimator::new(restored, EstimatorKind::Recent);
        let l_after = after.estimate(0.0);
        assert!(
            (l_after.rate_per_s / l_before.rate_per_s - 1.0).abs() < 0.1,
            "{l_before:?} vs {l_after:?}"
        );
        assert!(
            (l_after.interarrival_s / l_before.interarrival_s - 1.0).abs() < 0.1,
            "{l_before:?} vs {l_after:?}"
        );
        // A fresh forecaster seeds nothing: the window is empty.
        let mut fresh =
            LiveEstimator::new(Shared::new(DagForecaster::default()), EstimatorKind::Recent);
        assert!(fresh.estimate(0.0).rate_per_s < l_before.rate_per_s / 2.0);
    }

    #[test]
    fn parses_and_prints_the_two_kinds() {
        for k in [EstimatorKind::Recent, EstimatorKind::Forecaster] {
            assert_eq!(k.to_string().parse::<EstimatorKind>(), Ok(k));
        }
        assert_eq!("".parse::<EstimatorKind>(), Ok(EstimatorKind::Recent));
        assert!("lstm".parse::<EstimatorKind>().is_err());
    }

    #[test]
    fn recent_plans_like_the_simulator_while_the_forecaster_keeps_observing() {
        let mut live = LiveEstimator::for_simulation(EstimatorKind::Recent);
        let mut sim = recent_window();
        // Pairs of requests 0.2 s apart every 40 s: the close-arrival rate matters.
        let mut loads = Vec::new();
        for k in 0..30 {
            let t = f64::from(k) * 40.0;
            for dt in [0.0, 0.2] {
                live.observe(t + dt);
                sim.observe(t + dt);
            }
            let (a, b) = (live.estimate(t + 1.0), sim.estimate(t + 1.0));
            assert_eq!(a, b, "at {t}");
            assert_eq!(live.close_rate_per_s(), sim.close_rate_per_s());
            loads.push(a);
        }
        assert!(live.close_rate_per_s().is_some());
        let f = live.forecaster.lock();
        assert_eq!(f.last_load(), loads.last().copied());
        // 30 pairs over 1160 s: 38 closed 30-s windows, all scored.
        assert_eq!(f.view().history_windows, 38);
        assert_eq!(f.saved().counts.iter().sum::<u32>(), 60);
    }

    #[test]
    fn forecaster_kind_plans_with_the_forecast() {
        let mut live = LiveEstimator::for_simulation(EstimatorKind::Forecaster);
        for k in 0..20 {
            live.observe(f64::from(k) * 20.0 + 0.5);
            live.estimate(f64::from(k) * 20.0 + 1.0);
        }
        let l = live.estimate(400.0);
        assert_eq!(live.forecaster.lock().last_load(), Some(l));
        assert_eq!(live.close_rate_per_s(), None);
        assert_eq!(live.name(), "hybrid-histogram");
    }
}
