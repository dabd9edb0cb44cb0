//! Fuzzing of the management API (`/system/*`) through the real actix routes, in process over the fixed
//! backend: arbitrary bytes at every route that decodes a body, near-valid bodies in sequences that act on a
//! deployed DAG, and hostile path names and query strings. Every response must be a non-5xx, and a 4xx must
//! carry a message ([`fuzz_common::check_api`]). Cases: `SMILESS_FUZZ_CASES` (see `docs/fuzzing.md`).
mod fuzz_common;

use actix_web::http::Method;
use proptest::prelude::*;
use serde_json::{Value, json};

use fuzz_common::{Req, inputs, run_and_check, setup};

/// Every route that decodes a request body.
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/system/functions"),
    ("PUT", "/system/functions"),
    ("DELETE", "/system/functions"),
    ("POST", "/system/scale-function/f"),
    ("POST", "/system/scale-function/d"),
    ("POST", "/system/secrets"),
    ("PUT", "/system/secrets"),
    ("DELETE", "/system/secrets"),
    ("POST", "/system/namespace/"),
    ("PUT", "/system/namespace/other"),
    ("DELETE", "/system/namespace/other"),
];

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap_or(Method::POST)
}

/// One structure-aware request: a near-valid body at the route that decodes it.
fn op() -> impl Strategy<Value = Req> {
    let body = |v: Value| v.to_string().into_bytes();
    prop_oneof![
        3 => (prop::sample::select(&[Method::POST, Method::PUT][..]), inputs::deployment())
            .prop_map(move |(m, v)| Req::new(m, "/system/functions", body(v))),
        1 => inputs::delete().prop_map(move |v| Req::new(Method::DELETE, "/system/functions", body(v))),
        2 => (inputs::name(), inputs::scale()).prop_map(move |(n, v)| {
            Req::new(Method::POST, format!("/system/scale-function/{}", inputs::percent(&n)), body(v))
        }),
        2 => (prop::sample::select(&[Method::POST, Method::PUT, Method::DELETE][..]), inputs::secret())
            .prop_map(move |(m, v)| Req::new(m, "/system/secrets", body(v))),
        1 => (
            prop::sample::select(&[Method::POST, Method::PUT, Method::DELETE, Method::GET][..]),
            prop::sample::select(&["/system/namespace/", "/system/namespace/other", "/system/namespace/new"][..]),
            inputs::namespace_body(),
        )
            .prop_map(move |(m, u, v)| Req::new(m, u, body(v))),
        1 => (inputs::name(), inputs::query()).prop_map(|(n, q)| {
            Req::new(Method::GET, format!("/system/function/{}?{q}", inputs::percent(&n)), Vec::new())
        }),
        1 => inputs::query().prop_map(|q| Req::new(Method::GET, format!("/system/logs?name=f&{q}"), Vec::new())),
    ]
}

proptest! {
    #![proptest_config(fuzz_common::config(64))]

    /// Arbitrary bytes, and arbitrary JSON, at every route that decodes a body.
    #[test]
    fn arbitrary_bodies(
        route in 0..BODY_ROUTES.len(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        v in inputs::any_json(),
        as_json in any::<bool>(),
    ) {
        let (m, uri) = BODY_ROUTES[route];
        let body = if as_json { v.to_string().into_bytes() } else { bytes };
        let mut reqs = setup();
        reqs.push(Req::new(method(m), uri, body));
        run_and_check(None, &reqs).map_err(TestCaseError::fail)?;
    }

    /// Sequences of near-valid requests over a deployed DAG: deploys and updates that join, break or
    /// rename it, scales with out-of-range counts, secrets, namespaces, status and log queries.
    #[test]
    fn near_valid_sequences(ops in prop::collection::vec(op(), 1..6)) {
        let mut reqs = setup();
        reqs.extend(ops);
        run_and_check(None, &reqs).map_err(TestCaseError::fail)?;
    }

    /// Hostile names in every path parameter and hostile query strings on every reading route.
    #[test]
    fn path_names_and_queries(n in inputs::string(), q in inputs::query()) {
        let n = inputs::percent(&n);
        let mut reqs = setup();
        for uri in [
            format!("/system/function/{n}?{q}"),
            format!("/system/functions?{q}"),
            format!("/system/secrets?{q}"),
            format!("/system/logs?{q}"),
            format!("/system/logs?name={n}&{q}"),
            format!("/system/namespace/{n}"),
            format!("/system/plan?{q}"),
        ] {
            reqs.push(Req::new(Method::GET, uri, Vec::new()));
        }
        reqs.push(Req::new(
            Method::POST,
            format!("/system/scale-function/{n}?{q}"),
            json!({"serviceName": n, "replicas": 1}).to_string(),
        ));
        run_and_check(None, &reqs).map_err(TestCaseError::fail)?;
    }
}
