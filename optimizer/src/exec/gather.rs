//! The one batching rule (docs/batching.md), shared by the executor (so the simulator gathers this way)
//! and the live DAG runner's gatherer (`contract::proxy::batch`): when a replica (live: a call slot) is
//! free, queued requests of a member with batch cap `B > 1` are sent as one call as soon as `B` are
//! queued, or once the oldest has waited [`GATHER_WINDOW_S`], whichever comes first. With `B = 1` a
//! request is sent at once (the rule is then the executor's work-conserving dispatch).
//!
//! Why a window and not "send what is there": requests of a burst reach a member a little apart (live:
//! milliseconds between connections; simulated: the same instant, but one event at a time), and the
//! planner's model serves a burst of `m` as `⌈m / min(B, m)⌉` calls. Without a window the first request
//! of every burst would leave alone. The planner charges the window: a member whose effective batch is
//! above 1 adds [`GATHER_WINDOW_S`] to its latency (`model::core`).

/// The longest a queued request waits for its batch to fill, in profile seconds (live: times the time
/// scale). Short beside the paper's inference times (0.1–1 s), long beside a burst's spread on a host.
pub const GATHER_WINDOW_S: f64 = 0.05;

/// What to do with a member's queue when a replica is free.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gather {
    /// Send this many of the queued requests (the oldest first) as one call.
    Send(u32),
    /// Wait: the batch is not full and the oldest has not waited the window; decide again at this time
    /// (or when another request is queued).
    Until(f64),
    /// Nothing queued.
    Idle,
}

/// The rule: `cap` is the plan's batch cap, `queued` how many wait, `oldest` when the oldest was queued.
pub fn decide(cap: u32, queued: u32, oldest: f64, now: f64) -> Gather {
    let cap = cap.max(1);
    if queued == 0 {
        return Gather::Idle;
    }
    if queued >= cap {
        return Gather::Send(cap);
    }
    let due = oldest + GATHER_WINDOW_S;
    // A hair of tolerance: a timer set for `due` fires at `due` computed the same way, but a live clock
    // in other units may round.
    if now + 1e-9 >= due {
        Gather::Send(queued)
    } else {
        Gather::Until(due)
    }
}

/// The latency the window adds to a call of effective batch `b` (what the planner charges).
pub fn window_for(b: u32) -> f64 {
    if b > 1 { GATHER_WINDOW_S } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_or_an_expired_window_sends_else_it_waits() {
        assert_eq!(decide(4, 0, 0.0, 1.0), Gather::Idle);
        // Batch 1: at once.
        assert_eq!(decide(1, 3, 1.0, 1.0), Gather::Send(1));
        assert_eq!(decide(4, 4, 1.0, 1.0), Gather::Send(4));
        assert_eq!(decide(4, 6, 1.0, 1.0), Gather::Send(4));
        assert_eq!(
            decide(4, 2, 1.0, 1.01),
            Gather::Until(1.0 + GATHER_WINDOW_S)
        );
        assert_eq!(decide(4, 2, 1.0, 1.0 + GATHER_WINDOW_S), Gather::Send(2));
        assert_eq!(window_for(1), 0.0);
        assert_eq!(window_for(2), GATHER_WINDOW_S);
    }
}
