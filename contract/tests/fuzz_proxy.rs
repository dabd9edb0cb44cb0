//! Fuzzing of the invocation proxy and the DAG runner (`/function/*`), in process over the fixed backend
//! whose replicas all answer at an echo upstream: hostile function names and paths (the proxy's name
//! validation), arbitrary bodies, headers and content types through a ready DAG (the runner's JSON
//! composition of member outputs), and DAGs declared by fuzzed annotations. No panic; a 5xx only for what
//! the provider could not do, with a message ([`fuzz_common::check_proxy`]).
mod fuzz_common;

use actix_web::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};

use fuzz_common::{Req, echo_upstream, inputs, run_and_check, run_case};

/// faas-provider's name pattern for the `{name}` segment.
fn valid_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn deploy(name: &str, annotations: Value) -> Req {
    Req::new(
        Method::POST,
        "/system/functions",
        json!({"service": name, "image": "i", "envProcess": "cat", "annotations": annotations})
            .to_string(),
    )
}

/// A diamond DAG `d`: `f` → {`g`, `h`} → `j`, so `j` gets a JSON object of two member outputs.
fn diamond() -> Vec<Req> {
    vec![
        deploy(
            "f",
            json!({"com.smiless.dag":"d","com.smiless.next":"g,h","com.smiless.sla":"5s"}),
        ),
        deploy("g", json!({"com.smiless.dag":"d","com.smiless.next":"j"})),
        deploy("h", json!({"com.smiless.dag":"d","com.smiless.next":"j"})),
        deploy("j", json!({"com.smiless.dag":"d"})),
    ]
}

/// Path characters a URI may carry unencoded, plus the encoded rest.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[-a-zA-Z0-9_.!$&'()*+,;=:@~%]{0,16}",
        2 => inputs::string().prop_map(|s| inputs::percent(&s)),
        1 => prop::sample::select(&["f", "d", "f.openfaas-fn", "d.other", "f.", ".f", "f..x", "."][..])
            .prop_map(str::to_owned),
    ]
}

fn any_method() -> impl Strategy<Value = Method> {
    prop::sample::select(
        &[
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::HEAD,
            Method::TRACE,
            Method::CONNECT,
        ][..],
    )
}

/// Header values a client may send (visible ASCII and spaces), for headers the proxy and runner read.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(
        &[
            "content-type",
            "x-call-id",
            "x-start-time",
            "connection",
            "x-forwarded-for",
            "x-smiless-batch",
            "te",
            "x-anything",
        ][..],
    )
    .prop_map(str::to_owned);
    let value = prop_oneof![
        prop::sample::select(
            &[
                "application/json",
                "text/plain",
                "keep-alive, x-anything",
                "-1",
                ""
            ][..]
        )
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
    ];
    prop::collection::vec((name, value), 0..4)
}

proptest! {
    #![proptest_config(fuzz_common::config(48))]

    /// Any segment and rest of path: a name outside the pattern is 404, anything else is routed, and every
    /// answer passes the proxy's rule.
    #[test]
    fn names_and_paths(seg in segment(), rest in "(/[-a-zA-Z0-9_.%~]{0,8}){0,3}", m in any_method()) {
        let uri = format!("/function/{seg}{rest}");
        prop_assume!(uri.parse::<actix_web::http::Uri>().is_ok());
        let mut reqs = diamond();
        reqs.push(Req::new(m.clone(), uri.clone(), b"x".to_vec()));
        let out = run_case(Some(echo_upstream()), &reqs);
        for (req, resp) in &out {
            if fuzz_common::is_proxy(&req.uri) {
                fuzz_common::check_proxy(req, resp).map_err(TestCaseError::fail)?;
            } else {
                fuzz_common::check_api(req, resp).map_err(TestCaseError::fail)?;
            }
        }
        let status = out[reqs.len() - 1].1.status;
        let path = uri.split('?').next().unwrap_or_default();
        if !valid_segment(path.trim_start_matches("/function/").split('/').next().unwrap_or_default()) {
            prop_assert_eq!(status, StatusCode::NOT_FOUND, "{} {}", m, uri);
        }
    }

    /// Arbitrary bodies, content types and headers through a ready diamond DAG: the echo members always
    /// answer, so the DAG must too (200), and the join's output must hold both branches.
    #[test]
    fn dag_bodies(body in prop::collection::vec(any::<u8>(), 0..2048), v in inputs::any_json(), as_json in any::<bool>(), hs in headers()) {
        let body = if as_json { v.to_string().into_bytes() } else { body };
        let mut reqs = diamond();
        let mut r = Req::new(Method::POST, "/function/d", body);
        r.headers = hs;
        reqs.push(r);
        let out = run_case(Some(echo_upstream()), &reqs);
        let (req, resp) = &out[reqs.len() - 1];
        fuzz_common::check_proxy(req, resp).map_err(TestCaseError::fail)?;
        prop_assert_eq!(resp.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&resp.body));
        let joined: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| TestCaseError::fail(format!("join output is not JSON: {e}")))?;
        prop_assert!(joined.get("g").is_some() && joined.get("h").is_some(), "{}", joined);
    }

    /// DAGs declared by fuzzed annotations over four members, then invoked: whatever the declaration, the
    /// deploys, the listings and the invocation pass their rules.
    #[test]
    fn fuzzed_dags(anns in prop::collection::vec(dag_annotations(), 1..5), body in inputs::string()) {
        let mut reqs: Vec<Req> = ["f", "g", "h", "j", "k"]
            .iter()
            .zip(anns)
            .map(|(n, a)| deploy(n, a))
            .collect();
        reqs.push(Req::new(Method::POST, "/function/d", body.clone()));
        reqs.push(Req::new(Method::GET, "/function/d.openfaas-fn/x?y=1", body));
        run_and_check(Some(echo_upstream()), &reqs).map_err(TestCaseError::fail)?;
    }
}

/// `com.smiless.*` annotations over the members f, g, h, j, k, mostly well-formed.
fn dag_annotations() -> impl Strategy<Value = Value> {
    let members = prop::sample::subsequence(&["f", "g", "h", "j", "k", "d", "x"][..], 0..3)
        .prop_map(|v| v.join(","));
    (
        prop_oneof![4 => Just("d".to_owned()), 1 => inputs::string()],
        prop_oneof![4 => members, 1 => inputs::string()],
        prop::option::of(prop_oneof![
            prop::sample::select(&["2s", "500ms", "1", "0", "-1s", "1e-320ms", "1e308"][..])
                .prop_map(str::to_owned),
            inputs::string()
        ]),
        prop::option::of(inputs::string()),
    )
        .prop_map(|(dag, next, sla, profile)| {
            let mut m = serde_json::Map::new();
            m.insert("com.smiless.dag".into(), dag.into());
            m.insert("com.smiless.next".into(), next.into());
            if let Some(s) = sla {
                m.insert("com.smiless.sla".into(), s.into());
            }
            if let Some(p) = profile {
                m.insert("com.smiless.profile".into(), p.into());
            }
            Value::Object(m)
        })
}
