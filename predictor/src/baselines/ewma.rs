//! Exponentially weighted moving average of window counts and of gaps.
use crate::forecast::{CountClasses, Forecast, Forecaster, dispersion_confidence};
use crate::series::History;

/// EWMA with smoothing `alpha` (weight of the newest value).
#[derive(Debug, Clone)]
pub struct Ewma {
    /// Weight of the newest observation.
    pub alpha: f64,
    classes: CountClasses,
}

impl Default for Ewma {
    fn default() -> Self {
        Self::new(0.3)
    }
}

impl Ewma {
    /// EWMA with the given `alpha` in (0, 1].
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha: alpha.clamp(1e-3, 1.0),
            classes: CountClasses::default(),
        }
    }

    /// EWMA over the tail of `xs`: older values have weight below 1e-9 and are skipped, which keeps
    /// a forecast O(1) in the history length.
    fn smooth<T: Copy + Into<f64>>(&self, xs: &[T]) -> Option<f64> {
        let keep = ((1e-9f64).ln() / (1.0 - self.alpha).max(1e-12).ln()).ceil() as usize;
        let tail = &xs[xs.len().saturating_sub(keep.max(1))..];
        let (first, rest) = tail.split_first()?;
        let mut s: f64 = (*first).into();
        for &x in rest {
            s = self.alpha * x.into() + (1.0 - self.alpha) * s;
        }
        Some(s)
    }
}

impl Forecaster for Ewma {
    fn name(&self) -> String {
        format!("ewma(a={})", self.alpha)
    }
    fn forecast(&self, h: &History) -> Forecast {
        let est = self.smooth(h.windows()).unwrap_or(0.0);
        let class = self.classes.class_for_estimate(est);
        let gap = self.smooth(h.gaps_s()).unwrap_or(f64::from(h.window_s()));
        Forecast {
            count_class: class,
            count_upper: self.classes.upper(class),
            next_interarrival_s: h.condition_gap(gap as f32),
            // Heuristic: 1 / (1 + CV) of the last 16 windows.
            confidence: dispersion_confidence(h.windows(), 16),
        }
    }
}
