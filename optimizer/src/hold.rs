//! What a function's choice holds of a cluster, as far as the choice alone says: how many replicas at a
//! burst's peak, and whether its replicas are up the whole time or for less than another choice's.
//! Below the option tables ([`crate::options`]) and the capacity planner ([`crate::capacity`]), which
//! both weigh options by it (docs/capacity.md).
use crate::load::Load;
use crate::plan::{Choice, ColdStart};

/// How many replicas of `c` are requested at peak for bursts of `burst` requests (a pre-warm initialises one replica per request of the burst, at most its `replicas`).
pub fn peak_replicas(c: &Choice, burst: u32) -> u32 {
    match c.policy {
        ColdStart::PreWarm { .. } => c.replicas.min(burst.max(1)),
        _ => c.replicas,
    }
}

/// Whether `c`'s replicas are up the whole time under `load`: always-on, or a keep-alive window that covers the mean gap.
pub fn held_always(c: &Choice, load: &Load) -> bool {
    match c.policy {
        ColdStart::AlwaysOn => true,
        ColdStart::KeepAlive { seconds } => seconds >= load.interarrival_s,
        ColdStart::PreWarm { .. } => false,
    }
}

/// Whether `a`'s replicas are held no longer than `b`'s on any timeline: `b` is always up, or both
/// are pre-warmed (each from its placed initialisation to its finish), or both keep-alive that does
/// not cover the gap with `a`'s window no longer.
pub fn holds_no_longer(a: &Choice, b: &Choice, load: &Load) -> bool {
    if held_always(b, load) {
        return true;
    }
    if held_always(a, load) {
        return false;
    }
    match (a.policy, b.policy) {
        (ColdStart::PreWarm { .. }, ColdStart::PreWarm { .. }) => true,
        (ColdStart::KeepAlive { seconds: x }, ColdStart::KeepAlive { seconds: y }) => x <= y,
        _ => false,
    }
}
