//! The live side of the one executor: a DAG's [`optimizer::exec::Executor`] (the replica lifecycle the
//! simulator runs) driven by the request path's [`contract::events`], with its timers kept in real time and
//! its replica counts turned into scale commands. No I/O and no clock: every call takes `now` (real
//! seconds), so this shell is tested with a fake clock; the loop in [`super`] carries the commands out.
//!
//! Live specifics: the runtime routes calls itself, so a call's end names its member, not its replica
//! ([`Executor::on_call_end_any`]); a replica counts as ready after the profile's mean initialisation
//! (or earlier, when a call it served ends); planned durations are in profile seconds, which a time
//! scale `s` maps to `s` real seconds.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use optimizer::exec::{Action, Executor, Profiled, RepId, Timer};
use optimizer::{Dag, Hardware, Plan, Prices, Profile};

use contract::events::What;

/// What a timer does when it is due.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Due {
    Exec(Timer),
    /// A started replica is taken to be ready (the profile's mean initialisation has passed).
    Ready(RepId),
}

/// A timer at a real time; ordered by (time, sequence) so equal times run in the order set.
#[derive(Clone, Copy, Debug, PartialEq)]
struct At {
    at: f64,
    seq: u64,
    due: Due,
}

impl Eq for At {}
impl PartialOrd for At {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for At {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.at.total_cmp(&o.at).then(self.seq.cmp(&o.seq))
    }
}

/// The most replicas the executor starts per member (the simulator's default).
pub const MAX_REPLICAS: usize = 256;

/// One DAG's executor in real time. See the module documentation.
#[derive(Debug)]
pub struct DagExec {
    exec: Executor,
    profiles: Vec<Profile>,
    /// Real seconds per profile second.
    scale: f64,
    timers: BinaryHeap<Reverse<At>>,
    seq: u64,
    /// Replicas last asked of the backend, per member (`None`: never asked).
    asked: Vec<Option<u32>>,
    /// Replicas started by pre-warms not yet counted (for the DAG's `prewarms` counter).
    prewarms: u64,
}

impl DagExec {
    /// An executor for `dag` with `profiles` (node order; empty when the DAG cannot be planned).
    pub fn new(dag: &Dag, profiles: Vec<Profile>, prices: Prices, time_scale: f64) -> DagExec {
        let params = optimizer::ModelParams::default();
        DagExec {
            exec: Executor::for_dag(
                dag,
                profiles.clone(),
                prices,
                params.init_std_factor,
                MAX_REPLICAS,
            ),
            profiles,
            scale: if time_scale > 0.0 { time_scale } else { 1.0 },
            timers: BinaryHeap::new(),
            seq: 0,
            asked: vec![None; dag.len()],
            prewarms: 0,
        }
    }

    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Replicas started by pre-warms since the last call.
    pub fn take_prewarms(&mut self) -> u64 {
        std::mem::take(&mut self.prewarms)
    }

    /// New profiles (the online refresh).
    pub fn set_profiles(&mut self, profiles: Vec<Profile>) {
        self.exec.set_profiles(profiles.clone());
        if profiles.len() == self.asked.len() {
            self.profiles = profiles;
        }
    }

    fn p(&self, real: f64) -> f64 {
        real / self.scale
    }

    /// Member `f` already runs `n` replicas on `hw` (found at start-up): the executor takes them over.
    pub fn adopt(&mut self, now: f64, f: usize, n: u32, hw: Hardware) {
        if n > 0 && f < self.asked.len() {
            let a = self.exec.adopt(self.p(now), f, n, hw);
            self.asked[f] = Some(n);
            self.carry_out(now, a, false);
        }
    }

    /// The backend runs `actual` replicas of `f`: when that is not what the executor last asked for (an
    /// operator scaled it, or the request path scaled it from zero), the executor follows.
    pub fn follow(&mut self, now: f64, f: usize, actual: u32) {
        if f < self.asked.len() && self.asked[f].is_some_and(|n| n != actual) {
            let a = self.exec.follow(self.p(now), f, actual);
            self.asked[f] = Some(self.exec.replicas(f));
            self.carry_out(now, a, false);
        }
    }

    /// Carries out `plan` (new or changed).
    pub fn apply(&mut self, now: f64, plan: Plan) {
        let mut world = Profiled(&self.profiles);
        let a = self.exec.apply(now / self.scale, plan, &mut world);
        self.carry_out(now, a, false);
    }

    /// A request-path event.
    pub fn on_event(&mut self, now: f64, what: &What) {
        let p = self.p(now);
        let n = self.asked.len();
        let mut world = Profiled(&self.profiles);
        let a = match *what {
            What::Arrival => {
                // Without a plan, the arrival itself starts the downstream members: pre-warms.
                let started = self.exec.on_arrival(p, &mut world);
                self.carry_out(now, started, true);
                self.exec.prewarm_for(p, p, None)
            }
            What::Queued { member } if member < n => self.exec.on_queued(p, member, &mut world),
            What::CallEnded { member } if member < n => {
                self.exec.on_call_end_any(p, member, &mut world)
            }
            What::Abandoned { ref members } => self.exec.on_abandoned(p, members),
            _ => Vec::new(),
        };
        self.carry_out(now, a, false);
    }

    /// When the next timer is due (real seconds).
    pub fn next_due(&self) -> Option<f64> {
        self.timers.peek().map(|t| t.0.at)
    }

    /// Runs every timer due at `now`.
    pub fn run_due(&mut self, now: f64) {
        while let Some(t) = self.timers.peek().map(|t| t.0).filter(|t| t.at <= now) {
            self.timers.pop();
            // Everything the timer causes happens at its own time, not at the (later) time it is run.
            let when = t.at.clamp(0.0, now);
            let p = self.p(when);
            let mut world = Profiled(&self.profiles);
            let (a, prewarm) = match t.due {
                Due::Exec(timer) => (
                    self.exec.on_timer(p, timer, &mut world),
                    matches!(timer, Timer::Prewarm { .. }),
                ),
                Due::Ready(rep) => (self.exec.on_ready(p, rep, &mut world), false),
            };
            self.carry_out(when, a, prewarm);
        }
    }

    fn push(&mut self, at: f64, due: Due) {
        self.seq += 1;
        self.timers.push(Reverse(At {
            at,
            seq: self.seq,
            due,
        }));
    }

    fn carry_out(&mut self, now: f64, actions: Vec<Action>, prewarm: bool) {
        for a in actions {
            match a {
                Action::Start { rep, ready_in, .. } => {
                    if prewarm {
                        self.prewarms += 1;
                    }
                    self.push(now + ready_in * self.scale, Due::Ready(rep));
                }
                Action::Wake { at, timer } => self.push(at * self.scale, Due::Exec(timer)),
                // The runtime routes calls and stops the replicas a lower count leaves out.
                Action::Serve { .. } | Action::Release { .. } => {}
            }
        }
    }

    /// The members whose replica count changed since the last call, with the count the backend
    /// should run (the executor's replicas not gone).
    pub fn scales(&mut self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for f in 0..self.asked.len() {
            let want = self.exec.replicas(f);
            if self.asked[f] != Some(want) {
                // Nothing asked yet and nothing wanted: leave the backend as it is.
                if self.asked[f].is_none() && want == 0 {
                    continue;
                }
                self.asked[f] = Some(want);
                out.push((f, want));
            }
        }
        out
    }

    /// One line per member for `/system/plan`: replicas and their states.
    pub fn describe(&self, f: usize) -> String {
        let (mut init, mut idle, mut busy) = (0, 0, 0);
        for &r in &self.exec.member(f).live {
            match self.exec.replica(r).state {
                optimizer::exec::RepState::Init => init += 1,
                optimizer::exec::RepState::Idle => idle += 1,
                optimizer::exec::RepState::Busy => busy += 1,
                optimizer::exec::RepState::Gone => {}
            }
        }
        format!(
            "{} replicas ({busy} busy, {idle} idle, {init} initialising; {} requests in flight)",
            self.exec.replicas(f),
            self.exec.member(f).pending
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
