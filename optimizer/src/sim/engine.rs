//! The discrete-event engine: DAG requests flow through functions whose replicas are initialising,
//! warm-idle or busy; the [`Controller`] is asked for a plan every tick and on every new burst, and the
//! engine carries the plan out (keep-alive, release, pre-warm, replicas, hardware switches).
//!
//! Rules (what a plan means at run time):
//! - A task (one request at one function) is queued when all its predecessors are done; a free warm
//!   replica takes up to `batch` queued tasks at once (work-conserving: it does not wait to fill a batch).
//! - When the queue exceeds what initialising replicas and replicas that free up within an
//!   initialisation time can take, new replicas start initialising on demand (scale from zero). A
//!   kept-warm function (always-on, keep-alive) whose replicas are all busy also brings them up to the
//!   planned count: the plan sized them against queueing (`model::queue_wait`).
//! - After use: always-on replicas stay (surplus ones above the planned count leave after one
//!   initialisation time idle); keep-alive replicas leave `T` seconds after their last use; pre-warmed
//!   replicas leave as soon as no in-flight request still needs them.
//! - Pre-warm: on each arrival a pre-warm function starts replicas `offset` seconds later (never before
//!   the arrival), one per request still waiting for it beyond the initialising and idle replicas, up to
//!   the planned count (a busy replica serves a waiting request only after its call); with an oracle estimator the next burst is known, and replicas start at
//!   `next burst + offset` (possibly before it) and are held until the burst reaches them.
//! - A hardware change is made before break, like the live runtime's rollout: the old replicas, warm
//!   or still initialising, keep serving until a replacement on the new hardware is ready, then leave.
//!   The controller orders the switches of one plan change along the DAG (`Controller::decide`).
//! - Scaling an always-on function down cancels initialising replicas first (newest first) and keeps
//!   the warm ones, as the live runtime does.
//! - Init time ~ normal(mean, std) truncated to ±3 std (so the planner's mean + 3·std always covers it);
//!   inference time = the latency model × normal(1, cv) truncated to ±2 cv.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::plan::{ColdStart, Plan, PlanError, PlanInput};

use super::control::{Controller, Observations};
use super::estimate::BURST_GAP_S;
use super::metrics::{Billed, Ledger, Summary};
use super::pool::{FnState, Replica, State};

/// Knobs of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimOptions {
    pub seed: u64,
    /// Control period, seconds.
    pub tick_s: f64,
    /// Coefficient of variation of inference time around the latency model.
    pub infer_cv: f64,
    /// Most replicas per function.
    pub max_replicas: usize,
    /// Requests arriving before this time are served and billed but left out of the latency and SLA
    /// numbers (every policy starts from nothing deployed).
    pub warmup_s: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            tick_s: 1.0,
            infer_cv: 0.03,
            max_replicas: 256,
            warmup_s: 0.0,
        }
    }
}

/// One run's result: the summary and every completed request's end-to-end latency.
#[derive(Clone, Debug)]
pub struct SimResult {
    pub summary: Summary,
    pub latencies: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Ev {
    Arrival(usize),
    Ready(usize),
    Done(usize),
    Expire(usize, u32),
    /// Pre-warm function `f` for about `m` requests.
    Prewarm(usize, u32),
    Tick,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    t: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Min-heap on (time, sequence): ties resolve in scheduling order, so a run is deterministic.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// A DAG request in flight.
#[derive(Clone, Debug)]
struct Req {
    arrival: f64,
    waiting: Vec<u16>,
    finish: Vec<f64>,
    cold: Vec<bool>,
    sinks_left: u16,
}

/// The simulation state.
pub(crate) struct Sim<'a> {
    pub(crate) input: &'a PlanInput,
    /// The profiles replicas follow (initialisation and inference draws): the planners' own unless a
    /// what-if says the world differs from what they know.
    pub(crate) world: &'a [crate::Profile],
    pub(crate) opts: SimOptions,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) now: f64,
    heap: BinaryHeap<Event>,
    seq: u64,
    pub(crate) reps: Vec<Replica>,
    pub(crate) fns: Vec<FnState>,
    reqs: Vec<Req>,
    pub(crate) arrivals: &'a [f64],
    new_arrivals: Vec<f64>,
    last_arrival: f64,
    /// Start of the next burst already pre-warmed for (oracle).
    prewarmed_burst: f64,
    pub(crate) current: BTreeMap<String, crate::hardware::Hardware>,
    pub(crate) ledger: Ledger,
    pub(crate) latencies: Vec<f64>,
    pub(crate) violations: u64,
    pub(crate) cold_cp: u64,
    pub(crate) hw_switches: u64,
    in_flight: usize,
    pub(crate) plan: Option<Plan>,
}

/// Runs `controller` on `arrivals` (ascending seconds) for `duration_s` seconds of arrivals, then lets
/// the requests in flight finish. `input` is the controller's template (DAG, profiles, prices, SLA).
pub fn simulate(
    input: &PlanInput,
    controller: Controller,
    arrivals: &[f64],
    duration_s: f64,
    opts: SimOptions,
) -> Result<SimResult, PlanError> {
    simulate_in(
        input,
        &input.profiles,
        controller,
        arrivals,
        duration_s,
        opts,
    )
}

/// [`simulate`] in a world whose replicas follow `world` (one profile per DAG node, in node order) while
/// the controller plans with `input`'s profiles: e.g. the timings a live host measured, to compare a live
/// run with its simulation, or a what-if of models slower than profiled.
pub fn simulate_in(
    input: &PlanInput,
    world: &[crate::Profile],
    mut controller: Controller,
    arrivals: &[f64],
    duration_s: f64,
    opts: SimOptions,
) -> Result<SimResult, PlanError> {
    let n = input.dag.len();
    if world.len() != n {
        return Err(PlanError::InvalidInput(format!(
            "{} world profiles for a DAG of {n} functions",
            world.len()
        )));
    }
    let arrivals = &arrivals[..arrivals.partition_point(|&t| t < duration_s)];
    let mut sim = Sim {
        input,
        world,
        opts,
        rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed),
        now: 0.0,
        heap: BinaryHeap::new(),
        seq: 0,
        reps: Vec::new(),
        fns: (0..n).map(|_| FnState::default()).collect(),
        reqs: Vec::with_capacity(arrivals.len()),
        arrivals,
        new_arrivals: Vec::new(),
        last_arrival: f64::NEG_INFINITY,
        prewarmed_burst: f64::NEG_INFINITY,
        current: BTreeMap::new(),
        ledger: Ledger::default(),
        latencies: Vec::with_capacity(arrivals.len()),
        violations: 0,
        cold_cp: 0,
        hw_switches: 0,
        in_flight: 0,
        plan: None,
    };
    for (i, &t) in arrivals.iter().enumerate() {
        sim.push(t, Ev::Arrival(i));
    }
    sim.control(&mut controller)?;
    // An oracle knows the first burst too.
    if let Some(first) = controller.estimator().next_burst(f64::NEG_INFINITY) {
        sim.prewarm_for_next(Some(first));
    }
    sim.push(opts.tick_s, Ev::Tick);
    while let Some(e) = sim.heap.pop() {
        if e.t > duration_s && sim.in_flight == 0 {
            break;
        }
        sim.now = e.t;
        match e.ev {
            Ev::Arrival(i) => {
                let new_burst = sim.now - sim.last_arrival >= BURST_GAP_S;
                sim.arrive(i);
                if new_burst {
                    sim.control(&mut controller)?;
                    sim.prewarm_on_arrival(i, controller.estimator().next_burst(sim.now));
                } else {
                    sim.prewarm_on_arrival(i, None);
                }
            }
            Ev::Ready(r) => sim.ready(r),
            Ev::Done(r) => sim.done(r),
            Ev::Expire(r, epoch) => {
                if sim.reps[r].epoch == epoch && sim.reps[r].state == State::Idle {
                    sim.park(r);
                }
            }
            Ev::Prewarm(f, m) => sim.prewarm(f, m),
            Ev::Tick => {
                if sim.now <= duration_s {
                    sim.control(&mut controller)?;
                    sim.push(sim.now + opts.tick_s, Ev::Tick);
                }
            }
        }
    }
    let end = sim.now.max(duration_s);
    sim.now = end;
    for r in 0..sim.reps.len() {
        if sim.reps[r].state != State::Gone {
            sim.release(r);
        }
    }
    Ok(sim.finish(&controller))
}

impl<'a> Sim<'a> {
    pub(crate) fn push(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn control(&mut self, c: &mut Controller) -> Result<(), PlanError> {
        let obs = Observations {
            arrivals: &self.new_arrivals,
            current: &self.current,
        };
        let d = c.decide(self.now, &obs)?;
        let (changed, plan) = (d.changed || self.plan.is_none(), d.plan.clone());
        self.new_arrivals.clear();
        if changed {
            self.apply(plan);
        }
        Ok(())
    }

    fn arrive(&mut self, i: usize) {
        let dag = &self.input.dag;
        let n = dag.len();
        let t = self.arrivals[i];
        self.last_arrival = t;
        self.new_arrivals.push(t);
        let waiting = (0..n).map(|f| dag.pred[f].len() as u16).collect();
        let sinks_left = dag.sinks().count() as u16;
        self.reqs.push(Req {
            arrival: t,
            waiting,
            finish: vec![f64::NAN; n],
            cold: vec![false; n],
            sinks_left,
        });
        self.in_flight += 1;
        for f in &mut self.fns {
            f.pending += 1;
        }
        let entry = dag.entry;
        self.enqueue(entry, i);
    }

    fn prewarm_on_arrival(&mut self, i: usize, next: Option<(f64, u32)>) {
        let Some(plan) = &self.plan else { return };
        let offsets: Vec<(usize, f64)> = plan
            .functions
            .iter()
            .enumerate()
            .filter_map(|(f, fp)| match fp.choice.policy {
                ColdStart::PreWarm { offset_s } => Some((f, offset_s)),
                _ => None,
            })
            .collect();
        let t = self.arrivals[i];
        for &(f, o) in &offsets {
            self.push(t + o.max(0.0), Ev::Prewarm(f, 1));
        }
        self.prewarm_for_next(next);
    }

    /// With an oracle: pre-warms every pre-warm function for the next burst, before it if need be.
    fn prewarm_for_next(&mut self, next: Option<(f64, u32)>) {
        let Some(plan) = &self.plan else { return };
        let offsets: Vec<(usize, f64, f64)> = plan
            .functions
            .iter()
            .enumerate()
            .filter_map(|(f, fp)| match fp.choice.policy {
                ColdStart::PreWarm { offset_s } => Some((f, offset_s, fp.start_s)),
                _ => None,
            })
            .collect();
        if let Some((tn, m)) = next
            && tn > self.prewarmed_burst
        {
            self.prewarmed_burst = tn;
            for &(f, o, start_s) in &offsets {
                let at = (tn + o).max(self.now);
                self.fns[f].prewarm_at = at;
                self.fns[f].hold_until = tn + start_s + 1.0;
                self.push(at, Ev::Prewarm(f, m));
            }
        }
    }

    fn enqueue(&mut self, f: usize, req: usize) {
        self.fns[f].queue.push_back((req, self.now));
        self.dispatch(f);
    }

    /// Serves queued tasks with warm replicas, then starts replicas for what is left.
    pub(crate) fn dispatch(&mut self, f: usize) {
        while !self.fns[f].queue.is_empty() {
            // Prefer a replica on the planned hardware; one being retired still serves while the new
            // ones initialise (make before break).
            let idle = |r: &usize| self.reps[*r].state == State::Idle;
            let pick = self.fns[f]
                .live
                .iter()
                .copied()
                .filter(idle)
                .min_by_key(|&r| self.reps[r].retire);
            let Some(r) = pick else { break };
            let batch = (self.fns[f].choice.map_or(1, |c| c.batch).max(1) as usize)
                .min(self.fns[f].queue.len());
            let mut tasks = Vec::with_capacity(batch);
            for _ in 0..batch {
                let Some((req, ready)) = self.fns[f].queue.pop_front() else {
                    break;
                };
                if self.reps[r].ready_at > ready + 1e-9 {
                    // It waited for this replica's initialisation.
                    self.reqs[req].cold[f] = true;
                }
                tasks.push(req);
            }
            self.reps[r].hold_until = f64::NEG_INFINITY;
            let hw = self.reps[r].hw;
            let base = self.world[f].infer_time(hw, tasks.len() as u32);
            let noise = self.truncated_normal(1.0, self.opts.infer_cv, 2.0);
            let dt = base * noise.max(0.0);
            self.set_state(r, State::Busy);
            self.reps[r].busy_until = self.now + dt;
            self.reps[r].tasks = tasks;
            self.push(self.now + dt, Ev::Done(r));
        }
        self.scale_up(f);
    }

    fn scale_up(&mut self, f: usize) {
        let q = self.fns[f].queue.len();
        if q == 0 {
            return;
        }
        let Some(choice) = self.fns[f].choice else {
            return;
        };
        let batch = choice.batch.max(1) as usize;
        let init_est = self.input.profiles[f]
            .init(choice.hardware)
            .estimate(self.input.params.init_std_factor);
        let soon = self.fns[f]
            .live
            .iter()
            .filter(|&&r| {
                let rep = &self.reps[r];
                !rep.retire
                    && (rep.state == State::Init
                        || (rep.state == State::Busy && rep.busy_until <= self.now + init_est))
            })
            .count();
        let deficit = q.saturating_sub(soon * batch);
        let room = self
            .opts
            .max_replicas
            .saturating_sub(self.fns[f].live.len());
        // Kept-warm replicas (always-on, keep-alive) come up to the planned count once a task finds
        // them all busy: the plan sized them so that close bursts do not queue (model::queue_wait).
        let planned_gap = if matches!(
            choice.policy,
            ColdStart::AlwaysOn | ColdStart::KeepAlive { .. }
        ) {
            let live = self.fns[f]
                .live
                .iter()
                .filter(|&&r| !self.reps[r].retire)
                .count();
            (choice.replicas.max(1) as usize).saturating_sub(live)
        } else {
            0
        };
        for _ in 0..deficit.div_ceil(batch).max(planned_gap).min(room) {
            self.start_replica(f, f64::NEG_INFINITY);
        }
    }

    fn prewarm(&mut self, f: usize, m: u32) {
        let Some(choice) = self.fns[f].choice else {
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
        for &r in &self.fns[f].live {
            let rep = &self.reps[r];
            if rep.retire {
                continue;
            }
            live += 1;
            match rep.state {
                State::Init | State::Idle => free += 1,
                _ => in_calls += rep.tasks.len(),
            }
        }
        let waiting = (self.fns[f].pending as usize).saturating_sub(in_calls);
        // One replica per waiting request (up to the plan's count): requests of a burst arrive spread
        // out, so they share a call only when they queue, which the plan's replica count bounds.
        let need = (m as usize).max(waiting);
        let room = (choice.replicas.max(1) as usize)
            .min(self.opts.max_replicas)
            .saturating_sub(live);
        let hold = self.fns[f].hold_until;
        for _ in 0..need.saturating_sub(free).min(room) {
            self.start_replica(f, hold);
        }
    }

    fn ready(&mut self, r: usize) {
        if self.reps[r].state != State::Init {
            return;
        }
        self.set_state(r, State::Idle);
        let f = self.reps[r].f;
        if self.reps[r].retire && self.has_ready_successor(f) {
            // Replaced while it initialised: the new hardware serves.
            self.release(r);
            return;
        }
        // A retiring replica that is ready first serves until its replacement is (make before break).
        self.retire_replaced(f);
        self.dispatch(f);
        if self.reps[r].state == State::Idle {
            self.park(r);
        }
    }

    fn done(&mut self, r: usize) {
        let f = self.reps[r].f;
        let tasks = std::mem::take(&mut self.reps[r].tasks);
        self.set_state(r, State::Idle);
        for &req in &tasks {
            self.complete_task(req, f);
        }
        self.dispatch(f);
        if self.reps[r].state == State::Idle {
            self.park(r);
        }
    }

    fn complete_task(&mut self, req: usize, f: usize) {
        let dag = &self.input.dag;
        self.fns[f].pending = self.fns[f].pending.saturating_sub(1);
        self.reqs[req].finish[f] = self.now;
        let succ = dag.succ[f].clone();
        if succ.is_empty() {
            self.reqs[req].sinks_left -= 1;
            if self.reqs[req].sinks_left == 0 {
                self.complete_request(req);
            }
        }
        for s in succ {
            self.reqs[req].waiting[s] -= 1;
            if self.reqs[req].waiting[s] == 0 {
                self.enqueue(s, req);
            }
        }
    }

    fn complete_request(&mut self, req: usize) {
        let dag = &self.input.dag;
        let r = &self.reqs[req];
        let last = dag
            .sinks()
            .max_by(|&a, &b| r.finish[a].total_cmp(&r.finish[b]))
            .unwrap_or(dag.entry);
        let latency = r.finish[last] - r.arrival;
        self.in_flight -= 1;
        if r.arrival < self.opts.warmup_s {
            return;
        }
        // Walk the critical path back: each node's latest-finishing predecessor.
        let mut node = last;
        let mut cold = r.cold[node];
        while let Some(&p) = dag.pred[node]
            .iter()
            .max_by(|&&a, &&b| r.finish[a].total_cmp(&r.finish[b]))
        {
            node = p;
            cold |= r.cold[node];
        }
        if cold {
            self.cold_cp += 1;
        }
        if latency > self.input.sla_s + 1e-9 {
            self.violations += 1;
        }
        self.latencies.push(latency);
        let r = &mut self.reqs[req];
        r.waiting = Vec::new();
        r.finish = Vec::new();
        r.cold = Vec::new();
    }

    pub(crate) fn truncated_normal(&mut self, mean: f64, sd: f64, k: f64) -> f64 {
        if sd <= 0.0 {
            return mean;
        }
        for _ in 0..16 {
            let z: f64 = StandardNormal.sample(&mut self.rng);
            if z.abs() <= k {
                return mean + sd * z;
            }
        }
        mean + sd * (self.rng.random::<f64>() * 2.0 - 1.0) * k
    }

    pub(crate) fn bill(&mut self, r: usize) {
        let rep = &self.reps[r];
        let what = match rep.state {
            State::Init => Billed::Init,
            State::Busy => Billed::Busy,
            State::Idle => Billed::Idle,
            State::Gone => return,
        };
        let (hw, dt) = (rep.hw, self.now - rep.since);
        self.ledger.bill(&self.input.prices, hw, what, dt);
    }
}
