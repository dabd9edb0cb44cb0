//! The invocation proxy: `/function/{name}[.{ns}][/{rest}]` → a ready replica (contract §1.13).
//!
//! - Every verb of faas-provider (GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD); others → 405.
//! - The path after `/function/NAME` (or `/`) and the raw query go upstream unchanged; headers go both
//!   ways except hop-by-hop ones; `X-Forwarded-Host`/`-For`, `X-Call-Id` and `X-Start-Time` are added
//!   when absent (the last two are also echoed on the response).
//! - Bodies stream: small request bodies with a known length are read at once (cheaper than a pump
//!   task), others are pumped through a channel; responses are always streamed, never buffered whole.
//! - Redirects are not followed: the client never follows them, so a 302 reaches the caller.
//! - A function at 0 desired replicas is scaled to max(`com.openfaas.scale.min`, 1) and the request
//!   waits up to `read_timeout` for a ready replica; none → 503 `No endpoints available for: NAME.`;
//!   an upstream failure → 500 `Can't reach service for: NAME.`; both with `X-OpenFaaS-Internal: proxy`.
//! - A request no replica saw (refused, or a pooled connection closed before it was written) goes to
//!   another ready replica or waits for one, within `read_timeout`; one already sent is never replayed
//!   ([`deliver`]). Every replica unreachable until then → the 500 above.
//! - Every request to a function is counted ([`crate::observe::requests`]: started, in flight until the
//!   upstream's response head is back or the request fails) for the control loop's autoscaler.
//!
//! Each HTTP worker owns its own pool of keep-alive upstream connections ([`pool`]), so connection
//! tasks run on the worker thread that uses them.
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::SizedStream;
use actix_web::http::header as ax;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{Either, Full, StreamBody};
use hyper::header as hy;

use crate::backend;
use crate::observe::requests::Failure;
use crate::state::AppState;

/// Request bodies up to this size with a known length are read whole before forwarding.
const BUFFER_LIMIT: u64 = 64 * 1024;

pub mod deliver;
mod pool;
pub mod runner;

use pool::UpstreamBody;
pub use pool::{Pool, PooledBody, SendError, UpstreamError};

/// Metrics label of every proxied request.
pub const PATH_LABEL: &str = "/function/{name}";

/// The proxy's routes: a static prefix scope, so the hottest path costs a prefix compare instead of a
/// regex match (actix matches dynamic segments with a regex engine); the name is checked by hand in
/// [`proxy`] against faas-provider's pattern `[-a-zA-Z_0-9.]+`. Registered first by `api::configure`.
pub fn scope() -> actix_web::Scope {
    web::scope("/function").default_service(web::to(proxy))
}

/// faas-provider's proxy verbs; anything else on a proxy path is 405.
fn allowed(m: &actix_web::http::Method) -> bool {
    use actix_web::http::Method;
    matches!(
        *m,
        Method::GET
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
            | Method::HEAD
    )
}

/// The `{name}` segment as gorilla/mux matches it: non-empty, `[-a-zA-Z_0-9.]` only.
fn valid_segment(path: &str) -> bool {
    let Some(after) = path.strip_prefix("/function/") else {
        return false;
    };
    let seg = after.split('/').next().unwrap_or_default();
    !seg.is_empty()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An error the proxy makes itself.
fn internal(status: actix_web::http::StatusCode, msg: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("X-OpenFaaS-Internal", "proxy"))
        .content_type("text/plain; charset=utf-8")
        .body(msg)
}

/// Splits the raw path after `/function/` into (name, namespace, upstream path).
pub fn split_path(path: &str) -> (&str, &str, &str) {
    let after = path.strip_prefix("/function/").unwrap_or_default();
    let (segment, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    match segment.rfind('.') {
        Some(i) => (&segment[..i], &segment[i + 1..], rest),
        None => (segment, "", rest),
    }
}

/// Headers that describe one hop and are never forwarded.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// A random (version 4) UUID for `X-Call-Id`, hyphenated lower-case hex.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    if !valid_segment(req.uri().path()) {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("404 page not found");
    }
    if !allowed(req.method()) {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let (name, ns, rest) = split_path(req.uri().path());
    if name.is_empty() {
        return internal(
            StatusCode::BAD_REQUEST,
            "Provide a function name in the path.".into(),
        );
    }
    let ns = state.catalog.resolve_namespace(ns).to_owned();
    let no_endpoints = || {
        internal(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("No endpoints available for: {name}."),
        )
    };
    let Some(rec) = state.catalog.function(&ns, name) else {
        // Not a function: maybe a DAG (looked up only here, off the functions' hot path).
        if let Some(dag) = runner::lookup(&state, &ns, name) {
            return runner::serve(req, payload, state, dag).await;
        }
        return no_endpoints();
    };
    // Counted for the standalone autoscaler until the response's head is back or the request fails.
    let _in_flight = state.requests.start(&ns, name);
    if rec.replicas == 0 {
        // Scale from zero (the gateway may also do it; both paths converge on the same desired count).
        let target = crate::catalog::scale_min(&rec.deployment, state.catalog.max_replicas())
            .ok()
            .flatten()
            .unwrap_or(1);
        if let Err(e) = state.scale(&ns, name, u64::from(target)).await {
            tracing::warn!("scale from zero of {name}.{ns} failed: {e}");
        }
    }
    // One deadline for the whole call: waiting for a replica, retries of a request no replica saw, and
    // the response's head.
    let deadline = tokio::time::Instant::now() + state.read_timeout;
    let still_wanted = || wanted(&state, &ns, name);
    let Some(addr) =
        backend::wait_endpoint(state.backend.as_ref(), &ns, name, deadline, still_wanted).await
    else {
        return no_endpoints();
    };
    let Some(pool) = req.app_data::<std::rc::Rc<Pool>>() else {
        return internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "proxy client missing".into(),
        );
    };

    // Upstream request: method, URL (path after the name + raw query), headers.
    // Origin form (`/path?query`), as Go's client sends it: a Go watchdog would otherwise see the
    // absolute URL in `RequestURI`.
    let uri = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let method =
        hyper::Method::from_bytes(req.method().as_str().as_bytes()).unwrap_or(hyper::Method::GET);
    let mut up = hyper::Request::builder().method(method).uri(uri);
    let Some(headers) = up.headers_mut() else {
        return internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to resolve service".into(),
        );
    };
    let connection_listed: Vec<String> = req
        .headers()
        .get_all(ax::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    for (k, v) in req.headers() {
        let n = k.as_str();
        if is_hop_by_hop(n) || n == "host" || connection_listed.iter().any(|c| c == n) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            hy::HeaderName::from_bytes(n.as_bytes()),
            hy::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            headers.append(k, v);
        }
    }
    if !headers.contains_key("x-forwarded-host")
        && let Some(host) = req
            .headers()
            .get(ax::HOST)
            .and_then(|h| hy::HeaderValue::from_bytes(h.as_bytes()).ok())
    {
        headers.insert("x-forwarded-host", host);
    }
    if !headers.contains_key("x-forwarded-for")
        && let Some(peer) = req
            .peer_addr()
            .and_then(|p| hy::HeaderValue::from_str(&p.ip().to_string()).ok())
    {
        headers.insert("x-forwarded-for", peer);
    }
    let call_id = match headers.get("x-call-id") {
        Some(v) => v.clone(),
        None => {
            let v =
                hy::HeaderValue::from_str(&uuid_v4()).unwrap_or(hy::HeaderValue::from_static("0"));
            headers.insert("x-call-id", v.clone());
            v
        }
    };
    let start_time = match headers.get("x-start-time") {
        Some(v) => v.clone(),
        None => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let v = hy::HeaderValue::from(u64::try_from(nanos).unwrap_or(u64::MAX));
            headers.insert("x-start-time", v.clone());
            v
        }
    };
    let req_ct = headers.get(hy::CONTENT_TYPE).cloned();

    let body = match request_body(&req, payload).await {
        Ok(b) => b,
        Err(e) => {
            return internal(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            );
        }
    };
    let Ok(up) = up.body(body) else {
        return internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to resolve service".into(),
        );
    };

    let to = deliver::Target {
        backend: state.backend.as_ref(),
        namespace: &ns,
        name,
    };
    let resp = match deliver::deliver(pool, to, addr, up, deadline, still_wanted).await {
        Ok(r) => r,
        // Every try refused until the deadline, or sent and failed: faas-provider's answer to both.
        Err(e) => {
            tracing::debug!("upstream of {name}.{ns}: {e}");
            let how = match e {
                deliver::DeliverError::Failed(_) => Failure::Sent,
                deliver::DeliverError::Unreachable(_) => Failure::Unreachable,
                deliver::DeliverError::TimedOut => Failure::TimedOut,
            };
            state.requests.failed(&ns, name, how);
            return internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Can't reach service for: {name}."),
            );
        }
    };
    respond(&req, resp, req_ct, call_id, start_time)
}

/// Whether the catalog still wants replicas of the function: the proxy waits for a ready one only then.
fn wanted(state: &AppState, ns: &str, name: &str) -> bool {
    state
        .catalog
        .function(ns, name)
        .is_some_and(|r| r.replicas > 0)
}

/// The request body for hyper: empty, read whole (small, known length), or pumped from the payload.
async fn request_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<UpstreamBody, String> {
    let chunked = req.headers().contains_key(ax::TRANSFER_ENCODING);
    let len = req
        .headers()
        .get(ax::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (chunked, len) {
        (false, None | Some(0)) => Ok(Either::Left(Full::new(Bytes::new()))),
        (false, Some(n)) if n <= BUFFER_LIMIT => {
            let mut buf = bytes::BytesMut::with_capacity(usize::try_from(n).unwrap_or(0));
            while let Some(chunk) = payload.next().await {
                buf.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            }
            Ok(Either::Left(Full::new(buf.freeze())))
        }
        // Large or chunked: stream the payload as it arrives (the connection task runs on this thread).
        _ => Ok(Either::Right(StreamBody::new(
            payload.map(pool::to_frame as _),
        ))),
    }
}

/// Converts the upstream response, streaming its body.
fn respond(
    req: &HttpRequest,
    (parts, body): (hyper::http::response::Parts, PooledBody),
    req_ct: Option<hy::HeaderValue>,
    call_id: hy::HeaderValue,
    start_time: hy::HeaderValue,
) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (k, v) in &parts.headers {
        let n = k.as_str();
        if is_hop_by_hop(n) || n == "content-length" {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            ax::HeaderName::from_bytes(n.as_bytes()),
            ax::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out.append_header((k, v));
        }
    }
    if !parts.headers.contains_key(hy::CONTENT_TYPE) {
        let ct = req_ct.as_ref().map_or(&b"text/plain"[..], |v| v.as_bytes());
        if let Ok(v) = ax::HeaderValue::from_bytes(ct) {
            out.insert_header((ax::CONTENT_TYPE, v));
        }
    }
    for (k, v) in [("x-call-id", call_id), ("x-start-time", start_time)] {
        if !parts.headers.contains_key(k)
            && let Ok(v) = ax::HeaderValue::from_bytes(v.as_bytes())
        {
            out.insert_header((k, v));
        }
    }
    let len = parts
        .headers
        .get(hy::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body;
    match len {
        _ if req.method() == actix_web::http::Method::HEAD => match len {
            Some(n) => out.no_chunking(n).finish(),
            None => out.finish(),
        },
        // These statuses never carry a body (RFC 9110 §6.4.1).
        _ if status.is_informational()
            || status == actix_web::http::StatusCode::NO_CONTENT
            || status == actix_web::http::StatusCode::NOT_MODIFIED =>
        {
            out.finish()
        }
        Some(n) => out.body(SizedStream::new(n, stream)),
        None => out.streaming(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_faas_provider() {
        assert_eq!(split_path("/function/x"), ("x", "", "/"));
        assert_eq!(split_path("/function/x/"), ("x", "", "/"));
        assert_eq!(split_path("/function/x.ns/a/b"), ("x", "ns", "/a/b"));
        assert_eq!(split_path("/function/a.b.ns"), ("a.b", "ns", "/"));
        assert_eq!(
            split_path("/function/.openfaas-fn"),
            ("", "openfaas-fn", "/")
        );
    }

    #[test]
    fn segments_follow_the_gorilla_pattern() {
        assert!(valid_segment("/function/a.b_c-1/x"));
        for bad in [
            "/function/",
            "/function",
            "/function//x",
            "/function/a b",
            "/function/a%20b",
            "/functions/a",
        ] {
            assert!(!valid_segment(bad), "{bad}");
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4());
    }
}
