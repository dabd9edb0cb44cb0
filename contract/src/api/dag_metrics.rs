//! Per-DAG Prometheus metrics, appended to `/metrics` (written by [`crate::prom`]): requests, errors, SLA
//! violations, cold starts, pre-warms, the end-to-end latency histogram, and the current plan's cost and
//! predicted latency. Labels: `dag`, `namespace`. Then the control loop's families (profile drift,
//! accounts and forecasts).
use super::AppState;
use crate::dag::live::{DagStats, E2E_BUCKETS_S};
use crate::prom::{Snapshot, labels};

/// A counter: name, help text and how to read it from a DAG's statistics.
type Counter = (&'static str, &'static str, fn(&DagStats) -> u64);

/// The exposition of every DAG that served a request or has a plan (without the end marker).
pub fn render(state: &AppState) -> String {
    let live = &state.dags.live;
    let stats = live.all_stats();
    let mut out = Snapshot::default();
    let counters: [Counter; 5] = [
        (
            "smiless_dag_requests_total",
            "DAG requests received.",
            |s| s.requests,
        ),
        (
            "smiless_dag_errors_total",
            "DAG requests that failed.",
            |s| s.errors,
        ),
        (
            "smiless_dag_sla_violations_total",
            "DAG requests slower than the SLA (times the time scale).",
            |s| s.sla_violations,
        ),
        (
            "smiless_dag_cold_starts_total",
            "Members at 0 replicas when a DAG request needed them.",
            |s| s.cold_starts,
        ),
        (
            "smiless_dag_prewarms_total",
            "Members started ahead of need after a DAG request arrived.",
            |s| s.prewarms,
        ),
    ];
    for (name, help, get) in counters {
        let family = out.counter(name, help);
        for ((ns, dag), s) in &stats {
            family.sample(labels([("dag", dag), ("namespace", ns)]), get(s));
        }
    }
    let e2e = out.histogram(
        "smiless_dag_e2e_seconds",
        "End-to-end latency of DAG requests.",
    );
    for ((ns, dag), s) in &stats {
        e2e.histogram(
            labels([("dag", dag), ("namespace", ns)]),
            s.e2e_sum_ms / 1e3,
            s.finished,
            E2E_BUCKETS_S.iter().copied().zip(s.e2e_buckets),
        );
    }
    let dags = state.dags.current(&state.catalog);
    let plans: Vec<_> = dags
        .by_key
        .keys()
        .filter_map(|(ns, d)| {
            live.plan(ns, d)
                .and_then(|v| v.plan)
                .map(|p| (ns.clone(), d.clone(), p))
        })
        .collect();
    for (name, help, cost) in [
        (
            "smiless_dag_plan_cost_per_hour",
            "The current plan's cost, dollars per hour.",
            true,
        ),
        (
            "smiless_dag_plan_predicted_latency_seconds",
            "The current plan's predicted end-to-end latency (profile time).",
            false,
        ),
    ] {
        let family = out.gauge(name, help);
        for (ns, d, p) in &plans {
            let v = if cost {
                p.cost_per_hour
            } else {
                p.predicted_latency_s
            };
            family.sample(labels([("dag", d), ("namespace", ns)]), v);
        }
    }
    let mut text = out.render();
    text.push_str(&live.refresh.render());
    text.push_str(&live.control.render());
    text
}
