//! Which member calls ran alone on the host: only those are samples of a profile.
//!
//! The planner's latency model is of one replica on its own cores. A call that overlapped other calls
//! shared the CPUs with them (the local backend's replicas run on the same few cores), so its time measures
//! the overlap, not the model. Feeding such times to the online refresh made it believe every function had
//! slowed down several times during a burst; the planner then found the SLA infeasible and kept many
//! replicas warm, which made the overlap worse. Overlap is a capacity question, answered by the planner's
//! queueing term, not by the profile.
use std::sync::Mutex;

/// Counts calls in flight and call starts, so a call can tell at its end whether another call overlapped it.
#[derive(Debug, Default)]
pub struct CallTracker {
    /// (calls in flight, calls started so far).
    state: Mutex<(u32, u64)>,
}

/// One call in flight (see [`CallTracker::begin`]).
#[derive(Debug)]
#[must_use = "end the call with CallTracker::end"]
pub struct Call {
    /// Other calls in flight when it began.
    others: u32,
    /// Calls started up to and including this one.
    started: u64,
}

impl CallTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u32, u64)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A call begins.
    pub fn begin(&self) -> Call {
        let mut s = self.lock();
        let others = s.0;
        s.0 += 1;
        s.1 += 1;
        Call {
            others,
            started: s.1,
        }
    }

    /// The call ended: true when it ran alone (none in flight when it began, none started meanwhile).
    pub fn end(&self, call: Call) -> bool {
        let mut s = self.lock();
        s.0 = s.0.saturating_sub(1);
        call.others == 0 && s.1 == call.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_alone_only_without_overlap() {
        let t = CallTracker::default();
        let a = t.begin();
        assert!(t.end(a), "alone");
        // b begins, c begins during b: neither ran alone.
        let b = t.begin();
        let c = t.begin();
        assert!(!t.end(b));
        assert!(!t.end(c));
        // d began alone, but e started and ended during it.
        let d = t.begin();
        let e = t.begin();
        assert!(!t.end(e));
        assert!(!t.end(d));
        // Back to quiet: alone again.
        let f = t.begin();
        assert!(t.end(f));
    }
}
