//! The executor's rules (see the module documentation of [`super`]): replica lifecycle (start, ready,
//! serve, park, release) with billing on every state change, pre-warming, scaling on a queue, and
//! carrying out a new plan (keep-alive windows, always-on counts, hardware switches).
use crate::hardware::Hardware;
use crate::plan::{ColdStart, Plan};

use super::gather::{self, Gather};
use super::{Action, Billed, Executor, RepId, RepState, Replica, Timer, World};

impl Executor {
    /// Moves replica `r` to `state`, billing the time spent in the previous one.
    pub(crate) fn set_state(&mut self, r: RepId, state: RepState) {
        self.bill(r);
        let now = self.now;
        let rep = &mut self.reps[r];
        rep.state = state;
        rep.since = now;
        if state == RepState::Idle {
            rep.idle_since = now;
        }
    }

    fn bill(&mut self, r: RepId) {
        let rep = &self.reps[r];
        let what = match rep.state {
            RepState::Init => Billed::Init,
            RepState::Busy => Billed::Busy,
            RepState::Idle => Billed::Idle,
            RepState::Gone => return,
        };
        let (hw, dt) = (rep.hw, self.now - rep.since);
        self.ledger.bill(&self.prices, hw, what, dt);
    }

    pub(crate) fn push_replica(
        &mut self,
        f: usize,
        hw: Hardware,
        state: RepState,
        hold_until: f64,
    ) -> RepId {
        let r = self.reps.len();
        self.reps.push(Replica {
            f,
            hw,
            state,
            since: self.now,
            busy_until: self.now,
            idle_since: self.now,
            hold_until,
            epoch: 0,
            retire: false,
            tasks: 0,
        });
        self.members[f].live.push(r);
        r
    }

    /// Starts a replica of `f` on its planned hardware (the fallback without a plan).
    pub(crate) fn start_replica(&mut self, f: usize, hold_until: f64, world: &mut dyn World) {
        let hw = self.hardware(f);
        let ready_in = world.init_time(f, hw).max(0.0);
        let rep = self.push_replica(f, hw, RepState::Init, hold_until);
        self.members[f].inits += 1;
        self.out.push(Action::Start {
            f,
            rep,
            hw,
            ready_in,
        });
    }

    /// Releases replica `r` now (billing up to now).
    pub(crate) fn release(&mut self, r: RepId) {
        self.set_state(r, RepState::Gone);
        let f = self.reps[r].f;
        self.members[f].live.retain(|&x| x != r);
        self.out.push(Action::Release { f, rep: r });
    }

    /// The replica of `f` in `state` started first.
    pub(crate) fn oldest(&self, f: usize, state: RepState) -> Option<RepId> {
        self.members[f]
            .live
            .iter()
            .copied()
            .find(|&r| self.reps[r].state == state)
    }

    /// Decides what an idle replica with an empty queue does: stay, leave now, or leave later.
    pub(crate) fn park(&mut self, r: RepId) {
        let f = self.reps[r].f;
        let Some(choice) = self.members[f].choice else {
            // Unplanned members keep their replicas.
            return;
        };
        if self.reps[r].retire && self.has_ready_successor(f) {
            // Its replacement on the planned hardware is up: leave.
            self.release(r);
            return;
        }
        let idle_since = self.reps[r].idle_since;
        let leave_at = match choice.policy {
            ColdStart::AlwaysOn => {
                let live = self.members[f]
                    .live
                    .iter()
                    .filter(|&&x| !self.reps[x].retire)
                    .count();
                if live as u32 > choice.replicas.max(1) {
                    // A surplus replica started for a burst: break-even keep-alive.
                    let init = self
                        .profiles
                        .get(f)
                        .map_or(0.0, |p| p.init(choice.hardware).mean_s);
                    Some(idle_since + init)
                } else {
                    None
                }
            }
            ColdStart::KeepAlive { seconds } => Some(idle_since + seconds.max(0.0)),
            ColdStart::PreWarm { .. } => {
                let m = &self.members[f];
                if m.pending > 0 {
                    // A request in flight still needs this member: re-check shortly.
                    Some(self.now + 1.0)
                } else if self.now >= m.prewarm_at && self.now < m.hold_until {
                    // The next burst's pre-warm is already due: releasing now only to re-initialise
                    // would be waste, so it waits for that burst.
                    Some(m.hold_until)
                } else {
                    // Pre-warmed for a known burst and not used yet: held until it comes.
                    Some(self.reps[r].hold_until.max(self.now))
                }
            }
        };
        match leave_at {
            None => {}
            Some(t) if t <= self.now + 1e-12 => self.release(r),
            Some(t) => {
                let rep = &mut self.reps[r];
                rep.epoch = rep.epoch.wrapping_add(1);
                let epoch = rep.epoch;
                self.out.push(Action::Wake {
                    at: t,
                    timer: Timer::Expire { rep: r, epoch },
                });
            }
        }
    }

    /// True when `f` has a replica on its planned hardware that is ready (idle or busy).
    pub(crate) fn has_ready_successor(&self, f: usize) -> bool {
        self.members[f].live.iter().any(|&x| {
            !self.reps[x].retire && matches!(self.reps[x].state, RepState::Idle | RepState::Busy)
        })
    }

    /// Releases the idle retiring replicas of `f` once a replacement is ready.
    fn retire_replaced(&mut self, f: usize) {
        if !self.has_ready_successor(f) {
            return;
        }
        for r in self.members[f].live.clone() {
            if self.reps[r].retire && self.reps[r].state == RepState::Idle {
                self.release(r);
            }
        }
    }

    /// Carries out a new plan.
    pub(crate) fn apply_plan(&mut self, plan: Plan, world: &mut dyn World) {
        for (f, fp) in plan.functions.iter().enumerate().take(self.members.len()) {
            let new = fp.choice;
            if let Some(old) = self.members[f].choice
                && old.hardware != new.hardware
            {
                // A hardware switch: every replica on the old hardware goes.
                if !self.members[f].live.is_empty() {
                    self.hw_switches += 1;
                }
                // Make before break: every old replica, warm or still initialising, stays in rotation
                // until a replacement on the new hardware is ready. An initialising one may be what a
                // queued request is waiting for; cancelling it would make that request wait for a
                // whole new initialisation.
                let mut old_count = 0u32;
                for r in self.members[f].live.clone() {
                    self.reps[r].retire = true;
                    old_count += 1;
                }
                self.members[f].choice = Some(new);
                if old_count > 0 && !matches!(new.policy, ColdStart::PreWarm { .. }) {
                    for _ in 0..old_count.min(new.replicas.max(1)) {
                        self.start_replica(f, f64::NEG_INFINITY, world);
                    }
                }
            }
            self.members[f].choice = Some(new);
            self.current.insert(fp.name.clone(), new.hardware);
            if let ColdStart::AlwaysOn = new.policy {
                let want = (new.replicas.max(1) as usize).min(self.max_replicas);
                let mut live: Vec<RepId> = self.members[f]
                    .live
                    .iter()
                    .copied()
                    .filter(|&r| !self.reps[r].retire)
                    .collect();
                // Scaling down retires not-ready replicas first, newest first, and keeps the warm
                // ones (which the idle check below would otherwise release first, as they have been
                // idle the longest).
                while live.len() > want {
                    let Some(i) = live
                        .iter()
                        .rposition(|&r| self.reps[r].state == RepState::Init)
                    else {
                        break;
                    };
                    self.release(live.remove(i));
                }
                for _ in live.len()..want {
                    self.start_replica(f, f64::NEG_INFINITY, world);
                }
            }
            for r in self.members[f].live.clone() {
                if self.reps[r].state == RepState::Idle {
                    self.park(r);
                }
            }
            self.dispatch(f, world);
        }
        self.plan = Some(plan);
    }

    /// Serves queued tasks with warm replicas, then starts replicas for what is left.
    pub(crate) fn dispatch(&mut self, f: usize, world: &mut dyn World) {
        while self.members[f].queued > 0 {
            // Prefer a replica on the planned hardware; one being retired still serves while the new
            // ones initialise (make before break).
            let pick = self.members[f]
                .live
                .iter()
                .copied()
                .filter(|&r| self.reps[r].state == RepState::Idle)
                .min_by_key(|&r| self.reps[r].retire);
            let Some(r) = pick else { break };
            let batch = self.members[f].choice.map_or(1, |c| c.batch).max(1);
            let m = &mut self.members[f];
            let oldest = m.queued_at.front().copied().unwrap_or(self.now);
            let tasks = match gather::decide(batch, m.queued, oldest, self.now) {
                Gather::Send(n) => n.min(m.queued),
                Gather::Idle => break,
                Gather::Until(at) => {
                    if m.gather_at != Some(at) {
                        m.gather_at = Some(at);
                        self.out.push(Action::Wake {
                            at,
                            timer: Timer::Gather { f },
                        });
                    }
                    break;
                }
            };
            m.queued -= tasks;
            for _ in 0..tasks {
                m.queued_at.pop_front();
            }
            let hw = self.reps[r].hw;
            let duration = world.call_time(f, hw, tasks).max(0.0);
            self.set_state(r, RepState::Busy);
            let now = self.now;
            let rep = &mut self.reps[r];
            rep.hold_until = f64::NEG_INFINITY;
            rep.busy_until = now + duration;
            rep.tasks = tasks;
            self.out.push(Action::Serve {
                f,
                rep: r,
                tasks,
                duration,
            });
        }
        self.scale_up(f, world);
    }

    fn scale_up(&mut self, f: usize, world: &mut dyn World) {
        let q = self.members[f].queued as usize;
        if q == 0 {
            return;
        }
        let Some(choice) = self.members[f].choice else {
            // Unplanned: one replica, started on demand (scale from zero).
            if self.members[f].live.is_empty() {
                self.start_replica(f, f64::NEG_INFINITY, world);
            }
            return;
        };
        let batch = choice.batch.max(1) as usize;
        let init_est = self.profiles.get(f).map_or(0.0, |p| {
            p.init(choice.hardware).estimate(self.init_std_factor)
        });
        let now = self.now;
        let soon = self.members[f]
            .live
            .iter()
            .filter(|&&r| {
                let rep = &self.reps[r];
                // An idle replica counts: it is waiting for a batch to fill (the gather window).
                !rep.retire
                    && (rep.state == RepState::Init
                        || rep.state == RepState::Idle
                        || (rep.state == RepState::Busy && rep.busy_until <= now + init_est))
            })
            .count();
        let deficit = q.saturating_sub(soon * batch);
        let room = self.max_replicas.saturating_sub(self.members[f].live.len());
        // Kept-warm replicas (always-on, keep-alive) come up to the planned count once a task finds
        // them all busy: the plan sized them so that close bursts do not queue (model::queue_wait).
        let planned_gap = if matches!(
            choice.policy,
            ColdStart::AlwaysOn | ColdStart::KeepAlive { .. }
        ) {
            let live = self.members[f]
                .live
                .iter()
                .filter(|&&r| !self.reps[r].retire)
                .count();
            (choice.replicas.max(1) as usize).saturating_sub(live)
        } else {
            0
        };
        for _ in 0..deficit.div_ceil(batch).max(planned_gap).min(room) {
            self.start_replica(f, f64::NEG_INFINITY, world);
        }
    }

    /// With an oracle: pre-warms every pre-warm member for the next burst, before it if need be.
    pub(crate) fn prewarm_next(&mut self, next: Option<(f64, u32)>) {
        let Some(plan) = &self.plan else { return };
        let Some((tn, m)) = next.filter(|&(tn, _)| tn > self.prewarmed_burst) else {
            return;
        };
        let offsets: Vec<(usize, f64, f64)> = plan
            .functions
            .iter()
            .enumerate()
            .filter_map(|(f, fp)| match fp.choice.policy {
                ColdStart::PreWarm { offset_s } => Some((f, offset_s, fp.start_s)),
                _ => None,
            })
            .collect();
        self.prewarmed_burst = tn;
        for (f, o, start_s) in offsets {
            let at = (tn + o).max(self.now);
            self.members[f].prewarm_at = at;
            self.members[f].hold_until = tn + start_s + 1.0;
            self.out.push(Action::Wake {
                at,
                timer: Timer::Prewarm { f, m },
            });
        }
    }

    pub(crate) fn prewarm(&mut self, f: usize, m: u32, world: &mut dyn World) {
        let Some(choice) = self.members[f].choice else {
            return;
        };
        if !matches!(choice.policy, ColdStart::PreWarm { .. }) {
            return;
        }
        // Requests still to be served here (in flight, not in a call now) need replicas that are
        // initialising or idle; a busy replica serves them only after its call, which is the queueing
        // the plan sized its replicas against.
        let mut live = 0usize;
        let (mut free, mut in_calls) = (0usize, 0usize);
        for &r in &self.members[f].live {
            let rep = &self.reps[r];
            if rep.retire {
                continue;
            }
            live += 1;
            match rep.state {
                RepState::Init | RepState::Idle => free += 1,
                _ => in_calls += rep.tasks as usize,
            }
        }
        let waiting = (self.members[f].pending as usize).saturating_sub(in_calls);
        // One replica per waiting request (up to the plan's count): requests of a burst arrive spread
        // out, so they share a call only when they queue, which the plan's replica count bounds.
        let need = (m as usize).max(waiting);
        let room = (choice.replicas.max(1) as usize)
            .min(self.max_replicas)
            .saturating_sub(live);
        let hold = self.members[f].hold_until;
        for _ in 0..need.saturating_sub(free).min(room) {
            self.start_replica(f, hold, world);
        }
    }

    pub(crate) fn ready(&mut self, r: RepId, world: &mut dyn World) {
        if self.reps[r].state != RepState::Init {
            return;
        }
        self.set_state(r, RepState::Idle);
        let f = self.reps[r].f;
        if self.reps[r].retire && self.has_ready_successor(f) {
            // Replaced while it initialised: the new hardware serves.
            self.release(r);
            return;
        }
        // A retiring replica that is ready first serves until its replacement is (make before break).
        self.retire_replaced(f);
        self.dispatch(f, world);
        if self.reps[r].state == RepState::Idle {
            self.park(r);
        }
    }

    pub(crate) fn call_end(&mut self, r: RepId, world: &mut dyn World) {
        if self.reps[r].state != RepState::Busy {
            return;
        }
        let f = self.reps[r].f;
        let tasks = std::mem::take(&mut self.reps[r].tasks);
        self.set_state(r, RepState::Idle);
        let m = &mut self.members[f];
        m.pending = m.pending.saturating_sub(tasks);
        self.dispatch(f, world);
        if self.reps[r].state == RepState::Idle {
            self.park(r);
        }
    }
}
