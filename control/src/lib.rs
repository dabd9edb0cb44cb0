//! The live control loop (DESIGN §3, §7): every tick, observe every ready DAG's arrivals, ask the
//! shared joint decision step ([`optimizer::sim::JointController`] over each DAG's
//! [`optimizer::sim::Controller`], the same code the simulator runs) for every DAG's plan against the
//! backend's capacity ([`contract::backend::Backend::capacity`], CPU overcommitted by
//! [`ENV_OVERCOMMIT`], the standalone functions' replicas reserved first), and hand each to its DAG's
//! executor ([`execute::DagExec`] around [`optimizer::exec::Executor`], the
//! replica lifecycle the simulator runs too). Between ticks the loop feeds the executor the request
//! path's events ([`contract::events`]: arrivals, calls queued and ended, requests abandoned) and its
//! timers (pre-warms at their planned offsets, keep-alive expiries), and scales each member to the
//! executor's replica count.
//!
//! - Load: the predictor's forecasters ([`forecast`]): the hybrid histogram until enough history is
//!   observed, then an LSTM trained in the background on that history.
//! - Policy: `smiless`, or a baseline for comparison ([`policy`]: always-on, fixed keep-alive).
//! - Measurement: per function cost of provisioned replica-time, per DAG forecast vs actual
//!   ([`account`], exported at `/metrics`).
//! - Persistence: profiles, forecasters and plans under the state directory ([`persist`]).
//!
//! Times: the planner works in profile seconds; a run with `SMILESS_TIME_SCALE = s` (shared with the
//! `smiless-fn` emulator) divides observed times by `s` and multiplies planned durations by `s`; the tick
//! is `s` seconds (at least 0.1 s), so a tick is always about one profile second.
//!
//! Capacity: a plan's peak requests, summed over the DAGs with the standalone reservations, fit the
//! capacity at every tick; a DAG the capacity cannot hold at its SLA is degraded and `/system/plan`
//! says why (docs/capacity.md, "Live").
//!
//! Hardware: the planner's space is what the host has ([`host::space`]); the plan's hardware is applied
//! through [`contract::backend::Backend::place`] (CPU affinity and thread counts, or a GPU share's MPS
//! environment), a change rolling the replicas.
//!
//! Standalone functions (in no DAG) that carry an autoscaling label are scaled by load and to zero on
//! the same tick ([`standalone`] around the pure [`autoscale`] policy; docs/autoscaling.md).
//!
//! Not done here (see docs/live.md): batching (the watchdog serves one request per call).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use optimizer::{Dag, ProfileSet};

use contract::dag::DagState;
use contract::events::{Event, What};
use contract::state::AppState;

pub mod autoscale;
mod dag_control;
pub mod estimator;
pub mod execute;
pub mod forecast;
pub mod persist;
pub mod policy;
pub mod refresh;
pub mod standalone;
mod step;

use dag_control::{DagControl, profiles, save_observed, state_dir};

pub use contract::backend::host::{self, ENV_GPUS, host, host_of};
pub use contract::observe::{account, contention, replica_time};
pub use estimator::EstimatorKind;
pub use policy::LivePolicy;

/// The control tick at time scale 1 (it shrinks with the scale, to at least [`MIN_TICK`]).
pub const TICK: Duration = Duration::from_secs(1);
/// The shortest tick.
pub const MIN_TICK: Duration = Duration::from_millis(100);
/// Planning headroom: plan for SLA × (1 − this) to absorb noise the models do not see.
pub const HEADROOM: f64 = 0.1;

/// Environment variable: the CPU overcommit factor of the capacity the DAGs are planned against
/// (`smiless serve --overcommit`; ≥ 1, default 1: a plan requests at most the cores there are).
pub const ENV_OVERCOMMIT: &str = "SMILESS_OVERCOMMIT";

/// The tick at `time_scale`.
pub fn tick(time_scale: f64) -> Duration {
    Duration::try_from_secs_f64(TICK.as_secs_f64() * time_scale)
        .unwrap_or(TICK)
        .clamp(MIN_TICK, TICK)
}

/// The loop's state across ticks.
struct Loop {
    policy: LivePolicy,
    estimator: EstimatorKind,
    profiles: ProfileSet,
    store: Option<persist::Store>,
    controls: HashMap<(String, String), DagControl>,
    /// Arrivals (profile seconds) per DAG reported since its last decision (kept before its control
    /// exists, so the first tick after a start or a restart sees the requests that came before it).
    arrivals: HashMap<(String, String), Vec<f64>>,
    /// Every ready DAG's executor (planned or not), with the graph it was made for.
    execs: HashMap<(String, String), (Dag, execute::DagExec)>,
    /// Live time of the previous tick (for billing).
    last_tick: Option<f64>,
    /// The refresh's observation count and the live time when `observed.json` was last written.
    observed_at: (u64, f64),
    /// The standalone functions' autoscaler.
    standalone: standalone::Standalone,
    /// Every planned DAG decided together against the backend's capacity.
    joint: optimizer::sim::JointController,
    /// CPU overcommit factor of that capacity (≥ 1).
    overcommit: f64,
}

/// Runs the control loop until the process ends, with the policy of `SMILESS_POLICY` (default smiless).
pub async fn run(state: Arc<AppState>) {
    let policy = LivePolicy::from_env().unwrap_or_else(|e| {
        tracing::error!("{e}; running the smiless policy");
        LivePolicy::Smiless
    });
    let estimator = EstimatorKind::from_env().unwrap_or_else(|e| {
        tracing::error!("{e}; planning with the recent-window estimate");
        EstimatorKind::Recent
    });
    let overcommit = match std::env::var(ENV_OVERCOMMIT) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            tracing::error!("{ENV_OVERCOMMIT}={v:?} is not a number; no overcommit");
            1.0
        }),
        Err(_) => 1.0,
    };
    run_with(state, policy, estimator, overcommit).await;
}

/// Runs the control loop with `policy`, planning from the `estimator`'s load against the backend's
/// capacity with CPU overcommitted by `overcommit` (≥ 1; a bad factor is taken as 1), until the
/// process ends.
pub async fn run_with(
    state: Arc<AppState>,
    policy: LivePolicy,
    estimator: EstimatorKind,
    overcommit: f64,
) {
    let lp = new_loop(&state, policy, estimator, overcommit);
    drive(state, lp).await;
}

/// The loop's state at its start (profiles and forecasters restored from the state directory).
fn new_loop(
    state: &Arc<AppState>,
    policy: LivePolicy,
    estimator: EstimatorKind,
    overcommit: f64,
) -> Loop {
    let store = state_dir(state).map(|d| persist::Store::new(&d));
    let profiles = store.as_ref().map_or_else(ProfileSet::paper, profiles);
    if let Some(s) = &store
        && let Err(e) = s.save_profiles(&profiles)
    {
        tracing::warn!("control loop: cannot save the profiles: {e}");
    }
    tracing::info!(
        "control loop: policy {policy}, load estimate {estimator}, CPU overcommit {overcommit}"
    );
    Loop {
        policy,
        estimator,
        profiles,
        store,
        controls: HashMap::new(),
        arrivals: HashMap::new(),
        execs: HashMap::new(),
        last_tick: None,
        observed_at: (0, f64::NEG_INFINITY),
        standalone: standalone::Standalone::default(),
        joint: optimizer::sim::JointController::new(state.backend.capacity()),
        overcommit: if overcommit.is_finite() && overcommit >= 1.0 {
            overcommit
        } else {
            tracing::error!("overcommit factor {overcommit} must be ≥ 1; no overcommit");
            1.0
        },
    }
}

/// Runs the loop: ticks, request-path events and the executors' timers.
async fn drive(state: Arc<AppState>, mut lp: Loop) {
    let mut tick = tokio::time::interval(tick(state.dags.live.time_scale));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Some(mut events) = state.dags.events.subscribe() else {
        tracing::error!("control loop: another loop already runs; this one stops");
        return;
    };
    loop {
        let clock = &state.dags.events;
        let due = lp
            .execs
            .values()
            .filter_map(|(_, x)| x.next_due())
            .min_by(f64::total_cmp);
        let sleep = due.map_or(Duration::from_secs(3600), |t| {
            Duration::try_from_secs_f64((t - clock.now()).max(0.0)).unwrap_or_default()
        });
        tokio::select! {
            _ = tick.tick() => {
                on_tick(&state, &mut lp).await;
            }
            ev = events.recv() => {
                let Some(ev) = ev else { return };
                on_event(&state, &mut lp, ev);
            }
            () = tokio::time::sleep(sleep) => {}
        }
        run_due(&state, &mut lp).await;
    }
}

/// One tick: autoscale the standalone functions, decide and execute for every ready DAG.
async fn on_tick(state: &Arc<AppState>, lp: &mut Loop) {
    lp.standalone.tick(state).await;
    let dags = state.dags.current(&state.catalog);
    let live = &state.dags.live;
    live.retain_plans(|k| dags.by_key.contains_key(k));
    live.control.retain(|k| dags.by_key.contains_key(k));
    lp.controls.retain(|k, _| dags.by_key.contains_key(k));
    lp.arrivals.retain(|k, _| dags.by_key.contains_key(k));
    lp.execs.retain(|k, (d, _)| {
        dags.by_key
            .get(k)
            .and_then(|e| e.dag.as_ref())
            .is_some_and(|now| now == d)
    });
    live.replica_time
        .retain(|(ns, f)| state.catalog.function(ns, f).is_some());
    for (ns, f, secs) in state.backend.take_start_times() {
        live.refresh.observe_start(&ns, &f, secs, live.time_scale);
    }
    let now = live.now();
    let dt = lp.last_tick.map_or(0.0, |t| (now - t).max(0.0));
    lp.last_tick = Some(now);
    let mut planned = Vec::new();
    for (k, e) in &dags.by_key {
        let (DagState::Ready, Some(dag)) = (&e.state, &e.dag) else {
            continue;
        };
        let x = exec_for(state, lp, k, dag);
        follow_catalog(state, x, dag, state.dags.events.now());
        match step::prepare(state, lp, k, dag) {
            Ok(drift) => planned.push((k.clone(), dag.clone(), drift)),
            Err(why) => live.set_plan(&k.0, &k.1, step::view(why)),
        }
    }
    for (k, view) in step::decide_all(state, lp, planned, dt).await {
        live.set_plan(&k.0, &k.1, view);
    }
    save_observed(state, lp, &dags);
}

/// The executor of DAG `key` (made when first needed, taking over the replicas its members run).
fn exec_for<'a>(
    state: &AppState,
    lp: &'a mut Loop,
    key: &(String, String),
    dag: &Dag,
) -> &'a mut execute::DagExec {
    use std::collections::hash_map::Entry;
    // A DAG whose graph changed gets a new executor (member indices changed with it).
    let entry = match lp.execs.entry(key.clone()) {
        Entry::Occupied(o) if o.get().0 == *dag => return &mut o.into_mut().1,
        e => e,
    };
    let profiles = refresh::resolve(dag, &lp.profiles).unwrap_or_default();
    let now = state.dags.events.now();
    let mut x = execute::DagExec::new(dag, profiles, state.prices, state.dags.live.time_scale);
    let restored = lp.controls.get(key).map(|c| &c.restored);
    for (i, node) in dag.nodes.iter().enumerate() {
        if let Some(rec) = state.catalog.function(&dag.namespace, &node.name) {
            let hw = restored
                .and_then(|r| r.get(&node.name))
                .copied()
                .unwrap_or(optimizer::Hardware::Cpu { cores: 1 });
            x.adopt(now, i, rec.replicas, hw);
        }
    }
    &mut entry.insert_entry((dag.clone(), x)).into_mut().1
}

/// A request-path event: to its DAG's executor (and arrivals to its controller's observations).
fn on_event(state: &Arc<AppState>, lp: &mut Loop, ev: Event) {
    let dags = state.dags.current(&state.catalog);
    let Some(entry) = dags.by_key.get(&ev.dag) else {
        return;
    };
    let (DagState::Ready, Some(dag)) = (&entry.state, &entry.dag) else {
        return;
    };
    if ev.what == What::Arrival {
        lp.arrivals
            .entry(ev.dag.clone())
            .or_default()
            .push(ev.at / state.dags.live.time_scale);
    }
    let x = exec_for(state, lp, &ev.dag, dag);
    follow_catalog(state, x, dag, ev.at);
    x.on_event(ev.at, &ev.what);
}

/// The executor follows replica counts set by others (an operator's scale, the runner's scale from
/// zero) before it decides anything on them.
fn follow_catalog(state: &AppState, x: &mut execute::DagExec, dag: &Dag, now: f64) {
    for (i, node) in dag.nodes.iter().enumerate() {
        if let Some(rec) = state.catalog.function(&dag.namespace, &node.name) {
            x.follow(now, i, rec.replicas);
        }
    }
}

/// Runs the executors' due timers and scales every member whose replica count changed.
async fn run_due(state: &Arc<AppState>, lp: &mut Loop) {
    let now = state.dags.events.now();
    let mut work = Vec::new();
    for (key, (dag, x)) in &mut lp.execs {
        x.run_due(now);
        let started = x.take_prewarms();
        if started > 0 {
            state.dags.live.prewarm(&key.0, &key.1, started);
        }
        for (f, n) in x.scales() {
            work.push((dag.namespace.clone(), dag.nodes[f].name.clone(), n));
        }
    }
    for (ns, f, n) in work {
        if state
            .catalog
            .function(&ns, &f)
            .is_some_and(|r| r.replicas != n)
            && let Err(e) = state.scale(&ns, &f, u64::from(n)).await
        {
            tracing::warn!("scaling {f}.{ns} to {n} failed: {e}");
        }
    }
}

/// Starts the control loop on the current tokio runtime.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod joint_tests;
