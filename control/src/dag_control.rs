//! One DAG's controller in the live loop: made (with its forecaster and the hardware planned before a
//! restart, restored from the state directory), saved after a closed window, a new plan or a new model,
//! and the profiles the live planner starts from.
use std::collections::BTreeMap;
use std::path::PathBuf;

use optimizer::sim::Controller;
use optimizer::{Dag, Load, PlanInput, ProfileSet};

use super::{HEADROOM, Loop, estimator, forecast, host, host_of, persist, refresh};
use contract::dag::live::PlanView;
use contract::state::AppState;

/// The profiles the live planner uses: `SMILESS_PROFILES` (a file), else the ones saved in the state
/// directory by an earlier run, else the paper's set.
pub(super) fn profiles(store: &persist::Store) -> ProfileSet {
    let path = std::env::var_os(function_kit::emulator::ENV_PROFILES).map(std::path::PathBuf::from);
    if path.is_none()
        && let Some(saved) = store.load_profiles()
    {
        tracing::info!("control loop: profiles restored from the state directory");
        return saved;
    }
    function_kit::emulator::load_profiles(path.as_deref()).unwrap_or_else(|e| {
        tracing::error!("control loop: {e}; planning with the paper's profiles");
        ProfileSet::paper()
    })
}

/// One DAG's controller, its forecaster and what was applied.
pub(super) struct DagControl {
    pub(super) dag: Dag,
    pub(super) controller: Controller,
    pub(super) forecaster: forecast::Shared,
    /// Everything but the load (to evaluate a baseline's rewritten plan).
    pub(super) template: PlanInput,
    /// The hardware applied to each member in this process.
    pub(super) applied: BTreeMap<String, optimizer::Hardware>,
    /// The hardware planned before a restart: what the planner sees as deployed until it is applied
    /// again, so a restart does not by itself change the plan.
    pub(super) restored: BTreeMap<String, optimizer::Hardware>,
    /// A restored plan's reason, shown until the first decision of this process.
    pub(super) restored_reason: Option<String>,
}

/// The state directory (the catalog's root).
pub(super) fn state_dir(state: &AppState) -> Option<PathBuf> {
    state.catalog.secrets_root().parent().map(PathBuf::from)
}

/// How often, at most, `control/observed.json` is rewritten (real seconds): the tick can be 0.1 s, and
/// the file is a what-if input, not state the loop needs back.
pub(super) const OBSERVED_EVERY_S: f64 = 2.0;

/// Writes `control/observed.json` (the planner's profiles with what this host measured) when calls were
/// observed since the last write, at most every [`OBSERVED_EVERY_S`].
pub(super) fn save_observed(state: &AppState, lp: &mut Loop, dags: &contract::dag::Dags) {
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

/// Creates a DAG's control (restoring its forecaster and planned hardware from the state directory).
pub(super) fn control_for(
    lp: &Loop,
    key: &(String, String),
    dag: &Dag,
    sla: f64,
    host: host::Host,
    prices: optimizer::Prices,
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
    input.prices = prices;
    input.space.policies = lp.policy.policy_set();
    // Only members that declare batching (`com.smiless.batch`) get a batch above 1: the DAG runner
    // gathers their requests into framed batch calls (docs/batching.md); the others answer one request
    // per call.
    input.space.batch_opt_in = true;
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
pub(super) fn save(lp: &Loop, key: &(String, String), c: &DagControl, v: &PlanView, force: bool) {
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
