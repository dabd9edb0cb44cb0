//! The cost and latency models (DESIGN §6), for one function's [`Choice`] and for a whole plan.
//!
//! **Service.** A burst of `m` requests reaches a function; with batch cap `B` it takes
//! `calls = ⌈m/b⌉` calls of `b = min(B, m)` requests (the last one smaller), spread over the replicas in
//! `waves = ⌈calls/n⌉`; the burst's time in the function is `d = waves · t(b, r)` and its busy
//! replica-seconds are the sum of the call times. Replicas: at least `⌈busy / (cap · gap)⌉`, so that no
//! replica is busy more than the utilisation cap of the time.
//!
//! **Readiness.** A function starts at `max(s + D, R)` where `s` is when its last predecessor finishes
//! (0 for the entry): always-on, and keep-alive warm for at least the SLA quantile of bursts: `D = R = 0`;
//! keep-alive that expires more often: `D = init` (initialised on demand when the request reaches it);
//! pre-warm with offset `o`: `R = o + init`. `init` is `mean + n·std` on the latency path.
//!
//! **Cost** ($/h, provisioned replica-seconds × price): always-on `n · 3600 · p`; keep-alive per burst
//! `busy + n·(E[min(gap, T)] + P(gap > T)·init_mean)`; pre-warm per burst `busy + n_used · init`, plus the
//! idle time `max(0, s − R)` of a replica that is ready before it is needed. The keep-alive idle time is
//! measured from the end of the burst with the gap's own distribution (memoryless; accurate while a
//! burst's service time is small against the gap). A function whose hardware differs from the current
//! deployment pays one re-initialisation of its replicas, amortised over the planning horizon.
//!
//! **Queueing.** Requests do not always find a replica free: one that comes `x` seconds after another,
//! with `x` under the call time `d`, finds that replica busy. With `n` replicas, a request waits when at
//! least `n` others arrived in the last `d` seconds. Requests follow each other closely at most at the
//! close-arrival rate `λ_c` (the forecast's lower gap tail as a hazard rate, or `1 / interarrival` for
//! exponential gaps), so that count is bounded by Poisson(`λ_c · d`). The wait added to the function's
//! latency is its SLA quantile counted in whole rounds of `d` (round `j` serves `n · batch` more of the
//! queued requests): the smallest `j·d` with `P(N ≥ n + j·n·batch) ≤ 1 − quantile`. Replicas beyond the
//! utilisation minimum, up to the count with no wait, are the options that buy the wait down. With an
//! exactly known gap `g` (an oracle) the wait is `max(0, d − g)` unless the replicas hold two bursts.
//! **A path's wait is its bottleneck's.** A path's latency is the sum of its functions' readiness and
//! service times plus the *largest* queueing wait on it, not the sum of the waits: in a tandem of
//! deterministic servers a request's total wait equals its wait at a single queue with the bottleneck's
//! service time (Friedman's result on tandem queues; a request that waited at one stage reaches the next
//! spaced out by that stage's service, so it does not wait again for the same close arrivals). On a DAG
//! with readiness (`max(s + D, R)`) the rule generalises to: the latency is the largest, over functions
//! `v`, of the DAG evaluated with `v`'s wait alone. [`evaluate`] computes it in one pass with two finish
//! times per function: `f⁰` (no wait anywhere) and `fʷ` (the SLA-quantile finish, the bottleneck wait
//! so far included): `fʷ_f = max(finish_f(max_p fʷ_p), finish_f(max_p f⁰_p) + wait_f)`. Costs and
//! pre-warm placement use the no-wait start `max_p f⁰_p` (the typical request does not queue).
//! Until 2026-11-28 the waits on a path were summed, which bought replicas against waits the trace
//! never showed (docs/evaluation.md §3.3).
use crate::hardware::Hardware;
use crate::load::{GapModel, Load};
use crate::plan::{Choice, ColdStart, PlanInput};
use crate::profile::Profile;

/// How one burst is served by one function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Service {
    /// Effective batch.
    pub b: u32,
    pub calls: u32,
    /// Busy replica-seconds per burst.
    pub busy: f64,
    /// Time of one full call.
    pub t_b: f64,
}

pub fn service(p: &Profile, hw: Hardware, batch: u32, m: u32) -> Service {
    let b = batch.clamp(1, m.max(1));
    let full = m / b;
    let rem = m % b;
    let t_b = p.infer_time(hw, b);
    let busy = f64::from(full) * t_b + if rem > 0 { p.infer_time(hw, rem) } else { 0.0 };
    Service {
        b,
        calls: full + u32::from(rem > 0),
        busy,
        t_b,
    }
}

/// The fewest replicas that keep each below the utilisation cap.
pub fn min_replicas(busy: f64, load: &Load, util_cap: f64) -> u32 {
    let n = (busy / (util_cap * load.interarrival_s)).ceil();
    n.clamp(1.0, 1e6) as u32
}

/// Most rounds of waiting the queueing term counts (a cap, reached only far above the utilisation cap's
/// load, where the replica options that remove the wait are the ones to pick anyway).
const MAX_WAIT_ROUNDS: u32 = 4;

/// `e^{−μ}` of the last `μ` asked for: the option tables ask for the same `μ` many times in a row
/// (every replica count at or above the calls per burst holds a replica for the same time).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpMemo {
    mu: f64,
    e: f64,
}

impl Default for ExpMemo {
    fn default() -> Self {
        ExpMemo {
            mu: f64::NAN,
            e: f64::NAN,
        }
    }
}

impl ExpMemo {
    #[inline]
    fn neg_exp(&mut self, mu: f64) -> f64 {
        if mu.to_bits() != self.mu.to_bits() {
            self.mu = mu;
            self.e = (-mu).exp();
        }
        self.e
    }
}

/// The queueing term: the SLA-quantile wait (seconds) of a request at a function whose calls hold a
/// replica for `d` seconds, with `n` replicas and batch cap `batch` (see the module doc). `close_rate`
/// is the close-arrival rate `λ_c` per second, `eps` the allowed tail (1 − SLA quantile).
pub fn queue_wait(load: &Load, close_rate: f64, d: f64, batch: u32, n: u32, eps: f64) -> f64 {
    queue_wait_memo(load, close_rate, d, batch, n, eps, &mut ExpMemo::default())
}

/// [`queue_wait`] with `e^{−μ}` remembered across calls (bit for bit the same answers).
pub(crate) fn queue_wait_memo(
    load: &Load,
    close_rate: f64,
    d: f64,
    batch: u32,
    n: u32,
    eps: f64,
    memo: &mut ExpMemo,
) -> f64 {
    let n = n.max(1);
    match load.gaps {
        GapModel::Deterministic => {
            if load.interarrival_s < d && n < 2 * load.burst_size() {
                d - load.interarrival_s
            } else {
                0.0
            }
        }
        GapModel::Exponential => {
            let mu = close_rate * d;
            if mu <= 0.0 {
                // No close arrivals: every tail is 0.
                return if 0.0 <= eps {
                    0.0
                } else {
                    f64::from(MAX_WAIT_ROUNDS) * d
                };
            }
            // Round j serves n·batch more of the queued requests: P(N ≥ n + j·n·batch) for growing j,
            // as `poisson_at_least` sums it (same terms, same order, so bit for bit the same tails),
            // but in one pass instead of from zero per round.
            let mut term = memo.neg_exp(mu);
            let mut below = term; // terms 0..=i
            let mut i = 0;
            for j in 0..MAX_WAIT_ROUNDS {
                let k = n + j * n * batch.max(1);
                while i + 1 < k {
                    i += 1;
                    term *= mu / f64::from(i);
                    below += term;
                    // The tail only shrinks as terms are added (in floating point too: `below`
                    // never decreases), so once P(N ≥ i + 1) is within `eps`, so is P(N ≥ k):
                    // round j is the answer, without summing the rest of the way to k.
                    if (1.0 - below).max(0.0) <= eps {
                        return f64::from(j) * d;
                    }
                }
                if (1.0 - below).max(0.0) <= eps {
                    return f64::from(j) * d;
                }
            }
            f64::from(MAX_WAIT_ROUNDS) * d
        }
    }
}

/// The close-arrival rate the queueing term uses for `input`: the forecast's, never below the gap
/// model's own `1 / interarrival`.
pub fn close_rate(input: &PlanInput) -> f64 {
    let own = 1.0 / input.load.interarrival_s;
    input.close_rate_per_s.map_or(own, |r| r.max(own))
}

/// The fewest replicas (at most `cap`) whose queueing wait is zero at the SLA quantile for calls of
/// `t_b` seconds: replicas between the utilisation minimum and this are worth offering the search.
pub fn queue_free_replicas(close_rate: f64, t_b: f64, eps: f64, cap: u32) -> u32 {
    queue_free_replicas_memo(close_rate, t_b, eps, cap, &mut ExpMemo::default())
}

/// [`queue_free_replicas`] with `e^{−μ}` remembered across calls.
pub(crate) fn queue_free_replicas_memo(
    close_rate: f64,
    t_b: f64,
    eps: f64,
    cap: u32,
    memo: &mut ExpMemo,
) -> u32 {
    let mu = close_rate * t_b;
    // P(N ≥ k) for k = 1, 2, … as `poisson_at_least` sums it (bit for bit), in one pass.
    let mut term = memo.neg_exp(mu);
    let mut below = term; // terms 0..k-1
    for k in 1..=cap {
        if k > 1 {
            term *= mu / f64::from(k - 1);
            below += term;
        }
        let tail = if mu <= 0.0 {
            0.0
        } else {
            (1.0 - below).max(0.0)
        };
        if tail <= eps {
            return k;
        }
    }
    cap
}

/// The earliest a pre-warm may make a replica ready relative to the burst's arrival, before its init:
/// with unpredictable (exponential) gaps, initialisation can only start once the burst has arrived.
pub fn prewarm_lower_offset(load: &Load) -> f64 {
    match load.gaps {
        GapModel::Exponential => 0.0,
        GapModel::Deterministic => f64::NEG_INFINITY,
    }
}

/// One function's behaviour under one choice: `start = max(s + delay, ready)`, `finish = start + service`
/// (no queueing), `finish_tail` with the queueing wait (see the module doc), cost
/// `cost_h + idle_rate_h · max(0, s − ready)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behaviour {
    pub cost_h: f64,
    pub delay: f64,
    pub ready: f64,
    /// Service time of a burst, without queueing.
    pub service: f64,
    /// The SLA-quantile queueing wait (seconds); on a path only the largest counts.
    pub wait: f64,
    pub idle_rate_h: f64,
}

impl Behaviour {
    pub fn start(&self, s: f64) -> f64 {
        (s + self.delay).max(self.ready)
    }
    pub fn finish(&self, s: f64) -> f64 {
        self.start(s) + self.service
    }
    /// The SLA-quantile finish: `s0` is the no-wait start (latest predecessor's no-wait finish), `sw`
    /// the start with the bottleneck wait so far; either an earlier wait carries through, or this
    /// function's own wait is the bottleneck.
    pub fn finish_tail(&self, s0: f64, sw: f64) -> f64 {
        self.finish(sw).max(self.finish(s0) + self.wait)
    }
    pub fn cost(&self, s: f64) -> f64 {
        if self.idle_rate_h > 0.0 {
            self.cost_h + self.idle_rate_h * (s - self.ready).max(0.0)
        } else {
            self.cost_h
        }
    }
}

/// Whether a keep-alive window of `seconds` is warm for at least the SLA quantile of bursts.
pub fn keep_alive_is_warm(load: &Load, seconds: f64, quantile: f64) -> bool {
    load.p_gap_exceeds(seconds) <= (1.0 - quantile) + 1e-9
}

/// The per-option numbers [`core`] needs, computed once per (function, hardware, batch, replicas).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pieces {
    pub price: f64,
    pub per_hour: f64,
    pub svc: Service,
    pub n: u32,
    pub init_mean: f64,
    pub init_est: f64,
    /// Amortised re-initialisation when the hardware differs from the current deployment ($/h).
    pub reinit_h: f64,
    pub lower_offset: f64,
    pub quantile: f64,
    /// The queueing term of this (hardware, batch, replicas): seconds added to the service time.
    pub wait: f64,
    /// Requests per burst.
    pub m: u32,
}

impl Pieces {
    /// The time one burst holds the function: its waves of calls.
    pub fn duration(&self) -> f64 {
        f64::from(self.svc.calls.div_ceil(self.n)) * self.svc.t_b
    }
}

/// A policy with its keep-alive probabilities precomputed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pol {
    AlwaysOn,
    /// P(gap > T) and E[min(gap, T)].
    KeepAlive {
        p_cold: f64,
        idle: f64,
    },
    PreWarm {
        offset: f64,
    },
}

pub(crate) fn pieces(
    input: &PlanInput,
    node: usize,
    hw: Hardware,
    batch: u32,
    replicas: u32,
) -> Pieces {
    let p = &input.profiles[node];
    let load = &input.load;
    let price = input.prices.per_second(hw);
    let svc = service(p, hw, batch, load.burst_size());
    let n = replicas.max(1);
    let init = p.init(hw);
    let reinit_h = match input.current.get(&input.dag.nodes[node].name) {
        Some(&now) if now != hw => {
            price * f64::from(n) * init.mean_s * 3600.0 / input.params.horizon_s
        }
        _ => 0.0,
    };
    let mut pieces = Pieces {
        price,
        per_hour: load.bursts_per_hour() * price,
        svc,
        n,
        init_mean: init.mean_s,
        init_est: init.estimate(input.params.init_std_factor),
        reinit_h,
        lower_offset: prewarm_lower_offset(load),
        quantile: input.params.sla_quantile,
        wait: 0.0,
        m: load.burst_size(),
    };
    pieces.wait = wait_for(input, &pieces);
    pieces
}

/// [`queue_wait`] for `p` under `input` (0 when the queueing term is off).
pub(crate) fn wait_for(input: &PlanInput, p: &Pieces) -> f64 {
    wait_for_memo(input, p, &mut ExpMemo::default())
}

/// [`wait_for`] with `e^{−μ}` remembered across calls.
pub(crate) fn wait_for_memo(input: &PlanInput, p: &Pieces, memo: &mut ExpMemo) -> f64 {
    if !input.params.queueing {
        return 0.0;
    }
    queue_wait_memo(
        &input.load,
        close_rate(input),
        p.duration(),
        p.svc.b,
        p.n,
        1.0 - input.params.sla_quantile,
        memo,
    )
}

/// The model's formulas (see the module doc), shared by [`behaviour`] and the option tables.
pub(crate) fn core(p: &Pieces, pol: Pol) -> Behaviour {
    let n = f64::from(p.n);
    // A batched call waits up to the gather window for its batch to fill (exec::gather): latency, not
    // busy time.
    let d = p.duration() + crate::exec::gather::window_for(p.svc.b);
    let mut b = match pol {
        Pol::AlwaysOn => Behaviour {
            cost_h: p.price * n * 3600.0,
            delay: 0.0,
            ready: 0.0,
            service: d,
            wait: p.wait,
            idle_rate_h: 0.0,
        },
        Pol::KeepAlive { p_cold, idle } => {
            let warm = p_cold <= (1.0 - p.quantile) + 1e-9;
            Behaviour {
                cost_h: p.per_hour * (p.svc.busy + n * (idle + p_cold * p.init_mean)),
                delay: if warm { 0.0 } else { p.init_est },
                ready: 0.0,
                service: d,
                wait: p.wait,
                idle_rate_h: 0.0,
            }
        }
        Pol::PreWarm { offset } => {
            // One replica per request up to `n` (the executor pre-warms for every arrival).
            let n_used = f64::from(p.n.min(p.m));
            Behaviour {
                cost_h: p.per_hour * (p.svc.busy + n_used * p.init_est),
                delay: 0.0,
                ready: offset.max(p.lower_offset) + p.init_est,
                service: d,
                wait: p.wait,
                idle_rate_h: p.per_hour * n_used,
            }
        }
    };
    b.cost_h += p.reinit_h;
    b
}

/// The behaviour of function `node` of `input` under `choice`.
pub fn behaviour(input: &PlanInput, node: usize, choice: &Choice) -> Behaviour {
    let p = pieces(input, node, choice.hardware, choice.batch, choice.replicas);
    let pol = match choice.policy {
        ColdStart::AlwaysOn => Pol::AlwaysOn,
        ColdStart::KeepAlive { seconds } => {
            let t = seconds.max(0.0);
            Pol::KeepAlive {
                p_cold: input.load.p_gap_exceeds(t),
                idle: input.load.expected_idle(t),
            }
        }
        ColdStart::PreWarm { offset_s } => Pol::PreWarm { offset: offset_s },
    };
    core(&p, pol)
}

/// A whole plan's predicted numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Critical-path latency of a burst at the SLA quantile (the bottleneck wait included), seconds.
    pub latency_s: f64,
    pub cost_per_hour: f64,
    /// Per function: its start without queueing (where a pre-warm is placed).
    pub start: Vec<f64>,
    /// Per function: its SLA-quantile finish (`fʷ` of the module doc).
    pub finish: Vec<f64>,
    pub cost: Vec<f64>,
}

/// Evaluates `choices` (one per DAG node, in node order) along the DAG.
pub fn evaluate(input: &PlanInput, choices: &[Choice]) -> Evaluation {
    let behaviours: Vec<Behaviour> = (0..input.dag.len())
        .map(|f| behaviour(input, f, &choices[f]))
        .collect();
    evaluate_behaviours(input, &behaviours)
}

/// Evaluates the DAG of `input` with each node's behaviour given (one per node, in node order): the
/// capacity planner's shared functions behave under the load of every DAG that names them.
pub fn evaluate_behaviours(input: &PlanInput, behaviours: &[Behaviour]) -> Evaluation {
    let dag = &input.dag;
    let n = dag.len();
    let mut ev = Evaluation {
        latency_s: 0.0,
        cost_per_hour: 0.0,
        start: vec![0.0; n],
        finish: vec![0.0; n],
        cost: vec![0.0; n],
    };
    // No-wait finishes.
    let mut finish0 = vec![0.0; n];
    for &f in &dag.topo {
        let s0 = dag.pred[f].iter().map(|&p| finish0[p]).fold(0.0, f64::max);
        let sw = dag.pred[f]
            .iter()
            .map(|&p| ev.finish[p])
            .fold(0.0, f64::max);
        let b = &behaviours[f];
        ev.start[f] = b.start(s0);
        finish0[f] = b.finish(s0);
        ev.finish[f] = b.finish_tail(s0, sw);
        ev.cost[f] = b.cost(s0);
        ev.cost_per_hour += ev.cost[f];
    }
    ev.latency_s = dag.sinks().map(|f| ev.finish[f]).fold(0.0, f64::max);
    ev
}

#[cfg(test)]
pub(crate) mod tests;
