//! Secrets, namespaces, auth, metrics and logs routes, in-process.
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use base64::Engine;
use serde_json::json;

use super::{app, call, env, env_with, js};
use crate::config::Credentials;

#[actix_web::test]
async fn secrets_crud_status_codes_and_no_values() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    let raw = base64::engine::general_purpose::STANDARD.encode([0u8, 159, 146, 150]);
    let create = json!({"name":"secret-bytes","value":"ignored","rawValue":raw}).to_string();
    assert_eq!(
        call(&app, Method::POST, "/system/secrets", create.as_bytes())
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&app, Method::POST, "/system/secrets", create.as_bytes())
            .await
            .0,
        StatusCode::CONFLICT
    );
    let file = e
        .state
        .catalog
        .secrets_dir("openfaas-fn")
        .join("secret-bytes");
    assert_eq!(std::fs::read(&file).unwrap(), [0u8, 159, 146, 150]);
    let (s, _, b) = call(&app, Method::GET, "/system/secrets", b"").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        js(&b),
        json!([{"name":"secret-bytes","namespace":"openfaas-fn"}])
    );
    let upd = br#"{"name":"secret-bytes","namespace":"openfaas-fn","value":"v2"}"#;
    assert_eq!(
        call(&app, Method::PUT, "/system/secrets", upd).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"v2");
    assert_eq!(
        call(
            &app,
            Method::PUT,
            "/system/secrets",
            br#"{"name":"nope","value":"x"}"#
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/system/secrets",
            br#"{"name":"../etc","value":"x"}"#
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/system/secrets",
            br#"{"name":"","value":"x"}"#
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let del = br#"{"name":"secret-bytes"}"#;
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/system/secrets?namespace=openfaas-fn",
            del
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&app, Method::DELETE, "/system/secrets", del).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(!file.exists());
    assert_eq!(
        call(&app, Method::GET, "/system/secrets?namespace=ghost", b"")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn namespaces_list_and_crud() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    assert_eq!(
        js(&call(&app, Method::GET, "/system/namespaces", b"").await.2),
        json!(["openfaas-fn"])
    );
    let body =
        br#"{"name":"certifier-test","labels":{"openfaas":"1"},"annotations":{"openfaas":"1"}}"#;
    assert_eq!(
        call(&app, Method::POST, "/system/namespace/", body).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, Method::POST, "/system/namespace/", body).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        js(&call(&app, Method::GET, "/system/namespaces", b"").await.2),
        json!(["certifier-test", "openfaas-fn"])
    );
    let (s, _, b) = call(&app, Method::GET, "/system/namespace/certifier-test", b"").await;
    assert_eq!(
        (s, js(&b)["labels"]["openfaas"].as_str()),
        (StatusCode::OK, Some("1"))
    );
    assert_eq!(
        call(&app, Method::PUT, "/system/namespace/other", body)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, Method::PUT, "/system/namespace/certifier-test", body)
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&app, Method::GET, "/system/namespace/ghost", b"")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/system/namespace/certifier-test",
            b""
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/system/namespace/certifier-test",
            b""
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn basic_auth_like_faas_provider() {
    let creds = Credentials {
        user: "admin".into(),
        password: "pw".into(),
    };
    let e = env_with(None, Some(creds));
    let app = test::init_service(app(e.state.clone())).await;
    let (s, h, b) = call(&app, Method::GET, "/system/functions", b"").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.get("www-authenticate").unwrap(),
        "Basic realm=\"Restricted\""
    );
    assert_eq!(b, b"invalid credentials");
    for open in ["/healthz", "/system/namespaces", "/metrics"] {
        assert_eq!(
            call(&app, Method::GET, open, b"").await.0,
            StatusCode::OK,
            "{open}"
        );
    }
    // Wrong method is 405 before auth, as with gorilla/mux.
    assert_eq!(
        call(&app, Method::PATCH, "/system/info", b"").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:pw")
    );
    let req = TestRequest::get()
        .uri("/system/info")
        .insert_header(("Authorization", auth))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:nope")
    );
    let req = TestRequest::post()
        .uri("/system/secrets")
        .insert_header(("Authorization", bad))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn metrics_count_requests_by_route() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    call(&app, Method::GET, "/healthz", b"").await;
    call(&app, Method::GET, "/system/function/ghost", b"").await;
    call(&app, Method::POST, "/function/ghost/x/y", b"").await;
    let (s, h, b) = call(&app, Method::GET, "/metrics", b"").await;
    let text = String::from_utf8(b).unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h.get("content-type").unwrap().to_str().unwrap(),
        crate::prom::CONTENT_TYPE
    );
    assert!(
        text.ends_with("\n# EOF\n"),
        "one exposition, ended once: {text}"
    );
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(
        text.contains(r#"provider_http_requests_total{code="200",method="GET",path="/healthz"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"provider_http_requests_total{code="404",method="GET",path="/system/function/{name}"} 1"#), "{text}");
    assert!(
        text.contains(
            r#"provider_http_requests_total{code="503",method="POST",path="/function/{name}"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("provider_http_request_duration_seconds_bucket"));
}

#[actix_web::test]
async fn logs_validate_and_stream_ndjson() {
    let e = env();
    let app = test::init_service(app(e.state.clone())).await;
    assert_eq!(
        call(&app, Method::GET, "/system/logs", b"").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        call(&app, Method::GET, "/system/logs?name=ghost", b"")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    call(
        &app,
        Method::POST,
        "/system/functions",
        br#"{"service":"f","image":"x","envProcess":"cat"}"#,
    )
    .await;
    assert_eq!(
        call(&app, Method::GET, "/system/logs?name=f&tail=abc", b"")
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (s, h, _) = call(
        &app,
        Method::GET,
        "/system/logs?name=f&follow=false&tail=-1",
        b"",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("content-type").unwrap(), "application/x-ndjson");
}
