//! Replica-seconds per function, integrated over every change of its desired replicas, so the bill counts
//! a replica for exactly as long as it was asked for: one started and released between two control ticks
//! included, and none billed for the rest of a tick after its release (sampling the count at each tick
//! gets both wrong, by up to a tick per change).
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// (namespace, name).
type Key = (String, String);

#[derive(Debug, Clone, Copy)]
struct Clock {
    replicas: u32,
    since: f64,
    /// Replica-seconds accumulated since the last [`ReplicaClock::take`].
    acc: f64,
}

/// See the module documentation. Times are the caller's clock in seconds (the live loop's real time).
#[derive(Debug, Default)]
pub struct ReplicaClock {
    m: Mutex<HashMap<Key, Clock>>,
}

impl ReplicaClock {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Clock>> {
        // Every critical section leaves the map consistent.
        self.m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `f` has `replicas` desired from `now` on.
    pub fn set(&self, ns: &str, f: &str, replicas: u32, now: f64) {
        let mut m = self.lock();
        let c = m.entry((ns.to_owned(), f.to_owned())).or_insert(Clock {
            replicas,
            since: now,
            acc: 0.0,
        });
        c.acc += f64::from(c.replicas) * (now - c.since).max(0.0);
        c.replicas = replicas;
        c.since = now;
    }

    /// Replica-seconds of `f` since the previous call, which `replicas` (the catalog's count now) ends.
    /// `None` the first time `f` is seen: nothing is known about the time before.
    pub fn take(&self, ns: &str, f: &str, replicas: u32, now: f64) -> Option<f64> {
        let mut m = self.lock();
        let k = (ns.to_owned(), f.to_owned());
        let Some(c) = m.get_mut(&k) else {
            m.insert(
                k,
                Clock {
                    replicas,
                    since: now,
                    acc: 0.0,
                },
            );
            return None;
        };
        let rs = c.acc + f64::from(c.replicas) * (now - c.since).max(0.0);
        // A change that did not go through `set` (a redeploy) counts from now.
        *c = Clock {
            replicas,
            since: now,
            acc: 0.0,
        };
        Some(rs)
    }

    /// Forgets functions for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integrates_every_change_between_two_takes() {
        let c = ReplicaClock::default();
        assert_eq!(c.take("ns", "f", 0, 10.0), None);
        // Up at 10.2, a second replica 10.25–10.45, down at 10.5: 0.3 + 0.2 replica-seconds.
        c.set("ns", "f", 1, 10.2);
        c.set("ns", "f", 2, 10.25);
        c.set("ns", "f", 1, 10.45);
        c.set("ns", "f", 0, 10.5);
        let rs = c.take("ns", "f", 0, 11.0).unwrap();
        assert!((rs - 0.5).abs() < 1e-9, "{rs}");
        // Nothing while released; then one replica across the take.
        assert_eq!(c.take("ns", "f", 0, 12.0), Some(0.0));
        c.set("ns", "f", 1, 12.5);
        assert!((c.take("ns", "f", 1, 13.0).unwrap() - 0.5).abs() < 1e-9);
        assert!((c.take("ns", "f", 1, 14.0).unwrap() - 1.0).abs() < 1e-9);
        c.retain(|_| false);
        assert_eq!(c.take("ns", "f", 1, 15.0), None);
    }
}
