//! Table tests of the policy on made-up timelines (one tick per second).
use super::*;

fn spec(kind: Kind, min: u32, max: u32, zero_after_s: Option<f64>) -> Spec {
    Spec {
        min,
        max,
        kind,
        target: 5.0,
        proportion: 0.9,
        zero_after_s,
    }
}

/// Runs `policy` from t = 1 for `secs` ticks where `per_s(t)` gives (requests started in the second
/// before t, requests in flight at t, seconds of request time that ended in that second); returns the
/// desired count at every tick.
fn drive(
    p: &mut Policy,
    c: &mut Sample,
    from: u32,
    secs: u32,
    per_s: impl Fn(u32) -> (u64, u64, f64),
) -> Vec<u32> {
    (from..from + secs)
        .map(|t| {
            let (n, in_flight, busy_s) = per_s(t);
            c.started += n;
            c.in_flight = in_flight;
            c.busy_us += (busy_s * 1e6) as u64;
            p.step(f64::from(t), *c)
        })
        .collect()
}

fn new(spec: Spec, replicas: u32) -> (Policy, Sample) {
    (
        Policy::new(0.0, spec, Sample::default(), replicas),
        Sample::default(),
    )
}

#[test]
fn rps_scales_up_at_once_and_down_only_after_the_window() {
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 2, None), 1);
    // 5 req/s wants ⌈5 / 4.5⌉ = 2 from the first measured second.
    let up = drive(&mut p, &mut c, 1, 60, |_| (5, 0, 0.0));
    assert_eq!(up[0], 2);
    assert!(up.iter().all(|&d| d == 2), "{up:?}");
    assert!((p.load() - 5.0).abs() < 1e-9);
    // Idle: the rate falls to 0 within the rate window, then the window of needs keeps 2 for 30 s.
    let down = drive(&mut p, &mut c, 61, 60, |_| (0, 0, 0.0));
    let first_1 = down.iter().position(|&d| d == 1).map(|i| i + 1);
    // From t = 61 the 10 s rate is 45 / 10 = 4.5 req/s, which one replica serves at 5 × 0.9: the last
    // need of 2 is at t = 60, and the desired count steps down one stabilisation window later (t = 91).
    assert_eq!(first_1, Some(31), "{down:?}");
    assert!(down[30..].iter().all(|&d| d == 1), "never below min");
}

#[test]
fn a_short_dip_does_not_scale_down() {
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, None), 1);
    let d = drive(&mut p, &mut c, 1, 40, |_| (20, 0, 0.0));
    assert_eq!(d.last(), Some(&5)); // ⌈20 / 4.5⌉
    // 15 s at 1 req/s: the needs fall, the desired count holds.
    let dip = drive(&mut p, &mut c, 41, 15, |_| (1, 0, 0.0));
    assert!(dip.iter().all(|&x| x == 5), "{dip:?}");
    let back = drive(&mut p, &mut c, 56, 5, |_| (20, 0, 0.0));
    assert!(back.iter().all(|&x| x == 5), "{back:?}");
}

#[test]
fn never_above_max_nor_below_min() {
    for (min, max, rps, want) in [
        (1, 3, 100, 3),
        (2, 4, 0, 2),
        (1, 20, 9, 2),
        (1, 20, 10, 3),
        (3, 3, 1000, 3),
    ] {
        let (mut p, mut c) = new(spec(Kind::Rps, min, max, None), min);
        let d = drive(&mut p, &mut c, 1, 100, |_| (rps, 0, 0.0));
        assert!(d.iter().all(|&x| (min..=max).contains(&x)), "{d:?}");
        assert_eq!(d.last(), Some(&want), "min {min} max {max} rps {rps}");
    }
}

#[test]
fn capacity_follows_requests_in_flight() {
    // 12 requests in flight all the time: ⌈12 / 4.5⌉ = 3 (the started rate does not matter).
    let (mut p, mut c) = new(spec(Kind::Capacity, 1, 10, None), 1);
    let d = drive(&mut p, &mut c, 1, 5, |_| (1, 12, 0.0));
    assert_eq!(d, [3, 3, 3, 3, 3]);
    // Short requests: none in flight at the ticks, but 9 s of request time per second ended = a mean
    // concurrency of 9, wanting 2.
    let (mut p, mut c) = new(spec(Kind::Capacity, 1, 10, None), 1);
    let d = drive(&mut p, &mut c, 1, 5, |_| (90, 0, 9.0));
    assert_eq!(d, [2, 2, 2, 2, 2]);
    // The same requests under rps want ⌈90 / 4.5⌉ = 20, capped at max.
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, None), 1);
    assert_eq!(drive(&mut p, &mut c, 1, 1, |_| (90, 0, 9.0)), [10]);
}

#[test]
fn zero_only_after_the_idle_duration_and_only_when_enabled() {
    for zero in [None, Some(60.0)] {
        let (mut p, mut c) = new(spec(Kind::Rps, 1, 5, zero), 1);
        drive(&mut p, &mut c, 1, 10, |_| (1, 0, 0.0));
        // Last request in the second before t = 10; idle from then on.
        let idle = drive(&mut p, &mut c, 11, 120, |_| (0, 0, 0.0));
        let first_0 = idle.iter().position(|&d| d == 0).map(|i| i + 11);
        match zero {
            None => assert_eq!(first_0, None, "{idle:?}"),
            Some(_) => {
                assert_eq!(first_0, Some(70), "{idle:?}");
                assert!(idle[59..].iter().all(|&d| d == 0));
            }
        }
    }
}

#[test]
fn a_request_in_flight_is_not_idle() {
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 5, Some(30.0)), 1);
    drive(&mut p, &mut c, 1, 1, |_| (1, 1, 0.0));
    // One long request: started at t ≈ 1, in flight for 100 s.
    let d = drive(&mut p, &mut c, 2, 100, |_| (0, 1, 0.0));
    assert!(d.iter().all(|&x| x >= 1), "{d:?}");
}

#[test]
fn the_next_request_after_zero_brings_back_min() {
    let (mut p, mut c) = new(spec(Kind::Rps, 2, 5, Some(30.0)), 2);
    let d = drive(&mut p, &mut c, 1, 40, |_| (0, 0, 0.0));
    // Idle since the start (t = 0): zero from t = 30.
    assert_eq!(d.iter().position(|&x| x == 0).map(|i| i + 1), Some(30));
    // The proxy scales from zero and counts the request; the next tick wants min again.
    assert_eq!(drive(&mut p, &mut c, 41, 1, |_| (1, 1, 0.0)), [2]);
}

#[test]
fn the_start_keeps_the_current_replicas_for_a_window() {
    // Found at 4 replicas (a restart under load that stopped): kept through the stabilisation window.
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, None), 4);
    let d = drive(&mut p, &mut c, 1, 40, |_| (0, 0, 0.0));
    assert_eq!(
        d.iter().position(|&x| x == 1).map(|i| i + 1),
        Some(31),
        "{d:?}"
    );
    // Found at 0 with scale-to-zero: stays at 0 until a request.
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, Some(60.0)), 0);
    assert!(
        drive(&mut p, &mut c, 1, 10, |_| (0, 0, 0.0))
            .iter()
            .all(|&x| x == 0)
    );
    // Found at 0 without it: back to min (never below min).
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, None), 0);
    assert_eq!(drive(&mut p, &mut c, 1, 1, |_| (0, 0, 0.0)), [1]);
}

#[test]
fn restarted_counters_start_a_new_history() {
    let (mut p, mut c) = new(spec(Kind::Rps, 1, 10, None), 1);
    drive(&mut p, &mut c, 1, 5, |_| (20, 0, 0.0));
    // Deleted and deployed again: the counters start from 0; no negative or huge rate.
    let mut fresh = Sample::default();
    drive(&mut p, &mut fresh, 6, 2, |_| (1, 0, 0.0));
    assert!(p.load() < 2.0, "{}", p.load());
}
