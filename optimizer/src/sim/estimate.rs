//! Load estimators: observed DAG arrivals in, the [`Load`] a planner takes out.
//!
//! The simulator and the live control loop hand the same estimator the same observations (arrival
//! timestamps of DAG requests, in seconds), so the decision code is one code path. The predictor crate's
//! forecasters plug in through [`LoadEstimator`] (the provider adapts them); this module ships two that
//! need nothing else:
//! - [`RecentWindow`]: rate and mean burst gap over a trailing window, optionally inflated so the
//!   exponential gap model's warm quantile covers the *observed* gap quantile (heavy-tailed traces);
//! - [`Oracle`]: the next burst's true gap and size from the future arrivals ("OPT" in the paper, whose
//!   oracle predictor returns the actual next inter-arrival time and count).
use std::collections::VecDeque;

use crate::load::{GapModel, Load};

/// Arrivals closer than this belong to one burst (the control loop's tick: one decision per second).
pub const BURST_GAP_S: f64 = 1.0;

/// Turns observed arrivals into a forecast [`Load`].
pub trait LoadEstimator: Send {
    /// A short name for tables.
    fn name(&self) -> String;
    /// One DAG request arrived at `t` (seconds; non-decreasing across calls).
    fn observe(&mut self, t: f64);
    /// The load to plan for from `now` on.
    fn estimate(&mut self, now: f64) -> Load;
    /// The start and size of the next burst after `now`, when the estimator knows it (only an oracle
    /// does): pre-warms may then start before the requests arrive.
    fn next_burst(&self, _now: f64) -> Option<(f64, u32)> {
        None
    }
}

/// Groups sorted arrival times into bursts `(start, count)`: a burst continues while the gap to the
/// previous arrival is below [`BURST_GAP_S`].
pub fn bursts(arrivals: &[f64]) -> Vec<(f64, u32)> {
    let mut out: Vec<(f64, u32)> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for &t in arrivals {
        match out.last_mut() {
            Some(b) if t - last < BURST_GAP_S => b.1 += 1,
            _ => out.push((t, 1)),
        }
        last = t;
    }
    out
}

/// Rate and mean burst gap over the last `window_s` seconds.
#[derive(Clone, Debug)]
pub struct RecentWindow {
    pub window_s: f64,
    /// When set, the mean gap is raised (never lowered) so that the exponential model's `q`-quantile
    /// equals the observed `q`-quantile of burst gaps in the window. Without it the planner, which
    /// assumes memoryless gaps, under-sizes keep-alive windows on heavy-tailed traces and the entry goes
    /// cold more often than its SLA quantile allows.
    pub tail_quantile: Option<f64>,
    /// Arrivals inside the window.
    arrivals: VecDeque<f64>,
    /// Burst starts inside the window (plus the one before it, for the first gap).
    starts: VecDeque<f64>,
    last: f64,
}

impl RecentWindow {
    pub fn new(window_s: f64, tail_quantile: Option<f64>) -> RecentWindow {
        RecentWindow {
            window_s: window_s.max(1.0),
            tail_quantile,
            arrivals: VecDeque::new(),
            starts: VecDeque::new(),
            last: f64::NEG_INFINITY,
        }
    }

    fn trim(&mut self, now: f64) {
        let from = now - self.window_s;
        while self.arrivals.front().is_some_and(|&t| t < from) {
            self.arrivals.pop_front();
        }
        // Keep one start before the window so the oldest gap inside it is known.
        while self.starts.len() > 1 && self.starts[1] < from {
            self.starts.pop_front();
        }
    }
}

impl LoadEstimator for RecentWindow {
    fn name(&self) -> String {
        format!("recent-{}s", self.window_s)
    }

    fn observe(&mut self, t: f64) {
        if t - self.last >= BURST_GAP_S {
            self.starts.push_back(t);
        }
        self.last = t;
        self.arrivals.push_back(t);
    }

    fn estimate(&mut self, now: f64) -> Load {
        self.trim(now);
        let w = self.window_s;
        // Half a pseudo-request keeps an empty window finite: "less than one request per window".
        let n = (self.arrivals.len() as f64).max(0.5);
        let rate = n / w;
        let gaps: Vec<f64> = self.starts.iter().zip(self.starts.iter().skip(1)).map(|(a, b)| b - a).collect();
        // The open gap since the last burst counts too: a long silence must lengthen the estimate.
        let open = self.starts.back().map_or(w, |&s| (now - s).max(0.0));
        let n_bursts = self.starts.iter().filter(|&&s| s >= now - w).count().max(1) as f64;
        let mut mean_gap = (w / n_bursts).max(open.min(w));
        if let Some(q) = self.tail_quantile
            && gaps.len() >= 4
        {
            let mut sorted = gaps.clone();
            sorted.sort_by(f64::total_cmp);
            let idx = ((sorted.len() as f64 - 1.0) * q).ceil() as usize;
            let gq = sorted[idx.min(sorted.len() - 1)];
            // Exponential: quantile q at −g·ln(1−q).
            mean_gap = mean_gap.max(gq / -(1.0 - q).max(1e-9).ln());
        }
        let mean_gap = mean_gap.max(1.0 / rate).max(1e-3);
        Load { rate_per_s: rate, interarrival_s: mean_gap, gaps: GapModel::Exponential }
    }
}

/// Knows every future arrival: the load it reports is the next burst's actual gap and size, with
/// deterministic gaps, and it tells the simulator when the next burst comes so pre-warms can be placed
/// before it.
#[derive(Clone, Debug)]
pub struct Oracle {
    bursts: Vec<(f64, u32)>,
    /// Index of the first burst starting after the last `estimate`/`observe` time.
    cursor: usize,
}

impl Oracle {
    /// `arrivals` sorted ascending (the whole run's).
    pub fn new(arrivals: &[f64]) -> Oracle {
        Oracle { bursts: bursts(arrivals), cursor: 0 }
    }

    fn advance(&mut self, now: f64) {
        while self.cursor < self.bursts.len() && self.bursts[self.cursor].0 <= now {
            self.cursor += 1;
        }
    }

    fn next_after(&self, now: f64) -> Option<(f64, u32)> {
        let i = self.bursts.partition_point(|b| b.0 <= now);
        self.bursts.get(i).copied()
    }
}

impl LoadEstimator for Oracle {
    fn name(&self) -> String {
        "oracle".into()
    }

    fn observe(&mut self, t: f64) {
        self.advance(t);
    }

    fn estimate(&mut self, now: f64) -> Load {
        self.advance(now);
        // The gap that matters is from the current (or last) burst to the next one.
        let prev = self.cursor.checked_sub(1).map(|i| self.bursts[i].0);
        match (prev, self.bursts.get(self.cursor)) {
            (Some(p), Some(&(next, m))) => {
                let gap = (next - p).max(1e-3);
                Load { rate_per_s: f64::from(m) / gap, interarrival_s: gap, gaps: GapModel::Deterministic }
            }
            (None, Some(&(next, m))) => {
                let gap = (next - now).max(1.0);
                Load { rate_per_s: f64::from(m) / gap, interarrival_s: gap, gaps: GapModel::Deterministic }
            }
            // Nothing more arrives: a very long gap, so nothing is kept warm.
            (_, None) => Load { rate_per_s: 1e-6, interarrival_s: 1e6, gaps: GapModel::Deterministic },
        }
    }

    fn next_burst(&self, now: f64) -> Option<(f64, u32)> {
        self.next_after(now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn groups_bursts() {
        assert_eq!(bursts(&[0.0, 0.2, 0.9, 5.0, 20.0, 20.5]), vec![(0.0, 3), (5.0, 1), (20.0, 2)]);
    }

    #[test]
    fn recent_window_measures_rate_and_gap() {
        let mut e = RecentWindow::new(100.0, None);
        for k in 0..10 {
            e.observe(f64::from(k) * 10.0);
            e.observe(f64::from(k) * 10.0 + 0.1);
        }
        let l = e.estimate(99.0);
        assert!((l.rate_per_s - 0.2).abs() < 1e-9, "{l:?}");
        assert!((l.interarrival_s - 10.0).abs() < 1e-9, "{l:?}");
        assert_eq!(l.burst_size(), 2);
        // Silence lengthens the gap estimate.
        assert!(e.estimate(400.0).interarrival_s >= 100.0);
    }

    #[test]
    fn tail_quantile_raises_the_mean_gap() {
        let mut plain = RecentWindow::new(400.0, None);
        let mut tail = RecentWindow::new(400.0, Some(0.95));
        // 9 gaps of 5 s, then one of 200 s: mean ~ 24 s but the tail needs far more.
        let (mut t, mut last) = (0.0, 0.0);
        for k in 0..20 {
            plain.observe(t);
            tail.observe(t);
            last = t;
            t += if k % 10 == 9 { 200.0 } else { 5.0 };
        }
        let (a, b) = (plain.estimate(last + 0.5), tail.estimate(last + 0.5));
        assert!(b.interarrival_s > a.interarrival_s * 1.5, "{a:?} {b:?}");
    }

    #[test]
    fn oracle_reports_the_next_gap() {
        let mut o = Oracle::new(&[0.0, 0.5, 30.0, 31.5]);
        o.observe(0.0);
        o.observe(0.5);
        let l = o.estimate(1.0);
        assert_eq!(l.gaps, GapModel::Deterministic);
        assert!((l.interarrival_s - 30.0).abs() < 1e-9);
        assert_eq!(o.next_burst(1.0), Some((30.0, 1)));
        assert_eq!(o.next_burst(30.0), Some((31.5, 1)));
    }
}
