//! Table tests of the executor's rules on image-query (imagerecognition → distilbert →
//! questionanswering), with a world of fixed durations so every time is exact.
use super::*;
use crate::plan::{ColdStart, Plan};
use crate::{Load, ProfileSet};

const CPU1: Hardware = Hardware::Cpu { cores: 1 };
const CPU2: Hardware = Hardware::Cpu { cores: 2 };

/// Initialisation takes 2 s, a call 0.5 s.
struct Fixed;
impl World for Fixed {
    fn init_time(&mut self, _: usize, _: Hardware) -> f64 {
        2.0
    }
    fn call_time(&mut self, _: usize, _: Hardware, _: u32) -> f64 {
        0.5
    }
}

fn executor() -> Executor {
    let dag = crate::testkit::paper_dag("image-query").unwrap();
    let input = PlanInput::new(
        dag,
        &ProfileSet::paper(),
        3.0,
        Load::new(Some(0.1), None).unwrap(),
    )
    .unwrap();
    Executor::new(&input, 16)
}

fn plan(policies: [(ColdStart, Hardware, u32); 3]) -> Plan {
    let dag = crate::testkit::paper_dag("image-query").unwrap();
    crate::testkit::plan_of(&dag, &policies)
}

fn starts(a: &[Action]) -> Vec<(usize, RepId)> {
    a.iter()
        .filter_map(|a| match *a {
            Action::Start { f, rep, .. } => Some((f, rep)),
            _ => None,
        })
        .collect()
}

fn releases(a: &[Action]) -> Vec<RepId> {
    a.iter()
        .filter_map(|a| match *a {
            Action::Release { rep, .. } => Some(rep),
            _ => None,
        })
        .collect()
}

fn wakes(a: &[Action]) -> Vec<(f64, Timer)> {
    a.iter()
        .filter_map(|a| match *a {
            Action::Wake { at, timer } => Some((at, timer)),
            _ => None,
        })
        .collect()
}

const KEEP: ColdStart = ColdStart::KeepAlive { seconds: 10.0 };
const ON: ColdStart = ColdStart::AlwaysOn;
const PRE: ColdStart = ColdStart::PreWarm { offset_s: 0.7 };

#[test]
fn always_on_starts_the_planned_replicas_and_keeps_them() {
    let mut x = executor();
    let a = x.apply(
        0.0,
        plan([(ON, CPU1, 2), (KEEP, CPU1, 1), (PRE, CPU1, 1)]),
        &mut Fixed,
    );
    assert_eq!(starts(&a), [(0, 0), (0, 1)]);
    let a = x.on_ready(2.0, 0, &mut Fixed);
    assert!(releases(&a).is_empty() && wakes(&a).is_empty(), "{a:?}");
    assert_eq!(x.replicas(0), 2);
}

#[test]
fn keep_alive_expires_per_replica_after_its_own_last_use() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (KEEP, CPU1, 1), (PRE, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_arrival(0.0, &mut Fixed);
    // distilbert's task queues with no replica: scale from zero.
    let a = x.on_queued(1.0, 1, &mut Fixed);
    assert_eq!(starts(&a), [(1, 1)]);
    let a = x.on_ready(3.0, 1, &mut Fixed);
    assert!(
        matches!(
            a[0],
            Action::Serve {
                rep: 1,
                tasks: 1,
                ..
            }
        ),
        "{a:?}"
    );
    let a = x.on_call_end(3.5, 1, &mut Fixed);
    // Idle from 3.5: leaves at 3.5 + 10 s.
    assert_eq!(wakes(&a), [(13.5, Timer::Expire { rep: 1, epoch: 1 })]);
    // A stale timer (the replica was used again since) does nothing.
    x.on_queued(5.0, 1, &mut Fixed);
    let a = x.on_call_end(5.5, 1, &mut Fixed);
    assert_eq!(wakes(&a), [(15.5, Timer::Expire { rep: 1, epoch: 2 })]);
    let stale = x.on_timer(13.5, Timer::Expire { rep: 1, epoch: 1 }, &mut Fixed);
    assert!(stale.is_empty());
    let a = x.on_timer(15.5, Timer::Expire { rep: 1, epoch: 2 }, &mut Fixed);
    assert_eq!(releases(&a), [1]);
    assert_eq!(x.replicas(1), 0);
}

#[test]
fn pre_warm_starts_at_the_offset_and_leaves_when_no_request_needs_it() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (ON, CPU1, 1), (PRE, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_arrival(10.0, &mut Fixed);
    let a = x.prewarm_for(10.0, 10.0, None);
    assert_eq!(wakes(&a), [(10.7, Timer::Prewarm { f: 2, m: 1 })]);
    let a = x.on_timer(10.7, Timer::Prewarm { f: 2, m: 1 }, &mut Fixed);
    let [(2, rep)] = starts(&a)[..] else {
        panic!("{a:?}")
    };
    // Ready before the request reaches it: held (re-checked) while the request is in flight.
    let a = x.on_ready(12.7, rep, &mut Fixed);
    assert_eq!(wakes(&a), [(13.7, Timer::Expire { rep, epoch: 1 })]);
    x.on_queued(13.0, 2, &mut Fixed);
    // The request's call ends: nothing in flight needs it any more, so it leaves at once.
    let a = x.on_call_end(13.5, rep, &mut Fixed);
    assert_eq!(releases(&a), [rep]);
}

#[test]
fn an_abandoned_request_releases_the_members_it_held() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (PRE, CPU1, 1), (PRE, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_arrival(0.0, &mut Fixed);
    let mut reps = Vec::new();
    for f in [1, 2] {
        let a = x.on_timer(0.7, Timer::Prewarm { f, m: 1 }, &mut Fixed);
        reps.extend(starts(&a).into_iter().map(|(_, r)| r));
    }
    for &r in &reps {
        x.on_ready(2.7, r, &mut Fixed);
    }
    assert_eq!(x.member(1).pending, 1);
    // The entry failed: the request never reaches distilbert or questionanswering.
    let a = x.on_abandoned(3.0, &[1, 2]);
    assert_eq!(releases(&a), reps);
    assert_eq!((x.replicas(1), x.replicas(2)), (0, 0));
}

#[test]
fn a_hardware_switch_is_made_before_break() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (ON, CPU1, 1), (ON, CPU1, 1)]),
        &mut Fixed,
    );
    for r in 0..3 {
        x.on_ready(2.0, r, &mut Fixed);
    }
    let a = x.apply(
        5.0,
        plan([(ON, CPU2, 1), (ON, CPU1, 1), (ON, CPU1, 1)]),
        &mut Fixed,
    );
    // A replacement on 2 cores starts; the old one stays until it is ready.
    assert_eq!(starts(&a), [(0, 3)]);
    assert!(releases(&a).is_empty());
    assert_eq!(x.hw_switches(), 1);
    // Meanwhile the old replica serves.
    let a = x.on_queued(6.0, 0, &mut Fixed);
    assert!(matches!(a[0], Action::Serve { rep: 0, .. }), "{a:?}");
    x.on_call_end(6.5, 0, &mut Fixed);
    let a = x.on_ready(7.0, 3, &mut Fixed);
    assert_eq!(releases(&a), [0]);
    assert_eq!(x.hardware(0), CPU2);
    assert_eq!(x.replicas(0), 1);
}

#[test]
fn a_surplus_always_on_replica_leaves_after_the_break_even_idle_time() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (ON, CPU1, 1), (ON, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_ready(2.0, 0, &mut Fixed);
    x.on_queued(3.0, 0, &mut Fixed);
    // A second task waits for the busy replica (it frees before an initialisation would end); a
    // third is more than it can take: a burst replica starts.
    assert!(starts(&x.on_queued(3.1, 0, &mut Fixed)).is_empty());
    let a = x.on_queued(3.2, 0, &mut Fixed);
    let [(0, surplus)] = starts(&a)[..] else {
        panic!("{a:?}")
    };
    x.on_call_end(3.5, 0, &mut Fixed);
    x.on_call_end(4.0, 0, &mut Fixed);
    x.on_ready(5.0, surplus, &mut Fixed);
    x.on_queued(5.0, 0, &mut Fixed);
    let a = x.on_call_end(5.5, surplus, &mut Fixed);
    let mean = ProfileSet::paper()
        .get("imagerecognition")
        .unwrap()
        .init(CPU1)
        .mean_s;
    let [(at, Timer::Expire { .. })] = wakes(&a)[..] else {
        panic!("{a:?}")
    };
    assert!((at - (5.5 + mean)).abs() < 1e-9, "{at} vs {}", 5.5 + mean);
}

#[test]
fn a_call_the_engine_cannot_name_reconciles_with_what_the_executor_saw() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (KEEP, CPU1, 1), (KEEP, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_arrival(0.0, &mut Fixed);
    // The runtime served the entry from the replica the executor still saw initialising.
    x.on_queued(0.5, 0, &mut Fixed);
    let a = x.on_call_end_any(1.0, 0, &mut Fixed);
    assert!(releases(&a).is_empty());
    assert_eq!(x.replica(0).state, RepState::Idle);
    assert_eq!((x.member(0).queued, x.member(0).pending), (0, 0));
    // A busy replica's call ends when named by its member alone.
    x.on_queued(2.0, 0, &mut Fixed);
    assert_eq!(x.replica(0).state, RepState::Busy);
    x.on_call_end_any(2.5, 0, &mut Fixed);
    assert_eq!(x.replica(0).state, RepState::Idle);
}

#[test]
fn unplanned_members_start_on_arrival_and_are_kept() {
    let mut x = executor();
    let a = x.on_arrival(0.0, &mut Fixed);
    assert_eq!(starts(&a), [(1, 0), (2, 1)]);
    let a = x.on_queued(0.0, 0, &mut Fixed);
    assert_eq!(starts(&a), [(0, 2)]);
    x.on_ready(2.0, 2, &mut Fixed);
    let a = x.on_call_end(2.5, 2, &mut Fixed);
    assert!(releases(&a).is_empty() && wakes(&a).is_empty());
}

#[test]
fn the_ledger_bills_each_state() {
    let mut x = executor();
    x.apply(
        0.0,
        plan([(ON, CPU1, 1), (KEEP, CPU1, 1), (KEEP, CPU1, 1)]),
        &mut Fixed,
    );
    x.on_ready(2.0, 0, &mut Fixed);
    x.on_queued(3.0, 0, &mut Fixed);
    x.on_call_end(3.5, 0, &mut Fixed);
    x.close(10.0);
    let per_s = Prices::default().per_second(CPU1);
    let l = x.ledger();
    assert!((l.cost_init - 2.0 * per_s).abs() < 1e-12);
    assert!((l.cost_busy - 0.5 * per_s).abs() < 1e-12);
    assert!((l.cost_idle - 7.5 * per_s).abs() < 1e-12);
}

fn serves(a: &[Action]) -> Vec<(RepId, u32)> {
    a.iter()
        .filter_map(|a| match *a {
            Action::Serve { rep, tasks, .. } => Some((rep, tasks)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batched_member_gathers_within_the_window() {
    use super::gather::GATHER_WINDOW_S as W;
    let mut x = executor();
    let mut p = plan([(ON, CPU1, 1), (ON, CPU1, 1), (ON, CPU1, 1)]);
    p.functions[0].choice.batch = 4;
    x.apply(0.0, p, &mut Fixed);
    x.on_ready(2.0, 0, &mut Fixed);
    // The first task waits for the window (one timer), with its replica idle: nothing starts.
    let a = x.on_queued(3.0, 0, &mut Fixed);
    assert!(serves(&a).is_empty() && starts(&a).is_empty(), "{a:?}");
    assert_eq!(wakes(&a), [(3.0 + W, Timer::Gather { f: 0 })]);
    let a = x.on_queued(3.01, 0, &mut Fixed);
    assert!(a.is_empty(), "{a:?}");
    // The window ends: the two go as one call.
    let a = x.on_timer(3.0 + W, Timer::Gather { f: 0 }, &mut Fixed);
    assert_eq!(serves(&a), [(0, 2)]);
    x.on_call_end(4.0, 0, &mut Fixed);
    // A full batch leaves at once, before the window ends.
    for k in 0..3 {
        assert!(serves(&x.on_queued(5.0 + f64::from(k) * 0.001, 0, &mut Fixed)).is_empty());
    }
    assert_eq!(serves(&x.on_queued(5.003, 0, &mut Fixed)), [(0, 4)]);
    // Batch 1 (the other members): at once, no timer.
    let a = x.on_queued(6.0, 1, &mut Fixed);
    assert!(wakes(&a).is_empty(), "{a:?}");
}
