//! Replica pools: per-function state, replica lifecycle (start, ready, park, release) with billing on
//! every state change, and applying a new plan (keep-alive windows, always-on counts, hardware switches).
use std::collections::VecDeque;

use crate::hardware::Hardware;
use crate::plan::{Choice, ColdStart, Plan};

use super::engine::Sim;

/// A replica's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Init,
    Idle,
    Busy,
    Gone,
}

#[derive(Clone, Debug)]
pub(crate) struct Replica {
    pub f: usize,
    pub hw: Hardware,
    pub state: State,
    /// When the current state began (billing).
    pub since: f64,
    pub ready_at: f64,
    pub busy_until: f64,
    /// Time of the last use (start of idleness), for keep-alive.
    pub idle_since: f64,
    /// Pre-warmed for a known burst: kept until then.
    pub hold_until: f64,
    /// Bumped on every park so stale expiry events are ignored.
    pub epoch: u32,
    /// Its hardware is no longer planned: leaves once done.
    pub retire: bool,
    pub tasks: Vec<usize>,
}

/// One function's run-time state.
#[derive(Clone, Debug, Default)]
pub(crate) struct FnState {
    /// Queued tasks: (request, time it became ready).
    pub queue: VecDeque<(usize, f64)>,
    /// Replicas not gone.
    pub live: Vec<usize>,
    /// In-flight requests that have not finished this function yet.
    pub pending: u32,
    pub choice: Option<Choice>,
    pub inits: u64,
    /// With an oracle: when the next known burst's pre-warm starts, and until when replicas are held
    /// for that burst.
    pub prewarm_at: f64,
    pub hold_until: f64,
}

impl Sim<'_> {
    /// Moves replica `r` to `state`, billing the time spent in the previous one.
    pub(crate) fn set_state(&mut self, r: usize, state: State) {
        self.bill(r);
        let rep = &mut self.reps[r];
        rep.state = state;
        rep.since = self.now;
        if state == State::Idle {
            rep.idle_since = self.now;
        }
    }

    /// Starts a replica of `f` on its planned hardware.
    pub(crate) fn start_replica(&mut self, f: usize, hold_until: f64) {
        let Some(choice) = self.fns[f].choice else {
            return;
        };
        let hw = choice.hardware;
        let init = self.world[f].init(hw);
        let d = self.truncated_normal(init.mean_s, init.std_s, 3.0).max(0.0);
        let r = self.reps.len();
        self.reps.push(Replica {
            f,
            hw,
            state: State::Init,
            since: self.now,
            ready_at: self.now + d,
            busy_until: self.now,
            idle_since: self.now,
            hold_until,
            epoch: 0,
            retire: false,
            tasks: Vec::new(),
        });
        self.fns[f].live.push(r);
        self.fns[f].inits += 1;
        self.push(self.now + d, super::engine::Ev::Ready(r));
    }

    /// Releases replica `r` now (billing up to now).
    pub(crate) fn release(&mut self, r: usize) {
        self.set_state(r, State::Gone);
        let f = self.reps[r].f;
        self.fns[f].live.retain(|&x| x != r);
    }

    /// Decides what an idle replica with an empty queue does: stay, leave now, or leave later.
    pub(crate) fn park(&mut self, r: usize) {
        let f = self.reps[r].f;
        let Some(choice) = self.fns[f].choice else {
            self.release(r);
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
                let live = self.fns[f]
                    .live
                    .iter()
                    .filter(|&&x| !self.reps[x].retire)
                    .count();
                if live as u32 > choice.replicas.max(1) {
                    // A surplus replica started for a burst: break-even keep-alive.
                    Some(idle_since + self.input.profiles[f].init(choice.hardware).mean_s)
                } else {
                    None
                }
            }
            ColdStart::KeepAlive { seconds } => Some(idle_since + seconds.max(0.0)),
            ColdStart::PreWarm { .. } => {
                let fs = &self.fns[f];
                if fs.pending > 0 {
                    // A request in flight still needs this function: re-check shortly.
                    Some(self.now + 1.0)
                } else if self.now >= fs.prewarm_at && self.now < fs.hold_until {
                    // The next burst's pre-warm is already due: releasing now only to re-initialise
                    // would be waste, so it waits for that burst.
                    Some(fs.hold_until)
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
                self.push(t, super::engine::Ev::Expire(r, epoch));
            }
        }
    }

    /// True when `f` has a replica on its planned hardware that is ready (idle or busy).
    pub(crate) fn has_ready_successor(&self, f: usize) -> bool {
        self.fns[f].live.iter().any(|&x| {
            !self.reps[x].retire && matches!(self.reps[x].state, State::Idle | State::Busy)
        })
    }

    /// Releases the idle retiring replicas of `f` once a replacement is ready.
    pub(crate) fn retire_replaced(&mut self, f: usize) {
        if !self.has_ready_successor(f) {
            return;
        }
        for r in self.fns[f].live.clone() {
            if self.reps[r].retire && self.reps[r].state == State::Idle {
                self.release(r);
            }
        }
    }

    /// Carries out a new plan.
    pub(crate) fn apply(&mut self, plan: Plan) {
        for (f, fp) in plan.functions.iter().enumerate() {
            let new = fp.choice;
            let old = self.fns[f].choice;
            if let Some(old) = old
                && old.hardware != new.hardware
            {
                // A hardware switch: every replica on the old hardware goes.
                if !self.fns[f].live.is_empty() {
                    self.hw_switches += 1;
                }
                // Make before break, as the live runtime's rollout does: every old replica, warm or
                // still initialising, stays in rotation until a replacement on the new hardware is
                // ready. An initialising one may be what a queued request is waiting for; cancelling
                // it would make that request wait for a whole new initialisation.
                let mut old_count = 0u32;
                for r in self.fns[f].live.clone() {
                    self.reps[r].retire = true;
                    old_count += 1;
                }
                self.fns[f].choice = Some(new);
                if old_count > 0 && !matches!(new.policy, ColdStart::PreWarm { .. }) {
                    for _ in 0..old_count.min(new.replicas.max(1)) {
                        self.start_replica(f, f64::NEG_INFINITY);
                    }
                }
            }
            self.fns[f].choice = Some(new);
            self.current.insert(fp.name.clone(), new.hardware);
            if let ColdStart::AlwaysOn = new.policy {
                let want = (new.replicas.max(1) as usize).min(self.opts.max_replicas);
                let mut live: Vec<usize> = self.fns[f]
                    .live
                    .iter()
                    .copied()
                    .filter(|&r| !self.reps[r].retire)
                    .collect();
                // Scaling down, the live runtime retires not-ready replicas first, newest first, and
                // keeps the warm ones (which the idle check below would otherwise release first, as
                // they have been idle the longest).
                while live.len() > want {
                    let Some(i) = live
                        .iter()
                        .rposition(|&r| self.reps[r].state == State::Init)
                    else {
                        break;
                    };
                    self.release(live.remove(i));
                }
                for _ in live.len()..want {
                    self.start_replica(f, f64::NEG_INFINITY);
                }
            }
            for r in self.fns[f].live.clone() {
                if self.reps[r].state == State::Idle {
                    self.park(r);
                }
            }
            self.dispatch(f);
        }
        self.plan = Some(plan);
    }
}
