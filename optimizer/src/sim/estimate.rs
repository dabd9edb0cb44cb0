//! Load estimators: observed DAG arrivals in, the [`Load`] a planner takes out.
//!
//! The simulator and the live control loop hand the same estimator the same observations (arrival
//! timestamps of DAG requests, in seconds), so the decision code is one code path. The predictor crate's
//! forecasters plug in through [`LoadEstimator`] (the provider adapts them); this module ships two that
//! need nothing else:
//! - [`RecentWindow`]: rate and mean burst gap over a trailing window, optionally inflated so the
//!   exponential gap model's warm quantile covers the *observed* gap quantile (heavy-tailed traces), and
//!   the close-arrival rate of the gaps' lower tail ([`close_rate`], for the planners' queueing term);
//! - [`WindowOracle`]: the same estimate made from the *next* window's arrivals (a perfect load
//!   forecast; the simulator's "OPT");
//! - [`Oracle`]: the next burst's true gap and size from the future arrivals (the paper's oracle
//!   predictor returns the actual next inter-arrival time and count; the simulator's "opt-gap", a
//!   clairvoyant near-lower bound).
use std::collections::VecDeque;

use crate::load::{GapModel, Load};

/// Arrivals closer than this belong to one round of the DAG (the control loop's tick: one decision per
/// second): the simulator decides at the first arrival of a round, and the re-initialisation fraction
/// counts rounds.
pub const BURST_GAP_S: f64 = 1.0;

/// Arrivals closer than this are one burst *for the planners' load estimate*: requests the model serves
/// as one burst of simultaneous calls. Requests further apart are the queueing term's (the close-arrival
/// rate of [`close_rate`]), which accounts for their spacing but counts them as a Poisson stream.
/// Grouping everything under the 1 s tick planned requests 0.5–0.9 s apart as if they all arrived at
/// once (image-query at 2 s bought a second question-answering replica for requests that never
/// overlapped); grouping only near-simultaneous ones (0.1 s) under-provisioned clumpy traffic, whose
/// counts are not Poisson. Chosen by a sweep over both workloads of docs/evaluation.md §3.3.
pub const PLAN_BURST_GAP_S: f64 = 0.5;

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
    /// The close-arrival rate of the last [`LoadEstimator::estimate`] (see
    /// [`crate::PlanInput::close_rate_per_s`]), when the estimator measures the gap distribution's lower
    /// tail; `None` lets the planner assume exponential gaps.
    fn close_rate_per_s(&self) -> Option<f64> {
        None
    }
}

/// Gap lengths (s) at which [`close_rate`] reads the lower tail: the scale of inference and
/// initialisation times, where a close burst finds the replicas still busy.
const CLOSE_SCALES_S: [f64; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// The close-arrival rate of a set of request gaps: the largest hazard `−ln(1 − F(x)) / x` of their
/// empirical distribution `F` over [`CLOSE_SCALES_S`], so that `P(gap < x) ≤ 1 − e^{−rate·x}` holds at
/// those scales (heavy-tailed traces have many more short gaps than an exponential with their mean).
/// `None` with fewer than 5 gaps.
pub fn close_rate(gaps: &[f64]) -> Option<f64> {
    if gaps.len() < 5 {
        return None;
    }
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let hazard = CLOSE_SCALES_S
        .iter()
        .map(|&x| {
            // Half a gap in the count keeps a finite rate when every gap is short.
            let below = gaps.iter().filter(|&&g| g < x).count() as f64;
            let f = (below / n).min(1.0 - 0.5 / n);
            -(1.0 - f).ln() / x
        })
        .fold(0.0, f64::max);
    Some(hazard.max(1.0 / mean.max(1e-3)))
}

/// Groups sorted arrival times into bursts `(start, count)`: a burst continues while the gap to the
/// previous arrival is below [`BURST_GAP_S`].
pub fn bursts(arrivals: &[f64]) -> Vec<(f64, u32)> {
    bursts_within(arrivals, BURST_GAP_S)
}

/// [`bursts`] with another threshold: arrivals less than `gap_s` apart form one burst.
pub fn bursts_within(arrivals: &[f64], gap_s: f64) -> Vec<(f64, u32)> {
    let mut out: Vec<(f64, u32)> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for &t in arrivals {
        match out.last_mut() {
            Some(b) if t - last < gap_s => b.1 += 1,
            _ => out.push((t, 1)),
        }
        last = t;
    }
    out
}

/// Rate, burst size and mean burst gap over the last `window_s` seconds.
#[derive(Clone, Debug)]
pub struct RecentWindow {
    pub window_s: f64,
    /// When set, the mean gap is raised (never lowered) so that the exponential model's `q`-quantile
    /// equals the observed `q`-quantile of burst gaps in the window, and the burst size reported is the
    /// observed `q`-quantile burst size instead of the mean. Without it the planner, which assumes
    /// memoryless gaps and average bursts, under-sizes keep-alive windows and replicas on heavy-tailed
    /// traces.
    pub tail_quantile: Option<f64>,
    /// Arrivals closer than this form one burst, served as simultaneous calls
    /// ([`PLAN_BURST_GAP_S`] by default).
    pub burst_gap_s: f64,
    /// Arrivals inside the window.
    arrivals: VecDeque<f64>,
    /// The last arrival before the window (for the first gap).
    before: Option<f64>,
    /// The close-arrival rate of the last estimate.
    close: Option<f64>,
}

impl RecentWindow {
    pub fn new(window_s: f64, tail_quantile: Option<f64>) -> RecentWindow {
        RecentWindow::with_burst_gap(window_s, tail_quantile, PLAN_BURST_GAP_S)
    }

    pub fn with_burst_gap(
        window_s: f64,
        tail_quantile: Option<f64>,
        burst_gap_s: f64,
    ) -> RecentWindow {
        RecentWindow {
            window_s: window_s.max(1.0),
            tail_quantile,
            burst_gap_s: burst_gap_s.max(0.0),
            arrivals: VecDeque::new(),
            before: None,
            close: None,
        }
    }

    fn trim(&mut self, now: f64) {
        let from = now - self.window_s;
        while self.arrivals.front().is_some_and(|&t| t < from) {
            self.before = self.arrivals.pop_front();
        }
    }
}

impl LoadEstimator for RecentWindow {
    fn name(&self) -> String {
        format!("recent-{}s", self.window_s)
    }

    fn observe(&mut self, t: f64) {
        self.arrivals.push_back(t);
    }

    fn estimate(&mut self, now: f64) -> Load {
        self.trim(now);
        let all: Vec<f64> = self
            .before
            .iter()
            .copied()
            .chain(self.arrivals.iter().copied())
            .collect();
        let b = bursts_within(&all, self.burst_gap_s);
        self.close = close_rate(&gaps_of(&all));
        let from = now - self.window_s;
        // The open gap since the last burst counts too: a long silence must lengthen the estimate.
        let open = b.last().map_or(self.window_s, |&(s, _)| (now - s).max(0.0));
        window_load(
            self.arrivals.len(),
            &b,
            from,
            self.window_s,
            open,
            self.tail_quantile,
        )
    }

    fn close_rate_per_s(&self) -> Option<f64> {
        self.close
    }
}

/// Gaps between consecutive requests (not bursts: the queueing term is about any request finding a
/// replica busy).
fn gaps_of(arrivals: &[f64]) -> Vec<f64> {
    arrivals.windows(2).map(|p| p[1] - p[0]).collect()
}

/// The load of a window of `window_s` seconds from `from` holding `n` arrivals, given the bursts
/// `(start, size)` in and around it (gaps between neighbours are the burst gaps), with `open` seconds
/// of silence at its edge. See [`RecentWindow::tail_quantile`] for `tail`.
pub fn window_load(
    n: usize,
    bursts: &[(f64, u32)],
    from: f64,
    window_s: f64,
    open: f64,
    tail: Option<f64>,
) -> Load {
    let w = window_s;
    let inside: Vec<u32> = bursts
        .iter()
        .filter(|b| b.0 >= from && b.0 < from + w)
        .map(|b| b.1)
        .collect();
    // Half a pseudo-request keeps an empty window finite: "less than one request per window".
    let rate = (n as f64).max(0.5) / w;
    let mut mean_gap = (w / inside.len().max(1) as f64).max(open.min(w));
    let mut size = if inside.is_empty() {
        1.0
    } else {
        f64::from(inside.iter().sum::<u32>()) / inside.len() as f64
    };
    if let Some(q) = tail
        && bursts.len() >= 5
    {
        let mut gaps: Vec<f64> = bursts.windows(2).map(|p| p[1].0 - p[0].0).collect();
        gaps.sort_by(f64::total_cmp);
        let gq = gaps[(((gaps.len() as f64 - 1.0) * q).ceil() as usize).min(gaps.len() - 1)];
        // Exponential: quantile q at −g·ln(1−q).
        mean_gap = mean_gap.max(gq / -(1.0 - q).max(1e-9).ln());
        let mut sizes = inside.clone();
        sizes.sort_unstable();
        if let Some(&m) = sizes.get(
            (((sizes.len() as f64 - 1.0) * q).ceil() as usize).min(sizes.len().saturating_sub(1)),
        ) {
            size = size.max(f64::from(m));
        }
    }
    let mean_gap = mean_gap.max(1e-3);
    // Rate as the burst size over the gap, so the planner's burst (rate × gap) is the size wanted; but
    // never a burst larger than the largest one observed: when a long silence (or the tail quantile)
    // stretches the gap, the window's average rate times that gap would otherwise plan for bursts that
    // never happened (after 20 requests in 600 s and 227 s of silence, bursts of 7, kept always-on).
    let largest = bursts.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let rate = rate
        .max(size / mean_gap)
        .min(f64::from(largest).max(size) / mean_gap);
    let mean_gap = mean_gap.max(1.0 / rate);
    Load {
        rate_per_s: rate,
        interarrival_s: mean_gap,
        gaps: GapModel::Exponential,
    }
}

/// Knows the *next window's* arrivals: the load it reports is what [`RecentWindow`] would report
/// looking `window_s` seconds ahead instead of back. This is "OPT" as a perfect forecaster of the load
/// (the planner still treats gaps inside the window as random); [`Oracle`] also knows each gap.
#[derive(Clone, Debug)]
pub struct WindowOracle {
    arrivals: Vec<f64>,
    bursts: Vec<(f64, u32)>,
    window_s: f64,
    tail_quantile: Option<f64>,
    close: Option<f64>,
}

impl WindowOracle {
    /// `burst_gap_s` as [`RecentWindow::burst_gap_s`].
    pub fn new(
        arrivals: &[f64],
        window_s: f64,
        tail_quantile: Option<f64>,
        burst_gap_s: f64,
    ) -> WindowOracle {
        WindowOracle {
            arrivals: arrivals.to_vec(),
            bursts: bursts_within(arrivals, burst_gap_s),
            window_s: window_s.max(1.0),
            tail_quantile,
            close: None,
        }
    }
}

impl LoadEstimator for WindowOracle {
    fn name(&self) -> String {
        format!("window-oracle-{}s", self.window_s)
    }

    fn observe(&mut self, _t: f64) {}

    fn estimate(&mut self, now: f64) -> Load {
        let end = now + self.window_s;
        let a0 = self.arrivals.partition_point(|&t| t < now);
        let a1 = self.arrivals.partition_point(|&t| t < end);
        let s0 = self.bursts.partition_point(|b| b.0 < now);
        let s1 = self.bursts.partition_point(|b| b.0 < end);
        // One burst past each edge, so the gaps across the edges are seen too.
        let lo = s0.saturating_sub(1);
        let hi = (s1 + 1).min(self.bursts.len());
        let open = self
            .bursts
            .get(s0)
            .map_or(self.window_s, |b| (b.0 - now).max(0.0));
        let (e0, e1) = (a0.saturating_sub(1), (a1 + 1).min(self.arrivals.len()));
        self.close = close_rate(&gaps_of(&self.arrivals[e0..e1]));
        window_load(
            a1 - a0,
            &self.bursts[lo..hi],
            now,
            self.window_s,
            open,
            self.tail_quantile,
        )
    }

    fn close_rate_per_s(&self) -> Option<f64> {
        self.close
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
        Oracle {
            bursts: bursts(arrivals),
            cursor: 0,
        }
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
                Load {
                    rate_per_s: f64::from(m) / gap,
                    interarrival_s: gap,
                    gaps: GapModel::Deterministic,
                }
            }
            (None, Some(&(next, m))) => {
                let gap = (next - now).max(1.0);
                Load {
                    rate_per_s: f64::from(m) / gap,
                    interarrival_s: gap,
                    gaps: GapModel::Deterministic,
                }
            }
            // Nothing more arrives: a very long gap, so nothing is kept warm.
            (_, None) => Load {
                rate_per_s: 1e-6,
                interarrival_s: 1e6,
                gaps: GapModel::Deterministic,
            },
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
        assert_eq!(
            bursts(&[0.0, 0.2, 0.9, 5.0, 20.0, 20.5]),
            vec![(0.0, 3), (5.0, 1), (20.0, 2)]
        );
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
    fn requests_apart_are_close_arrivals_not_one_burst() {
        let mut e = RecentWindow::new(100.0, None);
        // Pairs 0.7 s apart every 10 s: no two requests arrive together.
        for k in 0..10 {
            e.observe(f64::from(k) * 10.0);
            e.observe(f64::from(k) * 10.0 + 0.7);
        }
        let l = e.estimate(99.0);
        assert_eq!(l.burst_size(), 1, "{l:?}");
        // The queueing term sees them: half the gaps are under 1 s, so the close-arrival rate is at
        // least −ln(1 − 0.47)/1 s (19 gaps, 10 of them short) ≈ 0.64/s, far above the 0.2/s average.
        let close = e.close_rate_per_s().unwrap();
        assert!(close > 0.6, "{close}");
    }

    #[test]
    fn silence_never_plans_a_burst_larger_than_any_observed() {
        let mut e = RecentWindow::new(600.0, Some(0.99));
        // Single requests every 25 s, then 227 s of silence.
        for k in 0..14 {
            e.observe(f64::from(k) * 25.0);
        }
        let quiet = e.estimate(13.0 * 25.0 + 227.0);
        assert!(quiet.interarrival_s >= 227.0, "{quiet:?}");
        // Without the cap: 14 requests / 600 s × 227 s = bursts of 5.
        assert_eq!(quiet.burst_size(), 1, "{quiet:?}");
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
