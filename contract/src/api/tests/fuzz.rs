//! Property tests: arbitrary bytes and arbitrary JSON at every decoding route never produce a 5xx or a panic.
use actix_web::http::Method;
use actix_web::test as actix_test;
use proptest::prelude::*;

use super::{app, call, env};

/// Routes with a body decoder, plus the logs query parser (fed through the query string).
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/system/functions"),
    ("PUT", "/system/functions"),
    ("DELETE", "/system/functions"),
    ("POST", "/system/scale-function/f"),
    ("POST", "/system/secrets"),
    ("PUT", "/system/secrets"),
    ("DELETE", "/system/secrets"),
    ("POST", "/system/namespace/"),
    ("PUT", "/system/namespace/x"),
    ("DELETE", "/system/namespace/x"),
];

/// Arbitrary JSON values, biased towards objects with the contract's keys.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-zA-Z0-9._/-]{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("service".to_owned()),
        Just("image".to_owned()),
        Just("namespace".to_owned()),
        Just("envProcess".to_owned()),
        Just("envVars".to_owned()),
        Just("labels".to_owned()),
        Just("annotations".to_owned()),
        Just("secrets".to_owned()),
        Just("limits".to_owned()),
        Just("serviceName".to_owned()),
        Just("replicas".to_owned()),
        Just("functionName".to_owned()),
        Just("name".to_owned()),
        Just("value".to_owned()),
        Just("rawValue".to_owned()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_no_5xx(method: &str, uri: &str, body: &[u8]) {
    let sys = actix_web::rt::System::new();
    let status = sys.block_on(async {
        let e = env();
        // A function to act on, so valid-looking bodies reach the deeper paths too.
        let svc = actix_test::init_service(app(e.state.clone())).await;
        call(
            &svc,
            Method::POST,
            "/system/functions",
            br#"{"service":"f","image":"i","envProcess":"cat"}"#,
        )
        .await;
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
        call(&svc, m, uri, body).await.0
    });
    assert!(
        !status.is_server_error(),
        "{method} {uri} {:?} → {status}",
        String::from_utf8_lossy(body)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_5xx(route in 0..ROUTES.len(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let (m, uri) = ROUTES[route];
        assert_no_5xx(m, uri, &body);
    }

    #[test]
    fn arbitrary_json_never_5xx(route in 0..ROUTES.len(), v in json_value()) {
        let (m, uri) = ROUTES[route];
        assert_no_5xx(m, uri, v.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_queries_never_5xx(q in "[a-z=&%0-9._:+-]{0,40}") {
        assert_no_5xx("GET", &format!("/system/logs?name=f&{q}"), b"");
        assert_no_5xx("GET", &format!("/system/functions?{q}"), b"");
        assert_no_5xx("GET", &format!("/system/function/f?{q}"), b"");
        assert_no_5xx("GET", &format!("/system/secrets?{q}"), b"");
    }
}
