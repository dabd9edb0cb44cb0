//! `/metrics` through the `prometheus-client` crate: the one place that knows the exposition format
//! (OpenMetrics text, which Prometheus reads natively).
//!
//! Two kinds of series feed it. Live ones, updated on the request path, are prometheus-client metrics in a
//! registry ([`http`]). The rest is state read at scrape time (DAG statistics and plans, the
//! control loop's accounts, profile drift): each owner fills a [`Snapshot`], a prometheus-client
//! collector of families, and [`Snapshot::render`]s it. Each part renders without the end marker; the
//! `/metrics` handler joins them and ends the exposition with [`EOF`].
//!
//! Names are given as Prometheus shows the samples: a counter's `…_total` (the family is written without
//! the suffix, as OpenMetrics requires), a histogram's base name (`_bucket`, `_sum`, `_count` follow).
//! Labels keep the order they are given in, except a histogram bucket's `le`, which prometheus-client
//! writes first (`x_bucket{le="0.1",dag="a"}`; the order of labels means nothing to Prometheus).
use std::fmt::{self, Write as _};

pub mod http;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, LabelValueEncoder, NoLabelSet, text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The line that ends an exposition.
pub const EOF: &str = "# EOF\n";

/// A label value, escaped as the text format requires (`\`, `"`, newline); prometheus-client writes
/// values as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelValue(pub String);

impl From<&str> for LabelValue {
    fn from(v: &str) -> Self {
        LabelValue(v.to_owned())
    }
}

impl From<&String> for LabelValue {
    fn from(v: &String) -> Self {
        LabelValue(v.clone())
    }
}

impl EncodeLabelValue for LabelValue {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A series' labels, in the order they are written.
pub type Labels = Vec<(&'static str, LabelValue)>;

/// Labels from `(name, value)` pairs.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// A counter's or a gauge's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(u64),
    Float(f64),
}

impl From<u64> for Number {
    fn from(v: u64) -> Self {
        Number::Int(v)
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Self {
        Number::Int(u64::from(v))
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::Float(v)
    }
}

#[derive(Debug, Clone)]
enum Sample {
    Number(Number),
    /// Per-bucket (not cumulative) counts under each upper bound; the `+Inf` bucket is `count` less them.
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// One metric family of a [`Snapshot`]: its descriptor and its series.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    rows: Vec<(Labels, Sample)>,
}

impl Family {
    /// Adds a counter's or a gauge's series.
    pub fn sample(&mut self, labels: Labels, value: impl Into<Number>) -> &mut Self {
        debug_assert!(!matches!(self.kind, MetricType::Histogram), "{}", self.name);
        self.rows.push((labels, Sample::Number(value.into())));
        self
    }

    /// Adds a histogram's series: `count` observations summing to `sum`, `buckets` the number that fell
    /// under each upper bound and above the previous one (the rest are over the last bound).
    pub fn histogram(
        &mut self,
        labels: Labels,
        sum: f64,
        count: u64,
        buckets: impl IntoIterator<Item = (f64, u64)>,
    ) -> &mut Self {
        debug_assert!(matches!(self.kind, MetricType::Histogram), "{}", self.name);
        let mut buckets: Vec<(f64, u64)> = buckets.into_iter().collect();
        let under: u64 = buckets.iter().map(|(_, n)| n).sum();
        // prometheus-client's upper bound of the `+Inf` bucket.
        buckets.push((f64::MAX, count.saturating_sub(under)));
        self.rows.push((
            labels,
            Sample::Histogram {
                sum,
                count,
                buckets,
            },
        ));
        self
    }
}

/// Metric families read from state at scrape time (a prometheus-client [`Collector`]).
#[derive(Debug, Default)]
pub struct Snapshot {
    families: Vec<Family>,
}

impl Snapshot {
    fn family(&mut self, name: &'static str, help: &'static str, kind: MetricType) -> &mut Family {
        let i = self.families.len();
        self.families.push(Family {
            name,
            help,
            kind,
            rows: Vec::new(),
        });
        &mut self.families[i]
    }

    /// A counter family; `name` is the samples' name, ending in `_total`.
    pub fn counter(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        debug_assert!(name.ends_with("_total"), "{name}");
        self.family(name, help, MetricType::Counter)
    }

    pub fn gauge(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        self.family(name, help, MetricType::Gauge)
    }

    pub fn histogram(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        self.family(name, help, MetricType::Histogram)
    }

    /// The families in the text format, in the order they were added (without [`EOF`]).
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        render_registry(&registry)
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for f in &self.families {
            // prometheus-client appends `_total` to a counter's samples itself.
            let name = match f.kind {
                MetricType::Counter => f.name.strip_suffix("_total").unwrap_or(f.name),
                _ => f.name,
            };
            let mut family = encoder.encode_descriptor(name, f.help, None, f.kind)?;
            for (labels, sample) in &f.rows {
                let mut series = family.encode_family(labels)?;
                match (sample, f.kind) {
                    (Sample::Number(Number::Int(v)), MetricType::Counter) => {
                        series.encode_counter::<NoLabelSet, _, u64>(v, None)?;
                    }
                    (Sample::Number(Number::Float(v)), MetricType::Counter) => {
                        series.encode_counter::<NoLabelSet, _, f64>(v, None)?;
                    }
                    (Sample::Number(Number::Int(v)), _) => series.encode_gauge(v)?,
                    (Sample::Number(Number::Float(v)), _) => series.encode_gauge(v)?,
                    (
                        Sample::Histogram {
                            sum,
                            count,
                            buckets,
                        },
                        _,
                    ) => series.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?,
                }
            }
        }
        Ok(())
    }
}

/// A registry's metrics in the text format (without [`EOF`]).
pub fn render_registry(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail, and the encoders fail only when their writer does.
    let _ = text::encode_registry(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_in_order_with_escaped_labels() {
        let mut s = Snapshot::default();
        s.counter("x_requests_total", "Requests.")
            .sample(labels([("dag", "a\"b"), ("namespace", "n")]), 3u64)
            .sample(labels([("dag", "c\\d\ne"), ("namespace", "n")]), 0.5);
        s.gauge("x_cost", "Cost.")
            .sample(labels([("z", "1"), ("a", "2")]), 2u32)
            .sample(labels([("z", "2"), ("a", "2")]), 0.25);
        s.histogram("x_seconds", "Latency.").histogram(
            labels([("dag", "a")]),
            1.5,
            4,
            [(0.1, 1), (1.0, 2)],
        );
        let t = s.render();
        let want = "# HELP x_requests Requests.\n# TYPE x_requests counter\n\
            x_requests_total{dag=\"a\\\"b\",namespace=\"n\"} 3\n\
            x_requests_total{dag=\"c\\\\d\\ne\",namespace=\"n\"} 0.5\n\
            # HELP x_cost Cost.\n# TYPE x_cost gauge\n\
            x_cost{z=\"1\",a=\"2\"} 2\n\
            x_cost{z=\"2\",a=\"2\"} 0.25\n\
            # HELP x_seconds Latency.\n# TYPE x_seconds histogram\n\
            x_seconds_sum{dag=\"a\"} 1.5\n\
            x_seconds_count{dag=\"a\"} 4\n\
            x_seconds_bucket{le=\"0.1\",dag=\"a\"} 1\n\
            x_seconds_bucket{le=\"1.0\",dag=\"a\"} 3\n\
            x_seconds_bucket{le=\"+Inf\",dag=\"a\"} 4\n";
        assert_eq!(t, want);
    }

    #[test]
    fn empty_families_keep_their_descriptors() {
        let mut s = Snapshot::default();
        s.gauge("x_cost", "Cost.");
        assert_eq!(s.render(), "# HELP x_cost Cost.\n# TYPE x_cost gauge\n");
    }
}
