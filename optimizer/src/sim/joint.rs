//! The joint decision step shared by the simulator and the live control loop: every DAG decided
//! together against one [`Capacity`] (docs/capacity.md), observations in, plans out, no clock.
//!
//! Each DAG keeps its own [`Controller`]: its load estimator, the quantised key of its load and
//! deployed hardware (the hysteresis), and its staging of hardware switches. What changes is where a
//! DAG's target plan comes from: instead of planning each DAG alone against the hardware one replica
//! can get, [`JointController::decide`] calls [`plan_all`] on every DAG's quantised load whenever any
//! key changes (or the capacity, the standalone reservations or a DAG's profiles do), memoised by the
//! tuple of keys and those settings, so a steady load costs a hash look-up per tick.
//!
//! A DAG then moves toward its joint target as it would alone: it keeps its deployed plan when that
//! still meets the SLA at a cost close to the target's (`Controller::keep_current`), and a switch
//! that makes some members slower waits for the faster ones (`Controller::stage`). Those two
//! rules hand out plans other than the joint planner's, whose requests it never checked; so after
//! every step the plans handed out are packed against the capacity, and when they do not fit every
//! DAG gets its joint target at once (the joint plan fits by construction). The invariant: **the
//! plans handed out always fit the capacity** (their peak requests, standalone reservations included).
//!
//! A degraded DAG gets its relaxed plan or none (not deployed), with the [`Degradation`] saying why.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::control::{Controller, Key, Observations};
use crate::capacity::joint::{
    Degradation, JointError, JointInput, JointPlan, Standalone, plan_all,
};
use crate::capacity::{Capacity, Packing, Replica, timeline};
use crate::hardware::Hardware;
use crate::plan::{Alternative, Choice, ColdStart, Plan, PlanInput};
use crate::prices::Prices;

/// Joint plans remembered at most (the memo is cleared when full: loads seldom revisit old keys
/// after a long run, and a plan costs milliseconds).
const MEMO_CAP: usize = 512;

/// One DAG in a joint step: its controller and what was observed for it since the previous step.
pub struct JointMember<'a> {
    pub controller: &'a mut Controller,
    pub obs: Observations<'a>,
}

/// What one DAG gets from a joint step.
#[derive(Clone, Debug, PartialEq)]
pub struct JointDecision {
    /// The plan to deploy; `None`: the DAG is degraded and nothing of it fits (not deployed).
    pub plan: Option<Plan>,
    /// True when `plan` differs from the one handed out at the previous step.
    pub changed: bool,
    /// Why the DAG does not meet its SLA, when it does not.
    pub degradation: Option<Degradation>,
}

/// The outcome of one [`JointController::decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct JointStep {
    /// One per member, in the members' order.
    pub decisions: Vec<JointDecision>,
    /// What the plans handed out request, packed onto the capacity's nodes (it fits).
    pub packing: Packing,
    /// The joint planner ran at this step (a memo miss).
    pub replanned: bool,
}

/// Counters of the joint controller's work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JointStats {
    pub decisions: u64,
    /// Calls of the joint planner (memo misses).
    pub plans_computed: u64,
    /// Steps where the per-DAG hysteresis or staging would have exceeded the capacity, so every DAG got
    /// its joint target instead.
    pub hysteresis_overridden: u64,
}

/// Per DAG (name, key, profile generation), and the hash of the capacity, standalone reservations,
/// priorities and prices.
type MemoKey = (Vec<(String, Key, u64)>, u64);

/// The capacity, the standalone reservations and the memo of joint plans.
#[derive(Debug)]
pub struct JointController {
    capacity: Capacity,
    standalone: Vec<Standalone>,
    priority: BTreeMap<String, i32>,
    prices: Prices,
    /// Hash of the four fields above (part of the memo key).
    settings: u64,
    memo: HashMap<MemoKey, Arc<JointPlan>>,
    pub stats: JointStats,
}

impl JointController {
    /// Plans against `capacity`, with no standalone reservation, every priority 0, default prices.
    pub fn new(capacity: Capacity) -> JointController {
        let mut j = JointController {
            capacity,
            standalone: Vec::new(),
            priority: BTreeMap::new(),
            prices: Prices::default(),
            settings: 0,
            memo: HashMap::new(),
            stats: JointStats::default(),
        };
        j.rehash();
        j
    }

    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// The standalone reservations in force.
    pub fn standalone(&self) -> &[Standalone] {
        &self.standalone
    }

    /// A new capacity (a node joined or left, a new overcommit factor): the next step re-plans.
    pub fn set_capacity(&mut self, capacity: Capacity) {
        if capacity != self.capacity {
            self.capacity = capacity;
            self.rehash();
        }
    }

    /// The standalone functions' replicas to reserve before any DAG is planned.
    pub fn set_standalone(&mut self, standalone: Vec<Standalone>) {
        if standalone != self.standalone {
            self.standalone = standalone;
            self.rehash();
        }
    }

    /// Degradation priorities by DAG name (higher is degraded later; absent: 0).
    pub fn set_priority(&mut self, priority: BTreeMap<String, i32>) {
        if priority != self.priority {
            self.priority = priority;
            self.rehash();
        }
    }

    /// The prices of the standalone replicas.
    pub fn set_prices(&mut self, prices: Prices) {
        if prices != self.prices {
            self.prices = prices;
            self.rehash();
        }
    }

    fn rehash(&mut self) {
        // FNV-1a over the debug forms: stable across runs, and every field of these types shows there.
        let mut h = crate::Fnv1a::new();
        for part in [
            format!("{:?}", self.capacity),
            format!("{:?}", self.standalone),
            format!("{:?}", self.priority),
            format!("{:?}", self.prices),
        ] {
            h.write(part.as_bytes());
            h.write(&[0]);
        }
        self.settings = h.finish();
    }

    fn reserved(&self) -> Vec<Replica> {
        self.standalone
            .iter()
            .flat_map(|s| {
                (0..s.replicas).map(|_| Replica {
                    function: s.name.clone(),
                    hardware: s.hardware,
                })
            })
            .collect()
    }

    /// One joint step at time `now` (module doc).
    pub fn decide(
        &mut self,
        now: f64,
        members: &mut [JointMember<'_>],
    ) -> Result<JointStep, JointError> {
        self.stats.decisions += 1;
        let keys: Vec<Key> = members
            .iter_mut()
            .map(|m| m.controller.observe(now, &m.obs))
            .collect();
        let memo_key: MemoKey = (
            members
                .iter()
                .zip(&keys)
                .map(|(m, k)| {
                    (
                        m.controller.dag_name().to_owned(),
                        *k,
                        m.controller.generation,
                    )
                })
                .collect(),
            self.settings,
        );
        let replanned = !self.memo.contains_key(&memo_key);
        let joint = match self.memo.get(&memo_key) {
            Some(j) => Arc::clone(j),
            None => {
                let j = Arc::new(self.plan(members, &keys)?);
                if self.memo.len() >= MEMO_CAP {
                    self.memo.clear();
                }
                self.memo.insert(memo_key, Arc::clone(&j));
                j
            }
        };
        let before: Vec<Option<Plan>> = members
            .iter()
            .map(|m| m.controller.current.clone())
            .collect();
        for ((m, key), target) in members.iter_mut().zip(&keys).zip(&joint.plans) {
            toward(m.controller, now, key, target);
        }
        let packing = self.fitting(members, &keys, &joint);
        let decisions = members
            .iter()
            .zip(before)
            .map(|(m, before)| JointDecision {
                plan: m.controller.current.clone(),
                changed: m.controller.current != before,
                degradation: joint
                    .degraded
                    .iter()
                    .find(|d| d.dag == m.controller.dag_name())
                    .cloned(),
            })
            .collect();
        Ok(JointStep {
            decisions,
            packing,
            replanned,
        })
    }

    /// The joint plan at the members' keys; plans and degradations carry each DAG's own SLA (the
    /// planner saw it less the headroom).
    fn plan(&mut self, members: &[JointMember<'_>], keys: &[Key]) -> Result<JointPlan, JointError> {
        self.stats.plans_computed += 1;
        let input = JointInput {
            dags: members
                .iter()
                .zip(keys)
                .map(|(m, k)| m.controller.input_at(k, m.obs.current))
                .collect(),
            standalone: self.standalone.clone(),
            capacity: self.capacity.clone(),
            priority: self.priority.clone(),
            prices: self.prices,
        };
        let mut j = plan_all(&input)?;
        for ((p, m), d) in j.plans.iter_mut().zip(members).zip(&input.dags) {
            if let Some(p) = p {
                let mut d = d.clone();
                d.space.hardware = self.capacity.space(&d.space.hardware);
                alternatives(&d, p);
                p.sla_s = m.controller.template.sla_s;
            }
        }
        for d in &mut j.degraded {
            if let Some(m) = members.iter().find(|m| m.controller.dag_name() == d.dag) {
                d.sla_s = m.controller.template.sla_s;
            }
        }
        Ok(j)
    }

    /// What the handed-out plans request; when they differ from the joint plan's and do not fit, every
    /// DAG is given its joint target (which fits).
    fn fitting(
        &mut self,
        members: &mut [JointMember<'_>],
        keys: &[Key],
        joint: &JointPlan,
    ) -> Packing {
        let as_planned = members
            .iter()
            .zip(&joint.plans)
            .all(|(m, t)| m.controller.current == *t);
        if as_planned {
            return joint.packing.clone();
        }
        let mut replicas = self.reserved();
        for (m, k) in members.iter().zip(keys) {
            if let Some(p) = &m.controller.current {
                let input = m.controller.input_at(k, m.obs.current);
                replicas.extend(timeline::plan_peak(&input, p, |_| true));
            }
        }
        let packing = self.capacity.pack(&replicas);
        if packing.fits() {
            return packing;
        }
        self.stats.hysteresis_overridden += 1;
        for (m, t) in members.iter_mut().zip(&joint.plans) {
            m.controller.current.clone_from(t);
            m.controller.staged = false;
        }
        joint.packing.clone()
    }
}

/// Fills each member's rejected alternatives, which the joint planner does not list (`/system/plan`
/// and the demo show them): every other hardware the capacity offers for that member, the rest of the
/// plan as it is, cheapest first, `input.alternatives` of them with at least one that meets the SLA
/// when any does. Whether an alternative would fit beside the other DAGs is not checked.
fn alternatives(input: &PlanInput, plan: &mut Plan) {
    if input.alternatives == 0 {
        return;
    }
    let choices: Vec<Choice> = plan.functions.iter().map(|f| f.choice).collect();
    let meets = |l: f64| l <= input.sla_s * (1.0 + 1e-9);
    for f in 0..choices.len() {
        let mut alts: Vec<Alternative> = input
            .space
            .hardware
            .all()
            .filter(|&hw| hw != choices[f].hardware)
            .map(|hardware| {
                let mut trial = choices.clone();
                trial[f].hardware = hardware;
                let ev = crate::model::evaluate(input, &trial);
                Alternative {
                    choice: trial[f],
                    cost_per_hour: ev.cost_per_hour,
                    latency_s: ev.latency_s,
                    meets_sla: meets(ev.latency_s),
                }
            })
            .collect();
        alts.sort_by(|a, b| a.cost_per_hour.total_cmp(&b.cost_per_hour));
        let first_ok = alts.iter().position(|a| a.meets_sla);
        if let Some(k) = first_ok.filter(|&k| k >= input.alternatives) {
            alts.swap(input.alternatives - 1, k);
        }
        alts.truncate(input.alternatives);
        plan.functions[f].alternatives = alts;
    }
}

/// What a DAG that is not deployed runs (its executor's plan, in the simulator and live): every member
/// on one core, started when a request needs it and released right after (keep-alive with a 0-s
/// window), so nothing of it is kept or pre-warmed and the replicas of an earlier plan drain. Its
/// requests still run, beyond the capacity's reservations (docs/capacity.md, "Live").
pub fn on_demand(input: &PlanInput) -> Plan {
    let choice = Choice {
        hardware: Hardware::Cpu { cores: 1 },
        batch: 1,
        replicas: 1,
        policy: ColdStart::KeepAlive { seconds: 0.0 },
    };
    let mut plan =
        crate::search::plan_from_choices(input, vec![choice; input.dag.len()], "not deployed");
    plan.sla_s = input.sla_s;
    plan
}

/// Moves one DAG toward its joint `target`, with its hysteresis and staging (module doc).
fn toward(c: &mut Controller, now: f64, key: &Key, target: &Option<Plan>) {
    c.key = Some(*key);
    let retarget = c.joint_target.as_ref() != Some(target);
    if retarget {
        c.joint_target = Some(target.clone());
    }
    match (c.current.clone(), target) {
        (Some(cur), Some(t)) if retarget || c.staged => {
            if retarget && c.keep_current(&cur, t, key) {
                // Hysteresis: the deployed plan is still good enough for the new load.
                c.staged = false;
                return;
            }
            let (interim, _) = c.stage(now, &cur, t, key);
            c.staged = interim.is_some();
            c.current = Some(interim.unwrap_or_else(|| t.clone()));
        }
        (_, t) if retarget => {
            c.current.clone_from(t);
            c.staged = false;
        }
        _ => {}
    }
}
