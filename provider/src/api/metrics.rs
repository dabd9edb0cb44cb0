//! The provider's own Prometheus metrics (contract §1 row 14): `provider_http_requests_total` and
//! `provider_http_request_duration_seconds`, labelled `code`, `method`, `path`.
//!
//! A small hand-rolled registry: one series per (code, method, route pattern), atomics inside, so the
//! request path takes a read lock and a few relaxed increments. The `path` label is the matched route
//! pattern (bounded), not the raw URL (unbounded).
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds (Prometheus' Go client defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Series {
    count: AtomicU64,
    sum_nanos: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// path → (code, method) → series; nested so a hit borrows the path and allocates nothing.
type Table = HashMap<String, HashMap<(u16, String), Arc<Series>>>;

/// (code, method, path) of one series, borrowed for rendering.
type Labels<'a> = (u16, &'a str, &'a str);

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    series: RwLock<Table>,
}

impl Metrics {
    /// Records one served request.
    pub fn observe(&self, code: u16, method: &str, path: &str, took: Duration) {
        let hit = {
            let t = self.series.read().unwrap_or_else(PoisonError::into_inner);
            t.get(path)
                .and_then(|m| m.iter().find(|((c, me), _)| *c == code && me == method))
                .map(|(_, s)| Arc::clone(s))
        };
        let s = match hit {
            Some(s) => s,
            None => {
                let mut t = self.series.write().unwrap_or_else(PoisonError::into_inner);
                let by_path = t.entry(path.to_owned()).or_default();
                Arc::clone(by_path.entry((code, method.to_owned())).or_default())
            }
        };
        s.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        s.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<(Labels<'_>, &Arc<Series>)> = map
            .iter()
            .flat_map(|(path, m)| {
                m.iter()
                    .map(move |((code, method), s)| ((*code, method.as_str(), path.as_str()), s))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        out.push_str("# HELP provider_http_requests_total Total number of HTTP requests served by the provider.\n");
        out.push_str("# TYPE provider_http_requests_total counter\n");
        for ((code, method, path), s) in &rows {
            let _ = writeln!(
                out,
                "provider_http_requests_total{{code=\"{code}\",method=\"{}\",path=\"{}\"}} {}",
                escape(method),
                escape(path),
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP provider_http_request_duration_seconds Seconds spent serving HTTP requests.\n",
        );
        out.push_str("# TYPE provider_http_request_duration_seconds histogram\n");
        for ((code, method, path), s) in &rows {
            let labels = format!(
                "code=\"{code}\",method=\"{}\",path=\"{}\"",
                escape(method),
                escape(path)
            );
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "provider_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "provider_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            #[allow(clippy::cast_precision_loss)] // nanoseconds → seconds for display
            let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "provider_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "provider_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

/// Label-value escaping of the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A route pattern as a short label: `/function/{name:[-a-zA-Z_0-9.]+}` → `/function/{name}`.
pub fn path_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut skipping = false;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    skipping = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 => skipping = true,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counter_and_cumulative_histogram() {
        let m = Metrics::default();
        m.observe(200, "GET", "/healthz", Duration::from_millis(3));
        m.observe(200, "GET", "/healthz", Duration::from_millis(30));
        m.observe(404, "GET", "unmatched", Duration::from_millis(1));
        let t = m.render();
        assert!(
            t.contains(
                "provider_http_requests_total{code=\"200\",method=\"GET\",path=\"/healthz\"} 2"
            ),
            "{t}"
        );
        assert!(t.contains("provider_http_request_duration_seconds_bucket{code=\"200\",method=\"GET\",path=\"/healthz\",le=\"0.005\"} 1"));
        assert!(t.contains("provider_http_request_duration_seconds_bucket{code=\"200\",method=\"GET\",path=\"/healthz\",le=\"0.05\"} 2"));
        assert!(t.contains("provider_http_request_duration_seconds_count{code=\"404\",method=\"GET\",path=\"unmatched\"} 1"));
    }

    #[test]
    fn patterns_lose_their_regexes() {
        assert_eq!(
            path_label("/function/{name:[-a-zA-Z_0-9.]+}/{tail:.*}"),
            "/function/{name}/{tail}"
        );
        assert_eq!(path_label("/system/functions"), "/system/functions");
        assert_eq!(path_label("/x/{a:[0-9]{2}}"), "/x/{a}");
    }
}
