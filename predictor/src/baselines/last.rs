//! Last value: the next window repeats the last one, the next gap repeats the last gap.
use crate::forecast::{CountClasses, Forecast, Forecaster, dispersion_confidence};
use crate::series::History;

/// The naive baseline.
#[derive(Debug, Clone, Default)]
pub struct LastValue {
    classes: CountClasses,
}

impl Forecaster for LastValue {
    fn name(&self) -> String {
        "last-value".into()
    }
    fn forecast(&self, h: &History) -> Forecast {
        let last = h.windows().last().copied().unwrap_or(0);
        let class = self.classes.class_of(last);
        let gap = h.gaps_s().last().copied().unwrap_or(h.window_s() as f32);
        Forecast {
            count_class: class,
            count_upper: self.classes.upper(class),
            next_interarrival_s: h.condition_gap(gap),
            // Heuristic: 1 / (1 + CV) of the last 16 windows.
            confidence: dispersion_confidence(h.windows(), 16),
        }
    }
}
