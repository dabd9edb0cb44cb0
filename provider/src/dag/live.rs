//! What the DAG runner observes (arrivals, end-to-end latency, member use) and what the control loop
//! decided, shared between them and `/system/plan`. Plain data behind short-held mutexes: the runner
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
    /// Arrival times (seconds since the provider started) not yet handed to the control loop.
    #[serde(skip)]
    pending_arrivals: Vec<f64>,
}

/// A function's use by the runner.
#[derive(Debug, Clone, Copy, Default)]
pub struct FnUse {
    pub in_flight: u32,
    /// Seconds since the provider started; `None` until first used.
    pub last_used: Option<f64>,
    /// Held by pre-warms until this time (seconds since start), so it is not released before its use.
    pub reserved_until: Option<f64>,
    /// Pre-warm holds not yet used by a call (each DAG request's pre-warm holds its member once).
    holds: u32,
}

impl FnUse {
    /// Whether a pre-warm still holds it at `now` (seconds since start).
    pub fn held_at(&self, now: f64) -> bool {
        self.reserved_until.is_some_and(|r| r > now)
    }
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
}

/// See the module documentation.
#[derive(Debug)]
pub struct Live {
    epoch: Instant,
    /// Multiplies every planned duration (keep-alive windows, pre-warm offsets) and divides observed
    /// times, so a time-scaled emulator and the planner agree (`SMILESS_TIME_SCALE`).
    pub time_scale: f64,
    dags: Mutex<HashMap<Key, DagStats>>,
    functions: Mutex<HashMap<Key, FnUse>>,
    plans: Mutex<HashMap<Key, PlanView>>,
    /// Observed call times of DAG members, for the online profile refresh.
    pub refresh: crate::control::refresh::Refresher,
    /// The control loop's measurements: cost per function, forecast vs actual per DAG.
    pub control: crate::control::account::Accounts,
    /// Every function's desired replicas over time, for the bill (set on every scale, real time).
    pub replica_time: crate::control::replica_time::ReplicaClock,
}

impl Default for Live {
    fn default() -> Self {
        let scale = crate::emulator::parse_time_scale(
            std::env::var(crate::emulator::ENV_TIME_SCALE)
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
            functions: Mutex::default(),
            plans: Mutex::default(),
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
        let now = self.now();
        let mut m = lock(&self.dags);
        let s = m.entry(key(ns, dag)).or_default();
        s.requests += 1;
        s.pending_arrivals.push(now);
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

    pub fn prewarm(&self, ns: &str, dag: &str) {
        lock(&self.dags).entry(key(ns, dag)).or_default().prewarms += 1;
    }

    /// Arrivals since the previous call (the control loop's observation).
    pub fn take_arrivals(&self, ns: &str, dag: &str) -> Vec<f64> {
        lock(&self.dags)
            .get_mut(&key(ns, dag))
            .map(|s| std::mem::take(&mut s.pending_arrivals))
            .unwrap_or_default()
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

    /// The runner starts a call of a member. Returns whether a pre-warm held it for that call (the hold
    /// is then used: a request reaches each member once).
    pub fn call_started(&self, ns: &str, f: &str) -> bool {
        let now = self.now();
        let mut m = lock(&self.functions);
        let u = m.entry(key(ns, f)).or_default();
        u.in_flight += 1;
        u.last_used = Some(now);
        let held = u.holds > 0 && u.held_at(now);
        u.holds = u.holds.saturating_sub(1);
        if u.holds == 0 {
            u.reserved_until = None;
        }
        held
    }

    /// The runner ended a call of a member; its use now.
    pub fn call_ended(&self, ns: &str, f: &str) -> FnUse {
        let now = self.now();
        let mut m = lock(&self.functions);
        let u = m.entry(key(ns, f)).or_default();
        u.in_flight = u.in_flight.saturating_sub(1);
        u.last_used = Some(now);
        *u
    }

    /// A pre-warm holds `f` for one request until `until` (seconds since start).
    pub fn reserve(&self, ns: &str, f: &str, until: f64) {
        let now = self.now();
        let mut m = lock(&self.functions);
        let u = m.entry(key(ns, f)).or_default();
        if !u.held_at(now) {
            // Expired holds belong to requests that never reached `f` (they failed before it).
            u.holds = 0;
        }
        u.holds += 1;
        u.reserved_until = Some(u.reserved_until.map_or(until, |r| r.max(until)));
    }

    pub fn member_use(&self, ns: &str, f: &str) -> FnUse {
        lock(&self.functions)
            .get(&key(ns, f))
            .copied()
            .unwrap_or_default()
    }

    pub fn set_plan(&self, ns: &str, dag: &str, view: PlanView) {
        lock(&self.plans).insert(key(ns, dag), view);
    }

    pub fn plan(&self, ns: &str, dag: &str) -> Option<PlanView> {
        lock(&self.plans).get(&key(ns, dag)).cloned()
    }

    /// Forgets DAGs that no longer exist.
    pub fn retain_plans(&self, keep: impl Fn(&Key) -> bool) {
        lock(&self.plans).retain(|k, _| keep(k));
    }
}
