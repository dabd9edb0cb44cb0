//! Fuzzing of the batch format (`function_kit::batch`, docs/batching.md): what a function or a client
//! sends may be any bytes under any count header. Decoding never panics; whatever it accepts is exactly
//! `expected` parts that encode back to the same bytes; every framed batch decodes to its parts; a
//! framed batch cut short or with bytes after it is refused. Cases: `SMILESS_FUZZ_CASES`.
#![allow(clippy::unwrap_used)]
use bytes::Bytes;
use function_kit::batch::{MAX_PARTS, Part, count_from, decode, encode, is_batch_type};
use optimizer::testkit::fuzz_cases;
use proptest::prelude::*;

fn config(default: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: fuzz_cases(default),
        ..proptest::test_runner::Config::default()
    }
}

/// Response parts as a function may frame them.
fn part() -> impl Strategy<Value = Part> {
    (
        100u16..600,
        prop::option::of("[ -~]{1,40}"),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(status, content_type, body)| Part {
            status,
            content_type,
            body: Bytes::from(body),
        })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_what_is_accepted_is_canonical(
        body in prop::collection::vec(any::<u8>(), 0..400),
        expected in 0usize..(MAX_PARTS + 8),
        response in any::<bool>(),
    ) {
        let body = Bytes::from(body);
        if let Ok(parts) = decode(&body, expected, response) {
            prop_assert_eq!(parts.len(), expected);
            prop_assert_eq!(encode(&parts).unwrap(), body);
            if response {
                prop_assert!(parts.iter().all(|p| (100..=599).contains(&p.status)));
            }
        }
    }

    #[test]
    fn framed_parts_round_trip_and_damage_is_refused(
        parts in prop::collection::vec(part(), 1..12),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let body = encode(&parts).unwrap();
        prop_assert_eq!(&decode(&body, parts.len(), true).unwrap(), &parts);
        // Any proper prefix is refused.
        let n = cut.index(body.len());
        prop_assert!(decode(&body.slice(..n), parts.len(), true).is_err());
        // Bytes after the last part are refused.
        let mut longer = body.to_vec();
        longer.extend_from_slice(&extra);
        prop_assert!(decode(&Bytes::from(longer), parts.len(), true).is_err());
        // A count other than the framed one is refused.
        prop_assert!(decode(&body, parts.len() + 1, true).is_err());
    }

    #[test]
    fn headers_never_panic(value in any::<String>(), ct in prop::option::of(any::<String>())) {
        if let Ok(n) = count_from(&value) {
            prop_assert!((1..=MAX_PARTS).contains(&n));
        }
        let _ = is_batch_type(ct.as_deref());
    }
}
