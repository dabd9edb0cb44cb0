//! The predictor's forecasters as the simulator's load estimators (`--estimator`), turned into a load by
//! the live loop's own `control::forecast::load_of`, so a simulated forecaster plans as the live one does.
use anyhow::{Result, anyhow, bail};
use optimizer::sim::LoadEstimator;
use optimizer::sim::experiment;
use optimizer::{GapModel, Load};
use predictor::{Forecaster, History};

/// A predictor forecaster as the simulator's load estimator: per-second counts into a [`History`],
/// the forecast (count of the next window, next inter-arrival) turned into a [`Load`] by the live loop's
/// own [`control::forecast::load_of`].
pub(super) struct ForecastEstimator {
    forecaster: Box<dyn Forecaster>,
    history: History,
    /// Arrivals per second not yet pushed, from `pushed_s` on.
    counts: Vec<u32>,
    pushed_s: u64,
    cached: Option<Load>,
}

impl ForecastEstimator {
    fn new(forecaster: Box<dyn Forecaster>, window_s: u32) -> Result<ForecastEstimator> {
        Ok(ForecastEstimator {
            forecaster,
            history: History::new(1, window_s).map_err(|e| anyhow!("{e}"))?,
            counts: Vec::new(),
            pushed_s: 0,
            cached: None,
        })
    }
}

impl LoadEstimator for ForecastEstimator {
    fn name(&self) -> String {
        self.forecaster.name()
    }

    fn observe(&mut self, t: f64) {
        let sec = t.max(0.0) as u64;
        if sec >= self.pushed_s {
            let i = (sec - self.pushed_s) as usize;
            if self.counts.len() <= i {
                self.counts.resize(i + 1, 0);
            }
            self.counts[i] += 1;
        }
    }

    fn estimate(&mut self, now: f64) -> Load {
        let upto = now.max(0.0) as u64;
        let mut closed = false;
        while self.pushed_s < upto {
            let c = if self.counts.is_empty() {
                0
            } else {
                self.counts.remove(0)
            };
            // Push first: every second must reach the history, arrivals or not.
            let window_closed = self.history.push(c).is_some();
            closed |= c > 0 || window_closed;
            self.pushed_s += 1;
        }
        if closed || self.cached.is_none() {
            // The live loop's reading of a forecast (one formula for both sides).
            let f = self.forecaster.forecast(&self.history);
            self.cached = Some(control::forecast::load_of(&f, &self.history));
        }
        self.cached.unwrap_or(Load {
            rate_per_s: 0.01,
            interarrival_s: 100.0,
            gaps: GapModel::Exponential,
        })
    }
}

pub(crate) fn estimator_factory(kind: &str) -> Result<Box<experiment::EstimatorFactory<'static>>> {
    let make = |k: &'static str| -> Box<experiment::EstimatorFactory<'static>> {
        Box::new(
            move |_: &str, _: f64, _: &[f64]| -> Box<dyn LoadEstimator> {
                let f: Box<dyn Forecaster> = match k {
                    "ewma" => Box::new(predictor::baselines::Ewma::default()),
                    "last" => Box::new(predictor::baselines::LastValue::default()),
                    _ => Box::new(predictor::baselines::HybridHistogram::default()),
                };
                match ForecastEstimator::new(f, 60) {
                    Ok(e) => Box::new(e),
                    // 60 s windows of 1 s steps are always valid; fall back rather than panic.
                    Err(_) => Box::new(control::estimator::recent_window()),
                }
            },
        )
    };
    Ok(match kind {
        "recent" => Box::new(|_: &str, _: f64, _: &[f64]| -> Box<dyn LoadEstimator> {
            Box::new(control::estimator::recent_window())
        }),
        "forecaster" => Box::new(|_: &str, _: f64, _: &[f64]| -> Box<dyn LoadEstimator> {
            Box::new(control::estimator::LiveEstimator::for_simulation(
                control::EstimatorKind::Forecaster,
            ))
        }),
        "ewma" => make("ewma"),
        "last" => make("last"),
        "histogram" => make("histogram"),
        other => {
            bail!("unknown estimator {other:?}; known: recent, forecaster, ewma, last, histogram")
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_predictor_forecaster_becomes_a_load_estimator() {
        let mut e =
            ForecastEstimator::new(Box::new(predictor::baselines::Ewma::default()), 60).unwrap();
        for k in 0..60 {
            e.observe(f64::from(k) * 10.0 + 0.5);
        }
        let l = e.estimate(600.0);
        assert!(l.rate_per_s > 0.05 && l.rate_per_s < 0.3, "{l:?}");
        assert!(l.interarrival_s >= 5.0 && l.interarrival_s <= 20.0, "{l:?}");
        assert_eq!(l.gaps, GapModel::Exponential);
    }

    #[test]
    fn the_simulated_forecaster_reads_bursts_as_the_live_loop_does() {
        // Bursts of 3 requests every 30 s: the live loop's reading (`control::forecast::load_of`) keeps
        // them bursts (3 every 30 s), not one request every 10 s.
        let mut e =
            ForecastEstimator::new(Box::new(predictor::baselines::Ewma::default()), 60).unwrap();
        for k in 0..40 {
            for j in 0..3 {
                e.observe(f64::from(k) * 30.0 + 0.1 * f64::from(j));
            }
        }
        let l = e.estimate(1200.0);
        let f = e.forecaster.forecast(&e.history);
        assert_eq!(l, control::forecast::load_of(&f, &e.history));
        assert!(l.interarrival_s >= 20.0, "{l:?}");
        assert!((l.rate_per_s * l.interarrival_s - 3.0).abs() < 0.5, "{l:?}");
    }
}
