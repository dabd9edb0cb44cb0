//! The executor (DESIGN §3): what a [`Plan`] means at run time, as a pure state machine of replica
//! lifecycle. Time and events go in, [`Action`]s come out; nothing here reads a clock, sleeps, or
//! touches a process. The trace-driven simulator (`sim::engine`) and the live control loop
//! (`provider`'s `control` crate) both drive this one type, so a result shown in simulation is the
//! behaviour of the product.
//!
//! Rules (one DAG's members; times in profile seconds):
//! - A task (one request at one member) is queued; a free warm replica takes up to `batch` queued
//!   tasks at once by the gathering rule ([`gather`]: at once with batch 1; with a larger batch when it
//!   is full or its oldest task has waited the gather window). Replicas on the planned hardware are
//!   preferred over ones being retired.
//! - When the queue exceeds what initialising replicas and replicas that free up within an
//!   initialisation time can take, new replicas start (scale from zero). A kept-warm member
//!   (always-on, keep-alive) whose replicas are all busy is also brought up to the planned count.
//! - After use: always-on replicas stay (surplus ones above the planned count leave after one
//!   initialisation time idle, the break-even); keep-alive replicas leave `T` seconds after their own
//!   last use; pre-warmed replicas leave as soon as no request in flight still needs the member.
//! - Pre-warm: after each DAG arrival a pre-warm member starts replicas `offset` seconds later, one per
//!   request still waiting for it beyond the initialising and idle replicas, up to the planned count;
//!   with a known next burst (an oracle), replicas start at `next burst + offset` and are held until
//!   the burst reaches them.
//! - A hardware change is made before break: old replicas, warm or initialising, serve until a
//!   replacement on the new hardware is ready, then leave.
//! - Scaling an always-on member down cancels initialising replicas first (newest first).
//! - Without a plan (a DAG with no SLA), members get one replica on the fallback hardware when a request
//!   arrives, and keep it: unplanned members are not released.
//!
//! The engine reports what happens ([`Executor::on_queued`], [`Executor::on_ready`],
//! [`Executor::on_call_end`], [`Executor::on_timer`], …) and carries out every returned action:
//! [`Action::Start`] a replica (and report it ready later), [`Action::Release`] one, [`Action::Serve`]
//! queued tasks on a replica, and [`Action::Wake`] the executor at a time with a [`Timer`]. Durations
//! that belong to the world (how long an initialisation or a call takes) come from a [`World`] the
//! engine passes in: the simulator draws them, the live loop estimates them from profiles.
pub mod gather;
mod ledger;
mod lifecycle;

use std::collections::{BTreeMap, VecDeque};

use crate::hardware::Hardware;
use crate::plan::{Choice, ColdStart, Plan, PlanInput};
use crate::prices::Prices;
use crate::profile::Profile;

pub use ledger::{Billed, Ledger};

/// A replica, numbered by the executor in start order (never reused).
pub type RepId = usize;

/// Why the executor wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Re-check an idle replica (keep-alive expiry, a pre-warm hold's end). Stale when the replica was
    /// used since (`epoch` moved on).
    Expire { rep: RepId, epoch: u32 },
    /// Pre-warm member `f` for about `m` requests.
    Prewarm { f: usize, m: u32 },
    /// Member `f`'s gather window ends ([`gather`]): serve its queue if a replica is free.
    Gather { f: usize },
}

/// What the engine must do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Start replica `rep` of member `f` on `hw`; it is ready `ready_in` seconds later (the world's
    /// initialisation time), which the engine reports with [`Executor::on_ready`].
    Start {
        f: usize,
        rep: RepId,
        hw: Hardware,
        ready_in: f64,
    },
    /// Release replica `rep` of member `f` now.
    Release { f: usize, rep: RepId },
    /// Replica `rep` of member `f` serves the next `tasks` queued tasks in one call of `duration` seconds;
    /// the engine reports its end with [`Executor::on_call_end`].
    Serve {
        f: usize,
        rep: RepId,
        tasks: u32,
        duration: f64,
    },
    /// Call [`Executor::on_timer`] with `timer` at `at`.
    Wake { at: f64, timer: Timer },
}

/// The durations that belong to the world the executor runs in.
pub trait World {
    /// Seconds until a replica of `f` just started on `hw` is ready.
    fn init_time(&mut self, f: usize, hw: Hardware) -> f64;
    /// Seconds one call of `f` on `hw` serving `tasks` tasks takes.
    fn call_time(&mut self, f: usize, hw: Hardware, tasks: u32) -> f64;
}

/// The world as the planner's profiles predict it (the mean initialisation, the latency model): what
/// the live loop uses for the replicas it cannot observe.
#[derive(Clone, Debug)]
pub struct Profiled<'a>(pub &'a [Profile]);

impl World for Profiled<'_> {
    fn init_time(&mut self, f: usize, hw: Hardware) -> f64 {
        self.0.get(f).map_or(0.0, |p| p.init(hw).mean_s)
    }
    fn call_time(&mut self, f: usize, hw: Hardware, tasks: u32) -> f64 {
        self.0.get(f).map_or(0.0, |p| p.infer_time(hw, tasks))
    }
}

/// A replica's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepState {
    Init,
    Idle,
    Busy,
    Gone,
}

/// One replica as the executor tracks it.
#[derive(Clone, Debug)]
pub struct Replica {
    pub f: usize,
    pub hw: Hardware,
    pub state: RepState,
    /// When the current state began (billing).
    pub since: f64,
    pub busy_until: f64,
    /// Start of its idleness (keep-alive counts from here).
    pub idle_since: f64,
    /// Pre-warmed for a known burst: held until then.
    pub hold_until: f64,
    /// Bumped on every park, so stale expiry timers are ignored.
    pub epoch: u32,
    /// Its hardware is no longer planned: it leaves once replaced.
    pub retire: bool,
    /// Tasks of its current call.
    pub tasks: u32,
}

/// One member's run-time state.
#[derive(Clone, Debug, Default)]
pub struct Member {
    /// Tasks queued, waiting for a replica.
    pub queued: u32,
    /// When each queued task was queued, oldest first (the gather window counts from the oldest).
    pub queued_at: VecDeque<f64>,
    /// The gather window's end a timer is set for (so one timer per window).
    pub gather_at: Option<f64>,
    /// Replicas not gone, in start order.
    pub live: Vec<RepId>,
    /// Requests in flight that have not finished this member yet.
    pub pending: u32,
    pub choice: Option<Choice>,
    /// Replicas started (initialisations).
    pub inits: u64,
    /// With an oracle: when the next known burst's pre-warm starts, and until when replicas are held.
    pub prewarm_at: f64,
    pub hold_until: f64,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Executor {
    pub(crate) profiles: Vec<Profile>,
    pub(crate) prices: Prices,
    pub(crate) init_std_factor: f64,
    pub(crate) entry: usize,
    pub(crate) max_replicas: usize,
    /// Hardware of members without a plan.
    pub(crate) fallback: Hardware,
    pub(crate) now: f64,
    pub(crate) reps: Vec<Replica>,
    pub(crate) members: Vec<Member>,
    pub(crate) plan: Option<Plan>,
    /// Start of the next burst already pre-warmed for (oracle).
    pub(crate) prewarmed_burst: f64,
    pub(crate) ledger: Ledger,
    pub(crate) hw_switches: u64,
    /// The planned hardware per member name (what the controller sees as deployed), kept with the plan.
    pub(crate) current: BTreeMap<String, Hardware>,
    pub(crate) out: Vec<Action>,
}

impl Executor {
    /// An executor for `input`'s DAG (its profiles, prices and init-time factor), at most
    /// `max_replicas` replicas per member.
    pub fn new(input: &PlanInput, max_replicas: usize) -> Executor {
        Executor::for_dag(
            &input.dag,
            input.profiles.clone(),
            input.prices,
            input.params.init_std_factor,
            max_replicas,
        )
    }

    /// An executor for `dag` whose members follow `profiles` (in node order; may be empty for a DAG
    /// that is never planned), billed at `prices`, with initialisation estimated as mean +
    /// `init_std_factor`·std.
    pub fn for_dag(
        dag: &crate::Dag,
        profiles: Vec<Profile>,
        prices: Prices,
        init_std_factor: f64,
        max_replicas: usize,
    ) -> Executor {
        Executor {
            profiles,
            prices,
            init_std_factor,
            entry: dag.entry,
            max_replicas: max_replicas.max(1),
            fallback: Hardware::Cpu { cores: 1 },
            now: 0.0,
            reps: Vec::new(),
            members: vec![Member::default(); dag.len()],
            plan: None,
            prewarmed_burst: f64::NEG_INFINITY,
            ledger: Ledger::default(),
            hw_switches: 0,
            current: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// The planner's profiles changed (the live loop's online refresh).
    pub fn set_profiles(&mut self, profiles: Vec<Profile>) {
        if profiles.len() == self.members.len() {
            self.profiles = profiles;
        }
    }

    /// The plan being executed.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// Member `f`'s state.
    pub fn member(&self, f: usize) -> &Member {
        &self.members[f]
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn replica(&self, rep: RepId) -> &Replica {
        &self.reps[rep]
    }

    /// Replicas of `f` not gone (what a backend should run).
    pub fn replicas(&self, f: usize) -> u32 {
        u32::try_from(self.members[f].live.len()).unwrap_or(u32::MAX)
    }

    /// The hardware `f` is planned on (the fallback without a plan).
    pub fn hardware(&self, f: usize) -> Hardware {
        self.members[f].choice.map_or(self.fallback, |c| c.hardware)
    }

    /// The bill so far (up to the last event; [`Executor::close`] bills to the end).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The planned hardware of every member (what the controller sees as deployed).
    pub fn current(&self) -> &BTreeMap<String, Hardware> {
        &self.current
    }

    /// Hardware changes applied to members that had replicas.
    pub fn hw_switches(&self) -> u64 {
        self.hw_switches
    }

    /// Carries out `plan` at `now` (a new plan or a changed one).
    pub fn apply(&mut self, now: f64, plan: Plan, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        self.apply_plan(plan, world);
        self.take()
    }

    /// A DAG request arrived: every member has one more request to serve. Without a plan, every member
    /// but the entry (whose task is queued next) starts a replica if it has none.
    pub fn on_arrival(&mut self, now: f64, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        for m in &mut self.members {
            m.pending += 1;
        }
        if self.plan.is_none() {
            for f in 0..self.members.len() {
                if f != self.entry && self.members[f].live.is_empty() {
                    self.start_replica(f, f64::NEG_INFINITY, world);
                }
            }
        }
        self.take()
    }

    /// The pre-warms a request arriving at `arrival` triggers: a timer per pre-warm member at its
    /// planned offset (never before `now`), and with `next` (an oracle's next burst: its start and
    /// size) the pre-warms for that burst.
    pub fn prewarm_for(&mut self, now: f64, arrival: f64, next: Option<(f64, u32)>) -> Vec<Action> {
        self.now = now;
        if let Some(plan) = &self.plan {
            for (f, fp) in plan.functions.iter().enumerate() {
                if let ColdStart::PreWarm { offset_s } = fp.choice.policy {
                    let o = if offset_s.is_finite() {
                        offset_s.max(0.0)
                    } else {
                        0.0
                    };
                    self.out.push(Action::Wake {
                        at: (arrival + o).max(now),
                        timer: Timer::Prewarm { f, m: 1 },
                    });
                }
            }
        }
        self.prewarm_next(next);
        self.take()
    }

    /// With an oracle: the next burst (start, size), known before it arrives.
    pub fn on_forecast_burst(&mut self, now: f64, next: Option<(f64, u32)>) -> Vec<Action> {
        self.now = now;
        self.prewarm_next(next);
        self.take()
    }

    /// A task of `f` is queued (all its predecessors are done).
    pub fn on_queued(&mut self, now: f64, f: usize, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        self.members[f].queued += 1;
        self.members[f].queued_at.push_back(now);
        self.dispatch(f, world);
        self.take()
    }

    /// Replica `rep` finished initialising.
    pub fn on_ready(&mut self, now: f64, rep: RepId, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        self.ready(rep, world);
        self.take()
    }

    /// Some replica of `f` is ready (a backend that does not say which): the oldest initialising one.
    pub fn on_ready_any(&mut self, now: f64, f: usize, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        if let Some(rep) = self.oldest(f, RepState::Init) {
            self.ready(rep, world);
        }
        self.take()
    }

    /// Replica `rep`'s call ended: its tasks are done at its member.
    pub fn on_call_end(&mut self, now: f64, rep: RepId, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        self.call_end(rep, world);
        self.take()
    }

    /// A call of `f` ended on a replica the engine cannot name (the live runtime routes calls itself):
    /// the busy replica due first ends. When the executor had not dispatched that task yet (the runtime
    /// served it from a replica the executor still saw initialising), the task is taken off the queue
    /// and that replica counts as ready.
    pub fn on_call_end_any(&mut self, now: f64, f: usize, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        let busy = self.members[f]
            .live
            .iter()
            .copied()
            .filter(|&r| self.reps[r].state == RepState::Busy)
            .min_by(|&a, &b| self.reps[a].busy_until.total_cmp(&self.reps[b].busy_until));
        match busy {
            Some(rep) => self.call_end(rep, world),
            None => {
                let m = &mut self.members[f];
                m.queued = m.queued.saturating_sub(1);
                m.queued_at.pop_front();
                m.pending = m.pending.saturating_sub(1);
                if let Some(rep) = self.oldest(f, RepState::Init) {
                    self.ready(rep, world);
                } else if let Some(rep) = self.oldest(f, RepState::Idle) {
                    self.park(rep);
                }
            }
        }
        self.take()
    }

    /// A request in flight will not reach `members` any more (it failed elsewhere): they stop waiting
    /// for it, so a pre-warmed replica is not held for a request that never comes.
    pub fn on_abandoned(&mut self, now: f64, members: &[usize]) -> Vec<Action> {
        self.now = now;
        let n = self.members.len();
        for &f in members.iter().filter(|&&f| f < n) {
            let m = &mut self.members[f];
            m.pending = m.pending.saturating_sub(1);
            for rep in m.live.clone() {
                if self.reps[rep].state == RepState::Idle {
                    self.park(rep);
                }
            }
        }
        self.take()
    }

    /// A timer the executor asked for is due.
    pub fn on_timer(&mut self, now: f64, timer: Timer, world: &mut dyn World) -> Vec<Action> {
        self.now = now;
        match timer {
            Timer::Expire { rep, epoch } => {
                if self.reps[rep].epoch == epoch && self.reps[rep].state == RepState::Idle {
                    self.park(rep);
                }
            }
            Timer::Prewarm { f, m } => self.prewarm(f, m, world),
            Timer::Gather { f } => {
                if f < self.members.len() {
                    self.members[f].gather_at = None;
                    self.dispatch(f, world);
                }
            }
        }
        self.take()
    }

    /// Adopts `n` replicas of `f` already running on `hw` (after a restart), idle since `now`.
    pub fn adopt(&mut self, now: f64, f: usize, n: u32, hw: Hardware) -> Vec<Action> {
        self.now = now;
        for _ in 0..n {
            let rep = self.push_replica(f, hw, RepState::Idle, f64::NEG_INFINITY);
            self.park(rep);
        }
        self.take()
    }

    /// Someone else (an operator's scale, the request path's scale from zero) took `f` from the
    /// executor's count to `n` replicas: the executor follows, adopting idle replicas or dropping
    /// initialising ones first (newest first), then idle ones. Busy replicas are never dropped.
    pub fn follow(&mut self, now: f64, f: usize, n: u32) -> Vec<Action> {
        self.now = now;
        let have = self.replicas(f);
        if n > have {
            let hw = self.hardware(f);
            for _ in have..n {
                let rep = self.push_replica(f, hw, RepState::Idle, f64::NEG_INFINITY);
                self.park(rep);
            }
        } else {
            for _ in n..have {
                let live = &self.members[f].live;
                let pick = live
                    .iter()
                    .rev()
                    .copied()
                    .find(|&r| self.reps[r].state == RepState::Init)
                    .or_else(|| {
                        live.iter()
                            .copied()
                            .find(|&r| self.reps[r].state == RepState::Idle)
                    });
                match pick {
                    Some(r) => self.release(r),
                    None => break,
                }
            }
        }
        self.take()
    }

    /// Releases every replica at `now` (the end of a simulated run), billing up to it.
    pub fn close(&mut self, now: f64) {
        self.now = now;
        for r in 0..self.reps.len() {
            if self.reps[r].state != RepState::Gone {
                self.release(r);
            }
        }
        self.out.clear();
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
