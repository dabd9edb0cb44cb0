//! DAGs in the contract's listings (`GET /system/functions`, `GET /system/function/<dag>`) and the plan
//! report `GET /system/plan`.
//!
//! A DAG is listed as a `FunctionStatus` with its own name and the label `com.smiless.kind=dag`; a ready
//! DAG's replicas are its entry's (the runner and the control loop start the other members) and it is
//! always available (its runner takes every request and starts released members itself); any other DAG's
//! replicas and availability are the minimum over its members.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{ApiError, AppState, Authorized};
use crate::dag::{DagEntry, DagState, LABEL_KIND, live};
use crate::types::{FunctionStatus, LABEL_FAAS_FUNCTION, to_json};

/// The annotation listing a DAG's members in its status.
pub const ANN_MEMBERS: &str = "com.smiless.members";
/// The annotation carrying a DAG's state (`ready`, `pending: …`, `invalid: …`).
pub const ANN_STATE: &str = "com.smiless.state";

fn state_text(s: &DagState) -> String {
    match s {
        DagState::Ready => "ready".into(),
        DagState::Pending { reason } => format!("pending: {reason}"),
        DagState::Invalid { reason } => format!("invalid: {reason}"),
    }
}

/// A DAG as a `FunctionStatus`.
pub fn dag_status(state: &AppState, e: &DagEntry) -> FunctionStatus {
    let mut desired = u64::MAX;
    let mut available = u64::MAX;
    let mut created = None::<jiff::Timestamp>;
    // A ready DAG's replicas are its entry's, and it is always available: the runner starts released
    // members itself (a cold start, or the control loop's pre-warm at its planned offset). Reporting it
    // unavailable would make the stock gateway hold requests while it scales the DAG from zero: they would
    // reach the runner late and bunched (the forecaster would see bursts the users never sent), the
    // pre-warms would start only after the wait, and the scale would wake every released member.
    let entry = match (&e.state, &e.dag) {
        (DagState::Ready, Some(d)) => Some(d.nodes[d.entry].name.clone()),
        _ => None,
    };
    for m in e
        .members
        .iter()
        .filter(|m| entry.as_ref().is_none_or(|x| x == *m))
    {
        match state.catalog.function(&e.namespace, m) {
            Some(rec) => {
                desired = desired.min(u64::from(rec.replicas));
                available =
                    available.min(u64::from(state.backend.status(&e.namespace, m).available));
                created = Some(created.map_or(rec.created_at, |c| c.max(rec.created_at)));
            }
            None => {
                desired = 0;
                available = 0;
            }
        }
    }
    let labels = [
        (LABEL_KIND.to_owned(), "dag".to_owned()),
        (LABEL_FAAS_FUNCTION.to_owned(), e.name.clone()),
    ]
    .into();
    let mut annotations: std::collections::BTreeMap<String, String> = [
        (ANN_MEMBERS.to_owned(), e.members.join(",")),
        (ANN_STATE.to_owned(), state_text(&e.state)),
    ]
    .into();
    if let Some(sla) = e.dag.as_ref().and_then(|d| d.sla_s) {
        annotations.insert(optimizer::dag::ANN_SLA.to_owned(), format!("{sla}s"));
    }
    FunctionStatus {
        name: e.name.clone(),
        image: String::new(),
        namespace: e.namespace.clone(),
        env_process: String::new(),
        env_vars: Default::default(),
        constraints: Vec::new(),
        secrets: Vec::new(),
        labels,
        annotations,
        limits: None,
        requests: None,
        read_only_root_filesystem: false,
        invocation_count: state.dags.live.stats(&e.namespace, &e.name).requests as f64,
        replicas: if desired == u64::MAX { 0 } else { desired },
        available_replicas: match (&entry, available) {
            (Some(_), a) if a != u64::MAX => a.max(1),
            (_, u64::MAX) => 0,
            (_, a) => a,
        },
        created_at: created.unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        usage: None,
    }
}

/// The statuses of the DAGs of one (resolved) namespace.
pub fn list(state: &AppState, namespace: &str) -> Vec<FunctionStatus> {
    let ns = state.catalog.resolve_namespace(namespace);
    state
        .dags
        .current(&state.catalog)
        .by_key
        .values()
        .filter(|e| e.namespace == ns)
        .map(|e| dag_status(state, e))
        .collect()
}

/// One DAG's status, when `name` is a DAG.
pub fn describe(state: &AppState, namespace: &str, name: &str) -> Option<FunctionStatus> {
    let ns = state.catalog.resolve_namespace(namespace);
    let dags = state.dags.current(&state.catalog);
    dags.get(ns, name).map(|e| dag_status(state, e))
}

/// `POST /system/scale-function/<dag>`: `None` when `name` is not a DAG (a function of that name wins).
/// Scaling a DAG to `n ≥ 1` raises every member below `n` to `n` (`faas-cli scale`; the control loop
/// applies its plan again at its next tick); `n = 0` releases every member.
pub async fn scale(
    state: &AppState,
    namespace: &str,
    name: &str,
    replicas: u64,
) -> Option<Result<(), ApiError>> {
    let ns = state.catalog.resolve_namespace(namespace).to_owned();
    if state.catalog.function(&ns, name).is_some() {
        return None;
    }
    let dags = state.dags.current(&state.catalog);
    let e = dags.get(&ns, name)?;
    for m in &e.members {
        let Some(rec) = state.catalog.function(&ns, m) else {
            continue;
        };
        if (replicas == 0 || u64::from(rec.replicas) < replicas)
            && let Err(err) = state.scale(&ns, m, replicas).await
        {
            return Some(Err(err));
        }
    }
    Some(Ok(()))
}

/// One DAG in `/system/plan`.
#[derive(Debug, Serialize)]
pub struct DagReport {
    pub name: String,
    pub namespace: String,
    pub members: Vec<String>,
    #[serde(flatten)]
    pub state: DagState,
    pub sla_s: Option<f64>,
    pub stats: live::DagStats,
    /// The control loop's current decision (absent until its first tick for this DAG).
    pub control: Option<live::PlanView>,
    /// The DAG's forecaster (absent until its first tick).
    pub forecast: Option<crate::observe::forecast::ForecastView>,
    /// Measured cost of the members' provisioned replica-time since the provider started (profile time).
    pub cost_usd: f64,
}

/// `GET /system/plan`.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub time_scale: f64,
    /// The prices in force (`SMILESS_PRICES`, else the paper's defaults).
    pub prices: optimizer::Prices,
    /// The cluster every DAG was planned against jointly, and what the plans request per node
    /// (absent before the control loop's first joint decision).
    pub capacity: Option<live::CapacityView>,
    pub dags: Vec<DagReport>,
}

/// The report of every DAG (all namespaces).
pub fn report(state: &AppState) -> PlanReport {
    let live = &state.dags.live;
    let dags = state
        .dags
        .current(&state.catalog)
        .by_key
        .values()
        .map(|e| DagReport {
            name: e.name.clone(),
            namespace: e.namespace.clone(),
            members: e.members.clone(),
            state: e.state.clone(),
            sla_s: e.dag.as_ref().and_then(|d| d.sla_s),
            stats: live.stats(&e.namespace, &e.name),
            control: live.plan(&e.namespace, &e.name),
            forecast: live.control.forecast(&e.namespace, &e.name),
            cost_usd: live.control.dag_cost(&e.namespace, &e.name),
        })
        .collect();
    PlanReport {
        time_scale: live.time_scale,
        prices: state.prices,
        capacity: live.capacity(),
        dags,
    }
}

/// `GET /system/plan`: per DAG, the current plan (hardware, batch, cold-start policy and replicas per
/// function, predicted latency, cost per hour, rejected alternatives) and the reason of the last decision.
pub async fn plan(
    _: Authorized,
    _req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(to_json(&report(&state))))
}
