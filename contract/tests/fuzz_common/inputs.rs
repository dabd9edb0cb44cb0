//! Generators: arbitrary JSON and strings, and near-valid contract bodies (every field present with the
//! right type, the wrong type, or absent; values from a pool of hostile spellings: huge and negative
//! numbers, NaN strings, negative durations, unicode, very long names) so cases get past the decoder into
//! validation, the catalog and the DAG derivation.
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings that have broken parsers before: numbers out of range, NaN, negative and odd durations,
/// unicode, control characters, path tricks.
pub const HOSTILE: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "-1e999",
    "1e-400",
    "18446744073709551616",
    "4294967296",
    "-0",
    "0x10",
    "+5",
    "-5s",
    "1.5h",
    "99999999999999999999s",
    "1e308s",
    "1e-320ms",
    "0s",
    "0ms",
    "2s",
    "800ms",
    "µs",
    "1µs",
    "true",
    "TRUE",
    "yes",
    "t",
    "rps",
    "capacity",
    "../etc/passwd",
    "a/b",
    "a.b",
    ".",
    "..",
    "null",
    "{}",
    "[]",
    "é",
    "名前",
    "🦀",
    "a\u{0}b",
    "line\nbreak",
    "\u{202e}rtl",
    "f,g",
    " f , g ,, ",
    "f,f",
    "d",
    "g",
];

/// A string: hostile, printable, arbitrary unicode, or very long.
pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        2 => "[a-z0-9.-]{0,12}",
        2 => any::<String>(),
        1 => "[a-z]{60,300}",
        1 => (1u32..10_000).prop_map(|n| "x".repeat(n as usize)),
    ]
}

/// Names that collide with the functions and DAGs a case sets up, so requests reach existing state.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&["f", "g", "h", "d", "e"][..]).prop_map(str::to_owned),
        3 => string(),
    ]
}

/// Any JSON value, small.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(Value::from),
        string().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field's value: usually the right shape, sometimes any JSON at all (a wrong type), sometimes absent.
fn field(right: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        6 => right.prop_map(Some),
        2 => any_json().prop_map(Some),
        2 => Just(None),
    ]
    .boxed()
}

fn str_value() -> BoxedStrategy<Value> {
    string().prop_map(Value::from).boxed()
}

fn name_value() -> BoxedStrategy<Value> {
    name().prop_map(Value::from).boxed()
}

fn namespace_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(&["", "openfaas-fn", "other", "missing"][..]).prop_map(Value::from),
        1 => str_value(),
    ]
    .boxed()
}

/// A string map of arbitrary keys and values.
fn string_map() -> BoxedStrategy<Value> {
    prop::collection::btree_map(string(), string(), 0..4)
        .prop_map(|m| json!(m))
        .boxed()
}

/// The `com.smiless.*` DAG annotations and the OpenFaaS scaling labels, with values that are valid,
/// nearly valid or hostile.
fn smiless_map() -> BoxedStrategy<Value> {
    let key = prop::sample::select(
        &[
            "com.smiless.dag",
            "com.smiless.next",
            "com.smiless.sla",
            "com.smiless.profile",
            "com.openfaas.scale.min",
            "com.openfaas.scale.max",
            "com.openfaas.scale.type",
            "com.openfaas.scale.target",
            "com.openfaas.scale.target-proportion",
            "com.openfaas.scale.zero",
            "com.openfaas.scale.zero-duration",
        ][..],
    )
    .prop_map(str::to_owned);
    let value = prop_oneof![
        3 => prop::sample::select(&["d", "f", "g", "h", "g,h", "2s", "500ms", "3", "0", "1"][..])
            .prop_map(str::to_owned),
        2 => string(),
    ];
    prop::collection::btree_map(prop_oneof![4 => key, 1 => string()], value, 0..6)
        .prop_map(|m| json!(m))
        .boxed()
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// A near-valid `FunctionDeployment`.
pub fn deployment() -> impl Strategy<Value = Value> {
    let resources = prop::collection::btree_map(
        prop::sample::select(&["memory", "cpu", "nvidia.com/gpu", "amd.com/gpu", "x"][..]),
        prop_oneof![
            prop::sample::select(&["128Mi", "100m", "1", "0", "-1", "1e999", "NaN"][..])
                .prop_map(str::to_owned),
            string()
        ],
        0..4,
    )
    .prop_map(|m| json!(m))
    .boxed();
    let list = prop::collection::vec(string(), 0..4)
        .prop_map(|v| json!(v))
        .boxed();
    (
        (
            field(name_value()),
            field(str_value()),
            field(namespace_value()),
            field(prop_oneof![Just(json!("cat")), Just(json!("smiless-fn")), str_value()].boxed()),
            field(string_map()),
        ),
        (
            field(list.clone()),
            field(list),
            field(prop_oneof![smiless_map(), string_map()].boxed()),
            field(prop_oneof![smiless_map(), string_map()].boxed()),
            field(resources.clone()),
            field(resources),
            field(any::<bool>().prop_map(Value::from).boxed()),
        ),
    )
        .prop_map(
            |(
                (service, image, namespace, env_process, env_vars),
                (constraints, secrets, labels, annotations, limits, requests, ro),
            )| {
                object(vec![
                    ("service", service),
                    ("image", image),
                    ("namespace", namespace),
                    ("envProcess", env_process),
                    ("envVars", env_vars),
                    ("constraints", constraints),
                    ("secrets", secrets),
                    ("labels", labels),
                    ("annotations", annotations),
                    ("limits", limits),
                    ("requests", requests),
                    ("readOnlyRootFilesystem", ro),
                ])
            },
        )
}

/// A replica count: in range, at the edges of the integer types, negative, fractional, a string.
fn replicas() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (0u64..12).prop_map(Value::from),
        1 => prop::sample::select(vec![u64::MAX, u64::from(u32::MAX), u64::from(u32::MAX) + 1])
            .prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![json!(-1), json!(1.5), json!(1e300), json!("3"), json!(null)]),
    ]
    .boxed()
}

/// A near-valid `ScaleServiceRequest`.
pub fn scale() -> impl Strategy<Value = Value> {
    (
        field(name_value()),
        field(replicas()),
        field(namespace_value()),
    )
        .prop_map(|(s, r, n)| object(vec![("serviceName", s), ("replicas", r), ("namespace", n)]))
}

/// A near-valid `Secret`: `rawValue` is base64 text in the contract, so it gets both valid and invalid.
pub fn secret() -> impl Strategy<Value = Value> {
    let raw = prop_oneof![
        Just(json!("aGVsbG8=")),
        Just(json!("not base64!")),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|v| json!(v)),
        str_value(),
    ]
    .boxed();
    (
        field(name_value()),
        field(namespace_value()),
        field(str_value()),
        field(raw),
    )
        .prop_map(|(n, ns, v, r)| {
            object(vec![
                ("name", n),
                ("namespace", ns),
                ("value", v),
                ("rawValue", r),
            ])
        })
}

/// A near-valid `DeleteFunctionRequest`.
pub fn delete() -> impl Strategy<Value = Value> {
    (field(name_value()), field(namespace_value()))
        .prop_map(|(f, n)| object(vec![("functionName", f), ("namespace", n)]))
}

/// A near-valid namespace request.
pub fn namespace_body() -> impl Strategy<Value = Value> {
    (
        field(name_value()),
        field(string_map()),
        field(string_map()),
    )
        .prop_map(|(n, l, a)| object(vec![("name", n), ("labels", l), ("annotations", a)]))
}

/// A query string: well-formed pairs with hostile values, or arbitrary characters.
pub fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "namespace",
            "usage",
            "name",
            "tail",
            "since",
            "follow",
            "instance",
            "x",
        ][..],
    );
    prop_oneof![
        prop::collection::vec((key, string()), 0..4).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", percent(v)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        "[a-z=&%0-9._:+;-]{0,40}",
    ]
}

/// Percent-encodes every byte outside the unreserved set, so the URI stays parseable.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
