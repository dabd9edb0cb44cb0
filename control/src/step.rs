//! One tick of one DAG in the live loop: decide (the shared [`optimizer::sim::Controller`]), place the
//! planned hardware, bill the replicas provisioned since the previous tick, and hand the plan to the
//! DAG's executor; returns what `/system/plan` shows.
use optimizer::sim::Observations;
use optimizer::{Dag, Load};

use super::dag_control::{control_for, save};
use super::{Loop, host, host_of, refresh};
use contract::dag::live::PlanView;
use contract::state::AppState;

/// One tick for one DAG: decide, then execute; `dt` real seconds since the previous tick are billed.
pub(super) async fn step(
    state: &AppState,
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
        match control_for(lp, key, dag, sla, host_of(&*state.backend), state.prices) {
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
    }
}
