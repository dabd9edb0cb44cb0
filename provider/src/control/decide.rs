//! The executor's pure rule: a function's desired replicas from its planned [`Choice`] and what the
//! runner observed. No I/O and no clock: the control loop passes `idle_s` and the time scale, so the rule is
//! unit-tested exactly and the loop around it stays thin.
use optimizer::{Choice, ColdStart, Dag, Hardware, HardwareSpace, Plan};

use crate::backend::Placement;

/// One pre-warm to start after a DAG request arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prewarm {
    /// The member's index in the DAG.
    pub node: usize,
    /// Real seconds after the arrival.
    pub offset_s: f64,
    pub replicas: u32,
}

/// The pre-warms of one DAG request: with a plan, the members whose policy is pre-warm, at their planned
/// offset (never before the arrival: the live loop does not know arrivals in advance) times the time
/// scale; without a plan, every member but the entry (which the runner calls at once), immediately.
pub fn prewarms(dag: &Dag, plan: Option<&Plan>, time_scale: f64) -> Vec<Prewarm> {
    (0..dag.len())
        .filter(|&i| i != dag.entry)
        .filter_map(|i| {
            let Some(p) = plan else {
                return Some(Prewarm {
                    node: i,
                    offset_s: 0.0,
                    replicas: 1,
                });
            };
            let f = p.functions.iter().find(|f| f.name == dag.nodes[i].name)?;
            match f.choice.policy {
                ColdStart::PreWarm { offset_s } => Some(Prewarm {
                    node: i,
                    offset_s: if offset_s.is_finite() {
                        offset_s.max(0.0) * time_scale
                    } else {
                        0.0
                    },
                    replicas: f.choice.replicas.max(1),
                }),
                _ => None,
            }
        })
        .collect()
}

/// What this machine offers the live planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub cpus: usize,
    pub gpus: u32,
}

/// The planner's hardware space on `host`: the default core counts that fit, and GPU shares only when
/// there is a GPU (a plan must not choose hardware the machine cannot give).
pub fn space(host: Host) -> HardwareSpace {
    let d = HardwareSpace::default();
    let mut cpu_cores: Vec<u32> = d
        .cpu_cores
        .into_iter()
        .filter(|c| usize::try_from(*c).is_ok_and(|c| c <= host.cpus))
        .collect();
    if cpu_cores.is_empty() {
        cpu_cores.push(1);
    }
    HardwareSpace {
        cpu_cores,
        gpu_shares: if host.gpus > 0 {
            d.gpu_shares
        } else {
            Vec::new()
        },
    }
}

/// Where to run `hw`: `cores` consecutive cores starting at `slot` (wrapping), or a share of GPU
/// `slot mod gpus`. Spreading members over different cores by `slot` keeps a DAG's functions from all
/// landing on core 0.
pub fn placement(hw: Hardware, slot: usize, host: Host) -> Placement {
    match hw {
        Hardware::Cpu { cores } => {
            let n = host.cpus.max(1);
            let k = usize::try_from(cores).unwrap_or(n).clamp(1, n);
            let mut cpus: Vec<usize> = (0..k).map(|i| (slot + i) % n).collect();
            cpus.sort_unstable();
            Placement { cpus, gpu: None }
        }
        Hardware::Gpu { share_pct } => Placement {
            cpus: Vec::new(),
            gpu: Some((
                u32::try_from(slot).unwrap_or(0) % host.gpus.max(1),
                u8::try_from(share_pct.clamp(1, 100)).unwrap_or(100),
            )),
        },
    }
}

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

/// Desired replicas for `choice` (planned durations are in profile seconds; `time_scale` maps them to real
/// seconds). A pre-warm-policy function is released `grace_s` real seconds after its last use (the
/// control loop passes one tick, so a back-to-back request still finds it warm).
pub fn target(choice: &Choice, m: MemberState, time_scale: f64, grace_s: f64) -> Target {
    let planned = choice.replicas.max(1);
    // A pre-warm-policy member has the replicas the pre-warms of the requests in flight started (one per
    // request, up to the plan's, as the simulator does): the loop never adds to them, or a lone request
    // would pay for the replicas planned for a burst.
    let prewarm = matches!(choice.policy, ColdStart::PreWarm { .. });
    // Warm: the planned replicas (extra ones from an earlier, busier plan go), unless released.
    let keep = |why: &str| Target {
        replicas: match m.replicas {
            0 => 0,
            n if prewarm => n.min(planned),
            _ => planned,
        },
        why: why.to_owned(),
    };
    if m.in_flight > 0 {
        // Never shrink under a running request.
        return Target {
            replicas: match m.replicas {
                0 => 0,
                n if prewarm => n,
                n => n.max(planned),
            },
            why: "in use".into(),
        };
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
            } else if m.idle_s < grace_s {
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
#[allow(clippy::unwrap_used)]
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
        assert_eq!(target(&c, m(1, 0, 2.9, false), 0.1, 1.0).replicas, 2);
        // Extra replicas from an earlier plan go while idle, not while in use.
        assert_eq!(target(&c, m(4, 0, 1.0, false), 0.1, 1.0).replicas, 2);
        assert_eq!(target(&c, m(4, 1, 1.0, false), 0.1, 1.0).replicas, 4);
        assert_eq!(target(&c, m(2, 0, 3.1, false), 0.1, 1.0).replicas, 0);
        // Never scaled up from zero by the keep-alive rule itself (the runner or a pre-warm does that).
        assert_eq!(target(&c, m(0, 0, 0.5, false), 0.1, 1.0).replicas, 0);
    }

    #[test]
    fn pre_warm_releases_after_use_but_not_while_reserved_or_busy() {
        let c = choice(ColdStart::PreWarm { offset_s: 0.4 }, 1);
        assert_eq!(target(&c, m(1, 0, 5.0, false), 1.0, 1.0).replicas, 0);
        assert_eq!(target(&c, m(1, 0, 5.0, true), 1.0, 1.0).replicas, 1);
        assert_eq!(target(&c, m(1, 1, 5.0, false), 1.0, 1.0).replicas, 1);
        assert_eq!(target(&c, m(1, 0, 0.2, false), 1.0, 1.0).replicas, 1);
        // Planned for bursts of 3, pre-warmed for one request: the loop does not add the other two.
        let burst = choice(ColdStart::PreWarm { offset_s: 0.4 }, 3);
        assert_eq!(target(&burst, m(1, 0, 5.0, true), 1.0, 1.0).replicas, 1);
        assert_eq!(target(&burst, m(1, 1, 5.0, false), 1.0, 1.0).replicas, 1);
        assert_eq!(target(&burst, m(2, 0, 0.2, false), 1.0, 1.0).replicas, 2);
        // More than a smaller new plan allows: trimmed once idle.
        assert_eq!(target(&burst, m(5, 0, 0.2, false), 1.0, 1.0).replicas, 3);
    }

    #[test]
    fn prewarms_follow_the_plan_scaled_or_start_everything_without_one() {
        let members = [
            ("e".to_owned(), None, vec!["a".to_owned(), "b".to_owned()]),
            ("a".to_owned(), None, vec![]),
            ("b".to_owned(), None, vec![]),
        ];
        let dag = Dag::build("d", "ns", &members, Some(2.0)).unwrap();
        let all = prewarms(&dag, None, 0.1);
        assert_eq!(all.iter().map(|w| w.node).collect::<Vec<_>>(), [1, 2]);
        assert!(all.iter().all(|w| w.offset_s == 0.0 && w.replicas == 1));
        let f = |name: &str, policy| optimizer::FunctionPlan {
            name: name.into(),
            choice: choice(policy, 2),
            start_s: 0.0,
            finish_s: 1.0,
            cost_per_hour: 0.0,
            alternatives: Vec::new(),
        };
        let plan = Plan {
            dag: "d".into(),
            policy: "smiless".into(),
            sla_s: 2.0,
            functions: vec![
                f("e", ColdStart::AlwaysOn),
                f("a", ColdStart::PreWarm { offset_s: 0.8 }),
                f("b", ColdStart::KeepAlive { seconds: 9.0 }),
            ],
            predicted_latency_s: 1.5,
            cost_per_hour: 0.1,
            meets_sla: true,
            stats: Default::default(),
        };
        let w = prewarms(&dag, Some(&plan), 0.1);
        assert_eq!(w.len(), 1, "only the pre-warm member: {w:?}");
        assert_eq!((w[0].node, w[0].replicas), (1, 2));
        assert!((w[0].offset_s - 0.08).abs() < 1e-12);
    }

    #[test]
    fn placement_fits_the_host() {
        let host = Host { cpus: 4, gpus: 0 };
        assert_eq!(space(host).cpu_cores, [1, 2, 4]);
        assert!(space(host).gpu_shares.is_empty());
        assert_eq!(space(Host { cpus: 1, gpus: 1 }).gpu_shares.len(), 10);
        assert_eq!(placement(Hardware::Cpu { cores: 2 }, 3, host).cpus, [0, 3]);
        assert_eq!(
            placement(Hardware::Cpu { cores: 8 }, 0, host).cpus,
            [0, 1, 2, 3]
        );
        let g = placement(
            Hardware::Gpu { share_pct: 30 },
            3,
            Host { cpus: 2, gpus: 2 },
        );
        assert_eq!(g.gpu, Some((1, 30)));
    }

    #[test]
    fn always_on_runs_the_planned_replicas() {
        let c = choice(ColdStart::AlwaysOn, 3);
        assert_eq!(target(&c, m(0, 0, 100.0, false), 1.0, 1.0).replicas, 3);
        assert_eq!(target(&c, m(5, 0, 0.0, false), 1.0, 1.0).replicas, 3);
    }
}
