//! The provider's own Prometheus metrics (contract §1 row 14): `provider_http_requests_total` and
//! `provider_http_request_duration_seconds`, labelled `code`, `method`, `path`.
//!
//! prometheus-client families in a registry: one series per (code, method, route pattern), found under a
//! read lock and updated with atomics, so the request path does not serialise. The `path` label is the
//! matched route pattern (bounded), not the raw URL (unbounded). The text format is [`crate::prom`]'s.
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::prom::{self, LabelValue};

/// Upper bounds of the histogram buckets, in seconds (Prometheus' Go client defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of both families, written in this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    code: u16,
    method: LabelValue,
    path: LabelValue,
}

fn duration_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    durations: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<HttpLabels, Counter>::default();
        let durations: Family<HttpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let mut registry = Registry::default();
        registry.register(
            "provider_http_requests",
            // prometheus-client ends help texts with a period itself.
            "Total number of HTTP requests served by the provider",
            requests.clone(),
        );
        registry.register(
            "provider_http_request_duration_seconds",
            "Seconds spent serving HTTP requests",
            durations.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
        }
    }
}

impl Metrics {
    /// Records one served request.
    pub fn observe(&self, code: u16, method: &str, path: &str, took: Duration) {
        let labels = HttpLabels {
            code,
            method: method.into(),
            path: path.into(),
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The families in the text format (without the end marker: the `/metrics` handler adds it).
    pub fn render(&self) -> String {
        prom::render_registry(&self.registry)
    }
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counter_and_cumulative_histogram() {
        let m = Metrics::default();
        m.observe(200, "GET", "/healthz", Duration::from_millis(3));
        m.observe(200, "GET", "/healthz", Duration::from_millis(30));
        m.observe(404, "GET", "unmatched", Duration::from_millis(1));
        let t = m.render();
        assert!(t.starts_with(
            "# HELP provider_http_requests Total number of HTTP requests served by the provider.\n\
             # TYPE provider_http_requests counter\n"
        ));
        assert!(t.contains(
            "# HELP provider_http_request_duration_seconds Seconds spent serving HTTP requests.\n\
             # TYPE provider_http_request_duration_seconds histogram\n"
        ));
        assert!(
            t.contains(
                "provider_http_requests_total{code=\"200\",method=\"GET\",path=\"/healthz\"} 2"
            ),
            "{t}"
        );
        assert!(t.contains("provider_http_request_duration_seconds_bucket{le=\"0.005\",code=\"200\",method=\"GET\",path=\"/healthz\"} 1"));
        assert!(t.contains("provider_http_request_duration_seconds_bucket{le=\"0.05\",code=\"200\",method=\"GET\",path=\"/healthz\"} 2"));
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
