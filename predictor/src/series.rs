//! Invocation series and the incremental `History` that forecasters read.
//!
//! A [`Series`] is a function's invocation counts per step (1 s for generated workloads, 60 s for the
//! Azure CSV). A [`History`] is what a forecaster sees at run time: the counts aggregated into
//! forecast windows plus the *events* (non-zero steps) with their gaps, maintained incrementally so
//! that a forecast only reads the tail and stays in the microsecond range.
use crate::error::{Error, Result};

/// Seconds in a day; the diurnal features and generators use it.
pub const DAY_S: u64 = 86_400;

/// One function's invocation counts at a fixed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// A stable name (the Azure `HashFunction`, or a generated name).
    pub name: String,
    /// Seconds per entry of `counts`.
    pub step_s: u32,
    /// Invocations per step; entry 0 starts at midnight of day 0.
    pub counts: Vec<u32>,
}

impl Series {
    /// Total covered time in seconds.
    pub fn duration_s(&self) -> u64 {
        self.counts.len() as u64 * u64::from(self.step_s)
    }

    /// Total number of invocations.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Counts summed into windows of `window_s` seconds (a multiple of the step). A trailing
    /// partial window is dropped, so every window covers the same time.
    pub fn aggregate(&self, window_s: u32) -> Result<Vec<u32>> {
        let per = steps_per_window(self.step_s, window_s)?;
        Ok(self
            .counts
            .chunks_exact(per as usize)
            .map(|c| c.iter().fold(0u32, |a, &b| a.saturating_add(b)))
            .collect())
    }

    /// Arrival times in seconds, the `k` arrivals of a step spread evenly inside it (deterministic,
    /// for replaying a series as requests).
    pub fn arrival_times_s(&self) -> Vec<f64> {
        let step = f64::from(self.step_s);
        let mut out = Vec::with_capacity(self.total().min(10_000_000) as usize);
        for (i, &c) in self.counts.iter().enumerate() {
            let t0 = i as f64 * step;
            for j in 0..c {
                out.push(t0 + (f64::from(j) + 0.5) / f64::from(c) * step);
            }
        }
        out
    }

    /// Coefficient of variation of the inter-arrival times of [`Series::arrival_times_s`]
    /// (`None` with fewer than three arrivals).
    pub fn interarrival_cv(&self) -> Option<f64> {
        let t = self.arrival_times_s();
        if t.len() < 3 {
            return None;
        }
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        (mean > 0.0).then(|| var.sqrt() / mean)
    }

    /// The series cut to its first `steps` entries and the rest (train/test split).
    pub fn split_at(&self, steps: usize) -> (Series, Series) {
        let k = steps.min(self.counts.len());
        let head = Series {
            name: self.name.clone(),
            step_s: self.step_s,
            counts: self.counts[..k].to_vec(),
        };
        let tail = Series {
            name: self.name.clone(),
            step_s: self.step_s,
            counts: self.counts[k..].to_vec(),
        };
        (head, tail)
    }
}

fn steps_per_window(step_s: u32, window_s: u32) -> Result<u32> {
    if step_s == 0 || window_s == 0 || !window_s.is_multiple_of(step_s) {
        return Err(Error::Invalid(format!(
            "window of {window_s} s is not a positive multiple of the series step of {step_s} s"
        )));
    }
    Ok(window_s / step_s)
}

/// What a forecaster sees: completed windows and the events (non-zero steps) so far.
///
/// An *event* is a step with at least one invocation; its gap is the time since the previous
/// event's step (the first event's gap is its time since the start). This is the artifact's
/// inter-arrival encoding with 1 s buckets, so gaps are in multiples of the step.
#[derive(Debug, Clone)]
pub struct History {
    step_s: u32,
    window_s: u32,
    steps_per_window: u32,
    /// Time of day (s) at which step 0 starts, for the diurnal features.
    start_tod_s: u64,
    windows: Vec<u32>,
    current: u32,
    current_steps: u32,
    steps: u64,
    gaps_s: Vec<f32>,
    event_counts: Vec<u32>,
    last_event_step: Option<u64>,
}

impl History {
    /// An empty history for a series with `step_s` and forecast windows of `window_s`.
    pub fn new(step_s: u32, window_s: u32) -> Result<Self> {
        let steps_per_window = steps_per_window(step_s, window_s)?;
        Ok(Self {
            step_s,
            window_s,
            steps_per_window,
            start_tod_s: 0,
            windows: Vec::new(),
            current: 0,
            current_steps: 0,
            steps: 0,
            gaps_s: Vec::new(),
            event_counts: Vec::new(),
            last_event_step: None,
        })
    }

    /// A history holding all of `series`.
    pub fn from_series(series: &Series, window_s: u32) -> Result<Self> {
        let mut h = Self::new(series.step_s, window_s)?;
        h.extend(&series.counts);
        Ok(h)
    }

    /// Appends one step's count; returns the closed window's count when this step completes one.
    pub fn push(&mut self, count: u32) -> Option<u32> {
        if count > 0 {
            let gap_steps = match self.last_event_step {
                Some(prev) => self.steps - prev,
                None => self.steps + 1,
            };
            self.gaps_s
                .push((gap_steps * u64::from(self.step_s)) as f32);
            self.event_counts.push(count);
            self.last_event_step = Some(self.steps);
        }
        self.steps += 1;
        self.current = self.current.saturating_add(count);
        self.current_steps += 1;
        if self.current_steps == self.steps_per_window {
            let closed = self.current;
            self.windows.push(closed);
            self.current = 0;
            self.current_steps = 0;
            Some(closed)
        } else {
            None
        }
    }

    /// Appends many steps.
    pub fn extend(&mut self, counts: &[u32]) {
        for &c in counts {
            self.push(c);
        }
    }

    /// Step of the underlying series in seconds.
    pub fn step_s(&self) -> u32 {
        self.step_s
    }
    /// Forecast window in seconds.
    pub fn window_s(&self) -> u32 {
        self.window_s
    }
    /// Completed window counts, oldest first.
    pub fn windows(&self) -> &[u32] {
        &self.windows
    }
    /// Gaps (s) of the events so far, oldest first.
    pub fn gaps_s(&self) -> &[f32] {
        &self.gaps_s
    }
    /// Invocation counts of the events so far, aligned with [`History::gaps_s`].
    pub fn event_counts(&self) -> &[u32] {
        &self.event_counts
    }
    /// Seconds since the start of the history.
    pub fn now_s(&self) -> u64 {
        self.steps * u64::from(self.step_s)
    }
    /// Seconds since the last event's step began (`None` before the first event). The next event
    /// is at the current step or later, so the gap it closes is at least this long.
    pub fn since_last_event_s(&self) -> Option<u64> {
        self.last_event_step
            .map(|s| (self.steps - s) * u64::from(self.step_s))
    }
    /// Time of day (s) at the start of window `index`.
    pub fn window_tod_s(&self, index: usize) -> u64 {
        (self.start_tod_s + index as u64 * u64::from(self.window_s)) % DAY_S
    }
    /// Clamps a predicted gap to what is still possible given the time already elapsed since the
    /// last event (and to at least one step).
    pub fn condition_gap(&self, predicted_s: f32) -> f32 {
        let floor = self
            .since_last_event_s()
            .unwrap_or(0)
            .max(u64::from(self.step_s)) as f32;
        predicted_s.max(floor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_and_events() {
        let s = Series {
            name: "f".into(),
            step_s: 1,
            counts: vec![0, 2, 0, 0, 1, 3, 0],
        };
        assert_eq!(s.aggregate(2).unwrap(), vec![2, 0, 4]);
        assert!(s.aggregate(0).is_err());
        let h = History::from_series(&s, 2).unwrap();
        assert_eq!(h.windows(), &[2, 0, 4]);
        assert_eq!(h.gaps_s(), &[2.0, 3.0, 1.0]);
        assert_eq!(h.event_counts(), &[2, 1, 3]);
        assert_eq!(h.since_last_event_s(), Some(2));
        assert_eq!(h.condition_gap(0.5), 2.0);
        assert_eq!(h.condition_gap(9.0), 9.0);
    }

    #[test]
    fn arrivals_spread_within_step() {
        let s = Series {
            name: "f".into(),
            step_s: 2,
            counts: vec![2, 0, 1],
        };
        assert_eq!(s.arrival_times_s(), vec![0.5, 1.5, 5.0]);
    }
}
