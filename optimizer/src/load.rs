//! The load a plan is made for: the forecast the predictor hands the planner (DESIGN §3, §8).
//!
//! Arrivals come as *bursts*: on average one burst every `interarrival_s` seconds, each of
//! `m = max(1, round(rate · interarrival))` simultaneous DAG requests (the paper's "count per window" and
//! "inter-arrival time" pair; with `interarrival = 1/rate` every burst is a single request). Gaps between
//! bursts are either exponential with that mean (the default: memoryless, so a keep-alive window `T` is
//! used again with probability `1 − e^{−T/g}`) or deterministic (a perfectly predicted gap, as the
//! oracle "OPT" with knowledge of the future sees it).
use serde::{Deserialize, Serialize};

/// The distribution of the gap between bursts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapModel {
    Exponential,
    Deterministic,
}

/// A forecast of the load on one DAG.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Mean DAG requests per second.
    pub rate_per_s: f64,
    /// Mean seconds between bursts of requests.
    pub interarrival_s: f64,
    pub gaps: GapModel,
}

/// Why a load was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("{what} = {value} must be a positive finite number")]
    NotPositive { what: &'static str, value: f64 },
    #[error("inter-arrival {interarrival_s} s is shorter than one request at rate {rate_per_s}/s (1/rate = {} s)", 1.0 / rate_per_s)]
    Inconsistent {
        rate_per_s: f64,
        interarrival_s: f64,
    },
}

impl Load {
    /// From a rate and/or a mean inter-arrival time; whichever is missing is the other's reciprocal, and
    /// with neither the load is one request per second.
    pub fn new(rate_per_s: Option<f64>, interarrival_s: Option<f64>) -> Result<Load, LoadError> {
        let check = |what, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(LoadError::NotPositive { what, value: v })
            }
        };
        let rate = rate_per_s.map(|r| check("rate", r)).transpose()?;
        let gap = interarrival_s
            .map(|g| check("inter-arrival", g))
            .transpose()?;
        let (rate_per_s, interarrival_s) = match (rate, gap) {
            (Some(r), Some(g)) => (r, g),
            (Some(r), None) => (r, 1.0 / r),
            (None, Some(g)) => (1.0 / g, g),
            (None, None) => (1.0, 1.0),
        };
        if rate_per_s * interarrival_s < 1.0 - 1e-9 {
            return Err(LoadError::Inconsistent {
                rate_per_s,
                interarrival_s,
            });
        }
        Ok(Load {
            rate_per_s,
            interarrival_s,
            gaps: GapModel::Exponential,
        })
    }

    pub fn with_gaps(mut self, gaps: GapModel) -> Load {
        self.gaps = gaps;
        self
    }

    /// Requests per burst.
    pub fn burst_size(&self) -> u32 {
        // Bounded so that absurd inputs cannot overflow the batch arithmetic.
        (self.rate_per_s * self.interarrival_s)
            .round()
            .clamp(1.0, 1e6) as u32
    }

    /// Bursts per hour.
    pub fn bursts_per_hour(&self) -> f64 {
        3600.0 / self.interarrival_s
    }

    /// P(gap > t).
    pub fn p_gap_exceeds(&self, t: f64) -> f64 {
        match self.gaps {
            GapModel::Exponential => (-t / self.interarrival_s).exp(),
            GapModel::Deterministic => {
                if self.interarrival_s > t {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// E[min(gap, t)]: the expected idle time of a replica kept alive for `t` after use.
    pub fn expected_idle(&self, t: f64) -> f64 {
        match self.gaps {
            GapModel::Exponential => self.interarrival_s * (1.0 - (-t / self.interarrival_s).exp()),
            GapModel::Deterministic => self.interarrival_s.min(t),
        }
    }

    /// The shortest keep-alive window that is warm for a fraction `q` of the bursts.
    pub fn warm_window(&self, q: f64) -> f64 {
        match self.gaps {
            GapModel::Exponential => -self.interarrival_s * (1.0 - q).max(1e-12).ln(),
            GapModel::Deterministic => self.interarrival_s,
        }
    }
}

/// P(N ≥ k) for N ~ Poisson(`mu`): the chance that at least `k` bursts arrive in a window where `mu`
/// are expected.
pub fn poisson_at_least(mu: f64, k: u32) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    // 1 − Σ_{i<k} e^{−μ} μ^i / i!, summed in increasing terms; small k only (a few rounds of replicas).
    let mut term = (-mu).exp();
    let mut below = term;
    for i in 1..k {
        term *= mu / f64::from(i);
        below += term;
    }
    (1.0 - below).max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_missing_half() {
        let l = Load::new(Some(4.0), None).unwrap();
        assert_eq!((l.interarrival_s, l.burst_size()), (0.25, 1));
        let l = Load::new(Some(8.0), Some(2.0)).unwrap();
        assert_eq!(l.burst_size(), 16);
        assert!(Load::new(Some(1.0), Some(0.1)).is_err());
        assert!(Load::new(Some(-1.0), None).is_err());
    }

    #[test]
    fn poisson_tail() {
        assert_eq!(poisson_at_least(0.5, 0), 1.0);
        assert!((poisson_at_least(0.5, 1) - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        // P(N ≥ 2) = 1 − e^{−μ}(1 + μ).
        assert!((poisson_at_least(0.5, 2) - (1.0 - (-0.5f64).exp() * 1.5)).abs() < 1e-12);
        assert_eq!(poisson_at_least(0.0, 3), 0.0);
    }

    #[test]
    fn warm_window_is_warm_for_q() {
        let l = Load::new(None, Some(10.0)).unwrap();
        let t = l.warm_window(0.99);
        assert!((l.p_gap_exceeds(t) - 0.01).abs() < 1e-12);
        assert!(l.expected_idle(t) < 10.0 && l.expected_idle(t) > 9.8);
        let d = l.with_gaps(GapModel::Deterministic);
        assert_eq!(d.p_gap_exceeds(d.warm_window(0.99)), 0.0);
    }
}
