//! The hybrid histogram policy of Shahrad et al. ("Serverless in the Wild", ATC'20), restated.
//!
//! Per application it keeps a histogram of idle times (gaps between invocations) with bins of one
//! series step (the trace's minute for Azure data, a second for generated workloads) over a 4-hour
//! range, and derives a *pre-warm* window (the 5th percentile, 10 % earlier) and a *keep-alive*
//! window (the 99th percentile, 10 % longer). Fallbacks, as in the paper:
//! - too few idle times (< 10), or a histogram that is not representative (CV of the bin counts below
//!   2, i.e. idle times spread flat over the range): a fixed 10-minute keep-alive, no pre-warm;
//! - most idle times beyond the range (out of bound): the paper switches to ARIMA; we use the mean of
//!   the last 8 out-of-bound idle times, a time-series estimate without ARIMA's fitting.
//!
//! The policy has no count forecast of its own. As a count forecaster we give it the same
//! head/tail idea: provision for the 99th percentile of window counts over the same 4 hours. The
//! inter-arrival forecast is the histogram's median idle time.
use crate::forecast::{CountClasses, Forecast, Forecaster};
use crate::series::History;

const RANGE_S: f64 = 4.0 * 3600.0;
/// Idle times considered: the most recent ones, so a forecast stays bounded in time.
const MAX_SAMPLES: usize = 2048;
const MIN_SAMPLES: usize = 10;
const CV_THRESHOLD: f64 = 2.0;
const FIXED_KEEPALIVE_S: f64 = 600.0;

/// Which branch of the policy produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Percentiles of a representative histogram.
    Histogram,
    /// Fixed keep-alive (too few or unrepresentative samples).
    FixedKeepAlive,
    /// Most idle times out of the histogram's range.
    OutOfBound,
}

/// The policy's windows for the next idle period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepAlivePolicy {
    /// Unload after the last invocation and load again this many seconds later.
    pub prewarm_s: f64,
    /// Keep loaded until this many seconds after pre-warm.
    pub keepalive_s: f64,
    /// Expected idle time (the median), our inter-arrival forecast.
    pub expected_idle_s: f64,
    /// Branch taken.
    pub kind: PolicyKind,
}

/// The hybrid histogram forecaster.
#[derive(Debug, Clone)]
pub struct HybridHistogram {
    /// Head percentile for pre-warm (paper: 5).
    pub head_pct: f64,
    /// Tail percentile for keep-alive and for the count forecast (paper: 99).
    pub tail_pct: f64,
    classes: CountClasses,
}

impl Default for HybridHistogram {
    fn default() -> Self {
        Self {
            head_pct: 5.0,
            tail_pct: 99.0,
            classes: CountClasses::default(),
        }
    }
}

/// Percentile (nearest rank) of an ascending slice.
fn percentile(sorted: &[f64], pct: f64) -> f64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl HybridHistogram {
    /// The pre-warm / keep-alive decision for the history's idle times.
    pub fn policy(&self, h: &History) -> KeepAlivePolicy {
        let gaps = h.gaps_s();
        let recent = &gaps[gaps.len().saturating_sub(MAX_SAMPLES)..];
        let fixed = |expected: f64| KeepAlivePolicy {
            prewarm_s: 0.0,
            keepalive_s: FIXED_KEEPALIVE_S,
            expected_idle_s: expected,
            kind: PolicyKind::FixedKeepAlive,
        };
        if recent.len() < MIN_SAMPLES {
            let mean = if recent.is_empty() {
                FIXED_KEEPALIVE_S
            } else {
                recent.iter().map(|&g| f64::from(g)).sum::<f64>() / recent.len() as f64
            };
            return fixed(mean);
        }
        let (mut inb, oob): (Vec<f64>, Vec<f64>) = recent
            .iter()
            .map(|&g| f64::from(g))
            .partition(|&g| g <= RANGE_S);
        if oob.len() * 2 > recent.len() {
            let last = &oob[oob.len().saturating_sub(8)..];
            let mean = last.iter().sum::<f64>() / last.len() as f64;
            return KeepAlivePolicy {
                prewarm_s: 0.9 * mean,
                keepalive_s: 0.2 * mean,
                expected_idle_s: mean,
                kind: PolicyKind::OutOfBound,
            };
        }
        // Representativeness: CV of the bin counts over the range's bins. A peaked histogram has a
        // high CV; idle times spread evenly over the range give a low one.
        let bin = f64::from(h.step_s());
        let bins = (RANGE_S / bin).ceil() as usize;
        inb.sort_by(f64::total_cmp);
        // Bin counts from runs of the sorted idle times (no map needed).
        let mean = inb.len() as f64 / bins as f64;
        let (mut ss, mut occupied, mut run, mut cur) = (0.0, 0usize, 0usize, usize::MAX);
        for &g in &inb {
            let b = ((g / bin) as usize).min(bins - 1);
            if b != cur {
                if run > 0 {
                    ss += (run as f64 - mean).powi(2);
                    occupied += 1;
                }
                cur = b;
                run = 0;
            }
            run += 1;
        }
        if run > 0 {
            ss += (run as f64 - mean).powi(2);
            occupied += 1;
        }
        ss += (bins - occupied) as f64 * mean * mean;
        let cv = (ss / bins as f64).sqrt() / mean;
        let median = percentile(&inb, 50.0);
        if cv < CV_THRESHOLD {
            return fixed(median);
        }
        let head = percentile(&inb, self.head_pct) * 0.9;
        let tail = percentile(&inb, self.tail_pct) * 1.1;
        KeepAlivePolicy {
            prewarm_s: head,
            keepalive_s: (tail - head).max(bin),
            expected_idle_s: median,
            kind: PolicyKind::Histogram,
        }
    }
}

impl Forecaster for HybridHistogram {
    fn name(&self) -> String {
        "hybrid-histogram".into()
    }
    fn forecast(&self, h: &History) -> Forecast {
        let w = h.windows();
        let per_range = (RANGE_S / f64::from(h.window_s())).ceil() as usize;
        let tail = &w[w.len().saturating_sub(per_range.max(1))..];
        let est = if tail.len() < MIN_SAMPLES {
            tail.iter().copied().max().unwrap_or(0)
        } else {
            let mut s: Vec<f64> = tail.iter().map(|&c| f64::from(c)).collect();
            s.sort_by(f64::total_cmp);
            percentile(&s, self.tail_pct) as u32
        };
        let class = self.classes.class_of(est);
        let p = self.policy(h);
        Forecast {
            count_class: class,
            count_upper: self.classes.upper(class),
            next_interarrival_s: h.condition_gap(p.expected_idle_s as f32),
            // Heuristic: a representative histogram is trusted, the fallbacks are not.
            confidence: if p.kind == PolicyKind::Histogram {
                0.9
            } else {
                0.5
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::series::Series;

    fn hist(counts: Vec<u32>) -> History {
        History::from_series(
            &Series {
                name: "t".into(),
                step_s: 1,
                counts,
            },
            60,
        )
        .unwrap()
    }

    #[test]
    fn periodic_idle_times_give_histogram_windows() {
        // An invocation every 30 s: a single-bin histogram.
        let mut c = vec![0u32; 3600];
        for i in (0..3600).step_by(30) {
            c[i] = 1;
        }
        let p = HybridHistogram::default().policy(&hist(c));
        assert_eq!(p.kind, PolicyKind::Histogram);
        assert!((p.prewarm_s - 27.0).abs() < 1e-9);
        assert!((p.expected_idle_s - 30.0).abs() < 1e-9);
    }

    #[test]
    fn fallbacks() {
        let few = HybridHistogram::default().policy(&hist(vec![1, 0, 1, 0]));
        assert_eq!(few.kind, PolicyKind::FixedKeepAlive);
        assert_eq!(few.keepalive_s, FIXED_KEEPALIVE_S);
        // Idle times of 5 h: out of the 4 h range.
        let mut c = vec![0u32; 5 * 3600 * 12];
        for i in (0..c.len()).step_by(5 * 3600) {
            c[i] = 1;
        }
        let oob = HybridHistogram::default().policy(&hist(c));
        assert_eq!(oob.kind, PolicyKind::OutOfBound);
        assert!((oob.expected_idle_s - 18000.0).abs() < 1e-9);
    }
}
