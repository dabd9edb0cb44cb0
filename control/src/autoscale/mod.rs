//! The standalone autoscaler's policy (DESIGN §7, "standalone functions"): pure, `now` and the proxy's
//! request counters in, desired replicas out; no clock is read here (the loop shell, [`crate::standalone`],
//! passes the time in), so table tests drive it with any timeline.
//!
//! Per tick, for one managed function ([`labels`] says which, and its [`Spec`]):
//! 1. **load** over the last [`RATE_WINDOW_S`] (or since the policy started, at least 1 s): for `rps`, requests started per second; for `capacity`,
//!    the mean requests in flight (summed request time / window, Little's law), at least those in
//!    flight now;
//! 2. **need** = ⌈load / (target × proportion)⌉, clamped to [min, max];
//! 3. **desired** = the largest need over the last [`STABILISATION_S`] (scale up at once, down only
//!    when every need in the window is lower, so it does not flap), clamped to [min, max];
//! 4. with `scale.zero`: 0 once no request started and none was in flight for `zero-duration`.
//!
//! The policy starts from the function's current replicas (they count as a need in the first window),
//! so a provider restart does not drop a loaded function to its minimum at once; a function found at 0
//! counts as idle since long enough, so a function scaled to zero stays there until its next request.
use std::collections::VecDeque;

use contract::observe::requests::Sample;

pub mod labels;

pub use labels::{Kind, LabelError, Spec};

/// The load is measured over this window (seconds).
pub const RATE_WINDOW_S: f64 = 10.0;
/// The load is never measured over less than this (seconds).
const MIN_SPAN_S: f64 = 1.0;
/// Scale-down stabilisation: desired = the largest need over this window (seconds).
pub const STABILISATION_S: f64 = 30.0;

/// One managed function's autoscaling state.
#[derive(Debug, Clone)]
pub struct Policy {
    spec: Spec,
    /// (time, counters) over the rate window, oldest first; the first one is the window's base.
    samples: VecDeque<(f64, Sample)>,
    /// (time, need) over the stabilisation window, oldest first.
    needs: VecDeque<(f64, u32)>,
    last_request: f64,
    load: f64,
    desired: u32,
}

impl Policy {
    /// Starts managing a function that runs `replicas` now, with counters at `counters`.
    pub fn new(now: f64, spec: Spec, counters: Sample, replicas: u32) -> Self {
        let idle_since = match (replicas, spec.zero_after_s) {
            (0, Some(z)) => now - z,
            _ => now,
        };
        Policy {
            samples: VecDeque::from([(now, counters)]),
            needs: VecDeque::from([(now, replicas)]),
            last_request: idle_since,
            load: 0.0,
            desired: replicas,
            spec,
        }
    }

    /// The rule in force.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Replaces the rule (the labels changed); the observed history stays.
    pub fn set_spec(&mut self, spec: Spec) {
        self.spec = spec;
    }

    /// The load the last step measured (requests per second, or requests in flight).
    pub fn load(&self) -> f64 {
        self.load
    }

    /// The last desired count.
    pub fn desired(&self) -> u32 {
        self.desired
    }

    /// One tick at `now` with the counters read now; returns the desired replicas.
    pub fn step(&mut self, now: f64, counters: Sample) -> u32 {
        if let Some(&(_, prev)) = self.samples.back() {
            if counters.started < prev.started {
                // The counters restarted (the function was deleted and deployed again): new history.
                self.samples.clear();
            }
            if counters.started != prev.started || counters.in_flight > 0 {
                self.last_request = now;
            }
        }
        self.samples.push_back((now, counters));
        while self.samples.len() > 1 && self.samples[1].0 <= now - RATE_WINDOW_S {
            self.samples.pop_front();
        }
        self.load = self.measure();
        let s = &self.spec;
        let per_replica = s.target * s.proportion;
        let need = (self.load / per_replica - 1e-9).ceil().max(0.0);
        // Bounded by max (a u32) before the cast.
        let need = need.min(f64::from(s.max)) as u32;
        self.needs.push_back((now, need.clamp(s.min, s.max)));
        while self
            .needs
            .front()
            .is_some_and(|&(t, _)| t < now - STABILISATION_S)
        {
            self.needs.pop_front();
        }
        let peak = self.needs.iter().map(|&(_, n)| n).max().unwrap_or(s.min);
        self.desired = peak.clamp(s.min, s.max);
        if s.zero_after_s.is_some_and(|z| now - self.last_request >= z) {
            self.desired = 0;
        }
        self.desired
    }

    /// The load over the rate window.
    fn measure(&self) -> f64 {
        let (Some(&(t0, base)), Some(&(t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return 0.0;
        };
        // At least a second: a burst in the first moments of a history is not a huge rate.
        let span = (t1 - t0).max(MIN_SPAN_S);
        match self.spec.kind {
            Kind::Rps => last.started.saturating_sub(base.started) as f64 / span,
            Kind::Capacity => {
                let mean = last.busy_us.saturating_sub(base.busy_us) as f64 / 1e6 / span;
                mean.max(last.in_flight as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests;
