//! The decision step shared by the simulator and the live control loop: observations in, a [`Plan`] out.
//!
//! [`Controller::decide`] is called every tick (1 s) with the DAG arrivals seen since the previous call
//! and the hardware each function runs on now. It feeds the arrivals to its [`LoadEstimator`], quantises
//! the estimate (about 12 % steps in rate, gap and the close-arrival rate of the queueing term: the
//! hysteresis that keeps a noisy estimate from re-planning, and re-initialising, every second) and asks
//! its policy for a plan only when the quantised load or the deployed hardware changed. Plans are memoised
//! by that key, so a policy's plan is a pure function of (quantised load, current hardware): replaying a
//! trace is deterministic and cheap.
//!
//! A plan change that makes some functions faster on new hardware and others slower is staged: the
//! slower ones keep their deployed choice until the faster ones' new replicas have had time to
//! initialise, so that no request runs the old, slow choice of one function and the new, slow choice of
//! another in a row (`Controller::stage`).
use std::collections::{BTreeMap, HashMap};

use crate::hardware::Hardware;
use crate::load::{GapModel, Load};
use crate::plan::{Plan, PlanError, PlanInput, Policy};

use super::estimate::LoadEstimator;

/// A hardware change must save more than this fraction of the plan's cost (see `keep_current`).
pub const SWITCH_SAVING: f64 = 0.15;

/// Ratio between neighbouring quantisation levels of rate and gap.
const STEP: f64 = 1.12;
/// Finer levels for an exactly known gap (an oracle), rounded up: a keep-alive window planned for a
/// rounded-down gap would expire just before the burst it was meant for.
const FINE: f64 = 1.01;

/// What the control loop observed since its previous call.
#[derive(Clone, Copy, Debug)]
pub struct Observations<'a> {
    /// DAG request arrival times (seconds, ascending) since the previous call.
    pub arrivals: &'a [f64],
    /// The hardware each function's replicas run on now (absent: none deployed yet).
    pub current: &'a BTreeMap<String, Hardware>,
}

/// The outcome of one [`Controller::decide`].
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    pub plan: &'a Plan,
    /// True when the plan differs from the previous call's.
    pub changed: bool,
}

/// Counters of the controller's work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControlStats {
    pub decisions: u64,
    /// Policy calls (cache misses).
    pub plans_computed: u64,
    /// Plans whose SLA had to be relaxed to the fastest feasible latency.
    pub infeasible: u64,
}

/// (gap level, burst-size level, deterministic, close-rate level or `i32::MIN` for none, hardware hash).
pub(super) type Key = (i32, i32, bool, i32, u64);

/// A policy, a load estimator and the plan cache.
pub struct Controller {
    policy: Box<dyn Policy + Send + Sync>,
    estimator: Box<dyn LoadEstimator>,
    /// Everything but the load and the current hardware.
    pub(super) template: PlanInput,
    /// Planning SLA = SLA × (1 − headroom), to absorb inference-time noise the models do not see.
    pub(super) headroom: f64,
    cache: HashMap<Key, Plan>,
    pub(super) key: Option<Key>,
    /// The plan handed out last (deployed).
    pub(super) current: Option<Plan>,
    /// Until when switches that make a function slower wait (see [`Controller::stage`]).
    hold_slower_until: f64,
    /// The deployed plan is an interim one: some functions still wait for their switch.
    pub(super) staged: bool,
    /// Bumped whenever the template changes (new profiles): plans memoised elsewhere (the joint
    /// controller's) are stale then.
    pub(super) generation: u64,
    /// Under a [`super::JointController`]: the plan the joint planner gave this DAG last (`None`
    /// inside: not deployed), to tell a new joint target from the same one.
    pub(super) joint_target: Option<Option<Plan>>,
    pub stats: ControlStats,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("policy", &self.policy.name())
            .field("estimator", &self.estimator.name())
            .field("stats", &self.stats)
            .finish()
    }
}

fn level(x: f64, step: f64, up: bool) -> i32 {
    let l = x.max(1e-9).ln() / step.ln();
    (if up { l.ceil() } else { l.round() }) as i32
}

/// The quantised close-arrival rate of a key (rounded up: a rate rounded down would under-size).
fn key_close(key: &Key) -> Option<f64> {
    (key.3 != i32::MIN).then(|| STEP.powi(key.3))
}

fn hash_current(current: &BTreeMap<String, Hardware>) -> u64 {
    // FNV-1a over the textual form: stable across runs (std's hasher is randomly seeded).
    let mut h = crate::Fnv1a::new();
    for (k, v) in current {
        h.write(k.as_bytes());
        h.write(v.to_string().as_bytes());
        h.write(&[0]);
    }
    h.finish()
}

impl Controller {
    /// `template` carries the DAG, profiles, prices, SLA, space and parameters; its load and current
    /// hardware are replaced on every decision.
    pub fn new(
        policy: Box<dyn Policy + Send + Sync>,
        estimator: Box<dyn LoadEstimator>,
        template: PlanInput,
        headroom: f64,
    ) -> Controller {
        Controller {
            policy,
            estimator,
            template,
            headroom: headroom.clamp(0.0, 0.5),
            cache: HashMap::new(),
            key: None,
            current: None,
            hold_slower_until: f64::NEG_INFINITY,
            staged: false,
            generation: 0,
            joint_target: None,
            stats: ControlStats::default(),
        }
    }

    /// Replaces the profiles (one per DAG node, in node order) after an online refresh: cached plans were
    /// made with the old ones, so they are dropped and the next decision re-plans.
    pub fn set_profiles(&mut self, profiles: Vec<crate::Profile>) {
        self.template.profiles = profiles;
        self.cache.clear();
        self.key = None;
        self.generation += 1;
    }

    /// The DAG's name (the joint planner's key for it).
    pub fn dag_name(&self) -> &str {
        &self.template.dag.name
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// The estimator (the simulator asks it for the next burst when it is an oracle).
    pub fn estimator(&self) -> &dyn LoadEstimator {
        self.estimator.as_ref()
    }

    /// One control step at time `now`.
    pub fn decide(&mut self, now: f64, obs: &Observations<'_>) -> Result<Decision<'_>, PlanError> {
        let key = self.observe(now, obs);
        let changed = self.key != Some(key);
        self.key = Some(key);
        if !self.cache.contains_key(&key) {
            let plan = self.plan_for(self.key_load(&key), key_close(&key), obs.current)?;
            self.cache.insert(key, plan);
        }
        if changed
            && let Some(cur) = &self.current
            && let Some(new) = self.cache.get(&key)
            && self.keep_current(cur, new, &key)
        {
            // Hysteresis: the deployed plan is still good enough for the new load.
            return Ok(Decision {
                plan: self.current.as_ref().expect("checked above"),
                changed: false,
            });
        }
        if (changed || self.staged)
            && let Some(cur) = self.current.clone()
        {
            let target = self
                .cache
                .get(&key)
                .expect("inserted above when missing")
                .clone();
            let (interim, stage_changed) = self.stage(now, &cur, &target, &key);
            self.staged = interim.is_some();
            if let Some(p) = interim {
                self.current = Some(p);
                return Ok(Decision {
                    plan: self.current.as_ref().expect("set above"),
                    changed: changed || stage_changed,
                });
            }
            // The last deferred switch is due: the whole target plan now.
            let changed = true;
            self.current = Some(target);
            return Ok(Decision {
                plan: self.current.as_ref().expect("set above"),
                changed,
            });
        }
        let plan = self.cache.get(&key).expect("inserted above when missing");
        if changed {
            self.current = Some(plan.clone());
        }
        Ok(Decision { plan, changed })
    }

    /// Feeds the arrivals to the estimator and returns the quantised key of the load and the deployed
    /// hardware (the hysteresis: a plan is re-made only when this key changes).
    pub(super) fn observe(&mut self, now: f64, obs: &Observations<'_>) -> Key {
        self.stats.decisions += 1;
        for &t in obs.arrivals {
            self.estimator.observe(t);
        }
        let load = self.estimator.estimate(now);
        let deterministic = load.gaps == GapModel::Deterministic;
        // Quantise rate via the burst size so that the quantised pair stays consistent (m ≥ 1).
        let step = if deterministic { FINE } else { STEP };
        let per_burst = (load.rate_per_s * load.interarrival_s).max(1.0);
        (
            level(load.interarrival_s, step, deterministic),
            level(per_burst, STEP, deterministic),
            deterministic,
            self.estimator
                .close_rate_per_s()
                .map_or(i32::MIN, |r| level(r, STEP, true)),
            hash_current(obs.current),
        )
    }

    /// The planning input at `key`: its load, the deployed hardware, the SLA less the headroom.
    pub(super) fn input_at(&self, key: &Key, current: &BTreeMap<String, Hardware>) -> PlanInput {
        let mut input = self.template.clone();
        input.load = self.key_load(key);
        input.close_rate_per_s = key_close(key);
        input.current = current.clone();
        input.sla_s *= 1.0 - self.headroom;
        input
    }

    /// Orders a plan change along the DAG. While the new replicas of a function that gets faster
    /// initialise, its old replicas keep serving (make before break); a function that gets slower
    /// at the same time would switch as soon as its own (often quicker) replacement is up, and a request
    /// in between takes the old, slow path through the first and the new, slow path through the
    /// second: a mix that neither plan was checked against. So a change that makes a function slower
    /// waits until the switches that make others faster are done (their initialisation estimate);
    /// meanwhile that function keeps its deployed choice, which the old plan sized for the path.
    /// Returns the interim plan to deploy (None: deploy `target`) and whether it differs from `cur`.
    pub(super) fn stage(
        &mut self,
        now: f64,
        cur: &Plan,
        target: &Plan,
        key: &Key,
    ) -> (Option<Plan>, bool) {
        let mut input = self.template.clone();
        input.load = self.key_load(key);
        input.close_rate_per_s = key_close(key);
        let finish = |c: &crate::plan::Choice, f: usize| {
            let b = crate::model::behaviour(&input, f, c);
            // The wait included: a function whose own wait grows is slower too.
            (b.delay + b.service + b.wait, b.ready + b.service + b.wait)
        };
        let mut slower = Vec::new();
        for (f, (a, b)) in cur.functions.iter().zip(&target.functions).enumerate() {
            let (a, b) = (a.choice, b.choice);
            if a == b {
                continue;
            }
            let (old, new) = (finish(&a, f), finish(&b, f));
            if new.0 > old.0 + 1e-9 || new.1 > old.1 + 1e-9 {
                slower.push(f);
            } else if a.hardware != b.hardware {
                let init = input.profiles[f]
                    .init(b.hardware)
                    .estimate(input.params.init_std_factor);
                self.hold_slower_until = self.hold_slower_until.max(now + init);
            }
        }
        if slower.is_empty() || now >= self.hold_slower_until {
            return (None, false);
        }
        let mut choices: Vec<_> = target.functions.iter().map(|f| f.choice).collect();
        for &f in &slower {
            choices[f] = cur.functions[f].choice;
        }
        let changed = cur
            .functions
            .iter()
            .zip(&choices)
            .any(|(a, b)| a.choice != *b);
        let sla = input.sla_s;
        let mut plan = crate::search::plan_from_choices(&input, choices, &target.policy);
        plan.sla_s = sla;
        (Some(plan), changed)
    }

    /// True when the deployed plan changes hardware against the new one, still meets the planning SLA
    /// under the new load and costs at most [`SWITCH_SAVING`] more: a hardware change re-initialises
    /// replicas (cost, and cold starts on the critical path), so it must buy a real saving.
    pub(super) fn keep_current(&self, cur: &Plan, new: &Plan, key: &Key) -> bool {
        let same_hw = cur
            .functions
            .iter()
            .zip(&new.functions)
            .all(|(a, b)| a.choice.hardware == b.choice.hardware);
        if same_hw {
            return false;
        }
        let mut input = self.template.clone();
        input.load = self.key_load(key);
        input.close_rate_per_s = key_close(key);
        let choices: Vec<_> = cur.functions.iter().map(|f| f.choice).collect();
        let ev = crate::model::evaluate(&input, &choices);
        ev.latency_s <= input.sla_s * (1.0 - self.headroom)
            && ev.cost_per_hour <= new.cost_per_hour * (1.0 + SWITCH_SAVING)
    }

    fn key_load(&self, key: &Key) -> Load {
        let step = if key.2 { FINE } else { STEP };
        let gap = step.powi(key.0);
        let per_burst = STEP.powi(key.1).max(1.0);
        Load {
            rate_per_s: per_burst / gap,
            interarrival_s: gap,
            gaps: if key.2 {
                GapModel::Deterministic
            } else {
                GapModel::Exponential
            },
        }
    }

    fn plan_for(
        &mut self,
        load: Load,
        close: Option<f64>,
        current: &BTreeMap<String, Hardware>,
    ) -> Result<Plan, PlanError> {
        self.stats.plans_computed += 1;
        let mut input = self.template.clone();
        input.load = load;
        input.close_rate_per_s = close;
        input.current = current.clone();
        let sla = input.sla_s;
        input.sla_s = sla * (1.0 - self.headroom);
        let mut plan = match self.policy.plan(&input) {
            Ok(p) => p,
            Err(PlanError::Infeasible { fastest_s, .. }) if fastest_s.is_finite() => {
                // The SLA cannot be met: run the cheapest plan that is as fast as possible, and count it.
                self.stats.infeasible += 1;
                input.sla_s = fastest_s * (1.0 + 1e-6);
                self.policy.plan(&input)?
            }
            Err(e) => return Err(e),
        };
        plan.sla_s = sla;
        Ok(plan)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::ProfileSet;
    use crate::sim::estimate::RecentWindow;
    use crate::testkit::paper_dag;

    fn controller() -> Controller {
        let dag = paper_dag("image-query").unwrap();
        let input = PlanInput::new(
            dag,
            &ProfileSet::paper(),
            3.0,
            Load::new(Some(1.0), None).unwrap(),
        )
        .unwrap();
        let policy = crate::policy_by_name("smiless").unwrap();
        Controller::new(policy, Box::new(RecentWindow::new(60.0, None)), input, 0.0)
    }

    #[test]
    fn replans_only_when_the_quantised_load_changes() {
        let mut c = controller();
        let current = BTreeMap::new();
        let arrivals: Vec<f64> = (0..60).map(f64::from).collect();
        let d = c
            .decide(
                60.0,
                &Observations {
                    arrivals: &arrivals,
                    current: &current,
                },
            )
            .unwrap();
        assert!(d.changed);
        let first = d.plan.clone();
        let d = c
            .decide(
                61.0,
                &Observations {
                    arrivals: &[60.5],
                    current: &current,
                },
            )
            .unwrap();
        assert!(!d.changed, "a steady load keeps the plan");
        assert_eq!(d.plan, &first);
        assert_eq!(c.stats.plans_computed, 1);
        // Ten minutes of silence: a very different load, a new plan.
        let d = c
            .decide(
                700.0,
                &Observations {
                    arrivals: &[],
                    current: &current,
                },
            )
            .unwrap();
        assert!(d.changed);
        assert_eq!(c.stats.plans_computed, 2);
    }

    #[test]
    fn hash_current_is_pinned() {
        // FNV-1a over "<name><hardware>\0" per member, in name order.
        let current: BTreeMap<String, Hardware> = [
            ("b".to_owned(), Hardware::Gpu { share_pct: 50 }),
            ("a".to_owned(), Hardware::Cpu { cores: 2 }),
        ]
        .into();
        assert_eq!(hash_current(&current), 0x6050_d62e_ce7f_110f);
    }
}
