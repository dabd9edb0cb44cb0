//! http mode: `fprocess` runs once as an HTTP server and every request is streamed to `upstream_url`.
//!
//! If `fprocess` exits, the watchdog exits too (with status 1) so that its supervisor sees the failure
//! and restarts the replica, rather than a watchdog that answers but forwards to nothing.

use std::process::Stdio;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{Body, State, WatchdogError, log_line, process, text};

/// The upstream server and a keep-alive client to it.
#[derive(Debug)]
pub struct Upstream {
    base: String,
    /// `host:port` for the readiness probe.
    authority: String,
    client: Client<HttpConnector, Incoming>,
    /// For the items of a split batch call (whole bodies).
    items: Client<HttpConnector, http_body_util::Full<bytes::Bytes>>,
    probe: Client<HttpConnector, http_body_util::Empty<bytes::Bytes>>,
}

impl Upstream {
    pub fn new(url: &str) -> Result<Self, WatchdogError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| WatchdogError::Config(format!("upstream_url={url}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(WatchdogError::Config(format!(
                "upstream_url={url} must be an http:// URL"
            )));
        }
        let Some(auth) = uri.authority() else {
            return Err(WatchdogError::Config(format!(
                "upstream_url={url} has no host"
            )));
        };
        let authority = match auth.port_u16() {
            Some(_) => auth.as_str().to_string(),
            None => format!("{}:80", auth.host()),
        };
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        // Keep-alive to the upstream; the timer lets idle connections expire (without one they never do).
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn.clone());
        let items = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn.clone());
        let probe = Client::builder(TokioExecutor::new()).build(conn);
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            authority,
            client,
            items,
            probe,
        })
    }

    /// Starts `fprocess` with the watchdog's environment; its output goes to the watchdog's output.
    pub fn start(&self, state: &State) -> Result<tokio::process::Child, WatchdogError> {
        log_line(&format!("Forking fprocess: {}", state.cfg.fprocess));
        let mut cmd = process::command(&state.exe, &state.cfg.process);
        cmd.env_clear()
            .envs(state.base_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd.spawn().map_err(|e| {
            WatchdogError::Start(format!("cannot start fprocess {}: {e}", state.cfg.fprocess))
        })
    }

    async fn answers(&self, ready_path: Option<&str>) -> bool {
        match ready_path {
            // No probe path: the upstream is up once it accepts connections (an HTTP request could cost
            // a whole inference).
            None => tokio::net::TcpStream::connect(&self.authority)
                .await
                .is_ok(),
            Some(path) => {
                let Ok(uri) = format!("{}{}", self.base, path).parse::<Uri>() else {
                    return false;
                };
                let Ok(req) = Request::get(uri).body(http_body_util::Empty::new()) else {
                    return false;
                };
                matches!(self.probe.request(req).await, Ok(r) if r.status().is_success())
            }
        }
    }

    /// Streams one request to the upstream and its response back.
    pub async fn forward(&self, state: &State, req: Request<Incoming>) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{}{pq}", self.base).parse::<Uri>() else {
            return text(
                StatusCode::BAD_REQUEST,
                "cannot build the upstream URL from the request path",
            );
        };
        parts.uri = uri;
        parts.version = hyper::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        // Let the client name the upstream host, as a fresh request to upstream_url would.
        parts.headers.remove(header::HOST);
        let call = self.client.request(Request::from_parts(parts, body));
        let result = if state.cfg.exec_timeout.is_zero() {
            Ok(call.await)
        } else {
            tokio::time::timeout(state.cfg.exec_timeout, call).await
        };
        match result {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Ok(Err(e)) => {
                log_line(&format!("Upstream request failed: {e}"));
                text(
                    StatusCode::BAD_GATEWAY,
                    format!("Can't reach the function's upstream: {e}"),
                )
            }
            Err(_) => text(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "exec_timeout of {} exceeded",
                    humantime::format_duration(state.cfg.exec_timeout)
                ),
            ),
        }
    }
}

impl Upstream {
    /// A framed batch call to an upstream that does not answer batches itself: one request per item,
    /// one after the other, their answers framed back in order (docs/batching.md).
    pub async fn forward_items(&self, state: &State, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                );
            }
        };
        let items = match super::batch::items(&parts.headers, &body) {
            Ok(items) => items,
            Err(e) => return super::batch::bad(&e),
        };
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{}{pq}", self.base).parse::<Uri>() else {
            return text(
                StatusCode::BAD_REQUEST,
                "cannot build the upstream URL from the request path",
            );
        };
        let mut answers = Vec::with_capacity(items.len());
        for item in items {
            let mut headers = super::batch::item_headers(&parts.headers, &item);
            strip_hop_by_hop(&mut headers);
            headers.remove(header::HOST);
            let mut r = Request::new(http_body_util::Full::new(item.body));
            *r.method_mut() = parts.method.clone();
            *r.uri_mut() = uri.clone();
            *r.headers_mut() = headers;
            answers.push(self.item(state, r).await);
        }
        super::batch::framed(&answers)
    }

    /// One item's answer: the upstream's status, content type and body, or a 502/504 of its own.
    async fn item(
        &self,
        state: &State,
        r: Request<http_body_util::Full<bytes::Bytes>>,
    ) -> crate::batch::Part {
        let fail = |status: StatusCode, msg: String| crate::batch::Part {
            status: status.as_u16(),
            content_type: Some("text/plain".into()),
            body: msg.into(),
        };
        let call = async {
            let resp = self.items.request(r).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(crate::batch::Part {
                status,
                content_type,
                body,
            })
        };
        let result = if state.cfg.exec_timeout.is_zero() {
            Ok(call.await)
        } else {
            tokio::time::timeout(state.cfg.exec_timeout, call).await
        };
        match result {
            Ok(Ok(part)) => part,
            Ok(Err(e)) => fail(
                StatusCode::BAD_GATEWAY,
                format!("Can't reach the function's upstream: {e}"),
            ),
            Err(_) => fail(StatusCode::GATEWAY_TIMEOUT, "exec_timeout exceeded".into()),
        }
    }
}

/// Headers that describe one connection, not the message; a proxy must not forward them.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Polls the upstream until it answers, then marks the replica ready. A refused connection on loopback
/// costs microseconds, so polling every 5 ms notices a cold start almost at once.
pub async fn wait_ready(state: std::sync::Arc<State>) {
    let Some(up) = &state.upstream else { return };
    let every = match state.cfg.ready_path {
        None => Duration::from_millis(5),
        Some(_) => Duration::from_millis(20),
    };
    loop {
        if up.answers(state.cfg.ready_path.as_deref()).await {
            log_line(&format!("Upstream {} is ready", up.base));
            state.set_ready(true);
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits for `fprocess` to exit; never resolves when there is none (classic mode).
pub async fn wait_child(child: &mut Option<tokio::process::Child>) -> String {
    match child {
        Some(c) => match c.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => format!("wait failed: {e}"),
        },
        None => std::future::pending().await,
    }
}

/// Stops `fprocess` and everything in its process group.
pub async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        super::stop_group(pid, child).await;
    }
}
