//! One tick of the live loop's DAGs: every planned DAG decided together against the backend's
//! capacity (the shared [`optimizer::sim::JointController`], the step the simulator's
//! [`optimizer::sim::simulate_joint`] runs too), then per DAG: place the planned hardware, bill the
//! replicas provisioned since the previous tick, and hand the plan to the DAG's executor; returns what
//! `/system/plan` shows.
use std::collections::{BTreeMap, HashMap};

use optimizer::sim::{JointDecision, JointMember, Observations};
use optimizer::{Dag, Load};

use super::dag_control::{control_for, save};
use super::{Loop, host, host_of, refresh, standalone};
use contract::dag::live::{CapacityView, PlanView};
use contract::state::AppState;

type DagKey = (String, String);

/// Readies DAG `key` for this tick's joint decision: its controller (made, or re-made for a changed
/// graph) and the online profile refresh. `Ok`: the refresh's actions; `Err`: why the DAG cannot be
/// planned (no SLA, a bad input).
pub(super) fn prepare(
    state: &AppState,
    lp: &mut Loop,
    key: &DagKey,
    dag: &Dag,
) -> Result<Vec<String>, String> {
    let Some(sla) = dag.sla_s else {
        lp.arrivals.remove(key);
        return Err(format!(
            "not planned: the entry has no {} annotation; members are started when a request arrives",
            optimizer::dag::ANN_SLA
        ));
    };
    if lp.controls.get(key).is_none_or(|c| c.dag != *dag) {
        match control_for(lp, key, dag, sla, host_of(&*state.backend), state.prices) {
            Ok(c) => {
                lp.controls.insert(key.clone(), c);
            }
            Err(e) => {
                lp.controls.remove(key);
                lp.arrivals.remove(key);
                return Err(format!(
                    "not planned: {e}; members are started when a request arrives"
                ));
            }
        }
    }
    let Some(c) = lp.controls.get_mut(key) else {
        return Err("not planned".into());
    };
    // Online profile refresh: a drifted profile replaces the planner's and forces a re-plan.
    let cpus = host_of(&*state.backend).cpus;
    let drift = refresh::on_tick(
        &state.dags.live.refresh,
        dag,
        &mut lp.profiles,
        Some(&c.applied),
        cpus,
    );
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
    Ok(drift)
}

/// Decides every prepared DAG jointly, then carries each decision out; the views to show.
pub(super) async fn decide_all(
    state: &AppState,
    lp: &mut Loop,
    planned: Vec<(DagKey, Dag, Vec<String>)>,
    dt: f64,
) -> Vec<(DagKey, PlanView)> {
    let live = &state.dags.live;
    let capacity = state.backend.capacity();
    let capacity = capacity
        .clone()
        .with_overcommit(lp.overcommit)
        .unwrap_or(capacity);
    lp.joint.set_capacity(capacity);
    lp.joint
        .set_standalone(standalone::reserved(&state.catalog.all_functions()));
    lp.joint.set_prices(state.prices);
    let now = live.now() / live.time_scale;
    let mut arrivals: HashMap<DagKey, Vec<f64>> = HashMap::new();
    let mut currents: HashMap<DagKey, BTreeMap<String, optimizer::Hardware>> = HashMap::new();
    for (k, _, _) in &planned {
        arrivals.insert(k.clone(), lp.arrivals.remove(k).unwrap_or_default());
        if let Some(c) = lp.controls.get(k) {
            // The hardware deployed so far: the planner charges a change its re-initialisation, so it
            // switches only when the saving over its horizon pays for it.
            let mut current = c.restored.clone();
            current.extend(c.applied.iter().map(|(k, v)| (k.clone(), *v)));
            currents.insert(k.clone(), current);
        }
    }
    // Planning is CPU work (milliseconds, more for large DAGs): keep it off the async workers' queue.
    let decided = tokio::task::block_in_place(|| {
        let mut controls: Vec<_> = lp
            .controls
            .iter_mut()
            .filter(|(k, _)| currents.contains_key(*k))
            .collect();
        controls.sort_by(|a, b| a.0.cmp(b.0));
        let keys: Vec<DagKey> = controls.iter().map(|(k, _)| (*k).clone()).collect();
        let mut members: Vec<JointMember<'_>> = controls
            .into_iter()
            .map(|(k, c)| JointMember {
                controller: &mut c.controller,
                obs: Observations {
                    arrivals: arrivals.get(k).map_or(&[], Vec::as_slice),
                    current: &currents[k],
                },
            })
            .collect();
        lp.joint.decide(now, &mut members).map(|s| (keys, s))
    });
    let (keys, step) = match decided {
        Ok(d) => d,
        Err(e) => {
            return planned
                .into_iter()
                .map(|(k, _, _)| (k, view(format!("joint planning failed: {e}"))))
                .collect();
        }
    };
    live.set_capacity(CapacityView {
        overcommit: lp.joint.capacity().overcommit,
        nodes: step.packing.nodes.clone(),
        standalone: lp.joint.standalone().to_vec(),
        plans_computed: lp.joint.stats.plans_computed,
        decisions: lp.joint.stats.decisions,
        decided_at: jiff::Timestamp::now(),
    });
    let mut by_key: HashMap<DagKey, JointDecision> = keys.into_iter().zip(step.decisions).collect();
    let mut views = Vec::with_capacity(planned.len());
    for (k, dag, drift) in planned {
        let v = match by_key.remove(&k) {
            Some(d) => execute(state, lp, &k, &dag, dt, d, drift).await,
            None => view("not planned".into()),
        };
        views.push((k, v));
    }
    views
}

/// Carries DAG `key`'s decision out: placement, billing, the executor; `dt` real seconds since the
/// previous tick are billed.
async fn execute(
    state: &AppState,
    lp: &mut Loop,
    key: &DagKey,
    dag: &Dag,
    dt: f64,
    decision: JointDecision,
    drift: Vec<String>,
) -> PlanView {
    let live = &state.dags.live;
    let scale = live.time_scale;
    let policy = lp.policy;
    let Some(c) = lp.controls.get_mut(key) else {
        return view("not planned".into());
    };
    let sla = c.template.sla_s;
    let now_real = live.now();
    let degradation = decision.degradation;
    let deployed = decision.plan.is_some();
    let changed = decision.changed;
    // Not deployed: the executor runs the members on demand only (replicas of an earlier plan drain).
    let mut plan = decision
        .plan
        .unwrap_or_else(|| optimizer::sim::joint::on_demand(&c.template));
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
    if deployed {
        // (The on-demand plan of a DAG that is not deployed keeps its name.)
        policy.apply(&mut plan, &eval_input);
    }
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
    let reason = match &degradation {
        Some(d) => format!("{reason}; {}", degraded_text(d, deployed)),
        None if plan.predicted_latency_s > sla * (1.0 + 1e-9) => format!(
            "{reason}; the SLA cannot be met: running the fastest plan found ({:.3} s)",
            plan.predicted_latency_s
        ),
        None => reason,
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
        degradation,
    };
    if let Some(c) = lp.controls.get(key) {
        save(lp, key, c, &v, changed);
    }
    v
}

/// Why a degraded DAG runs what it runs (the joint planner's rule, docs/capacity.md).
fn degraded_text(d: &optimizer::capacity::joint::Degradation, deployed: bool) -> String {
    use optimizer::capacity::joint::DegradeReason;
    let why = match d.reason {
        DegradeReason::SlaBelowFastest { fastest_s } => format!(
            "its SLA {} s is below the fastest latency possible on this capacity ({fastest_s:.3} s)",
            d.sla_s
        ),
        DegradeReason::Capacity { priority, demand } => format!(
            "the capacity cannot hold every DAG at its SLA; this one has the lowest priority ({priority}) and its leanest SLA-meeting plan wants {demand:.2}× the cluster"
        ),
    };
    match (deployed, d.predicted_latency_s) {
        (true, Some(l)) => {
            format!("degraded: {why}; running the fastest plan that fits ({l:.3} s)")
        }
        _ => format!(
            "degraded and not deployed: {why}; nothing of it fits beside the other DAGs, so its members start on demand and are released after each use (outside the capacity's reservations)"
        ),
    }
}

/// A cold-start policy in real seconds, for the executor's lines in `/system/plan`.
pub(super) fn policy_text(p: &optimizer::ColdStart, scale: f64) -> String {
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

pub(super) fn view(reason: String) -> PlanView {
    PlanView {
        plan: None,
        load: None,
        reason,
        decided_at: jiff::Timestamp::now(),
        actions: Vec::new(),
        hardware_applied: false,
        degradation: None,
    }
}
