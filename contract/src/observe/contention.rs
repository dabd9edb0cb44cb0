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

/// One call in flight (see [`CallTracker::begin`]). Dropping it ends the call (an error path: no sample);
/// [`Call::alone`] ends it and says whether it ran alone.
#[derive(Debug)]
#[must_use = "dropping a call ends it at once"]
pub struct Call<'a> {
    tracker: &'a CallTracker,
    /// Other calls in flight when it began.
    others: u32,
    /// Calls started up to and including this one.
    started: u64,
    ended: bool,
}

impl CallTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u32, u64)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A call begins.
    pub fn begin(&self) -> Call<'_> {
        let mut s = self.lock();
        let others = s.0;
        s.0 += 1;
        s.1 += 1;
        Call {
            tracker: self,
            others,
            started: s.1,
            ended: false,
        }
    }
}

impl Call<'_> {
    /// Ends the call: true when it ran alone (none in flight when it began, none started meanwhile).
    pub fn alone(mut self) -> bool {
        self.ended = true;
        let mut s = self.tracker.lock();
        s.0 = s.0.saturating_sub(1);
        self.others == 0 && s.1 == self.started
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let mut s = self.tracker.lock();
            s.0 = s.0.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_alone_only_without_overlap() {
        let t = CallTracker::default();
        assert!(t.begin().alone(), "alone");
        // b begins, c begins during b: neither ran alone.
        let b = t.begin();
        let c = t.begin();
        assert!(!b.alone());
        assert!(!c.alone());
        // d began alone, but e started and ended during it.
        let d = t.begin();
        assert!(!t.begin().alone());
        assert!(!d.alone());
        // A call dropped on an error path still ends: afterwards, alone again.
        drop(t.begin());
        assert!(t.begin().alone());
    }
}
