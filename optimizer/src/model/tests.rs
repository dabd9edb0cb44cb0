//! Tests of the cost and latency models (the parent module).
#![allow(clippy::unwrap_used)]
use super::*;
use crate::dag::Dag;
use crate::load::poisson_at_least;
use crate::profile::{InitStats, LatencyModel, PerDevice, ProfileSet};

/// A profile whose call takes `infer` seconds on any hardware and batch, initialisation 2 s.
pub(crate) fn flat(infer: f64) -> Profile {
    let lat = LatencyModel {
        a: 0.0,
        b: 0.0,
        c: infer,
    };
    let init = InitStats {
        mean_s: 2.0,
        std_s: 0.0,
    };
    Profile {
        init: PerDevice {
            cpu: init,
            gpu: init,
        },
        infer: PerDevice { cpu: lat, gpu: lat },
        memory_mb: 512,
        image_mb: None,
    }
}

/// `a` (1 s calls) → `b` (2 s calls), one request every 0.5 s exactly, one always-on replica each:
/// the next request finds `a` busy for 0.5 s and `b` for 1.5 s. By hand: service 1 + 2 = 3 s, and
/// the path's wait is the bottleneck's 1.5 s (a request that waited 0.5 s at `a` reaches `b` that
/// much later, so it waits only 1.0 s there), 4.5 s in all; the old sum of waits said 5.0 s.
fn two_stage_chain(sla: f64) -> PlanInput {
    let members = [
        ("a".to_string(), None, vec!["b".to_string()]),
        ("b".to_string(), None, vec![]),
    ];
    let dag = Dag::build("chain", "openfaas-fn", &members, None).unwrap();
    let profiles = ProfileSet {
        source: "test".into(),
        profiles: [("a".to_string(), flat(1.0)), ("b".to_string(), flat(2.0))]
            .into_iter()
            .collect(),
    };
    let load = Load::new(Some(2.0), Some(0.5))
        .unwrap()
        .with_gaps(GapModel::Deterministic);
    PlanInput::new(dag, &profiles, sla, load).unwrap()
}

#[test]
fn a_chains_wait_is_its_bottleneck_stages_not_the_sum() {
    let input = two_stage_chain(10.0);
    let one = Choice {
        hardware: Hardware::Cpu { cores: 1 },
        batch: 1,
        replicas: 1,
        policy: ColdStart::AlwaysOn,
    };
    let waits: Vec<f64> = (0..2).map(|f| behaviour(&input, f, &one).wait).collect();
    assert_eq!(waits, [0.5, 1.5]);
    let ev = evaluate(&input, &[one, one]);
    assert!((ev.latency_s - 4.5).abs() < 1e-12, "{}", ev.latency_s);
    // Starts without queueing; finishes at the SLA quantile (a's own wait, then the bottleneck).
    assert_eq!(ev.start, [0.0, 1.0]);
    assert!((ev.finish[0] - 1.5).abs() < 1e-12 && (ev.finish[1] - 4.5).abs() < 1e-12);
    // A second replica at b leaves a's 0.5 s as the path's wait.
    let two = Choice { replicas: 2, ..one };
    let ev = evaluate(&input, &[one, two]);
    assert!((ev.latency_s - 3.5).abs() < 1e-12, "{}", ev.latency_s);
}

/// The searches use the same rule. Two always-on functions (0.2 s and 0.4 s calls) with rare but
/// close arrivals, so that one replica each is within the utilisation cap but makes a request wait;
/// the SLA sits between the path's service plus its bottleneck wait and plus the sum of its waits:
/// one replica each meets it now, where the sum of waits had to buy a second one.
#[test]
fn the_searches_plan_with_the_bottleneck_wait() {
    use crate::plan::{Policy, PolicySet};
    let mut input = two_stage_chain(10.0);
    input.load = Load::new(Some(0.02), None).unwrap();
    input.close_rate_per_s = Some(0.2);
    input.profiles = vec![flat(0.2), flat(0.4)];
    input.space.policies = PolicySet {
        always_on: true,
        keep_alive_warm: false,
        keep_alive_break_even: false,
        pre_warm: false,
    };
    let one = Choice {
        hardware: Hardware::Cpu { cores: 1 },
        batch: 1,
        replicas: 1,
        policy: ColdStart::AlwaysOn,
    };
    let w: Vec<f64> = (0..2).map(|f| behaviour(&input, f, &one).wait).collect();
    assert!(w[0] > 0.0 && w[1] > 0.0, "{w:?}");
    let bottleneck = 0.6 + w[0].max(w[1]);
    input.sla_s = bottleneck + 0.01;
    assert!(0.6 + w[0] + w[1] > input.sla_s);
    for plan in [
        crate::CoOptimiser::SMILESS.plan(&input).unwrap(),
        crate::Exhaustive {
            seed_with_beam: false,
        }
        .plan(&input)
        .unwrap(),
    ] {
        let replicas: Vec<u32> = plan.functions.iter().map(|f| f.choice.replicas).collect();
        assert_eq!(replicas, [1, 1], "{plan:#?}");
        assert!(plan.meets_sla && (plan.predicted_latency_s - bottleneck).abs() < 1e-9);
    }
}

/// The one-pass Poisson sums give exactly the answers of summing from zero per tail.
#[test]
/// Also with the early exit (a tail within `eps` before round j's count is reached) and with one
/// `e^{−μ}` memo shared by every call, as the option tables share it; a negative `eps` (no tail
/// is ever small enough) included.
fn one_pass_queueing_sums_match_the_per_tail_sums() {
    let load = Load::new(Some(8.0), Some(2.0)).expect("valid load");
    let (mut memo, mut memo_free) = (ExpMemo::default(), ExpMemo::default());
    for close in [0.0, 0.1, 0.5, 2.0, 8.0, 40.0, 120.0] {
        for d in [0.01, 0.2, 1.0, 3.5] {
            for eps in [-1e-9, 0.0, 1e-6, 0.01, 0.2] {
                let mu = close * d;
                for cap in [1, 5, 12, 20] {
                    let want = (1..=cap)
                        .find(|&k| poisson_at_least(mu, k) <= eps)
                        .unwrap_or(cap);
                    assert_eq!(queue_free_replicas(close, d, eps, cap), want);
                    assert_eq!(
                        queue_free_replicas_memo(close, d, eps, cap, &mut memo_free),
                        want
                    );
                }
                for batch in [1, 4, 16] {
                    for n in [1, 2, 3, 7] {
                        let want = (0..MAX_WAIT_ROUNDS)
                            .find(|&j| poisson_at_least(mu, n + j * n * batch) <= eps)
                            .map_or(f64::from(MAX_WAIT_ROUNDS) * d, |j| f64::from(j) * d);
                        let got = queue_wait(&load, close, d, batch, n, eps);
                        let memoised = queue_wait_memo(&load, close, d, batch, n, eps, &mut memo);
                        assert_eq!(
                            (got.to_bits(), memoised.to_bits()),
                            (want.to_bits(), want.to_bits()),
                            "{close} {d} {eps} {batch} {n}"
                        );
                    }
                }
            }
        }
    }
}
