//! The `Forecaster` trait, the `Forecast` it returns, and the count classes.
//!
//! Counts are forecast as *classes* with an upper edge rather than as a number: provisioning for the
//! upper edge of the predicted class is what the planner does with a forecast, and a classifier can
//! be asked for a class that covers the actual count with a chosen probability, which is how
//! under-prediction is traded against over-provisioning.
use crate::error::Result;
use crate::series::History;
use serde::{Deserialize, Serialize};

/// A forecast for the next window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Index of the predicted count class (see [`CountClasses`]).
    pub count_class: usize,
    /// Upper edge of that class: the count to provision for in the next window.
    pub count_upper: u32,
    /// Expected time (s) from the last arrival to the next one.
    pub next_interarrival_s: f32,
    /// How sure the forecaster is, in [0, 1]. For the LSTM it is its probability that the next count
    /// is at most `count_upper`; for the baselines a heuristic documented on each.
    pub confidence: f32,
}

/// Count classes by upper edge: class 0 is exactly 0, class `i` holds counts in
/// `(upper[i-1], upper[i]]`. The default edges are quarter-octaves: 0, 1, 2, 3, then
/// 2^k·{1, 1.25, 1.5, 1.75} for k = 2…22 (4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, …,
/// 2^22): the upper edge is at most 25 % above any count in its class (for counts ≥ 4), and 85
/// classes cover any realistic window. Plain powers of two (0, 1, 2, 4, 8, …) are available as
/// [`CountClasses::powers_of_two`]; they are too coarse for a classifier to trade under- against
/// over-provisioning finely (a class can over-provision by 2×). Counts above the last edge fall
/// into the last class (and are under-predicted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountClasses {
    uppers: Vec<u32>,
}

impl Default for CountClasses {
    fn default() -> Self {
        let mut uppers = vec![0, 1, 2, 3];
        for k in 2..=22u32 {
            let base = 1u32 << k;
            uppers.extend([base, base + base / 4, base + base / 2, base + 3 * base / 4]);
        }
        // The last octave's steps above 2^22 are not needed.
        uppers.truncate(uppers.len() - 3);
        Self { uppers }
    }
}

impl CountClasses {
    /// Edges 0, 1, 2, 4, 8, …, 2^22.
    pub fn powers_of_two() -> Self {
        let mut uppers = vec![0];
        uppers.extend((0..=22).map(|k| 1u32 << k));
        Self { uppers }
    }

    /// Classes with the given strictly ascending upper edges starting at 0.
    pub fn from_uppers(uppers: Vec<u32>) -> Result<Self> {
        if uppers.first() != Some(&0) || uppers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(crate::Error::Invalid(
                "class edges must start at 0 and be strictly ascending".into(),
            ));
        }
        Ok(Self { uppers })
    }
    /// Number of classes.
    pub fn len(&self) -> usize {
        self.uppers.len()
    }
    /// Always false (there is at least the zero class).
    pub fn is_empty(&self) -> bool {
        self.uppers.is_empty()
    }
    /// The class holding `count`.
    pub fn class_of(&self, count: u32) -> usize {
        // First edge >= count; counts beyond the last edge clamp to the last class.
        self.uppers
            .partition_point(|&u| u < count)
            .min(self.uppers.len() - 1)
    }
    /// Upper edge of `class` (clamped to the last class).
    pub fn upper(&self, class: usize) -> u32 {
        self.uppers[class.min(self.uppers.len() - 1)]
    }
    /// The edges.
    pub fn uppers(&self) -> &[u32] {
        &self.uppers
    }
    /// A point estimate turned into a forecast class: the class holding `ceil(estimate)`.
    pub fn class_for_estimate(&self, estimate: f64) -> usize {
        let c = if estimate.is_finite() && estimate > 0.0 {
            estimate.ceil().min(f64::from(u32::MAX)) as u32
        } else {
            0
        };
        self.class_of(c)
    }
}

/// Something that forecasts the next window's count class and the next inter-arrival time.
pub trait Forecaster: Send + Sync {
    /// A short name for tables.
    fn name(&self) -> String;
    /// Fits on a training history. Baselines that need no fitting keep the default.
    fn fit(&mut self, _train: &History) -> Result<()> {
        Ok(())
    }
    /// Forecast for the window that starts now, given everything observed so far.
    fn forecast(&self, history: &History) -> Forecast;
    /// The class probabilities behind the forecast, for forecasters that have them (the LSTM);
    /// evaluation uses them to sweep the under/over-provisioning trade-off.
    fn class_distribution(&self, _history: &History) -> Option<Vec<f32>> {
        None
    }
}

/// Confidence heuristic for point-estimate baselines: 1 / (1 + CV) of the last `n` windows, so a
/// steady series gives ≈ 1 and a bursty one less.
pub(crate) fn dispersion_confidence(windows: &[u32], n: usize) -> f32 {
    let tail = &windows[windows.len().saturating_sub(n)..];
    if tail.len() < 2 {
        return 0.5;
    }
    let k = tail.len() as f64;
    let mean = tail.iter().map(|&c| f64::from(c)).sum::<f64>() / k;
    if mean <= 0.0 {
        return 1.0;
    }
    let var = tail
        .iter()
        .map(|&c| (f64::from(c) - mean).powi(2))
        .sum::<f64>()
        / k;
    (1.0 / (1.0 + var.sqrt() / mean)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_edges() {
        let q = CountClasses::default();
        assert_eq!(
            &q.uppers()[..14],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20]
        );
        assert_eq!(q.len(), 4 + 20 * 4 + 1);
        assert_eq!(q.upper(q.len() - 1), 1 << 22);
        assert_eq!(q.upper(q.class_of(9)), 10);
        assert_eq!(q.upper(q.class_of(1000)), 1024);
        let c = CountClasses::powers_of_two();
        assert_eq!(c.len(), 24);
        assert_eq!(c.class_of(0), 0);
        assert_eq!(c.class_of(1), 1);
        assert_eq!(c.class_of(2), 2);
        assert_eq!(c.class_of(3), 3);
        assert_eq!(c.upper(3), 4);
        assert_eq!(c.class_of(5), 4);
        assert_eq!(c.upper(4), 8);
        assert_eq!(c.class_of(u32::MAX), 23);
        assert_eq!(c.class_for_estimate(2.1), 3);
        assert_eq!(c.class_for_estimate(f64::NAN), 0);
        assert!(CountClasses::from_uppers(vec![1, 2]).is_err());
        assert!(CountClasses::from_uppers(vec![0, 2, 2]).is_err());
    }
}
