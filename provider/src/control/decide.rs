//! The executor's pure rule: a function's desired replicas from its planned [`Choice`] and what the
//! runner observed. No I/O and no clock: the control loop passes `idle_s` and the time scale, so the rule is
//! unit-tested exactly and the loop around it stays thin.
use optimizer::{Choice, ColdStart};

/// What the control loop knows about one member now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemberState {
    /// Desired replicas in the catalog.
    pub replicas: u32,
    /// Calls of the runner in progress.
    pub in_flight: u32,
    /// Real seconds since its last use (or since the control loop first saw it, when never used).
    pub idle_s: f64,
    /// A pre-warm holds it until its planned use (it must not be released before the request reaches it).
    pub reserved: bool,
}

/// The desired replica count and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub replicas: u32,
    pub why: String,
}

/// Seconds after its last use before a pre-warm-policy function is released: one control tick, so a
/// back-to-back request still finds it warm.
pub const RELEASE_GRACE_S: f64 = 1.0;

/// Desired replicas for `choice` (planned durations are in profile seconds; `time_scale` maps them to real
/// seconds).
pub fn target(choice: &Choice, m: MemberState, time_scale: f64) -> Target {
    let planned = choice.replicas.max(1);
    let keep = |why: &str| Target {
        replicas: if m.replicas == 0 {
            0
        } else {
            m.replicas.max(planned)
        },
        why: why.to_owned(),
    };
    if m.in_flight > 0 {
        return keep("in use");
    }
    match choice.policy {
        ColdStart::AlwaysOn => Target {
            replicas: planned,
            why: "always-on".into(),
        },
        ColdStart::KeepAlive { seconds } => {
            let window = seconds * time_scale;
            if m.idle_s < window {
                keep(&format!(
                    "keep-alive ({:.1} s of {window:.1} s idle)",
                    m.idle_s
                ))
            } else {
                Target {
                    replicas: 0,
                    why: format!("keep-alive window of {window:.1} s expired: released"),
                }
            }
        }
        ColdStart::PreWarm { .. } => {
            if m.reserved {
                keep("pre-warmed for a request in flight")
            } else if m.idle_s < RELEASE_GRACE_S {
                keep("just used")
            } else {
                Target {
                    replicas: 0,
                    why: "pre-warm policy: released after use".into(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optimizer::Hardware;

    fn choice(policy: ColdStart, replicas: u32) -> Choice {
        Choice {
            hardware: Hardware::Cpu { cores: 1 },
            batch: 1,
            replicas,
            policy,
        }
    }

    fn m(replicas: u32, in_flight: u32, idle_s: f64, reserved: bool) -> MemberState {
        MemberState {
            replicas,
            in_flight,
            idle_s,
            reserved,
        }
    }

    #[test]
    fn keep_alive_holds_for_the_scaled_window_then_releases() {
        let c = choice(ColdStart::KeepAlive { seconds: 30.0 }, 2);
        // 30 s planned at time scale 0.1 = 3 real seconds.
        assert_eq!(target(&c, m(1, 0, 2.9, false), 0.1).replicas, 2);
        assert_eq!(target(&c, m(2, 0, 3.1, false), 0.1).replicas, 0);
        // Never scaled up from zero by the keep-alive rule itself (the runner or a pre-warm does that).
        assert_eq!(target(&c, m(0, 0, 0.5, false), 0.1).replicas, 0);
    }

    #[test]
    fn pre_warm_releases_after_use_but_not_while_reserved_or_busy() {
        let c = choice(ColdStart::PreWarm { offset_s: 0.4 }, 1);
        assert_eq!(target(&c, m(1, 0, 5.0, false), 1.0).replicas, 0);
        assert_eq!(target(&c, m(1, 0, 5.0, true), 1.0).replicas, 1);
        assert_eq!(target(&c, m(1, 1, 5.0, false), 1.0).replicas, 1);
        assert_eq!(target(&c, m(1, 0, 0.2, false), 1.0).replicas, 1);
    }

    #[test]
    fn always_on_runs_the_planned_replicas() {
        let c = choice(ColdStart::AlwaysOn, 3);
        assert_eq!(target(&c, m(0, 0, 100.0, false), 1.0).replicas, 3);
        assert_eq!(target(&c, m(5, 0, 0.0, false), 1.0).replicas, 3);
    }
}
