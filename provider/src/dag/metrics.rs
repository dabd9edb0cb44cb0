//! Per-DAG Prometheus metrics, appended to `/metrics` (text format 0.0.4): requests, errors, SLA
//! violations, cold starts, pre-warms, the end-to-end latency histogram, and the current plan's cost and
//! predicted latency. Labels: `dag`, `namespace`.
use std::fmt::Write as _;

use super::live::E2E_BUCKETS_S;
use crate::api::AppState;

/// A counter: name, help text and how to read it from a DAG's statistics.
type Counter = (
    &'static str,
    &'static str,
    fn(&super::live::DagStats) -> u64,
);

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition of every DAG that served a request or has a plan.
pub fn render(state: &AppState) -> String {
    let live = &state.dags.live;
    let stats = live.all_stats();
    let mut out = String::new();
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
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for ((ns, dag), s) in &stats {
            let _ = writeln!(
                out,
                "{name}{{dag=\"{}\",namespace=\"{}\"}} {}",
                esc(dag),
                esc(ns),
                get(s)
            );
        }
    }
    let h = "smiless_dag_e2e_seconds";
    let _ = writeln!(
        out,
        "# HELP {h} End-to-end latency of DAG requests.\n# TYPE {h} histogram"
    );
    for ((ns, dag), s) in &stats {
        let labels = format!("dag=\"{}\",namespace=\"{}\"", esc(dag), esc(ns));
        let mut cum = 0;
        for (b, n) in E2E_BUCKETS_S.iter().zip(&s.e2e_buckets) {
            cum += n;
            let _ = writeln!(out, "{h}_bucket{{{labels},le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{h}_bucket{{{labels},le=\"+Inf\"}} {}", s.finished);
        let _ = writeln!(out, "{h}_sum{{{labels}}} {}", s.e2e_sum_ms / 1e3);
        let _ = writeln!(out, "{h}_count{{{labels}}} {}", s.finished);
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
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (ns, d, p) in &plans {
            let v = if cost {
                p.cost_per_hour
            } else {
                p.predicted_latency_s
            };
            let _ = writeln!(
                out,
                "{name}{{dag=\"{}\",namespace=\"{}\"}} {v}",
                esc(d),
                esc(ns)
            );
        }
    }
    out.push_str(&live.refresh.render());
    out.push_str(&live.control.render());
    out
}
