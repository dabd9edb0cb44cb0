//! In-process tests of the HTTP contract (no sockets for the provider itself) over the fixed backend.
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use serde_json::{Value, json};

use super::*;
use crate::catalog::Catalog;
use crate::config::{Config, Credentials};

/// The request type `TestRequest::to_request` builds (actix-http's, not re-exported by actix-web).
type Request = actix_http::Request;
use crate::backend::fixed::FixedBackend;

mod fuzz;
mod proxy;
mod system;

pub(super) struct Env {
    /// Keeps the state directory alive for the test.
    pub _dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
}

pub(super) fn env_with(upstream: Option<SocketAddr>, creds: Option<Credentials>) -> Env {
    env_configured(upstream, |c| c.credentials = creds)
}

/// Like [`env_with`], with the test's own changes to the configuration.
pub(super) fn env_configured(
    upstream: Option<SocketAddr>,
    change: impl FnOnce(&mut Config),
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_owned());
    config.max_body_bytes = 64 * 1024;
    change(&mut config);
    let catalog = Arc::new(Catalog::open(dir.path(), "openfaas-fn", &[], 10).unwrap());
    let backend = Arc::new(FixedBackend::new(upstream));
    Env {
        state: web::Data::new(AppState::new(catalog, backend, &config)),
        _dir: dir,
    }
}

pub(super) fn env() -> Env {
    env_with(None, None)
}

/// One request through an in-process app: (status, headers, body).
pub(super) async fn call<S, B>(
    app: &S,
    method: Method,
    uri: &str,
    body: &[u8],
) -> (StatusCode, HeaderMap, Vec<u8>)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = TestRequest::default()
        .method(method)
        .uri(uri)
        .set_payload(body.to_vec())
        .to_request();
    let res = test::call_service(app, req).await;
    let (status, headers) = (res.status(), res.headers().clone());
    let body = test::read_body(res).await.to_vec();
    (status, headers, body)
}

pub(super) fn js(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

#[actix_web::test]
async fn routes_methods_and_unknown_paths() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    assert_eq!(
        call(&app, Method::GET, "/healthz", b"").await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::HEAD, "/healthz", b"").await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::POST, "/healthz", b"").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, Method::PATCH, "/system/functions", b"").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, Method::GET, "/system/nope", b"").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/system/function/", b"").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _, b) = call(&app, Method::GET, "/system/info", b"").await;
    assert_eq!(s, StatusCode::OK);
    let info = js(&b);
    assert_eq!(info["provider"], "smiless");
    assert_eq!(info["orchestration"], "fixed");
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"));
    assert!(!info["version"]["sha"].as_str().unwrap().is_empty());
}

#[actix_web::test]
async fn deploy_list_describe_echo_exactly() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    let (s, _, b) = call(&app, Method::GET, "/system/functions", b"").await;
    assert_eq!((s, b.as_slice()), (StatusCode::OK, &b"[]"[..]));
    let dep = json!({"service":"env","image":"alpine:latest","envProcess":"env","labels":null,"annotations":null,
        "envVars":{"custom_env":"x"},"constraints":["a=b","c=d"],"limits":{"memory":"5Mi","cpu":"100m"},
        "readOnlyRootFilesystem":true,"network":"ignored"});
    let (s, _, _) = call(
        &app,
        Method::POST,
        "/system/functions",
        dep.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/system/function/env?namespace=openfaas-fn&usage=false",
        b"",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let st = js(&b);
    assert_eq!(st["name"], "env");
    assert_eq!(st["namespace"], "openfaas-fn");
    assert_eq!(st["labels"], json!({"faas_function":"env"}));
    assert_eq!(st["annotations"], json!({}));
    assert_eq!(st["envVars"], json!({"custom_env":"x"}));
    assert_eq!(st["constraints"], json!(["a=b", "c=d"]));
    assert_eq!(st["limits"], json!({"memory":"5Mi","cpu":"100m"}));
    assert!(st.get("requests").is_none());
    assert_eq!(st["readOnlyRootFilesystem"], true);
    assert_eq!(st["replicas"], 1);
    assert!(
        st["createdAt"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    let (_, _, b) = call(
        &app,
        Method::GET,
        "/system/functions?namespace=openfaas-fn",
        b"",
    )
    .await;
    assert_eq!(js(&b).as_array().unwrap().len(), 1);
    assert_eq!(js(&b)[0], st);
    // Redeploying is a conflict; PUT updates; PUT of an unknown function is 404 (faas-cli then POSTs).
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/system/functions",
            dep.to_string().as_bytes()
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let upd = json!({"service":"env","image":"alpine:3","envProcess":"env","labels":{"a":"b"}});
    assert_eq!(
        call(
            &app,
            Method::PUT,
            "/system/functions",
            upd.to_string().as_bytes()
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    let st = js(&call(&app, Method::GET, "/system/function/env", b"").await.2);
    assert_eq!(st["image"], "alpine:3");
    assert_eq!(st["labels"], json!({"a":"b","faas_function":"env"}));
    assert!(st.get("envVars").is_none(), "envVars omitted when empty");
    let other = json!({"service":"other","image":"x","envProcess":"cat"});
    assert_eq!(
        call(
            &app,
            Method::PUT,
            "/system/functions",
            other.to_string().as_bytes()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Delete: namespace from the query when the body lacks it; then 404.
    let del = br#"{"functionName":"env"}"#;
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/system/functions?namespace=openfaas-fn",
            del
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&app, Method::DELETE, "/system/functions", del).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/system/function/env", b"").await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn bad_input_is_4xx_with_a_message() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    for (body, want) in [
        (
            r#"{"service":"Bad_Name","image":"x"}"#,
            "must be a valid DNS entry",
        ),
        (r#"{"service":"ok","image":""}"#, "image is required"),
        (r#"{"image":"x"}"#, "service is required"),
        (r#"{"service":"ok""#, "failed to unmarshal"),
        (
            r#"{"service":"ok","image":"x","namespace":"ghost"}"#,
            "not allowed",
        ),
        (
            r#"{"service":"ok","image":"x","secrets":["missing"]}"#,
            "unable to fetch secrets",
        ),
        (
            r#"{"service":"ok","image":"x","labels":{"com.openfaas.scale.min":"99"}}"#,
            "exceeds",
        ),
    ] {
        let (s, _, b) = call(&app, Method::POST, "/system/functions", body.as_bytes()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            String::from_utf8_lossy(&b).contains(want),
            "{body}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    let big = vec![b' '; 65 * 1024];
    assert_eq!(
        call(&app, Method::POST, "/system/functions", &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        call(&app, Method::GET, "/system/functions?namespace=ghost", b"")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/system/functions",
            br#"{"functionName":""}"#
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
}

#[actix_web::test]
async fn scale_records_desired_synchronously() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    let dep = br#"{"service":"s","image":"x","envProcess":"cat","labels":{"com.openfaas.scale.min":"2"}}"#;
    call(&app, Method::POST, "/system/functions", dep).await;
    assert_eq!(
        js(&call(&app, Method::GET, "/system/function/s", b"").await.2)["replicas"],
        2,
        "scale.min honoured"
    );
    let (s, _, _) = call(
        &app,
        Method::POST,
        "/system/scale-function/s?namespace=openfaas-fn",
        br#"{"serviceName":"s","replicas":0}"#,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let st = js(&call(&app, Method::GET, "/system/function/s", b"").await.2);
    assert_eq!(
        (st["replicas"].as_u64(), st["availableReplicas"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/system/scale-function/s",
            br#"{"serviceName":"s","replicas":3}"#
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        js(&call(&app, Method::GET, "/system/function/s", b"").await.2)["replicas"],
        3
    );
    for (uri, body, want) in [
        (
            "/system/scale-function/s",
            &br#"{"serviceName":"s","replicas":11}"#[..],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/system/scale-function/s",
            br#"{"serviceName":"s","replicas":-1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/system/scale-function/s",
            br#"nope"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/system/scale-function/ghost",
            br#"{"serviceName":"ghost","replicas":1}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/system/scale-function/s?namespace=ghost",
            br#"{"serviceName":"s","replicas":1}"#,
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(
            call(&app, Method::POST, uri, body).await.0,
            want,
            "{uri} {}",
            String::from_utf8_lossy(body)
        );
    }
}
