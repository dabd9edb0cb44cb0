//! The load client's bookkeeping: each connection tallies its own outcomes (no shared locks on the hot
//! path), the tallies are merged at the end into one [`Summary`]: counts, throughput, latency
//! percentiles of the successful requests, errors by kind, and the outage window.
//!
//! Outcomes are also counted in 10 ms slots of the run, so the merged tally can say when the first
//! failure happened, when the first success after the last failure came (the outage), and the longest
//! stretch without any success, without keeping a timestamp per request.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Width of one time slot.
const SLOT: Duration = Duration::from_millis(10);

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response with this status.
    Status(u16),
    /// The TCP connect (or the HTTP handshake) failed: refused, unreachable.
    Connect,
    /// The TCP connect did not finish within the timeout.
    ConnectTimeout,
    /// The connection was closed or reset before the whole response arrived.
    Io,
    /// No complete response within the timeout.
    Timeout,
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..400).contains(&s))
    }
}

/// Failed requests by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    pub connect: u64,
    pub connect_timeout: u64,
    pub closed_or_reset: u64,
    pub timeout: u64,
    /// Complete responses with a status outside 2xx/3xx, by status.
    pub status: BTreeMap<u16, u64>,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect
            + self.connect_timeout
            + self.closed_or_reset
            + self.timeout
            + self.status.values().sum::<u64>()
    }
}

/// One connection's (or, merged, the whole run's) outcomes.
#[derive(Debug, Default)]
pub struct Tally {
    requests: u64,
    /// Latencies of the successful requests, µs.
    latencies: Vec<u32>,
    errors: Errors,
    /// Successes and failures per [`SLOT`] since the start.
    ok_slots: Vec<u32>,
    fail_slots: Vec<u32>,
}

fn bump(slots: &mut Vec<u32>, at: Duration) {
    let i = usize::try_from(at.as_millis() / SLOT.as_millis()).unwrap_or(usize::MAX);
    if i >= slots.len() {
        // Bounded by the run's length: 100 slots a second.
        slots.resize(i.saturating_add(1).min(1 << 24), 0);
    }
    if let Some(s) = slots.get_mut(i) {
        *s += 1;
    }
}

fn add_slots(into: &mut Vec<u32>, from: &[u32]) {
    if from.len() > into.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl Tally {
    /// Records a request that ended `at` after the run's start and took `took`.
    pub fn record(&mut self, o: &Outcome, at: Duration, took: Duration) {
        self.requests += 1;
        if o.ok() {
            self.latencies
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            bump(&mut self.ok_slots, at);
            return;
        }
        bump(&mut self.fail_slots, at);
        let e = &mut self.errors;
        match *o {
            Outcome::Status(s) => *e.status.entry(s).or_default() += 1,
            Outcome::Connect => e.connect += 1,
            Outcome::ConnectTimeout => e.connect_timeout += 1,
            Outcome::Io => e.closed_or_reset += 1,
            Outcome::Timeout => e.timeout += 1,
        }
    }

    pub fn merge(&mut self, o: Tally) {
        self.requests += o.requests;
        self.latencies.extend(o.latencies);
        self.errors.connect += o.errors.connect;
        self.errors.connect_timeout += o.errors.connect_timeout;
        self.errors.closed_or_reset += o.errors.closed_or_reset;
        self.errors.timeout += o.errors.timeout;
        for (s, n) in o.errors.status {
            *self.errors.status.entry(s).or_default() += n;
        }
        add_slots(&mut self.ok_slots, &o.ok_slots);
        add_slots(&mut self.fail_slots, &o.fail_slots);
    }

    /// The run's summary, `elapsed` being its wall time.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
            f64::from(self.latencies[i]) / 1e3
        };
        let secs = elapsed.as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss)]
        let rate = |n: u64| n as f64 / secs;
        let slot_ms = f64::from(u32::try_from(SLOT.as_millis()).unwrap_or(10));
        let at = |i: usize| -> f64 {
            #[allow(clippy::cast_precision_loss)]
            let v = i as f64 * slot_ms / 1e3;
            v
        };
        let first_fail = self.fail_slots.iter().position(|&n| n > 0);
        let last_fail = self.fail_slots.iter().rposition(|&n| n > 0);
        let recovered = last_fail.and_then(|l| {
            self.ok_slots
                .iter()
                .skip(l + 1)
                .position(|&n| n > 0)
                .map(|p| p + l + 1)
        });
        Summary {
            requests: self.requests,
            ok: self.latencies.len() as u64,
            failed: self.errors.total(),
            seconds: secs,
            requests_per_sec: rate(self.requests),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            first_failure_s: first_fail.map(at),
            recovered_s: recovered.map(at),
            outage_ms: first_fail
                .zip(recovered)
                .map(|(f, r)| (at(r) - at(f)) * 1e3),
            longest_gap_ms: longest_gap(&self.ok_slots) * slot_ms,
            errors: self.errors,
        }
    }
}

/// The longest run of slots without a success between the first and the last success.
fn longest_gap(ok: &[u32]) -> f64 {
    let (mut best, mut run, mut seen) = (0u32, 0u32, false);
    for &n in ok {
        if n > 0 {
            if seen {
                best = best.max(run);
            }
            seen = true;
            run = 0;
        } else {
            run += 1;
        }
    }
    f64::from(best)
}

/// What `bench load` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    /// Latency percentiles of the successful requests.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: Errors,
    /// When the first request failed, seconds from the start (10 ms resolution).
    pub first_failure_s: Option<f64>,
    /// When the first request after the last failure succeeded.
    pub recovered_s: Option<f64>,
    /// From the first failure to the first success after the last one.
    pub outage_ms: Option<f64>,
    /// The longest stretch with no successful response at all.
    pub longest_gap_ms: f64,
}

impl Summary {
    /// The text report.
    pub fn text(&self, method: &str, url: &str, conns: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "load: {method} {url}, {conns} connections, {:.1} s",
            self.seconds
        );
        let _ = writeln!(
            s,
            "requests {} (ok {}, failed {}), {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.requests,
            self.ok,
            self.failed,
            self.requests_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        );
        let e = &self.errors;
        let mut kinds = format!(
            "errors: connect {}, connect timeout {}, closed/reset {}, timeout {}",
            e.connect, e.connect_timeout, e.closed_or_reset, e.timeout
        );
        for (code, n) in &e.status {
            let _ = write!(kinds, ", HTTP {code} {n}");
        }
        let _ = writeln!(s, "{kinds}");
        match (self.first_failure_s, self.recovered_s, self.outage_ms) {
            (Some(f), Some(r), Some(o)) => {
                let _ = writeln!(
                    s,
                    "outage: first failure at {f:.2} s, first success after the last failure at {r:.2} s: {o:.0} ms"
                );
            }
            (Some(f), _, _) => {
                let _ = writeln!(
                    s,
                    "outage: first failure at {f:.2} s, no success after the last failure"
                );
            }
            _ => {}
        }
        let _ = writeln!(
            s,
            "longest stretch without a success: {:.0} ms",
            self.longest_gap_ms
        );
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn counts_errors_by_kind_and_latency_of_successes_only() {
        let mut a = Tally::default();
        a.record(&Outcome::Status(200), ms(5), ms(2));
        a.record(&Outcome::Status(502), ms(6), ms(1));
        a.record(&Outcome::Connect, ms(7), ms(1));
        let mut b = Tally::default();
        b.record(&Outcome::Status(204), ms(5), ms(4));
        b.record(&Outcome::Timeout, ms(9), ms(5000));
        b.record(&Outcome::Io, ms(9), ms(1));
        b.record(&Outcome::Status(502), ms(9), ms(1));
        a.merge(b);
        let s = a.summary(Duration::from_secs(1));
        assert_eq!((s.requests, s.ok, s.failed), (7, 2, 5));
        assert_eq!(s.errors.status, BTreeMap::from([(502, 2)]));
        assert_eq!(
            (s.errors.connect, s.errors.timeout, s.errors.closed_or_reset),
            (1, 1, 1)
        );
        assert!((s.p50_ms - 2.0).abs() < 1e-9 || (s.p50_ms - 4.0).abs() < 1e-9);
        assert!((s.max_ms - 4.0).abs() < 1e-9, "timeouts are not latencies");
        assert!((s.requests_per_sec - 7.0).abs() < 1e-9);
    }

    #[test]
    fn outage_runs_from_the_first_failure_to_the_first_success_after_the_last() {
        let mut t = Tally::default();
        t.record(&Outcome::Status(200), ms(100), ms(1));
        t.record(&Outcome::Connect, ms(1000), ms(1));
        // A success between failures does not end the outage.
        t.record(&Outcome::Status(200), ms(1200), ms(1));
        t.record(&Outcome::Status(503), ms(1500), ms(1));
        t.record(&Outcome::Status(200), ms(1750), ms(1));
        let s = t.summary(Duration::from_secs(2));
        assert_eq!(s.first_failure_s, Some(1.0));
        assert_eq!(s.recovered_s, Some(1.75));
        assert!((s.outage_ms.unwrap() - 750.0).abs() < 1e-6);
        // 100 ms → 1200 ms without a success: 1090 ms of empty slots.
        assert!((s.longest_gap_ms - 1090.0).abs() < 1e-6);
    }

    #[test]
    fn no_failures_no_outage() {
        let mut t = Tally::default();
        t.record(&Outcome::Status(200), ms(1), ms(1));
        t.record(&Outcome::Status(302), ms(2), ms(1));
        let s = t.summary(Duration::from_secs(1));
        assert_eq!((s.failed, s.outage_ms), (0, None));
        assert!(s.text("GET", "http://x/", 1).contains("ok 2, failed 0"));
    }
}
