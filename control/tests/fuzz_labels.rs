//! Fuzzing of the OpenFaaS scaling labels the standalone autoscaler reads from a deployment
//! (`control::autoscale::labels`): any label values give a rule or a typed error naming the label, never a
//! panic, and an accepted rule holds the invariants the autoscaler divides and multiplies by.
//! Cases: `SMILESS_FUZZ_CASES` (see `docs/fuzzing.md`).
use std::collections::BTreeMap;

use contract::observe::requests::Sample;
use control::autoscale::labels::{
    LABEL_MAX, LABEL_MIN, LABEL_PROPORTION, LABEL_TARGET, LABEL_TYPE, LABEL_ZERO,
    LABEL_ZERO_DURATION, managed, parse,
};
use control::autoscale::{Kind, LabelError, Policy};
use optimizer::testkit::fuzz_cases;
use proptest::prelude::*;

/// Label values: plausible, at the edges of their types, or hostile.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "0", "1", "2", "20", "1000", "4294967295", "4294967296", "-1", " 3 ", "1.5", "0.9", "1.0000001",
            "1e-320", "5e-324", "1e308", "1e309", "NaN", "inf", "-inf", "rps", "RPS", "capacity", "cpu",
            "true", "t", "1", "yes", "False", "30s", "15m", "-5s", "0s", "1ns", "99999999999999999999h",
            "1h30m", "500ms", "µs", "", " ",
        ][..]).prop_map(str::to_owned),
        1 => "[ -~]{0,12}",
        1 => any::<String>(),
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        6 => prop::sample::select(&[
            LABEL_MIN, LABEL_MAX, LABEL_TYPE, LABEL_TARGET, LABEL_PROPORTION, LABEL_ZERO, LABEL_ZERO_DURATION,
        ][..]).prop_map(str::to_owned),
        1 => "[a-z.]{1,12}",
    ];
    prop::collection::btree_map(key, value(), 0..8)
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: fuzz_cases(2000), ..Default::default() })]

    #[test]
    fn scaling_labels(
        l in labels(),
        max_replicas in prop_oneof![Just(0u32), Just(1), 1u32..100, Just(u32::MAX)],
        initial in prop_oneof![Just(0u32), 1u32..30, Just(u32::MAX)],
        ticks in prop::collection::vec((0.0f64..40.0, 0u64..1_000_000, 0u64..10_000_000_000, 0u64..1000), 1..8),
    ) {
        let _ = managed(Some(&l));
        match parse(Some(&l), max_replicas) {
            Ok(s) => {
                prop_assert!(s.min >= 1 && s.min <= s.max, "{s:?}");
                prop_assert!(s.max <= max_replicas.max(1));
                prop_assert!(s.target.is_finite() && s.target > 0.0);
                prop_assert!(s.proportion > 0.0 && s.proportion <= 1.0);
                if let Some(z) = s.zero_after_s {
                    prop_assert!(z.is_finite() && z > 0.0);
                }
                prop_assert!(matches!(s.kind, Kind::Rps | Kind::Capacity));
                // The autoscaler on this rule, over any load: the desired count stays in [min, max], or 0
                // when the rule scales to zero.
                let mut now = 0.0;
                let mut counters = Sample::default();
                let mut policy = Policy::new(now, s.clone(), counters, initial);
                for (dt, started, busy_us, in_flight) in ticks {
                    now += dt;
                    counters.started = counters.started.saturating_add(started);
                    counters.busy_us = counters.busy_us.saturating_add(busy_us);
                    counters.in_flight = in_flight;
                    let d = policy.step(now, counters);
                    prop_assert!((s.min..=s.max).contains(&d) || (d == 0 && s.zero_after_s.is_some()), "{d} from {s:?}");
                    prop_assert!(policy.load().is_finite() && policy.load() >= 0.0);
                }
            }
            Err(e @ LabelError::Bad { .. }) => prop_assert!(e.to_string().contains("com.openfaas.scale.")),
            Err(e @ LabelError::MinAboveMax { .. }) => prop_assert!(e.to_string().contains("above")),
        }
    }
}
