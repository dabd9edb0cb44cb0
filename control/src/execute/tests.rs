//! Table tests of the live shell with a fake clock: events in at given real times, scale commands out.
//! voice-assistant: speechrecognition (0) → topicmodeling (1), nameentityrecognition (2) →
//! textgeneration (3) → texttospeech (4).
use super::*;
use contract::events::{Events, What};
use optimizer::{ColdStart, ProfileSet};

const CPU1: Hardware = Hardware::Cpu { cores: 1 };
const CPU2: Hardware = Hardware::Cpu { cores: 2 };

fn dag() -> Dag {
    optimizer::testkit::paper_dag("voice-assistant").unwrap()
}

fn shell(scale: f64) -> DagExec {
    let d = dag();
    let paper = ProfileSet::paper();
    let profiles = d
        .nodes
        .iter()
        .map(|n| paper.get(&n.name).unwrap().clone())
        .collect();
    DagExec::new(&d, profiles, Prices::default(), scale)
}

fn plan(choices: [(ColdStart, Hardware); 5]) -> Plan {
    optimizer::testkit::plan_of(&dag(), &choices.map(|(p, hw)| (p, hw, 1)))
}

const ON: ColdStart = ColdStart::AlwaysOn;
const fn pre(offset_s: f64) -> ColdStart {
    ColdStart::PreWarm { offset_s }
}
const fn keep(seconds: f64) -> ColdStart {
    ColdStart::KeepAlive { seconds }
}

/// The entry always on, the rest pre-warmed at `offsets` (profile seconds).
fn prewarm_plan(offsets: [f64; 4]) -> Plan {
    plan([
        (ON, CPU1),
        (pre(offsets[0]), CPU1),
        (pre(offsets[1]), CPU1),
        (pre(offsets[2]), CPU1),
        (pre(offsets[3]), CPU1),
    ])
}

/// Runs the timers due up to `now` and returns the scale commands.
fn at(x: &mut DagExec, now: f64) -> Vec<(usize, u32)> {
    x.run_due(now);
    x.scales()
}

fn ev(x: &mut DagExec, now: f64, what: What) -> Vec<(usize, u32)> {
    x.run_due(now);
    x.on_event(now, &what);
    x.scales()
}

#[test]
fn arrival_prewarms_at_the_scaled_offset_then_the_call_releases() {
    // Time scale 0.5: a 1.2 s profile offset is 0.6 real seconds.
    let mut x = shell(0.5);
    x.apply(0.0, prewarm_plan([1.2, 1.2, 4.0, 6.0]));
    assert_eq!(x.scales(), [(0, 1)], "the always-on entry starts");
    assert!(ev(&mut x, 10.0, What::Arrival).is_empty());
    assert_eq!(x.next_due(), Some(10.6));
    assert!(at(&mut x, 10.59).is_empty(), "not before the offset");
    assert_eq!(at(&mut x, 10.6), [(1, 1), (2, 1)]);
    assert_eq!(x.take_prewarms(), 2);
    assert_eq!(at(&mut x, 12.0), [(3, 1)]);
    ev(&mut x, 10.2, What::Queued { member: 0 });
    ev(&mut x, 12.5, What::CallEnded { member: 0 });
    ev(&mut x, 12.5, What::Queued { member: 1 });
    ev(&mut x, 12.5, What::Queued { member: 2 });
    // topicmodeling's call ends: no request in flight needs it any more, released at once (and
    // texttospeech's pre-warm, 6 profile seconds = 3 real seconds after the arrival, is due).
    assert_eq!(
        ev(&mut x, 13.0, What::CallEnded { member: 1 }),
        [(1, 0), (4, 1)]
    );
    assert_eq!(ev(&mut x, 13.1, What::CallEnded { member: 2 }), [(2, 0)]);
    assert_eq!(x.executor().member(1).pending, 0);
}

#[test]
fn keep_alive_expires_after_the_scaled_window() {
    let mut x = shell(0.1);
    x.apply(
        0.0,
        plan([
            (keep(30.0), CPU1),
            (ON, CPU1),
            (ON, CPU1),
            (ON, CPU1),
            (ON, CPU1),
        ]),
    );
    x.scales();
    ev(&mut x, 1.0, What::Arrival);
    assert_eq!(ev(&mut x, 1.0, What::Queued { member: 0 }), [(0, 1)]);
    ev(&mut x, 2.0, What::CallEnded { member: 0 });
    // 30 profile seconds at scale 0.1: 3 real seconds after the last use.
    assert!(at(&mut x, 4.99).is_empty());
    assert_eq!(at(&mut x, 5.0), [(0, 0)]);
}

#[test]
fn a_hardware_switch_rolls_before_it_breaks() {
    let mut x = shell(1.0);
    x.apply(0.0, plan([(ON, CPU1); 5]));
    assert_eq!(x.scales().len(), 5);
    at(&mut x, 100.0);
    let mut faster = [(ON, CPU1); 5];
    faster[3] = (ON, CPU2);
    x.apply(100.0, plan(faster));
    // textgeneration: the replacement starts beside the old replica...
    assert_eq!(x.scales(), [(3, 2)]);
    assert!(at(&mut x, 100.01).is_empty());
    // ...and the old one leaves once the new one is ready.
    assert_eq!(at(&mut x, 200.0), [(3, 1)]);
    assert_eq!(x.executor().hardware(3), CPU2);
}

#[test]
fn a_fan_out_failure_ends_every_call_and_releases_the_members() {
    let events = Events::default();
    let mut rx = events.subscribe().unwrap();
    let key = ("openfaas-fn".to_owned(), "voice-assistant".to_owned());
    let mut x = shell(1.0);
    x.apply(0.0, prewarm_plan([0.0, 0.0, 0.5, 1.0]));
    {
        // The runner: the entry answers, the fan-out calls 1 and 2; 1 fails and the runner returns
        // early, dropping 2's call in flight; 3 and 4 are never reached.
        let mut req = events.request(&key, 5);
        drop(req.call(0));
        let failed = req.call(1);
        let _dropped = req.call(2);
        drop(failed);
    }
    let mut now = 0.0;
    while let Ok(e) = rx.try_recv() {
        now += 0.1;
        x.run_due(now);
        x.on_event(now, &e.what);
    }
    // A pre-warm timer set before the failure still starts its replica; once initialised, nothing in
    // flight needs it and it leaves.
    x.run_due(600.0);
    for f in 0..5 {
        assert_eq!(x.executor().member(f).pending, 0, "member {f}");
    }
    // Every pre-warm member is released per plan; the always-on entry stays.
    let replicas: Vec<u32> = (0..5).map(|f| x.executor().replicas(f)).collect();
    assert_eq!(replicas, [1, 0, 0, 0, 0]);
}

#[test]
fn adopted_replicas_follow_the_plan() {
    let mut x = shell(1.0);
    x.adopt(0.0, 1, 2, CPU1);
    x.apply(
        0.0,
        plan([
            (ON, CPU1),
            (keep(5.0), CPU1),
            (ON, CPU1),
            (ON, CPU1),
            (ON, CPU1),
        ]),
    );
    x.scales();
    // The two replicas found at start-up are kept for the window, then released.
    assert_eq!(at(&mut x, 4.9), Vec::<(usize, u32)>::new());
    assert_eq!(at(&mut x, 5.0), [(1, 0)]);
}
