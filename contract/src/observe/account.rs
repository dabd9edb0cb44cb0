//! What the control loop measures for `/metrics` and the demo's report: per function the cost of its
//! provisioned replicas (replica-seconds × the price of its hardware, in profile time, which is how the
//! simulator bills: initialisation, busy and idle time all count), its replicas by hardware; per DAG the
//! forecast against the actual count of each closed window.
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use super::forecast::ForecastView;
use crate::prom::{Number, Snapshot, labels};

/// (namespace, name).
type Key = (String, String);

/// One function's account.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FnAccount {
    pub dag: String,
    /// The hardware its replicas run on (as planned and placed).
    pub hardware: String,
    /// Desired replicas at the last tick.
    pub replicas: u32,
    /// Dollars of provisioned replica-time since the provider started (profile time).
    pub cost_usd: f64,
    /// Replica-seconds (profile time).
    pub replica_seconds: f64,
}

#[derive(Debug, Default)]
struct Inner {
    functions: BTreeMap<Key, FnAccount>,
    forecasts: BTreeMap<Key, ForecastView>,
}

/// Shared between the control loop (writes once per tick) and `/metrics` (reads).
#[derive(Debug, Default)]
pub struct Accounts {
    inner: Mutex<Inner>,
}

impl Accounts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bills `replica_seconds` (profile time) of `f` on `hardware` at `per_second` dollars each; `replicas`
    /// is its desired count now (the gauge).
    pub fn charge(
        &self,
        (ns, f): (&str, &str),
        dag: &str,
        hardware: &str,
        replicas: u32,
        replica_seconds: f64,
        per_second: f64,
    ) {
        let mut m = self.lock();
        let a = m
            .functions
            .entry((ns.to_owned(), f.to_owned()))
            .or_default();
        a.dag = dag.to_owned();
        a.hardware = hardware.to_owned();
        a.replicas = replicas;
        let rs = replica_seconds.max(0.0);
        a.replica_seconds += rs;
        a.cost_usd += rs * per_second;
    }

    pub fn set_forecast(&self, ns: &str, dag: &str, v: ForecastView) {
        self.lock()
            .forecasts
            .insert((ns.to_owned(), dag.to_owned()), v);
    }

    pub fn forecast(&self, ns: &str, dag: &str) -> Option<ForecastView> {
        self.lock()
            .forecasts
            .get(&(ns.to_owned(), dag.to_owned()))
            .cloned()
    }

    /// Every function's account, by (namespace, name).
    pub fn functions(&self) -> Vec<(Key, FnAccount)> {
        self.lock()
            .functions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Total cost of a DAG's members (dollars, profile time).
    pub fn dag_cost(&self, ns: &str, dag: &str) -> f64 {
        self.lock()
            .functions
            .iter()
            .filter(|((n, _), a)| n == ns && a.dag == dag)
            .map(|(_, a)| a.cost_usd)
            .sum()
    }

    /// Forgets what no longer exists.
    pub fn retain(&self, keep_dag: impl Fn(&Key) -> bool) {
        let mut m = self.lock();
        m.forecasts.retain(|k, _| keep_dag(k));
        m.functions
            .retain(|(ns, _), a| keep_dag(&(ns.clone(), a.dag.clone())));
    }

    /// The Prometheus exposition ([`crate::prom`], without the end marker).
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = Snapshot::default();
        let cost = out.counter(
            "smiless_function_cost_dollars_total",
            "Dollars of provisioned replica-time (init, busy and idle; profile time) per function.",
        );
        for ((ns, f), a) in &m.functions {
            cost.sample(
                labels([
                    ("function", f),
                    ("namespace", ns),
                    ("dag", &a.dag),
                    ("hardware", &a.hardware),
                ]),
                a.cost_usd,
            );
        }
        let replicas = out.gauge(
            "smiless_function_replicas",
            "Desired replicas per function, by hardware.",
        );
        for ((ns, f), a) in &m.functions {
            replicas.sample(
                labels([
                    ("function", f),
                    ("namespace", ns),
                    ("hardware", &a.hardware),
                ]),
                a.replicas,
            );
        }
        let dag_cost = out.counter(
            "smiless_dag_cost_dollars_total",
            "Dollars of provisioned replica-time of a DAG's members (profile time).",
        );
        let mut per_dag: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for ((ns, _), a) in &m.functions {
            *per_dag.entry((ns, &a.dag)).or_default() += a.cost_usd;
        }
        for ((ns, d), c) in &per_dag {
            dag_cost.sample(labels([("dag", d), ("namespace", ns)]), *c);
        }
        type Get = fn(&ForecastView) -> Number;
        let gauges: [(&str, bool, &str, Get); 7] = [
            (
                "smiless_dag_forecast_count",
                false,
                "Forecast request count of the open window (upper edge of the predicted class).",
                |v| v.count.into(),
            ),
            (
                "smiless_dag_forecast_interarrival_seconds",
                false,
                "Forecast next inter-arrival time (profile time).",
                |v| v.interarrival_s.into(),
            ),
            (
                "smiless_dag_forecast_last_predicted_count",
                false,
                "The forecast made for the last closed window.",
                |v| v.score.last_forecast.into(),
            ),
            (
                "smiless_dag_forecast_last_actual_count",
                false,
                "The actual count of the last closed window.",
                |v| v.score.last_actual.into(),
            ),
            (
                "smiless_dag_forecast_windows_total",
                true,
                "Windows whose forecast was scored against the actual count.",
                |v| v.score.windows.into(),
            ),
            (
                "smiless_dag_forecast_under_total",
                true,
                "Windows whose actual count exceeded the forecast.",
                |v| v.score.under.into(),
            ),
            (
                "smiless_dag_forecast_abs_error_total",
                true,
                "Sum of |forecast - actual| counts over the scored windows.",
                |v| v.score.abs_error_sum.into(),
            ),
        ];
        for (name, counter, help, get) in gauges {
            let family = if counter {
                out.counter(name, help)
            } else {
                out.gauge(name, help)
            };
            for ((ns, d), v) in &m.forecasts {
                family.sample(
                    labels([("dag", d), ("namespace", ns), ("forecaster", &v.forecaster)]),
                    get(v),
                );
            }
        }
        let trainings = out.counter(
            "smiless_dag_forecaster_trainings_total",
            "LSTM trainings finished on the observed history (0: the hybrid histogram is in use).",
        );
        for ((ns, d), v) in &m.forecasts {
            trainings.sample(labels([("dag", d), ("namespace", ns)]), v.trainings);
        }
        out.render()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bills_replica_time_and_renders_it() {
        let a = Accounts::default();
        a.charge(("ns", "f"), "d", "cpu:2", 2, 20.0, 0.001);
        a.charge(("ns", "f"), "d", "cpu:2", 0, 0.0, 0.001);
        a.charge(("ns", "g"), "d", "cpu:1", 1, 5.0, 0.002);
        let f = &a.functions()[0].1;
        assert!((f.cost_usd - 0.02).abs() < 1e-12);
        assert!((f.replica_seconds - 20.0).abs() < 1e-12);
        assert_eq!(f.replicas, 0);
        assert!((a.dag_cost("ns", "d") - 0.03).abs() < 1e-12);
        let text = a.render();
        assert!(text.contains(
            "smiless_function_cost_dollars_total{function=\"f\",namespace=\"ns\",dag=\"d\",hardware=\"cpu:2\"} 0.02"
        ));
        assert!(text.contains("smiless_dag_cost_dollars_total{dag=\"d\",namespace=\"ns\"} 0.03"));
        a.retain(|_| false);
        assert!(a.functions().is_empty());
    }
}
