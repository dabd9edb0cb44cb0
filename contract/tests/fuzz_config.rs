//! Fuzzing of the contract's configuration parsers: Go booleans (`parse_go_bool`), faas-provider timeouts
//! (`parse_go_duration`), price files (`read_prices`) and the listen-address rule. Each must return a value
//! or a typed error for any input, never panic, and agree with the rule it restates.
mod fuzz_common;

use std::time::Duration;

use contract::config::{parse_go_bool, parse_go_duration, read_prices};
use proptest::prelude::*;

/// Go durations, well-formed and nearly so: several number-unit terms, signs, odd units, huge values.
fn duration_text() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(
        &[
            "ns", "us", "µs", "μs", "ms", "s", "m", "h", "", "d", "S", "sec",
        ][..],
    );
    let number = prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        (0u32..1000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        prop::sample::select(
            &[
                ".5",
                "5.",
                ".",
                "1e3",
                "18446744073709551616",
                "99999999999999999999999"
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        3 => (
            prop::sample::select(&["", "+", "-", " ", "++"][..]),
            prop::collection::vec((number, unit), 1..4),
        )
            .prop_map(|(sign, terms)| {
                let body: String = terms.iter().map(|(n, u)| format!("{n}{u}")).collect();
                format!("{sign}{body}")
            }),
        1 => fuzz_common::inputs::string(),
    ]
}

/// The seconds a well-formed Go duration means, by an independent reading: `None` when it is not one.
fn reference_seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n as f64);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    if t == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut chars = t.char_indices().peekable();
    let mut terms = 0;
    while chars.peek().is_some() {
        let start = chars.peek()?.0;
        while chars
            .peek()
            .is_some_and(|(_, c)| c.is_ascii_digit() || *c == '.')
        {
            chars.next();
        }
        let mid = chars.peek().map_or(t.len(), |(i, _)| *i);
        let value: f64 = t[start..mid].parse().ok()?;
        while chars
            .peek()
            .is_some_and(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        {
            chars.next();
        }
        let end = chars.peek().map_or(t.len(), |(i, _)| *i);
        let scale = match &t[mid..end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        terms += 1;
    }
    (terms > 0).then_some(total)
}

proptest! {
    #![proptest_config(fuzz_common::config(500))]

    #[test]
    fn go_bool_accepts_exactly_go_spellings(s in prop_oneof![fuzz_common::inputs::string(), "[tTfF01a-zA-Z]{0,6}"]) {
        let want = match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
            _ => None,
        };
        prop_assert_eq!(parse_go_bool(&s), want);
    }

    #[test]
    fn go_durations_parse_or_fail_cleanly(s in duration_text()) {
        let got = parse_go_duration(&s);
        match (reference_seconds(&s), &got) {
            (Some(want), Ok(d)) => {
                let err = (d.as_secs_f64() - want).abs();
                prop_assert!(err <= want * 1e-9 + 1e-9, "{s:?}: {d:?} vs {want}");
            }
            // Out of Duration's range: must be an error, not a wrapped or saturated value.
            (Some(want), Err(_)) => prop_assert!(Duration::try_from_secs_f64(want).is_err(), "{s:?} = {want} s refused"),
            (None, Ok(d)) => prop_assert!(false, "{s:?} accepted as {d:?}"),
            (None, Err(e)) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn price_files_are_read_or_refused_with_the_path(text in price_text()) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("prices.json");
        std::fs::write(&path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match read_prices(&path) {
            Ok(p) => {
                for v in [p.cpu_core_hour, p.gpu_hour] {
                    prop_assert!(v.is_finite() && v > 0.0, "{text:?} accepted with {v}");
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("prices.json"), "{e}"),
        }
    }
}

/// Price files: the right shape with hostile numbers, wrong types, extra keys, or any text.
fn price_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<f64>()
            .prop_filter("JSON number", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        prop::sample::select(
            &[
                "0", "-0", "-1", "1e999", "-1e999", "1e-400", "\"1\"", "null", "NaN", "[]", "0.034"
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        4 => (number.clone(), number, prop::option::of("[a-z_]{1,8}"))
            .prop_map(|(c, g, extra)| match extra {
                Some(k) => format!(r#"{{"cpu_core_hour": {c}, "gpu_hour": {g}, "{k}": 1}}"#),
                None => format!(r#"{{"cpu_core_hour": {c}, "gpu_hour": {g}}}"#),
            }),
        1 => fuzz_common::inputs::any_json().prop_map(|v| v.to_string()),
        1 => any::<String>(),
    ]
}
