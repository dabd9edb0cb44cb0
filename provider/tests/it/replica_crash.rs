//! No lost requests on a replica crash: two real replicas (watchdog in http mode + `smiless-fn`) under a
//! steady stream of requests through `/function/NAME`, one killed with SIGKILL.
//!
//! `SMILESS_IT_SMILESS=/path/to/smiless` runs these against another build of the provider (e.g. main's,
//! for a before/after count); the numbers are printed either way.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::client::{get, send_json};
use crate::provider::{Provider, descendants};

/// Concurrent clients of the load.
const CLIENTS: usize = 8;
/// Replica kills between which the load pauses.
const ROUNDS: usize = 4;

/// Load counters, shared by the clients.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Set: every client finishes its request and waits.
    paused: AtomicBool,
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    stop: AtomicBool,
    /// The first failures' statuses and bodies.
    errors: std::sync::Mutex<Vec<String>>,
}

impl Load {
    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// `CLIENTS` loops of `POST /function/f` on keep-alive connections until `stop`.
fn drive(addr: SocketAddr, load: &Arc<Load>) -> Vec<tokio::task::JoinHandle<()>> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    (0..CLIENTS)
        .map(|c| {
            let (client, load) = (client.clone(), Arc::clone(load));
            tokio::spawn(async move {
                let mut n = 0u64;
                while !load.stop.load(Ordering::SeqCst) {
                    if load.paused.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    load.in_flight.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                    let req = hyper::Request::post(format!("http://{addr}/function/f"))
                        .body(Full::new(Bytes::from(format!("client {c} request {n}"))))
                        .unwrap();
                    let res = match client.request(req).await {
                        Ok(r) => {
                            let status = r.status();
                            let body = r.into_body().collect().await.map(|b| b.to_bytes());
                            match body {
                                Ok(b) if status == 200 => Ok(b),
                                Ok(b) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                                Err(e) => Err(format!("{status}, body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("client: {e}")),
                    };
                    load.in_flight.fetch_sub(1, Ordering::SeqCst);
                    match res {
                        Ok(_) => load.ok.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            let mut errors = load.errors.lock().unwrap();
                            if errors.len() < 5 {
                                errors.push(e);
                            }
                            load.failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect()
}

/// The function's replica processes: the provider's direct children.
fn replicas(provider: u32) -> Vec<u32> {
    let kids = descendants(provider);
    kids.iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 2..].to_owned()))
                .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(provider)
        })
        .collect()
}

async fn available(addr: SocketAddr) -> u64 {
    get(addr, "/system/function/f").await.json()["availableReplicas"]
        .as_u64()
        .unwrap_or(0)
}

async fn wait_replicas(addr: SocketAddr, n: u64) {
    let t0 = Instant::now();
    while available(addr).await < n {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never {n} replicas ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fast http-mode emulator function of two replicas.
async fn deploy_two(addr: SocketAddr, dir: &std::path::Path) {
    let profiles = dir.join("profiles.json");
    crate::provider::model_profiles(&profiles, 0.0, 0.0005);
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let body = json!({
        "service": "f", "image": "smiless/smiless-fn:test",
        "envProcess": format!("{fnbin} --profile model --listen 127.0.0.1:5000"),
        "envVars": {"mode": "http", "upstream_url": "http://127.0.0.1:5000",
                    "SMILESS_PROFILES": profiles.display().to_string()},
        "labels": {"com.openfaas.scale.min": "2"}
    });
    let r = send_json(addr, "POST", "/system/functions", &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    wait_replicas(addr, 2).await;
}

fn kill9(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// Dead: a zombie (its sockets are closed) or gone. Not `provider::alive`, which scans all of /proc.
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .is_none_or(|state| state == 'Z' || state == 'X')
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_no_request_it_never_got() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Provider::start(&dir.path().join("state")).await;
    deploy_two(p.addr, dir.path()).await;
    let load = Arc::new(Load::default());
    let clients = drive(p.addr, &load);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Killed while it holds no request, the stream resuming the moment it is dead: every request
    //    after that is one it never got, so not one may fail (the backend still names the dead replica
    //    until it notices the exit, and the proxy's keep-alive connections to it are still pooled).
    //    Several rounds: the window is a few milliseconds wide.
    let before = load.counts();
    for round in 0..ROUNDS {
        load.paused.store(true, Ordering::SeqCst);
        while load.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let victims = replicas(p.pid());
        assert_eq!(victims.len(), 2, "two replica processes: {victims:?}");
        let victim = victims[round % 2];
        kill9(victim);
        let t0 = Instant::now();
        while !exited(victim) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "SIGKILL took no effect"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        load.paused.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        wait_replicas(p.addr, 2).await; // the replacement
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = load.counts();
    let (ok, failed) = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "replica killed idle under load, {ROUNDS} times: {ok} requests answered 200, {failed} failed"
    );

    // 2. Killed in the middle of the stream: only requests it already held may fail (at most one per
    //    client), reported for the record.
    let before = load.counts();
    let victims = replicas(p.pid());
    kill9(victims[1]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_replicas(p.addr, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let end = load.counts();
    let (ok2, failed2) = (end.0 - before.0, end.1 - before.1);
    eprintln!(
        "replica killed mid-stream under load: {ok2} requests answered 200, {failed2} failed"
    );
    let errors = load.errors.lock().unwrap().clone();
    assert_eq!(
        failed, 0,
        "requests lost that never reached the killed replica: {errors:?}"
    );
    assert!(ok > 100, "a steady stream: {ok}");
    assert!(
        failed2 <= CLIENTS as u64,
        "more failures than requests in flight at the kill: {failed2} ({errors:?})"
    );
}
