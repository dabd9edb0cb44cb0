//! The discrete-event engine: DAG requests flow through functions whose replicas are initialising,
//! warm-idle or busy; the [`Controller`] is asked for a plan every tick and on every new burst, and the
//! engine carries the plan out (keep-alive, release, pre-warm, replicas, hardware switches).
//!
//! What a plan means at run time (keep-alive, pre-warm, scaling on a queue, hardware switches) is the
//! [`Executor`]'s, the same one the live control loop drives; this engine is its world: it draws
//! initialisation and inference times, moves DAG requests from member to member, and measures.
//! - Init time ~ normal(mean, std) truncated to ±3 std (so the planner's mean + 3·std always covers it);
//!   inference time = the latency model × normal(1, cv) truncated to ±2 cv.
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::exec::{Action, Executor, RepId, Timer};
use crate::plan::{PlanError, PlanInput};

use super::control::{Controller, Observations};
use super::estimate::BURST_GAP_S;
use super::metrics::Summary;
use super::world::Draws;

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
    Ready(RepId),
    Done(RepId),
    Timer(Timer),
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

/// The world's draws, borrowing only the fields they need (the executor is borrowed beside them).
macro_rules! draws {
    ($sim:expr) => {
        Draws {
            rng: &mut $sim.rng,
            world: $sim.world,
            infer_cv: $sim.opts.infer_cv,
        }
    };
}

/// The simulation state.
pub(crate) struct Sim<'a> {
    pub(crate) input: &'a PlanInput,
    /// The profiles replicas follow (initialisation and inference draws): the planners' own unless a
    /// what-if says the world differs from what they know.
    world: &'a [crate::Profile],
    opts: SimOptions,
    rng: Xoshiro256PlusPlus,
    now: f64,
    heap: BinaryHeap<Event>,
    seq: u64,
    /// The one executor of the plan (shared with the live control loop).
    pub(crate) exec: Executor,
    /// Per replica: when it is ready, and the requests of its current call.
    ready_at: Vec<f64>,
    tasks: Vec<Vec<usize>>,
    /// Per member: queued tasks (request, time it became ready).
    queues: Vec<VecDeque<(usize, f64)>>,
    reqs: Vec<Req>,
    pub(crate) arrivals: &'a [f64],
    new_arrivals: Vec<f64>,
    last_arrival: f64,
    pub(crate) latencies: Vec<f64>,
    pub(crate) violations: u64,
    pub(crate) cold_cp: u64,
    in_flight: usize,
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
    let mut sim = Sim::new(input, world, arrivals, duration_s, opts);
    sim.control(&mut controller)?;
    sim.first_burst(&controller);
    sim.push(opts.tick_s, Ev::Tick);
    while let Some(e) = sim.heap.pop() {
        if e.t > duration_s && sim.in_flight == 0 {
            break;
        }
        sim.now = e.t;
        sim.handle(e.ev, &mut controller, true, duration_s)?;
    }
    let end = sim.now.max(duration_s);
    Ok(sim.close(end, &controller))
}

impl<'a> Sim<'a> {
    /// A world for `input`'s DAG with its `arrivals` before `duration_s` scheduled.
    pub(crate) fn new(
        input: &'a PlanInput,
        world: &'a [crate::Profile],
        arrivals: &'a [f64],
        duration_s: f64,
        opts: SimOptions,
    ) -> Sim<'a> {
        let n = input.dag.len();
        let arrivals = &arrivals[..arrivals.partition_point(|&t| t < duration_s)];
        let mut sim = Sim {
            input,
            world,
            opts,
            rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed),
            now: 0.0,
            heap: BinaryHeap::new(),
            seq: 0,
            exec: Executor::new(input, opts.max_replicas),
            ready_at: Vec::new(),
            tasks: Vec::new(),
            queues: vec![VecDeque::new(); n],
            reqs: Vec::with_capacity(arrivals.len()),
            arrivals,
            new_arrivals: Vec::new(),
            last_arrival: f64::NEG_INFINITY,
            latencies: Vec::with_capacity(arrivals.len()),
            violations: 0,
            cold_cp: 0,
            in_flight: 0,
        };
        for (i, &t) in arrivals.iter().enumerate() {
            sim.push(t, Ev::Arrival(i));
        }
        sim
    }

    /// An oracle knows the first burst too.
    pub(crate) fn first_burst(&mut self, c: &Controller) {
        if let Some(first) = c.estimator().next_burst(f64::NEG_INFINITY) {
            let a = self.exec.on_forecast_burst(self.now, Some(first));
            self.carry_out(a);
        }
    }

    /// The simulated time.
    pub(crate) fn now(&self) -> f64 {
        self.now
    }

    /// The time of the next event, if any.
    pub(crate) fn next_at(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.t)
    }

    /// Runs the events before `until` (all of them when `until` is infinite), stopping once past
    /// `duration_s` with nothing in flight. Returns false once finished.
    pub(crate) fn run_until(
        &mut self,
        until: f64,
        c: &mut Controller,
        duration_s: f64,
    ) -> Result<bool, PlanError> {
        while let Some(t) = self.next_at().filter(|&t| t < until) {
            if t > duration_s && self.in_flight == 0 {
                return Ok(false);
            }
            let Some(e) = self.heap.pop() else { break };
            self.now = e.t;
            self.handle(e.ev, c, false, duration_s)?;
        }
        Ok(!self.heap.is_empty())
    }

    /// Handles one event. With `own_control`, `c` decides on every tick and new burst; without, the
    /// decisions are made from outside (the joint step) and `c` only answers for its estimator.
    fn handle(
        &mut self,
        ev: Ev,
        c: &mut Controller,
        own_control: bool,
        duration_s: f64,
    ) -> Result<(), PlanError> {
        match ev {
            Ev::Arrival(i) => {
                let new_burst = self.now - self.last_arrival >= BURST_GAP_S;
                self.arrive(i);
                let next = if new_burst {
                    if own_control {
                        self.control(c)?;
                    }
                    c.estimator().next_burst(self.now)
                } else {
                    None
                };
                let a = self.exec.prewarm_for(self.now, self.arrivals[i], next);
                self.carry_out(a);
            }
            Ev::Ready(r) => {
                let a = self.exec.on_ready(self.now, r, &mut draws!(self));
                self.carry_out(a);
            }
            Ev::Done(r) => self.done(r),
            Ev::Timer(t) => {
                let a = self.exec.on_timer(self.now, t, &mut draws!(self));
                self.carry_out(a);
            }
            Ev::Tick => {
                if self.now <= duration_s {
                    self.control(c)?;
                    self.push(self.now + self.opts.tick_s, Ev::Tick);
                }
            }
        }
        Ok(())
    }

    /// The observations since the previous decision (the arrivals and the deployed hardware).
    pub(crate) fn observations(&self) -> Observations<'_> {
        Observations {
            arrivals: &self.new_arrivals,
            current: self.exec.current(),
        }
    }

    /// Carries out a decision made at `now`: a changed plan (or the first) is applied.
    pub(crate) fn apply(&mut self, now: f64, plan: Option<&crate::plan::Plan>, changed: bool) {
        self.now = self.now.max(now);
        self.new_arrivals.clear();
        if let Some(plan) = plan
            && (changed || self.exec.plan().is_none())
        {
            let a = self.exec.apply(self.now, plan.clone(), &mut draws!(self));
            self.carry_out(a);
        }
    }

    /// Ends the run at `end` (billing up to it) and summarises it.
    pub(crate) fn close(mut self, end: f64, c: &Controller) -> SimResult {
        self.now = end;
        self.exec.close(end);
        self.finish(c)
    }

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
            current: self.exec.current(),
        };
        let d = c.decide(self.now, &obs)?;
        let (changed, plan) = (d.changed, d.plan.clone());
        self.apply(self.now, Some(&plan), changed);
        Ok(())
    }

    /// Carries out the executor's actions in the simulated world.
    fn carry_out(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Start { rep, ready_in, .. } => {
                    if self.ready_at.len() <= rep {
                        self.ready_at.resize(rep + 1, f64::INFINITY);
                        self.tasks.resize_with(rep + 1, Vec::new);
                    }
                    self.ready_at[rep] = self.now + ready_in;
                    self.push(self.now + ready_in, Ev::Ready(rep));
                }
                Action::Release { .. } => {}
                Action::Serve {
                    f,
                    rep,
                    tasks,
                    duration,
                } => {
                    let mut served = Vec::with_capacity(tasks as usize);
                    for _ in 0..tasks {
                        let Some((req, ready)) = self.queues[f].pop_front() else {
                            break;
                        };
                        if self.ready_at.get(rep).is_some_and(|&t| t > ready + 1e-9) {
                            // It waited for this replica's initialisation.
                            self.reqs[req].cold[f] = true;
                        }
                        served.push(req);
                    }
                    if self.tasks.len() <= rep {
                        self.ready_at.resize(rep + 1, f64::NEG_INFINITY);
                        self.tasks.resize_with(rep + 1, Vec::new);
                    }
                    self.tasks[rep] = served;
                    self.push(self.now + duration, Ev::Done(rep));
                }
                Action::Wake { at, timer } => self.push(at, Ev::Timer(timer)),
            }
        }
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
        let a = self.exec.on_arrival(self.now, &mut draws!(self));
        self.carry_out(a);
        let entry = dag.entry;
        self.enqueue(entry, i);
    }

    fn enqueue(&mut self, f: usize, req: usize) {
        self.queues[f].push_back((req, self.now));
        let a = self.exec.on_queued(self.now, f, &mut draws!(self));
        self.carry_out(a);
    }

    fn done(&mut self, r: RepId) {
        let f = self.exec.replica(r).f;
        let tasks = std::mem::take(&mut self.tasks[r]);
        let a = self.exec.on_call_end(self.now, r, &mut draws!(self));
        self.carry_out(a);
        for &req in &tasks {
            self.complete_task(req, f);
        }
    }

    fn complete_task(&mut self, req: usize, f: usize) {
        let dag = &self.input.dag;
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
}
