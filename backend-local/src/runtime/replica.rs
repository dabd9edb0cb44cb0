//! One replica slot and its supervisor task: start the watchdog on a free port, capture its output, poll
//! its health, restart it with backoff when it exits, and stop it (SIGTERM, then SIGKILL) when asked.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::{Notify, watch};

use super::function::Function;
use super::launch::{self, Launcher};
use super::{LogLine, ReplicaSpec};
use function_kit::watchdog::config::READY_MARKER;
use function_kit::watchdog::process::kill_group;

/// Health polls while a replica starts: frequent, so a cold start is noticed within tens of ms.
const STARTING_POLL: Duration = Duration::from_millis(20);
/// Health polls once ready (to notice a replica that stops answering).
const READY_POLL: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A replica that ran this long before exiting is restarted without accumulated backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// Longest accepted output line; longer ones are cut.
const MAX_LINE: usize = 64 * 1024;

/// The health-check client shared by all supervisors.
pub type Prober = Client<HttpConnector, Empty<Bytes>>;

/// One replica slot. Its process may be restarted (on a new port) but the slot keeps its id.
pub struct Replica {
    pub id: String,
    pub spec: Arc<ReplicaSpec>,
    pub generation: u64,
    addr: Mutex<Option<SocketAddr>>,
    pub(super) ready: AtomicBool,
    /// Out of rotation: scaling down or replaced; about to stop.
    retiring: AtomicBool,
    pid: AtomicU32,
    stop: watch::Sender<bool>,
    /// Woken when the watchdog logs that it is ready: probe now rather than at the next poll.
    hint: Notify,
}

impl Replica {
    pub fn new(id: String, spec: Arc<ReplicaSpec>, generation: u64) -> Self {
        Self {
            id,
            spec,
            generation,
            addr: Mutex::new(None),
            ready: AtomicBool::new(false),
            retiring: AtomicBool::new(false),
            pid: AtomicU32::new(0),
            stop: watch::Sender::new(false),
            hint: Notify::new(),
        }
    }

    /// Ready and in rotation.
    pub fn serving(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.retiring.load(Ordering::Acquire)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn is_retiring(&self) -> bool {
        self.retiring.load(Ordering::Acquire)
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Someone found the replica unreachable: not ready until the health check, asked to run now, says
    /// so again. Returns whether it was ready.
    pub fn suspect(&self) -> bool {
        let was = self.ready.swap(false, Ordering::AcqRel);
        self.hint.notify_one();
        was
    }

    /// Takes the replica out of rotation.
    pub fn retire(&self) {
        self.retiring.store(true, Ordering::Release);
    }

    /// Asks the supervisor to stop the process and end.
    pub fn stop(&self) {
        self.retire();
        self.stop.send_replace(true);
    }

    /// Kills the process group now (used when the runtime itself goes away).
    pub fn kill_now(&self) {
        let pid = self.pid.load(Ordering::Acquire);
        if pid != 0 {
            kill_group(pid, Signal::KILL);
        }
    }
}

/// Keeps one replica running until it is stopped; then removes it from its function.
pub async fn supervise(f: Arc<Function>, r: Arc<Replica>, launcher: Arc<Launcher>, prober: Prober) {
    let mut stop = r.stop.subscribe();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        let started = Instant::now();
        let stopped = match run_once(&f, &r, &launcher, &prober, &mut stop).await {
            Ok(stopped) => stopped,
            Err(msg) => {
                f.log(&r.id, format!("cannot start replica: {msg}"));
                false
            }
        };
        set_ready(&f, &r, false);
        if stopped || *stop.borrow() {
            break;
        }
        if started.elapsed() >= STABLE_RUN {
            backoff = FIRST_BACKOFF;
        }
        f.log(
            &r.id,
            format!("replica restarts in {} ms", backoff.as_millis()),
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    let _ = std::fs::remove_dir_all(launcher.replica_dir(&f.key, &r.id));
    f.forget(&r.id);
}

/// Runs the process once. `Ok(true)`: stopped on request; `Ok(false)`: the process exited by itself.
async fn run_once(
    f: &Arc<Function>,
    r: &Arc<Replica>,
    launcher: &Launcher,
    prober: &Prober,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, String> {
    // From here: the runtime's share of a start (scratch directory, process start) counts too.
    let started = std::time::Instant::now();
    let addr = launch::free_port().map_err(|e| format!("no free port: {e}"))?;
    let cmd = launcher
        .command(&f.key, &r.id, &r.spec, addr.port())
        .map_err(|e| e.to_string())?;
    let mut child = launcher.spawn(cmd).await.map_err(|e| e.to_string())?;
    let pid = child.id().unwrap_or(0);
    r.pid.store(pid, Ordering::Release);
    *r.addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(capture(f.clone(), r.clone(), out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(capture(f.clone(), r.clone(), err));
    }
    let health: hyper::Uri = format!("http://{addr}/_/health")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut poll = STARTING_POLL;
    // The classic-mode emulator initialises on its first call: it serves requests only once a warm-up
    // call has initialised it (see `function_kit::emulator`), so no request pays an initialisation a scale-up
    // started. In http mode it initialises before it listens, so the watchdog is healthy only then.
    let http_mode = r
        .spec
        .env
        .get("mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("http"));
    let mut initialised = http_mode || !function_kit::emulator::is_emulator(&r.spec.fprocess);
    let mut warming: Option<Pin<Box<dyn Future<Output = bool> + Send>>> = None;
    // Only the first readiness of this process is a start (a replica may flap later).
    let mut ever_ready = false;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                f.log(&r.id, format!("replica exited: {status}"));
                return Ok(false);
            }
            _ = stop.changed() => {
                set_ready(f, r, false);
                terminate(&mut child, pid, &r.spec).await;
                return Ok(true);
            }
            answered = async {
                match warming.as_mut() {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            }, if warming.is_some() => {
                warming = None;
                initialised = true;
                if !answered {
                    f.log(&r.id, "warm-up call failed: the first request initialises the replica".into());
                } else {
                    f.started(started.elapsed().as_secs_f64());
                }
                ever_ready = true;
                set_ready(f, r, true);
                poll = READY_POLL;
            }
            () = wake(poll, &r.hint), if warming.is_none() => {
                let healthy = probe(prober, &health).await;
                if healthy && !initialised {
                    warming = Some(Box::pin(warm_up(prober.clone(), addr, warm_up_limit(&r.spec))));
                    continue;
                }
                if healthy && !r.is_ready() && !ever_ready {
                    f.started(started.elapsed().as_secs_f64());
                }
                ever_ready |= healthy;
                set_ready(f, r, healthy);
                poll = if healthy { READY_POLL } else { STARTING_POLL };
            }
        }
    }
}

/// The longest a warm-up call may take: the function's exec timeout, or a bound when it has none.
fn warm_up_limit(spec: &ReplicaSpec) -> Duration {
    if spec.exec_timeout.is_zero() {
        Duration::from_secs(600)
    } else {
        spec.exec_timeout
    }
}

/// A warm-up call (initialise, no inference) to the replica at `addr`; whether it answered 2xx.
async fn warm_up(prober: Prober, addr: SocketAddr, limit: Duration) -> bool {
    let Ok(req) = hyper::Request::post(format!("http://{addr}/"))
        .header(function_kit::emulator::WARMUP_HEADER, "1")
        .body(Empty::new())
    else {
        return false;
    };
    matches!(
        tokio::time::timeout(limit, prober.request(req)).await,
        Ok(Ok(resp)) if resp.status().is_success()
    )
}

/// The next poll time, or earlier when the watchdog says it is ready.
async fn wake(poll: Duration, hint: &Notify) {
    tokio::select! {
        _ = tokio::time::sleep(poll) => {}
        _ = hint.notified() => {}
    }
}

async fn probe(prober: &Prober, uri: &hyper::Uri) -> bool {
    let Ok(req) = hyper::Request::get(uri.clone()).body(Empty::new()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, prober.request(req)).await,
        Ok(Ok(resp)) if resp.status() == hyper::StatusCode::OK
    )
}

fn set_ready(f: &Function, r: &Replica, ready: bool) {
    if r.ready.swap(ready, Ordering::AcqRel) != ready {
        f.changed();
    }
}

/// SIGTERM lets the watchdog finish in-flight requests; SIGKILL after a grace period.
async fn terminate(child: &mut tokio::process::Child, pid: u32, spec: &ReplicaSpec) {
    if pid != 0 {
        kill_group(pid, Signal::TERM);
    }
    let grace = spec
        .exec_timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
        + Duration::from_secs(2);
    if tokio::time::timeout(grace, child.wait()).await.is_err() && pid != 0 {
        kill_group(pid, Signal::KILL);
        let _ = child.wait().await;
    }
}

/// Copies a replica's output into the function's log, line by line.
async fn capture(f: Arc<Function>, r: Arc<Replica>, out: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(out);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        if text.ends_with(READY_MARKER) {
            // Only a hint: readiness is still decided by the health check.
            r.hint.notify_one();
        }
        f.logs.push(LogLine {
            name: f.key.name.clone(),
            namespace: f.key.namespace.clone(),
            instance: r.id.clone(),
            timestamp: jiff::Timestamp::now(),
            text,
        });
    }
}
