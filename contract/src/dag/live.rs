//! What the DAG runner measures (requests, end-to-end latency, cold starts) and what the control loop
//! decided, shared between them and `/system/plan` and `/metrics`. The control loop learns of requests
//! from [`crate::events`], not from here. Plain data behind short-held mutexes: the runner
//! touches it a few times per request, the control loop once per tick.
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use optimizer::{Load, Plan};
use serde::Serialize;

/// (namespace, name) of a DAG or a function.
pub type Key = (String, String);

fn key(ns: &str, name: &str) -> Key {
    (ns.to_owned(), name.to_owned())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Upper bounds (seconds) of the end-to-end latency histogram.
pub const E2E_BUCKETS_S: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0,
];

/// Per-DAG request statistics (since the provider started).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DagStats {
    pub requests: u64,
    pub errors: u64,
    /// Requests over the SLA (ready DAGs with an SLA only).
    pub sla_violations: u64,
    pub e2e_last_ms: f64,
    pub e2e_mean_ms: f64,
    pub e2e_max_ms: f64,
    /// Members that were at 0 replicas when the runner needed them.
    pub cold_starts: u64,
    /// Members started ahead of need after a DAG request arrived.
    pub prewarms: u64,
    #[serde(skip)]
    pub e2e_sum_ms: f64,
    /// Requests finished (the histogram's count).
    #[serde(skip)]
    pub finished: u64,
    /// End-to-end latency histogram: counts per bucket of [`E2E_BUCKETS_S`] (not cumulative).
    #[serde(skip)]
    pub e2e_buckets: [u64; E2E_BUCKETS_S.len()],
}

/// The control loop's view of one DAG, as `/system/plan` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// The current plan (absent while the DAG cannot be planned).
    pub plan: Option<Plan>,
    /// The load the plan was made for.
    pub load: Option<Load>,
    /// Why the last decision is what it is.
    pub reason: String,
    #[serde(with = "crate::types::rfc3339")]
    pub decided_at: jiff::Timestamp,
    /// Each function's last executor action.
    pub actions: Vec<String>,
    /// Whether the backend runs every member on its planned hardware.
    pub hardware_applied: bool,
    /// Why the DAG does not meet its SLA under the cluster's capacity (the joint planner's
    /// degradation rule, docs/capacity.md); absent when it is planned to meet it.
    pub degradation: Option<optimizer::capacity::joint::Degradation>,
}

/// The capacity every DAG was planned against at the last tick, and what the plans request of it
/// (`/system/plan`'s `capacity`).
#[derive(Debug, Clone, Serialize)]
pub struct CapacityView {
    /// Allocatable CPU is multiplied by this (`--overcommit`, `SMILESS_OVERCOMMIT`; default 1).
    pub overcommit: f64,
    /// Per node: requested and allocatable CPU (millicores) and GPU units, and the replicas placed
    /// (the plans' peak requests and the standalone reservations, packed first-fit decreasing).
    pub nodes: Vec<optimizer::capacity::NodeUse>,
    /// The standalone functions' replicas reserved before any DAG was planned.
    pub standalone: Vec<optimizer::capacity::joint::Standalone>,
    /// Joint plans computed and joint decisions made since the start (the rest came from the memo).
    pub plans_computed: u64,
    pub decisions: u64,
    #[serde(with = "crate::types::rfc3339")]
    pub decided_at: jiff::Timestamp,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Live {
    epoch: Instant,
    /// Multiplies every planned duration (keep-alive windows, pre-warm offsets) and divides observed
    /// times, so a time-scaled emulator and the planner agree (`SMILESS_TIME_SCALE`).
    pub time_scale: f64,
    dags: Mutex<HashMap<Key, DagStats>>,
    plans: Mutex<HashMap<Key, PlanView>>,
    capacity: Mutex<Option<CapacityView>>,
    /// Observed call times of DAG members, for the online profile refresh.
    pub refresh: crate::observe::refresh::Refresher,
    /// The control loop's measurements: cost per function, forecast vs actual per DAG.
    pub control: crate::observe::account::Accounts,
    /// Every function's desired replicas over time, for the bill (set on every scale, real time).
    pub replica_time: crate::observe::replica_time::ReplicaClock,
}

impl Default for Live {
    fn default() -> Self {
        let scale = function_kit::emulator::parse_time_scale(
            std::env::var(function_kit::emulator::ENV_TIME_SCALE)
                .ok()
                .as_deref(),
        );
        Live::new(scale.unwrap_or_else(|e| {
            tracing::warn!("{e}; using time scale 1");
            1.0
        }))
    }
}

impl Live {
    pub fn new(time_scale: f64) -> Live {
        Live {
            epoch: Instant::now(),
            time_scale,
            dags: Mutex::default(),
            plans: Mutex::default(),
            capacity: Mutex::default(),
            refresh: Default::default(),
            control: Default::default(),
            replica_time: Default::default(),
        }
    }

    /// Seconds since the provider started (the control loop's clock).
    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// A DAG request arrived.
    pub fn arrival(&self, ns: &str, dag: &str) {
        lock(&self.dags).entry(key(ns, dag)).or_default().requests += 1;
    }

    /// A DAG request finished after `e2e_ms`; `sla_s` counts violations.
    pub fn finished(&self, ns: &str, dag: &str, e2e_ms: f64, ok: bool, sla_s: Option<f64>) {
        let mut m = lock(&self.dags);
        let s = m.entry(key(ns, dag)).or_default();
        if !ok {
            s.errors += 1;
        }
        if sla_s.is_some_and(|sla| e2e_ms > sla * 1e3 * self.time_scale) {
            s.sla_violations += 1;
        }
        s.e2e_last_ms = e2e_ms;
        s.e2e_sum_ms += e2e_ms;
        s.finished += 1;
        if let Some(i) = E2E_BUCKETS_S.iter().position(|b| e2e_ms <= b * 1e3) {
            s.e2e_buckets[i] += 1;
        }
        s.e2e_max_ms = s.e2e_max_ms.max(e2e_ms);
        s.e2e_mean_ms = s.e2e_sum_ms / s.finished as f64;
    }

    pub fn cold_start(&self, ns: &str, dag: &str) {
        lock(&self.dags)
            .entry(key(ns, dag))
            .or_default()
            .cold_starts += 1;
    }

    /// `n` replicas were started ahead of need after DAG requests arrived.
    pub fn prewarm(&self, ns: &str, dag: &str, n: u64) {
        lock(&self.dags).entry(key(ns, dag)).or_default().prewarms += n;
    }

    /// Every DAG's statistics (for `/metrics`).
    pub fn all_stats(&self) -> Vec<(Key, DagStats)> {
        let mut v: Vec<(Key, DagStats)> = lock(&self.dags)
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn stats(&self, ns: &str, dag: &str) -> DagStats {
        lock(&self.dags)
            .get(&key(ns, dag))
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_plan(&self, ns: &str, dag: &str, view: PlanView) {
        lock(&self.plans).insert(key(ns, dag), view);
    }

    pub fn set_capacity(&self, view: CapacityView) {
        *lock(&self.capacity) = Some(view);
    }

    /// The capacity view of the last joint decision (absent before the first).
    pub fn capacity(&self) -> Option<CapacityView> {
        lock(&self.capacity).clone()
    }

    pub fn plan(&self, ns: &str, dag: &str) -> Option<PlanView> {
        lock(&self.plans).get(&key(ns, dag)).cloned()
    }

    /// The batch cap the current plan gives member `member` (by name, so a plan made for an older
    /// version of the DAG cannot batch the wrong member); 1 without a plan.
    pub fn batch_of(&self, ns: &str, dag: &str, member: &str) -> u32 {
        lock(&self.plans)
            .get(&key(ns, dag))
            .and_then(|v| v.plan.as_ref())
            .and_then(|p| p.functions.iter().find(|f| f.name == member))
            .map_or(1, |f| f.choice.batch.max(1))
    }

    /// Forgets DAGs that no longer exist.
    pub fn retain_plans(&self, keep: impl Fn(&Key) -> bool) {
        lock(&self.plans).retain(|k, _| keep(k));
    }
}
