//! `smiless watchdog`: a function replica's HTTP front, configured like the OpenFaaS watchdogs.
//!
//! Two modes, chosen by `mode`:
//! - classic (unset, `streaming`, `serializing`): every request forks `fprocess` with the body on stdin
//!   and the request as `Http_*` variables; stdout is the response ([`classic`]).
//! - `http`: `fprocess` is started once and every request is streamed to `upstream_url` ([`upstream`]).
//!
//! Health: `GET /_/health` is 200 once the replica is ready and, unless `suppress_lock` is set, while the
//! lock file `$TMPDIR/.lock` exists (the watchdog writes it when ready and removes it when it stops, so
//! deleting it takes the replica out of service). `GET /_/ready` is the same, and also 503 while
//! `max_inflight` requests are running. Classic mode is ready as soon as it listens; http mode once the
//! upstream accepts connections (or answers `ready_path` with a 2xx).
//!
//! A framed batch call (docs/batching.md) is split into one request per item unless `batch_native` is
//! set ([`batch`]).
//!
//! On SIGTERM/SIGINT it stops accepting, lets in-flight requests finish, then stops `fprocess`.

pub mod batch;
pub mod classic;
pub mod config;
pub mod process;
pub mod upstream;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustix::process::Signal;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::{Config, Mode, ProcessPlan};
pub use process::exec_child;

/// Errors that stop the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("watchdog configuration: {0}")]
    Config(String),
    #[error("watchdog start-up: {0}")]
    Start(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// The response body type: a whole buffer or a streamed upstream body.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct State {
    pub cfg: Config,
    /// This binary, used as the parent-death shim when starting `fprocess`.
    pub exe: PathBuf,
    /// The environment passed to `fprocess`: the watchdog's own, less the runtime's internal variables.
    pub base_env: Vec<(OsString, OsString)>,
    ready: AtomicBool,
    lock_path: PathBuf,
    inflight: Option<Arc<Semaphore>>,
    upstream: Option<upstream::Upstream>,
}

impl State {
    /// Ready and (unless `suppress_lock`) the lock file is present.
    pub fn healthy(&self) -> bool {
        self.ready.load(Ordering::Acquire) && (self.cfg.suppress_lock || self.lock_path.exists())
    }

    fn set_ready(&self, ready: bool) {
        if !self.cfg.suppress_lock {
            if ready {
                if let Err(e) = std::fs::write(&self.lock_path, b"") {
                    log_line(&format!(
                        "cannot write lock file {}: {e}",
                        self.lock_path.display()
                    ));
                }
            } else {
                let _ = std::fs::remove_file(&self.lock_path);
            }
        }
        let was = self.ready.swap(ready, Ordering::AcqRel);
        if ready && !was {
            log_line(config::READY_MARKER);
        }
    }
}

/// Writes one log line to stderr in the Go `log` package's format (`2006/01/02 15:04:05 text`, UTC), which
/// tools written for the OpenFaaS watchdogs parse.
pub fn log_line(text: &str) {
    eprintln!(
        "{} {text}",
        jiff::Timestamp::now().strftime("%Y/%m/%d %H:%M:%S")
    );
}

/// Runs the watchdog configured by the process environment; returns the exit code.
pub fn main() -> Result<i32, WatchdogError> {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let cfg = Config::from_env(&env)?;
    // Before any thread exists, so the affinity and the mount apply to everything started later.
    process::prepare_self(&env)?;
    let exe =
        std::env::current_exe().map_err(|e| WatchdogError::Start(format!("current_exe: {e}")))?;
    let base_env = std::env::vars_os()
        .filter(|(k, _)| !config::INTERNAL_ENV.iter().any(|i| k.as_os_str() == *i))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WatchdogError::Start(format!("tokio: {e}")))?;
    rt.block_on(async move {
        let upstream = match &cfg.mode {
            Mode::Classic => None,
            Mode::Http { upstream_url } => Some(upstream::Upstream::new(upstream_url)?),
        };
        let state = Arc::new(State {
            inflight: cfg.max_inflight.map(|n| Arc::new(Semaphore::new(n))),
            cfg,
            exe,
            base_env,
            ready: AtomicBool::new(false),
            lock_path: std::env::temp_dir().join(".lock"),
            upstream,
        });
        serve(state).await
    })
}

async fn serve(state: Arc<State>) -> Result<i32, WatchdogError> {
    let addr = format!("{}:{}", state.cfg.bind, state.cfg.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| WatchdogError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let mut child = None;
    let mut readiness = None;
    match &state.upstream {
        None => state.set_ready(true),
        Some(up) => {
            let c = up.start(&state)?;
            readiness = Some(tokio::spawn(upstream::wait_ready(state.clone())));
            child = Some(c);
        }
    }
    log_line(&format!(
        "Listening on {addr} ({} mode, fprocess: {})",
        mode_name(&state.cfg.mode),
        state.cfg.fprocess
    ));

    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    if !state.cfg.read_timeout.is_zero() {
        builder.header_read_timeout(state.cfg.read_timeout);
    }
    let graceful = GracefulShutdown::new();
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let code = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let st = state.clone();
                let svc = service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(handle(st, req).await) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = term.recv() => break 0,
            _ = int.recv() => break 0,
            status = upstream::wait_child(&mut child) => {
                log_line(&format!("fprocess exited ({status}); stopping the watchdog"));
                break 1;
            }
        }
    };
    drop(listener);
    state.set_ready(false);
    if let Some(r) = readiness {
        r.abort();
    }
    if code == 0 {
        let grace = state
            .cfg
            .write_timeout
            .max(state.cfg.exec_timeout)
            .max(Duration::from_secs(1));
        if tokio::time::timeout(grace + Duration::from_secs(1), graceful.shutdown())
            .await
            .is_err()
        {
            log_line("in-flight requests did not finish in time");
        }
    }
    if let Some(mut c) = child {
        upstream::stop(&mut c).await;
    }
    Ok(code)
}

fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Classic => "classic",
        Mode::Http { .. } => "http",
    }
}

fn signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, WatchdogError> {
    tokio::signal::unix::signal(kind)
        .map_err(|e| WatchdogError::Start(format!("signal handler: {e}")))
}

/// A small whole-body response.
pub fn text(status: StatusCode, msg: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(msg.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/_/health" => {
            return if state.healthy() {
                text(StatusCode::OK, "OK")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            };
        }
        "/_/ready" => {
            let busy = state
                .inflight
                .as_ref()
                .is_some_and(|s| s.available_permits() == 0);
            return if state.healthy() && !busy {
                text(StatusCode::OK, "OK")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    if busy { "busy" } else { "not ready" },
                )
            };
        }
        _ => {}
    }
    if !state.ready.load(Ordering::Acquire) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the function is not ready yet",
        );
    }
    let _permit = match &state.inflight {
        None => None,
        Some(sem) => match sem.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                return text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Concurrent request limit exceeded. Max concurrent requests: {}",
                        state.cfg.max_inflight.unwrap_or(0)
                    ),
                );
            }
        },
    };
    let write_timeout = state.cfg.write_timeout;
    let work = dispatch(&state, req);
    if write_timeout.is_zero() {
        return work.await;
    }
    match tokio::time::timeout(write_timeout, work).await {
        Ok(resp) => resp,
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "write_timeout of {} exceeded",
                humantime::format_duration(write_timeout)
            ),
        ),
    }
}

async fn dispatch(state: &State, req: Request<Incoming>) -> Response<Body> {
    if let Some(up) = &state.upstream {
        if batch::must_split(state, req.headers()) {
            return up.forward_items(state, req).await;
        }
        return up.forward(state, req).await;
    }
    let (parts, body) = req.into_parts();
    let read = body.collect();
    let collected = if state.cfg.read_timeout.is_zero() {
        Ok(read.await)
    } else {
        tokio::time::timeout(state.cfg.read_timeout, read).await
    };
    let body = match collected {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "read_timeout exceeded while reading the request body",
            );
        }
    };
    if batch::must_split(state, &parts.headers) {
        return batch::classic(state, &parts, body).await;
    }
    let native = crate::batch::is_batch_type(
        parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
    .then(|| batch::items(&parts.headers, &body).map(|items| items.len()));
    let native = match native {
        Some(Err(e)) => return batch::bad(&e),
        Some(Ok(n)) => Some(n),
        None => None,
    };
    let meta = classic::RequestMeta {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let out = classic::invoke(state, &meta, body).await;
    let mut resp = text(out.status, out.body);
    match out.content_type {
        Some(ct) => {
            resp.headers_mut().insert(CONTENT_TYPE, ct);
        }
        None => {
            resp.headers_mut().remove(CONTENT_TYPE);
        }
    }
    // A native batch function's stdout is the framed answer of the call's items.
    if let Some(n) = native.filter(|_| out.status.is_success()) {
        batch::mark(resp.headers_mut(), n);
    }
    resp
}

/// Stops a process group politely, then firmly.
pub async fn stop_group(pid: u32, child: &mut tokio::process::Child) {
    process::kill_group(pid, Signal::TERM);
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        process::kill_group(pid, Signal::KILL);
        let _ = child.wait().await;
    }
}
