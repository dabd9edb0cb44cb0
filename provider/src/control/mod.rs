//! The live control loop (DESIGN §3, §7): every tick, per ready DAG, observe the DAG arrivals, ask the
//! shared decision step ([`optimizer::sim::Controller`], the same code the simulator runs) for a plan,
//! and hand it to the DAG's executor ([`execute::DagExec`] around [`optimizer::exec::Executor`], the
//! replica lifecycle the simulator runs too). Between ticks the loop feeds the executor the request
//! path's events ([`crate::events`]: arrivals, calls queued and ended, requests abandoned) and its
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
//! Hardware: the planner's space is what the host has ([`host::space`]); the plan's hardware is applied
//! through [`crate::backend::Backend::place`] (CPU affinity and thread counts, or a GPU share's MPS
//! environment), a change rolling the replicas.
//!
//! Not done here (see docs/live.md): batching (the watchdog serves one request per call).
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use optimizer::sim::{Controller, Observations};
use optimizer::{Dag, Load, PlanInput, ProfileSet};

use crate::dag::DagState;
use crate::dag::live::PlanView;
use crate::events::{Event, What};
use crate::state::AppState;

pub mod estimator;
pub mod execute;
pub mod forecast;
pub mod persist;
pub mod policy;
pub mod refresh;

pub use crate::backend::host::{self, ENV_GPUS, host, host_of};
pub use crate::observe::{account, contention, replica_time};
pub use estimator::EstimatorKind;
pub use policy::LivePolicy;

/// The control tick at time scale 1 (it shrinks with the scale, to at least [`MIN_TICK`]).
pub const TICK: Duration = Duration::from_secs(1);
/// The shortest tick.
pub const MIN_TICK: Duration = Duration::from_millis(100);
/// Planning headroom: plan for SLA × (1 − this) to absorb noise the models do not see.
const HEADROOM: f64 = 0.1;

/// The tick at `time_scale`.
pub fn tick(time_scale: f64) -> Duration {
    Duration::try_from_secs_f64(TICK.as_secs_f64() * time_scale)
        .unwrap_or(TICK)
        .clamp(MIN_TICK, TICK)
}

/// The profiles the live planner uses: `SMILESS_PROFILES` (a file), else the ones saved in the state
/// directory by an earlier run, else the paper's set.
fn profiles(store: &persist::Store) -> ProfileSet {
    let path = std::env::var_os(crate::emulator::ENV_PROFILES).map(std::path::PathBuf::from);
    if path.is_none()
        && let Some(saved) = store.load_profiles()
    {
        tracing::info!("control loop: profiles restored from the state directory");
        return saved;
    }
    crate::emulator::load_profiles(path.as_deref()).unwrap_or_else(|e| {
        tracing::error!("control loop: {e}; planning with the paper's profiles");
        ProfileSet::paper()
    })
}

/// One DAG's controller, its forecaster and what was applied.
struct DagControl {
    dag: Dag,
    controller: Controller,
    forecaster: forecast::Shared,
    /// Everything but the load (to evaluate a baseline's rewritten plan).
    template: PlanInput,
    /// The hardware applied to each member in this process.
    applied: BTreeMap<String, optimizer::Hardware>,
    /// The hardware planned before a restart: what the planner sees as deployed until it is applied
    /// again, so a restart does not by itself change the plan.
    restored: BTreeMap<String, optimizer::Hardware>,
    /// A restored plan's reason, shown until the first decision of this process.
    restored_reason: Option<String>,
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
}

/// The state directory (the catalog's root).
fn state_dir(state: &AppState) -> Option<PathBuf> {
    state.catalog.secrets_root().parent().map(PathBuf::from)
}

/// Runs the control loop until the process ends, with the policy of `SMILESS_POLICY` (default smiless).
pub async fn run(state: web::Data<AppState>) {
    let policy = LivePolicy::from_env().unwrap_or_else(|e| {
        tracing::error!("{e}; running the smiless policy");
        LivePolicy::Smiless
    });
    let estimator = EstimatorKind::from_env().unwrap_or_else(|e| {
        tracing::error!("{e}; planning with the recent-window estimate");
        EstimatorKind::Recent
    });
    run_with(state, policy, estimator).await;
}

/// Runs the control loop with `policy`, planning from the `estimator`'s load, until the process ends.
pub async fn run_with(state: web::Data<AppState>, policy: LivePolicy, estimator: EstimatorKind) {
    let store = state_dir(&state).map(|d| persist::Store::new(&d));
    let profiles = store.as_ref().map_or_else(ProfileSet::paper, profiles);
    if let Some(s) = &store
        && let Err(e) = s.save_profiles(&profiles)
    {
        tracing::warn!("control loop: cannot save the profiles: {e}");
    }
    tracing::info!("control loop: policy {policy}, load estimate {estimator}");
    let mut lp = Loop {
        policy,
        estimator,
        profiles,
        store,
        controls: HashMap::new(),
        arrivals: HashMap::new(),
        execs: HashMap::new(),
        last_tick: None,
        observed_at: (0, f64::NEG_INFINITY),
    };
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

/// One tick: decide and execute for every ready DAG.
async fn on_tick(state: &web::Data<AppState>, lp: &mut Loop) {
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
    for (k, e) in &dags.by_key {
        let (DagState::Ready, Some(dag)) = (&e.state, &e.dag) else {
            continue;
        };
        let x = exec_for(state, lp, k, dag);
        follow_catalog(state, x, dag, state.dags.events.now());
        let view = step(state, lp, k, dag, dt).await;
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
    if lp.execs.get(key).is_some_and(|(d, _)| d != dag) {
        lp.execs.remove(key);
    }
    if !lp.execs.contains_key(key) {
        let profiles = refresh::resolve(dag, &lp.profiles).unwrap_or_default();
        let now = state.dags.events.now();
        let mut x = execute::DagExec::new(
            dag,
            profiles,
            optimizer::Prices::default(),
            state.dags.live.time_scale,
        );
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
        lp.execs.insert(key.clone(), (dag.clone(), x));
    }
    let (_, x) = lp.execs.entry(key.clone()).or_insert_with(|| {
        (
            dag.clone(),
            execute::DagExec::new(dag, Vec::new(), optimizer::Prices::default(), 1.0),
        )
    });
    x
}

/// A request-path event: to its DAG's executor (and arrivals to its controller's observations).
fn on_event(state: &web::Data<AppState>, lp: &mut Loop, ev: Event) {
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
async fn run_due(state: &web::Data<AppState>, lp: &mut Loop) {
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

/// How often, at most, `control/observed.json` is rewritten (real seconds): the tick can be 0.1 s, and
/// the file is a what-if input, not state the loop needs back.
const OBSERVED_EVERY_S: f64 = 2.0;

/// Writes `control/observed.json` (the planner's profiles with what this host measured) when calls were
/// observed since the last write, at most every [`OBSERVED_EVERY_S`].
fn save_observed(state: &AppState, lp: &mut Loop, dags: &crate::dag::Dags) {
    let refresh = &state.dags.live.refresh;
    let seen = refresh.observations();
    let now = state.dags.live.now();
    let due = seen != lp.observed_at.0 && now - lp.observed_at.1 >= OBSERVED_EVERY_S;
    let Some(store) = lp.store.as_ref().filter(|_| due) else {
        return;
    };
    lp.observed_at = (seen, now);
    let cpus = host_of(&*state.backend).cpus;
    let mut observed = lp.profiles.clone();
    for (k, e) in &dags.by_key {
        if let Some(dag) = &e.dag {
            let applied = lp.controls.get(k).map(|c| &c.applied);
            refresh::observed_into(refresh, dag, &lp.profiles, &mut observed, applied, cpus);
        }
    }
    if let Err(e) = store.save_observed(&observed) {
        tracing::warn!("control loop: cannot save the observed profiles: {e}");
    }
}

fn view(reason: String) -> PlanView {
    PlanView {
        plan: None,
        load: None,
        reason,
        decided_at: jiff::Timestamp::now(),
        actions: Vec::new(),
        hardware_applied: false,
    }
}

/// Creates a DAG's control (restoring its forecaster and planned hardware from the state directory).
fn control_for(
    lp: &Loop,
    key: &(String, String),
    dag: &Dag,
    sla: f64,
    host: host::Host,
) -> Result<DagControl, String> {
    let mut input = PlanInput::new(
        dag.clone(),
        &lp.profiles,
        sla,
        Load::new(None, Some(60.0)).unwrap_or(Load {
            rate_per_s: 1.0 / 60.0,
            interarrival_s: 60.0,
            gaps: optimizer::GapModel::Exponential,
        }),
    )
    .map_err(|e| e.to_string())?;
    input.space.hardware = host::space(host);
    input.space.policies = lp.policy.policy_set();
    // The DAG runner sends one request per call (no live batching yet): a plan must not count on batches.
    input.space.batches = vec![1];
    // Keep-alive windows cover 99.9 % of gaps, as `smiless sim` plans by default (a cold entry misses
    // the SLA, so the tail matters more than the idle cost it buys).
    input.params.sla_quantile = 0.999;
    let policy = optimizer::policy_by_name("smiless").ok_or("the smiless policy is missing")?;
    let saved = lp.store.as_ref().and_then(|s| s.load_dag(&key.0, &key.1));
    let model = lp.store.as_ref().and_then(|s| s.load_model(&key.0, &key.1));
    let (forecaster, restored, restored_reason) = match saved {
        Some(s) => {
            tracing::info!(
                "control loop: DAG {} restored ({} s of history, {} planned members, forecaster {})",
                key.1,
                s.forecast.counts.len(),
                s.hardware.len(),
                if model.is_some() {
                    "lstm"
                } else {
                    "hybrid-histogram"
                }
            );
            let reason = format!(
                "restored after a restart ({} s of forecaster history, hardware of {} members; before: {})",
                s.forecast.counts.len(),
                s.hardware.len(),
                s.reason
            );
            (
                forecast::DagForecaster::restore(s.forecast, model),
                s.hardware,
                Some(reason),
            )
        }
        None => (forecast::DagForecaster::default(), BTreeMap::new(), None),
    };
    let forecaster = forecast::Shared::new(forecaster);
    let controller = Controller::new(
        policy,
        Box::new(estimator::LiveEstimator::new(
            forecaster.clone(),
            lp.estimator,
        )),
        input.clone(),
        HEADROOM,
    );
    Ok(DagControl {
        dag: dag.clone(),
        controller,
        forecaster,
        template: input,
        applied: BTreeMap::new(),
        restored,
        restored_reason,
    })
}

/// Saves a DAG's control state (after a closed window, a new plan or a new model).
fn save(lp: &Loop, key: &(String, String), c: &DagControl, v: &PlanView, force: bool) {
    let Some(store) = &lp.store else {
        return;
    };
    let mut f = c.forecaster.lock();
    if f.unsaved_model {
        if let Some(m) = f.model()
            && let Err(e) = store.save_model(&key.0, &key.1, &m)
        {
            tracing::warn!("control loop: cannot save the forecaster of {}: {e}", key.1);
        }
        f.unsaved_model = false;
    }
    if !(force || f.unsaved_history) {
        return;
    }
    f.unsaved_history = false;
    let mut hardware = c.restored.clone();
    hardware.extend(c.applied.iter().map(|(k, v)| (k.clone(), *v)));
    let saved = persist::DagSaved {
        forecast: f.saved(),
        hardware,
        plan: v.plan.as_ref().and_then(|p| serde_json::to_value(p).ok()),
        load: v.load,
        reason: v.reason.clone(),
        policy: lp.policy.to_string(),
    };
    drop(f);
    if let Err(e) = store.save_dag(&key.0, &key.1, &saved) {
        tracing::warn!("control loop: cannot save the state of {}: {e}", key.1);
    }
}

/// One tick for one DAG: decide, then execute; `dt` real seconds since the previous tick are billed.
async fn step(
    state: &web::Data<AppState>,
    lp: &mut Loop,
    key: &(String, String),
    dag: &Dag,
    dt: f64,
) -> PlanView {
    let live = &state.dags.live;
    let scale = live.time_scale;
    let arrivals = lp.arrivals.remove(key).unwrap_or_default();
    let Some(sla) = dag.sla_s else {
        return view(format!(
            "not planned: the entry has no {} annotation; members are started when a request arrives",
            optimizer::dag::ANN_SLA
        ));
    };
    if lp.controls.get(key).is_none_or(|c| c.dag != *dag) {
        match control_for(lp, key, dag, sla, host_of(&*state.backend)) {
            Ok(c) => {
                lp.controls.insert(key.clone(), c);
            }
            Err(e) => {
                lp.controls.remove(key);
                return view(format!(
                    "not planned: {e}; members are started when a request arrives"
                ));
            }
        }
    }
    let policy = lp.policy;
    let Some(c) = lp.controls.get_mut(key) else {
        return view("not planned".into());
    };
    // Online profile refresh: a drifted profile replaces the planner's and forces a re-plan.
    let cpus = host_of(&*state.backend).cpus;
    let drift = refresh::on_tick(&live.refresh, dag, &mut lp.profiles, Some(&c.applied), cpus);
    if let Some(p) = refresh::resolve(dag, &lp.profiles).filter(|_| !drift.is_empty()) {
        if let Some((_, x)) = lp.execs.get_mut(key) {
            x.set_profiles(p.clone());
        }
        c.controller.set_profiles(p.clone());
        c.template.profiles = p;
        if let Some(Err(e)) = lp.store.as_ref().map(|s| s.save_profiles(&lp.profiles)) {
            tracing::warn!("control loop: cannot save the refreshed profiles: {e}");
        }
    }
    let now_real = live.now();
    let now = now_real / scale;
    // The hardware deployed so far: the planner charges a change its re-initialisation, so it switches
    // only when the saving over its horizon pays for it (with the load quantisation: the hysteresis).
    let mut current = c.restored.clone();
    current.extend(c.applied.iter().map(|(k, v)| (k.clone(), *v)));
    // Planning is CPU work (milliseconds, more for large DAGs): keep it off the async workers' queue.
    let decided = tokio::task::block_in_place(|| {
        c.controller
            .decide(
                now,
                &Observations {
                    arrivals: &arrivals,
                    current: &current,
                },
            )
            .map(|d| (d.plan.clone(), d.changed))
    });
    let (mut plan, changed) = match decided {
        Ok(d) => d,
        Err(e) => return view(format!("planning failed: {e}")),
    };
    let (load, fview) = {
        let f = c.forecaster.lock();
        (f.last_load(), f.view())
    };
    let load = load.unwrap_or(Load {
        rate_per_s: 1.0 / 60.0,
        interarrival_s: 60.0,
        gaps: optimizer::GapModel::Exponential,
    });
    live.control.set_forecast(&key.0, &key.1, fview.clone());
    let mut eval_input = c.template.clone();
    eval_input.load = load;
    policy.apply(&mut plan, &eval_input);
    let reason = if changed {
        format!(
            "re-planned ({policy}) for {:.3} req/s, a burst every {:.1} s (profile time; forecaster {}: {} per {} s window, next gap {:.0} s): {} at {:.3} $/h, predicted {:.3} s against the SLA {sla} s",
            load.rate_per_s,
            load.interarrival_s,
            fview.forecaster,
            fview.count,
            fview.window_s,
            fview.interarrival_s,
            plan.policy,
            plan.cost_per_hour,
            plan.predicted_latency_s
        )
    } else {
        "plan unchanged: the load stayed within the hysteresis band".into()
    };
    let reason = match c.restored_reason.take() {
        Some(r) => format!("{r}; {reason}"),
        None => reason,
    };
    let reason = if plan.predicted_latency_s > sla * (1.0 + 1e-9) {
        format!(
            "{reason}; the SLA cannot be met with this host's hardware: running the fastest plan found ({:.3} s)",
            plan.predicted_latency_s
        )
    } else {
        reason
    };
    let mut actions = drift;
    let host = host_of(&*state.backend);
    let mut slot = 0usize;
    let mut hardware_applied = true;
    for fp in &plan.functions {
        let Some(rec) = state.catalog.function(&dag.namespace, &fp.name) else {
            continue;
        };
        let hw = fp.choice.hardware;
        // Bill the replicas provisioned since the previous tick (profile time): every scale since then
        // is integrated (see `replica_time`); the first tick of a function samples its count.
        let replica_s = live
            .replica_time
            .take(&dag.namespace, &fp.name, rec.replicas, now_real)
            .unwrap_or(f64::from(rec.replicas) * dt);
        live.control.charge(
            (&dag.namespace, &fp.name),
            &dag.name,
            &c.applied.get(&fp.name).unwrap_or(&hw).to_string(),
            rec.replicas,
            replica_s / scale,
            eval_input
                .prices
                .per_second(*c.applied.get(&fp.name).unwrap_or(&hw)),
        );
        let at = slot;
        slot += match hw {
            optimizer::Hardware::Cpu { cores } => usize::try_from(cores).unwrap_or(1),
            optimizer::Hardware::Gpu { .. } => 1,
        };
        if c.applied.get(&fp.name) != Some(&hw) {
            // A change of hardware rolls the replicas (make-before-break in the runtime).
            match state
                .backend
                .place(&rec, Some(host::placement(hw, at, host)))
                .await
            {
                Ok(true) => {
                    actions.push(format!("{}: placed on {hw}", fp.name));
                    c.applied.insert(fp.name.clone(), hw);
                }
                Ok(false) => hardware_applied = false,
                Err(e) => {
                    hardware_applied = false;
                    actions.push(format!("{}: placing on {hw} failed: {e}", fp.name));
                }
            }
        } else {
            // Every tick says where each member runs, not only the tick that placed it.
            actions.push(format!("{}: placed on {hw} (kept)", fp.name));
        }
    }
    // The executor carries the plan out (a new plan, or the first one it sees); the replicas it wants
    // are scaled after this tick (`run_due`).
    let now_events = state.dags.events.now();
    if let Some((_, x)) = lp.execs.get_mut(key) {
        if changed || x.executor().plan().is_none() {
            x.apply(now_events, plan.clone());
        }
        for (f, fp) in plan.functions.iter().enumerate().take(dag.len()) {
            actions.push(format!(
                "{}: {} ({})",
                fp.name,
                x.describe(f),
                policy_text(&fp.choice.policy, scale)
            ));
        }
    }
    let v = PlanView {
        plan: Some(plan),
        load: Some(load),
        reason,
        decided_at: jiff::Timestamp::now(),
        actions,
        hardware_applied,
    };
    if let Some(c) = lp.controls.get(key) {
        save(lp, key, c, &v, changed);
    }
    v
}

/// A cold-start policy in real seconds, for the executor's lines in `/system/plan`.
fn policy_text(p: &optimizer::ColdStart, scale: f64) -> String {
    match *p {
        optimizer::ColdStart::AlwaysOn => "always-on".into(),
        optimizer::ColdStart::KeepAlive { seconds } => {
            format!(
                "keep-alive {:.1} s after each replica's last use",
                seconds * scale
            )
        }
        optimizer::ColdStart::PreWarm { offset_s } => format!(
            "pre-warm {:.2} s after each arrival, released when no request in flight needs it",
            offset_s * scale
        ),
    }
}

/// Starts the control loop on the current tokio runtime.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(web::Data::from(state)))
}
