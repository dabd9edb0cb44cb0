//! The demo's report: per DAG (requests, SLA attainment, cost, cold starts, the forecaster) and per
//! function (hardware, batch, replicas, cold-start policy and why), read from `/system/plan` plus what
//! the client measured; rendered as text or JSON.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::client::Outcome;

/// Latencies and failures as the demo's client saw them, per DAG.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    latencies: BTreeMap<String, Vec<f64>>,
    failures: BTreeMap<String, u64>,
}

impl ClientStats {
    pub fn record(&mut self, dag: &str, o: Outcome) {
        self.latencies
            .entry(dag.to_owned())
            .or_default()
            .push(o.latency_s);
        if !o.ok {
            *self.failures.entry(dag.to_owned()).or_default() += 1;
        }
    }

    fn quantile_ms(&self, dag: &str, q: f64) -> Option<f64> {
        let mut v = self.latencies.get(dag)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        Some(v[i.min(v.len() - 1)] * 1e3)
    }
}

#[derive(Debug, Serialize)]
pub struct FnReport {
    pub name: String,
    pub hardware: String,
    pub batch: u64,
    pub replicas: u64,
    pub policy: String,
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct DagReport {
    pub name: String,
    pub sla_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub sla_violations: u64,
    /// Share of requests that succeeded within the SLA (× time scale); errors count as violations.
    pub sla_attainment: f64,
    /// Measured dollars of provisioned replica-time (profile time).
    pub cost_usd: f64,
    pub cold_starts: u64,
    pub prewarms: u64,
    pub e2e_mean_ms: f64,
    pub client_p50_ms: Option<f64>,
    pub client_p99_ms: Option<f64>,
    pub plan_cost_per_hour: f64,
    pub plan_predicted_latency_s: f64,
    pub forecast: Value,
    pub reason: String,
    pub functions: Vec<FnReport>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub policy: String,
    pub workload: String,
    /// Profile seconds replayed.
    pub duration_s: f64,
    pub time_scale: f64,
    pub requests: u64,
    pub sla_attainment: f64,
    pub cost_usd: f64,
    pub cold_starts: u64,
    pub dags: Vec<DagReport>,
    /// Always-on and smiless on the same trace, simulated (filled by the caller).
    pub beside: Beside,
}

/// The simulated yardstick beside the measured run ([`super::beside`]).
#[derive(Debug, Default, Serialize)]
pub struct Beside {
    /// What was simulated and how.
    pub what: String,
    pub rows: Vec<super::beside::Simulated>,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// "keep-alive 272 s", "pre-warm +0.8 s", "always-on".
pub fn policy_text(p: &Value) -> String {
    match p["kind"].as_str().unwrap_or("?") {
        "keep-alive" => format!("keep-alive {:.0} s", f(&p["seconds"])),
        "pre-warm" => format!("pre-warm at +{:.2} s", f(&p["offset_s"])),
        k => k.to_owned(),
    }
}

fn choice_text(c: &Value) -> String {
    format!(
        "{} b{} ×{} {}",
        c["hardware"].as_str().unwrap_or("?"),
        u(&c["batch"]),
        u(&c["replicas"]),
        policy_text(&c["policy"])
    )
}

/// Why a function got its choice: its share of the plan, and what the rejected alternatives would
/// have done to the whole plan's cost and latency.
fn why(fp: &Value, plan: &Value) -> String {
    let mut s = format!(
        "${:.4}/h of the plan's ${:.4}/h, runs {:.2}–{:.2} s after the request",
        f(&fp["cost_per_hour"]),
        f(&plan["cost_per_hour"]),
        f(&fp["start_s"]),
        f(&fp["finish_s"])
    );
    for a in fp["alternatives"].as_array().into_iter().flatten().take(2) {
        let _ = write!(
            s,
            "; rejected {}: ${:.4}/h, {:.2} s{}",
            choice_text(&a["choice"]),
            f(&a["cost_per_hour"]),
            f(&a["latency_s"]),
            if a["meets_sla"].as_bool() == Some(true) {
                ""
            } else {
                " (misses the SLA)"
            }
        );
    }
    s
}

/// The report of the DAGs in `dags`.
pub fn build(
    plan: &Value,
    dags: &[String],
    client: &ClientStats,
    args: &super::Args,
    duration_s: f64,
) -> Result<Report> {
    let mut out = Vec::new();
    for d in plan["dags"].as_array().into_iter().flatten() {
        let Some(name) = d["name"].as_str().filter(|n| dags.iter().any(|x| x == n)) else {
            continue;
        };
        let st = &d["stats"];
        let p = &d["control"]["plan"];
        let requests = u(&st["requests"]);
        let bad = (u(&st["sla_violations"]) + u(&st["errors"])).min(requests);
        let functions = p["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|fp| FnReport {
                name: fp["name"].as_str().unwrap_or("?").to_owned(),
                hardware: fp["choice"]["hardware"].as_str().unwrap_or("?").to_owned(),
                batch: u(&fp["choice"]["batch"]),
                replicas: u(&fp["choice"]["replicas"]),
                policy: policy_text(&fp["choice"]["policy"]),
                why: why(fp, p),
            })
            .collect();
        out.push(DagReport {
            name: name.to_owned(),
            sla_s: f(&d["sla_s"]),
            requests,
            errors: u(&st["errors"]),
            sla_violations: u(&st["sla_violations"]),
            sla_attainment: if requests == 0 {
                1.0
            } else {
                1.0 - bad as f64 / requests as f64
            },
            cost_usd: f(&d["cost_usd"]),
            cold_starts: u(&st["cold_starts"]),
            prewarms: u(&st["prewarms"]),
            e2e_mean_ms: f(&st["e2e_mean_ms"]),
            client_p50_ms: client.quantile_ms(name, 0.5),
            client_p99_ms: client.quantile_ms(name, 0.99),
            plan_cost_per_hour: f(&p["cost_per_hour"]),
            plan_predicted_latency_s: f(&p["predicted_latency_s"]),
            forecast: d["forecast"].clone(),
            reason: d["control"]["reason"].as_str().unwrap_or("").to_owned(),
            functions,
        });
    }
    let requests: u64 = out.iter().map(|d| d.requests).sum();
    let met: f64 = out
        .iter()
        .map(|d| d.sla_attainment * d.requests as f64)
        .sum();
    // The policy the provider ran (an attached provider may run another one than --policy).
    let policy = plan["dags"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["control"]["plan"]["policy"].as_str())
        .map_or_else(|| args.policy.clone(), str::to_owned);
    Ok(Report {
        policy,
        workload: args.workload.clone(),
        duration_s,
        time_scale: plan["time_scale"].as_f64().unwrap_or(args.time_scale),
        requests,
        sla_attainment: if requests == 0 {
            1.0
        } else {
            met / requests as f64
        },
        cost_usd: out.iter().map(|d| d.cost_usd).sum(),
        cold_starts: out.iter().map(|d| d.cold_starts).sum(),
        dags: out,
        beside: Beside::default(),
    })
}

/// One line of live progress: per DAG requests, violations, cold starts and cost so far.
pub fn progress_line(plan: &Value, dags: &[String]) -> String {
    let mut parts = Vec::new();
    for d in plan["dags"].as_array().into_iter().flatten() {
        let Some(name) = d["name"].as_str().filter(|n| dags.iter().any(|x| x == n)) else {
            continue;
        };
        let st = &d["stats"];
        parts.push(format!(
            "{name}: {} req, {} over SLA, {} cold, ${:.4}",
            u(&st["requests"]),
            u(&st["sla_violations"]),
            u(&st["cold_starts"]),
            f(&d["cost_usd"])
        ));
    }
    parts.join(" | ")
}

/// The text report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nsmiless demo report: policy {}, {} ({:.0} s of profile time at time scale {})",
        r.policy, r.workload, r.duration_s, r.time_scale
    );
    let _ = writeln!(
        s,
        "\n{:<16} {:>6} {:>6} {:>5} {:>9} {:>10} {:>5} {:>5} {:>9} {:>9}",
        "DAG", "SLA s", "reqs", "errs", "SLA met", "cost $", "cold", "prew", "p50 ms", "p99 ms"
    );
    for d in &r.dags {
        let ms = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.0}"));
        let _ = writeln!(
            s,
            "{:<16} {:>6.1} {:>6} {:>5} {:>8.1}% {:>10.5} {:>5} {:>5} {:>9} {:>9}",
            d.name,
            d.sla_s,
            d.requests,
            d.errors,
            d.sla_attainment * 100.0,
            d.cost_usd,
            d.cold_starts,
            d.prewarms,
            ms(d.client_p50_ms),
            ms(d.client_p99_ms)
        );
    }
    let _ = writeln!(
        s,
        "{:<16} {:>6} {:>6} {:>5} {:>8.1}% {:>10.5} {:>5}",
        "total",
        "",
        r.requests,
        "",
        r.sla_attainment * 100.0,
        r.cost_usd,
        r.cold_starts
    );
    let _ = writeln!(
        s,
        "(latencies are real time; the SLA is compared with SLA × time scale. Cost: provisioned replica-time at AWS prices, profile time.)"
    );
    render_beside(&mut s, r);
    for d in &r.dags {
        let fc = &d.forecast;
        let _ = writeln!(
            s,
            "\n{}: plan ${:.4}/h, predicted {:.2} s (profile time) against {} s; forecaster {} ({} windows seen, {} trainings; last window forecast {} vs actual {})",
            d.name,
            d.plan_cost_per_hour,
            d.plan_predicted_latency_s,
            d.sla_s,
            fc["forecaster"].as_str().unwrap_or("-"),
            u(&fc["history_windows"]),
            u(&fc["trainings"]),
            u(&fc["score"]["last_forecast"]),
            u(&fc["score"]["last_actual"])
        );
        let _ = writeln!(s, "  why: {}", d.reason);
        for fp in &d.functions {
            let _ = writeln!(
                s,
                "  {:<26} {:<8} batch {:<2} ×{:<2} {:<22} {}",
                fp.name, fp.hardware, fp.batch, fp.replicas, fp.policy, fp.why
            );
        }
    }
    s
}

/// The measured run beside always-on and smiless simulated on the same trace.
fn render_beside(s: &mut String, r: &Report) {
    use super::beside::find;
    if r.beside.rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nbeside always-on: {} (measured: the live run above; simulated: {})",
        r.policy, r.beside.what
    );
    let _ = writeln!(
        s,
        "{:<16} {:>13} {:>9} {:>13} {:>9} {:>13} {:>9} {:>16}",
        "DAG",
        "measured $",
        "met",
        "sim smiless $",
        "met",
        "sim always-on $",
        "met",
        "always-on/meas."
    );
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    for d in &r.dags {
        let (Some(on), Some(sm)) = (
            find(&r.beside.rows, &d.name, "always-on"),
            find(&r.beside.rows, &d.name, "smiless"),
        ) else {
            continue;
        };
        let ratio = if d.cost_usd > 0.0 {
            format!("{:.1}x", on.cost_usd / d.cost_usd)
        } else {
            "-".into()
        };
        let _ = writeln!(
            s,
            "{:<16} {:>13.5} {:>9} {:>13.5} {:>9} {:>15.5} {:>9} {:>16}",
            d.name,
            d.cost_usd,
            pct(d.sla_attainment),
            sm.cost_usd,
            pct(sm.sla_attainment),
            on.cost_usd,
            pct(on.sla_attainment),
            ratio
        );
    }
}
