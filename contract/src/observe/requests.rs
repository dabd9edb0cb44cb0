//! Per-function request counters: what the invocation proxy records for the standalone autoscaler
//! (DESIGN §7, "standalone functions"). The proxy only counts; the control loop samples the counters
//! every tick and decides (`control::autoscale`), so the request path never calls the control loop.
//!
//! Each function has three monotonic counters and a gauge, all atomics: requests started, requests
//! ended, the summed duration of ended requests (for the mean concurrency over a window, by Little's
//! law) and the requests in flight. A request is counted by an [`InFlight`] guard whose `Drop` ends it,
//! so a request that fails, times out or is dropped with its connection always ends.
//!
//! The map is read-locked per request (one short look-up by `&str`, no allocation) and write-locked only
//! the first time a function is invoked; the control loop drops the counters of deleted functions
//! ([`Requests::retain`]).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

/// One function's counters.
#[derive(Debug, Default)]
pub struct Counters {
    started: AtomicU64,
    ended: AtomicU64,
    busy_us: AtomicU64,
    /// Requests that failed upstream, by [`Failure`] (in its order).
    failed: [AtomicU64; 3],
}

/// How a proxied request failed upstream (`contract::proxy::deliver`): the retry rule replays only
/// requests no replica saw, so a load or fault test can check that every failure was a sent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Sent (some bytes written), then the connection failed: never replayed.
    Sent,
    /// No replica could be reached before the deadline: the request reached none.
    Unreachable,
    /// No response head before the deadline.
    TimedOut,
}

impl Failure {
    const ALL: [Failure; 3] = [Failure::Sent, Failure::Unreachable, Failure::TimedOut];

    fn label(self) -> &'static str {
        match self {
            Failure::Sent => "sent",
            Failure::Unreachable => "unreachable",
            Failure::TimedOut => "timeout",
        }
    }
}

/// What the control loop reads of one function at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Requests started since the provider started.
    pub started: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Summed duration of the requests ended so far, in microseconds.
    pub busy_us: u64,
}

impl Counters {
    /// A snapshot. `ended` is read before `started`, so `in_flight` never underflows.
    pub fn sample(&self) -> Sample {
        let busy_us = self.busy_us.load(Ordering::Acquire);
        let ended = self.ended.load(Ordering::Acquire);
        let started = self.started.load(Ordering::Acquire);
        Sample {
            started,
            in_flight: started.saturating_sub(ended),
            busy_us,
        }
    }
}

/// A request in flight; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight {
    counters: Arc<Counters>,
    since: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let us = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.busy_us.fetch_add(us, Ordering::AcqRel);
        self.counters.ended.fetch_add(1, Ordering::AcqRel);
    }
}

type Map = HashMap<String, HashMap<String, Arc<Counters>>>;

/// The counters of every function invoked since the provider started, by namespace and name.
#[derive(Debug, Default)]
pub struct Requests {
    map: RwLock<Map>,
}

impl Requests {
    /// A request to `name.namespace` starts; it ends when the returned guard is dropped.
    pub fn start(&self, namespace: &str, name: &str) -> InFlight {
        let counters = self.counters(namespace, name);
        counters.started.fetch_add(1, Ordering::AcqRel);
        InFlight {
            counters,
            since: Instant::now(),
        }
    }

    fn counters(&self, namespace: &str, name: &str) -> Arc<Counters> {
        let found = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .and_then(|m| m.get(name))
            .cloned();
        if let Some(c) = found {
            return c;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(namespace.to_owned())
                .or_default()
                .entry(name.to_owned())
                .or_default(),
        )
    }

    /// A request to `name.namespace` failed upstream.
    pub fn failed(&self, namespace: &str, name: &str, how: Failure) {
        self.counters(namespace, name).failed[how as usize].fetch_add(1, Ordering::AcqRel);
    }

    /// One function's counters now (all zero if it was never invoked).
    pub fn sample(&self, namespace: &str, name: &str) -> Sample {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .and_then(|m| m.get(name))
            .map(|c| c.sample())
            .unwrap_or_default()
    }

    /// The Prometheus exposition ([`crate::prom`], without the end marker): requests in flight per
    /// function, so a load or fault test can check they are back to 0 once the load stops (a guard that
    /// is never dropped would keep the autoscaler scaling up for traffic that is gone).
    pub fn render(&self) -> String {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = crate::prom::Snapshot::default();
        let g = out.gauge(
            "smiless_function_in_flight",
            "Requests to a function the proxy has started and not yet ended.",
        );
        for (ns, fns) in map.iter() {
            for (name, c) in fns {
                g.sample(
                    crate::prom::labels([("function", name), ("namespace", ns)]),
                    c.sample().in_flight,
                );
            }
        }
        let f = out.counter(
            "smiless_function_upstream_failures_total",
            "Proxied requests that failed upstream, by kind: sent (written, then cut off; never replayed), unreachable (no replica reached before the deadline), timeout.",
        );
        for (ns, fns) in map.iter() {
            for (name, c) in fns {
                for how in Failure::ALL {
                    f.sample(
                        crate::prom::labels([
                            ("function", name.as_str()),
                            ("kind", how.label()),
                            ("namespace", ns.as_str()),
                        ]),
                        c.failed[how as usize].load(Ordering::Acquire),
                    );
                }
            }
        }
        out.render()
    }

    /// Keeps the counters of the functions `keep(namespace, name)` says still exist.
    pub fn retain(&self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        for (ns, fns) in map.iter_mut() {
            fns.retain(|name, _| keep(ns, name));
        }
        map.retain(|_, fns| !fns.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_ends_when_its_guard_drops_on_every_path() {
        let r = Requests::default();
        let a = r.start("ns", "f");
        let b = r.start("ns", "f");
        let s = r.sample("ns", "f");
        assert_eq!((s.started, s.in_flight), (2, 2));
        drop(a);
        // A request whose future is dropped mid-way (client gone, timeout) drops its guard too.
        let fut = async move {
            let _held = b;
            std::future::pending::<()>().await;
        };
        drop(fut);
        let s = r.sample("ns", "f");
        assert_eq!((s.started, s.in_flight), (2, 0));
        assert_eq!(r.sample("ns", "other"), Sample::default());
    }

    #[test]
    fn in_flight_is_exposed_per_function() {
        let r = Requests::default();
        let held = r.start("ns", "f");
        drop(r.start("ns", "g"));
        let text = r.render();
        assert!(
            text.contains("smiless_function_in_flight{function=\"f\",namespace=\"ns\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("smiless_function_in_flight{function=\"g\",namespace=\"ns\"} 0"),
            "{text}"
        );
        drop(held);
        assert!(r.render().contains("{function=\"f\",namespace=\"ns\"} 0"));
    }

    #[test]
    fn upstream_failures_are_counted_by_kind() {
        let r = Requests::default();
        r.failed("ns", "f", Failure::Sent);
        r.failed("ns", "f", Failure::Sent);
        r.failed("ns", "f", Failure::Unreachable);
        let text = r.render();
        let row = |kind: &str, n: u64| {
            format!(
                "smiless_function_upstream_failures_total{{function=\"f\",kind=\"{kind}\",namespace=\"ns\"}} {n}"
            )
        };
        for (kind, n) in [("sent", 2), ("unreachable", 1), ("timeout", 0)] {
            assert!(text.contains(&row(kind, n)), "{kind}: {text}");
        }
    }

    #[test]
    fn retain_drops_deleted_functions() {
        let r = Requests::default();
        drop(r.start("ns", "f"));
        drop(r.start("ns", "g"));
        r.retain(|_, name| name == "g");
        assert_eq!(r.sample("ns", "f").started, 0);
        assert_eq!(r.sample("ns", "g").started, 1);
    }
}
