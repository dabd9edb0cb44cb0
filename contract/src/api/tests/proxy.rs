//! The proxy against a real upstream socket (the provider side stays in-process).
use std::net::SocketAddr;

use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::{app, call, env, env_configured, env_with};

async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    match req.path() {
        "/empty" => HttpResponse::NoContent().finish(),
        "/redirect" => HttpResponse::Found()
            .insert_header(("Location", "http://example.invalid/"))
            .finish(),
        "/stream" => {
            let chunks = futures::stream::iter(
                ["a", "b", "c"].map(|s| Ok::<_, std::io::Error>(web::Bytes::from(s))),
            );
            HttpResponse::Ok()
                .insert_header(("Content-Type", "text/event-stream"))
                .streaming(chunks)
        }
        _ => {
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        Value::from(v.to_str().unwrap_or("?")),
                    )
                })
                .collect();
            let out = json!({"method": req.method().as_str(), "path": req.path(), "query": req.query_string(),
                "uri": req.uri().to_string(),
                "headers": headers, "body": body.to_vec(),
                "peer": req.peer_addr().map(|p| p.to_string())});
            HttpResponse::Ok()
                .insert_header(("X-Upstream", "yes"))
                .body(out.to_string())
        }
    }
}

async fn upstream() -> SocketAddr {
    let server = HttpServer::new(|| actix_web::App::new().default_service(web::to(echo)))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    addr
}

#[actix_web::test]
async fn verbs_paths_queries_headers_and_binary_bodies() {
    let addr = upstream().await;
    let e = env_with(Some(addr), None);
    let svc = test::init_service(app(e.state.clone())).await;
    call(
        &svc,
        Method::POST,
        "/system/functions",
        br#"{"service":"echo","image":"i","envProcess":"cat"}"#,
    )
    .await;
    for m in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let (s, h, b) = call(
            &svc,
            m.clone(),
            "/function/echo.openfaas-fn/a/b?x=1&y=%20z",
            b"",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{m}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["method"], m.as_str());
        assert_eq!(v["path"], "/a/b");
        assert_eq!(v["query"], "x=1&y=%20z", "raw query preserved");
        assert_eq!(v["uri"], "/a/b?x=1&y=%20z", "origin-form request target");
        assert!(
            v["headers"]["x-call-id"]
                .as_str()
                .is_some_and(|s| s.len() == 36)
        );
        assert!(
            v["headers"]["x-start-time"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        assert_eq!(h.get("x-upstream").unwrap(), "yes");
        assert!(h.contains_key("x-call-id") && h.contains_key("x-start-time"));
        assert_eq!(
            h.get("content-type").unwrap(),
            "text/plain",
            "fallback content type"
        );
    }
    // Keep-alive: sequential calls reuse one upstream connection (same client port upstream).
    let peer = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["peer"].clone();
    let first = peer(&call(&svc, Method::GET, "/function/echo", b"").await.2);
    let second = peer(&call(&svc, Method::GET, "/function/echo", b"").await.2);
    assert!(first.is_string());
    assert_eq!(first, second, "the upstream connection was not reused");
    let (s, h, b) = call(&svc, Method::HEAD, "/function/echo", b"").await;
    assert_eq!((s, b.len()), (StatusCode::OK, 0));
    assert!(h.contains_key("content-length"));

    // Binary body, client headers and a caller-provided call id pass through unchanged.
    let payload: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let req = TestRequest::post()
        .uri("/function/echo")
        .insert_header(("X-Call-Id", "my-id"))
        .insert_header(("X-Custom", "v"))
        .insert_header(("Content-Type", "application/octet-stream"))
        .set_payload(payload.clone())
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.headers().get("x-call-id").unwrap(), "my-id");
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/octet-stream"
    );
    let v: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(v["headers"]["x-call-id"], "my-id");
    assert_eq!(v["headers"]["x-custom"], "v");
    let echoed: Vec<u8> = serde_json::from_value(v["body"].clone()).unwrap();
    assert_eq!(echoed, payload);

    let (s, _, b) = call(&svc, Method::DELETE, "/function/echo/empty", b"").await;
    assert_eq!((s, b.len()), (StatusCode::NO_CONTENT, 0));
    let (s, h, _) = call(&svc, Method::GET, "/function/echo/redirect", b"").await;
    assert_eq!(s, StatusCode::FOUND, "redirects are not followed");
    assert_eq!(h.get("location").unwrap(), "http://example.invalid/");
    let (s, h, b) = call(&svc, Method::GET, "/function/echo/stream", b"").await;
    assert_eq!((s, b.as_slice()), (StatusCode::OK, &b"abc"[..]));
    assert_eq!(h.get("content-type").unwrap(), "text/event-stream");
}

#[actix_web::test]
async fn scale_from_zero_then_invoke() {
    let addr = upstream().await;
    let e = env_with(Some(addr), None);
    let svc = test::init_service(app(e.state.clone())).await;
    call(
        &svc,
        Method::POST,
        "/system/functions",
        br#"{"service":"z","image":"i","envProcess":"cat"}"#,
    )
    .await;
    call(
        &svc,
        Method::POST,
        "/system/scale-function/z",
        br#"{"serviceName":"z","replicas":0}"#,
    )
    .await;
    let (s, _, _) = call(&svc, Method::POST, "/function/z", b"hi").await;
    assert_eq!(s, StatusCode::OK);
    let st: Value =
        serde_json::from_slice(&call(&svc, Method::GET, "/system/function/z", b"").await.2)
            .unwrap();
    assert_eq!(st["replicas"], 1, "the proxy scaled it from zero");
    // Counted for the autoscaler, and ended.
    let c = e.state.requests.sample("openfaas-fn", "z");
    assert_eq!((c.started, c.in_flight), (1, 0));
}

#[actix_web::test]
async fn proxy_errors_are_marked_internal() {
    let e = env();
    let svc = test::init_service(app(e.state.clone())).await;
    let (s, h, b) = call(&svc, Method::POST, "/function/ghost", b"").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.get("x-openfaas-internal").unwrap(), "proxy");
    assert_eq!(b, b"No endpoints available for: ghost.");
    // A name that is no function is not counted.
    assert_eq!(e.state.requests.sample("openfaas-fn", "ghost").started, 0);
    assert_eq!(
        call(&svc, Method::POST, "/function/.openfaas-fn", b"")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &svc,
            Method::from_bytes(b"PROPFIND").unwrap(),
            "/function/x",
            b""
        )
        .await
        .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&svc, Method::GET, "/function/", b"").await.0,
        StatusCode::NOT_FOUND
    );

    // A ready endpoint that refuses connections: retried (the request was never sent) until the read
    // timeout, then 500 "Can't reach service".
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let timeout = std::time::Duration::from_millis(300);
    let e = env_configured(Some(closed), |c| c.read_timeout = timeout);
    let svc = test::init_service(app(e.state.clone())).await;
    call(
        &svc,
        Method::POST,
        "/system/functions",
        br#"{"service":"f","image":"i","envProcess":"cat"}"#,
    )
    .await;
    let asked = std::time::Instant::now();
    let (s, h, b) = call(&svc, Method::GET, "/function/f", b"").await;
    let waited = asked.elapsed();
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.get("x-openfaas-internal").unwrap(), "proxy");
    assert_eq!(b, b"Can't reach service for: f.");
    assert!(
        waited >= timeout - std::time::Duration::from_millis(50) && waited < timeout * 10,
        "retried until the read timeout: {waited:?}"
    );
    // A failed request still ends.
    let c = e.state.requests.sample("openfaas-fn", "f");
    assert_eq!((c.started, c.in_flight), (1, 0));
}
