//! The local runtime with real `smiless watchdog` replicas: scaling 0→N→0, restarts, rolling replacement
//! under load, and logs; plus the helpers `runtime_env` shares.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backend_local::runtime::{FunctionKey, LogQuery, ReplicaSpec, Runtime, RuntimeConfig};
use futures::StreamExt;

use crate::watchdog::{SMILESS, call, children, wait_dead};

/// A scratch directory for one test, removed when the test ends.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("smiless-it-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

pub fn runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        exe: SMILESS.into(),
        work_dir: dir.join("work"),
    })
    .unwrap()
}

pub fn spec(fprocess: &str, env: &[(&str, &str)], dir: &std::path::Path) -> Arc<ReplicaSpec> {
    Arc::new(ReplicaSpec {
        fprocess: fprocess.into(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: vec![],
        secrets_dir: dir.join("secrets"),
        exec_timeout: Duration::from_secs(10),
        cpu_set: None,
        gpu: None,
    })
}

pub async fn wait_available(rt: &Runtime, key: &FunctionKey, n: u32, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let s = rt.status(key);
        if s.available == n && s.desired == n {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "{key}: {s:?}, wanted {n} available after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A keep-alive pooled client, as the invocation proxy uses.
type Pooled = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

fn pooled() -> Pooled {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

async fn invoke_pooled(client: &Pooled, rt: &Runtime, key: &FunctionKey) -> Result<String, String> {
    use http_body_util::BodyExt;
    let addr = rt
        .ready_endpoint(key, Duration::from_secs(10))
        .await
        .ok_or("no ready replica")?;
    let req = hyper::Request::post(format!("http://{addr}/"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let res = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

pub async fn invoke(rt: &Runtime, key: &FunctionKey, body: &[u8]) -> Result<String, String> {
    let addr = rt
        .ready_endpoint(key, Duration::from_secs(10))
        .await
        .ok_or("no ready replica")?;
    let r = call(addr, "POST", "/", &[], body).await?;
    if r.status != 200 {
        return Err(format!("{}: {}", r.status, r.text()));
    }
    Ok(r.text())
}

/// The watchdog processes of the runtime (children of this test process running `smiless watchdog`
/// with the given port in their environment).
/// Waits until the function's log has a line containing `needle` (output is captured asynchronously).
async fn wait_log_line(rt: &Runtime, key: &FunctionKey, needle: &str) {
    let t0 = Instant::now();
    loop {
        let q = LogQuery {
            key: key.clone(),
            since: None,
            tail: None,
            follow: false,
        };
        let lines: Vec<_> = rt.logs(q).collect().await;
        if lines.iter().any(|l| l.text.contains(needle)) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no log line with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn watchdog_pid_on(port: u16) -> Option<u32> {
    children(std::process::id()).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| {
            e.split(|b| *b == 0)
                .any(|kv| kv == format!("port={port}").as_bytes())
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_zero_to_n_to_zero_round_robin() {
    let dir = scratch("scale");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "echo");
    let s = spec("cat", &[], &dir);
    rt.apply(&key, s.clone(), 0).await.unwrap();
    assert_eq!(rt.status(&key).desired, 0);
    assert_eq!(
        rt.ready_endpoint(&key, Duration::from_millis(100)).await,
        None,
        "nothing to route to at zero"
    );

    let t0 = Instant::now();
    rt.apply(&key, s.clone(), 1).await.unwrap();
    let addr = rt
        .ready_endpoint(&key, Duration::from_secs(10))
        .await
        .expect("a replica from zero");
    println!("scale 0→1: first ready endpoint after {:?}", t0.elapsed());
    assert_eq!(
        call(addr, "POST", "/", &[], b"hi").await.unwrap().text(),
        "hi"
    );

    rt.apply(&key, s.clone(), 3).await.unwrap();
    assert_eq!(rt.status(&key).desired, 3);
    wait_available(&rt, &key, 3, Duration::from_secs(10)).await;
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        seen.insert(rt.ready_endpoint(&key, Duration::ZERO).await.unwrap());
    }
    assert_eq!(seen.len(), 3, "round-robin over the 3 replicas: {seen:?}");
    let pids: Vec<u32> = seen
        .iter()
        .filter_map(|a| watchdog_pid_on(a.port()))
        .collect();
    assert_eq!(pids.len(), 3);

    rt.apply(&key, s.clone(), 0).await.unwrap();
    wait_available(&rt, &key, 0, Duration::from_secs(10)).await;
    for pid in pids {
        assert!(
            wait_dead(pid, Duration::from_secs(10)).await,
            "replica {pid} still running at zero"
        );
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_a_killed_replica() {
    let dir = scratch("restart");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "phoenix");
    rt.apply(&key, spec("cat", &[], &dir), 1).await.unwrap();
    wait_available(&rt, &key, 1, Duration::from_secs(10)).await;
    let addr = rt.ready_endpoint(&key, Duration::ZERO).await.unwrap();
    let pid = watchdog_pid_on(addr.port()).expect("the replica's process");
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(wait_dead(pid, Duration::from_secs(5)).await);
    let t0 = Instant::now();
    let back = loop {
        if let Some(a) = rt.ready_endpoint(&key, Duration::from_secs(1)).await
            && a != addr
        {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no replacement replica"
        );
    };
    println!("replica restarted after {:?}", t0.elapsed());
    assert_eq!(
        call(back, "POST", "/", &[], b"again").await.unwrap().text(),
        "again"
    );
    let lines: Vec<_> = rt
        .logs(LogQuery {
            key: key.clone(),
            since: None,
            tail: None,
            follow: false,
        })
        .collect::<Vec<_>>()
        .await;
    assert!(
        lines.iter().any(|l| l.text.contains("replica exited")),
        "the exit is logged"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_replace_drops_no_request() {
    let dir = scratch("rolling");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "versioned");
    rt.apply(&key, spec("env", &[("VERSION", "one")], &dir), 2)
        .await
        .unwrap();
    wait_available(&rt, &key, 2, Duration::from_secs(10)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    // Two loops open a connection per request, two reuse pooled keep-alive connections.
    for i in 0..4 {
        let (rt, key, stop, ok) = (rt.clone(), key.clone(), stop.clone(), ok.clone());
        let client = (i % 2 == 1).then(pooled);
        loops.push(tokio::spawn(async move {
            let mut versions = BTreeSet::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let result = match &client {
                    Some(c) => invoke_pooled(c, &rt, &key).await,
                    None => invoke(&rt, &key, b"").await,
                };
                match result {
                    Ok(body) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Some(v) = body.lines().find_map(|l| l.strip_prefix("VERSION=")) {
                            versions.insert(v.to_string());
                        }
                    }
                    Err(e) => failures.push(e),
                }
            }
            (versions, failures)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.apply(&key, spec("env", &[("VERSION", "two")], &dir), 2)
        .await
        .unwrap();
    // Until only the new version answers, and a little after.
    let t0 = Instant::now();
    loop {
        let body = invoke(&rt, &key, b"").await.unwrap();
        if body.contains("VERSION=two") && t0.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the new version never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = BTreeSet::new();
    let mut failures = Vec::new();
    for l in loops {
        let (v, f) = l.await.unwrap();
        versions.extend(v);
        failures.extend(f);
    }
    println!(
        "rolling replace: {} requests, {} failures",
        ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "failed requests during the rollout: {failures:?}"
    );
    assert_eq!(
        versions,
        BTreeSet::from(["one".to_string(), "two".to_string()])
    );
    assert_eq!(rt.status(&key).available, 2);
    let body = invoke(&rt, &key, b"").await.unwrap();
    assert!(body.contains("VERSION=two"));
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_answer_tail_since_and_follow() {
    let dir = scratch("logs");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "test-logger");
    rt.apply(&key, spec("cat", &[], &dir), 1).await.unwrap();
    let q = |since, tail, follow| LogQuery {
        key: key.clone(),
        since,
        tail,
        follow,
    };
    assert_eq!(
        invoke(&rt, &key, b"openfaas-fn").await.unwrap(),
        "openfaas-fn"
    );
    wait_log_line(&rt, &key, "Wrote 11 Bytes").await;
    let cut = jiff::Timestamp::now();
    assert_eq!(
        invoke(&rt, &key, b"second call!").await.unwrap(),
        "second call!"
    );
    wait_log_line(&rt, &key, "Wrote 12 Bytes").await;

    let all: Vec<_> = rt.logs(q(None, None, false)).collect().await;
    assert!(
        all.iter()
            .all(|l| l.name == "test-logger" && l.namespace == "openfaas-fn")
    );
    assert!(all.iter().all(|l| l.instance.starts_with("test-logger-")));
    // The certifier's check: after stripping the timestamp, the classic watchdog's lines are there.
    let stripped: Vec<&str> = all
        .iter()
        .map(|l| {
            l.text
                .trim_start_matches(|c: char| c.is_ascii_digit() || "/: ".contains(c))
        })
        .collect();
    assert!(
        stripped.iter().any(|t| t.starts_with("Forking fprocess")),
        "{stripped:?}"
    );
    assert!(
        stripped.iter().any(|t| t.starts_with("Wrote 11 Bytes")),
        "{stripped:?}"
    );

    let tail: Vec<_> = rt.logs(q(None, Some(2), false)).collect().await;
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[..], all[all.len() - 2..]);
    let since: Vec<_> = rt.logs(q(Some(cut), None, false)).collect().await;
    assert!(since.iter().all(|l| l.timestamp >= cut));
    assert!(since.iter().any(|l| l.text.contains("Wrote 12 Bytes")));
    assert!(
        !since.iter().any(|l| l.text.contains("Wrote 11 Bytes")),
        "lines before `since` are left out"
    );

    let mut follow = rt.logs(q(Some(jiff::Timestamp::now()), None, true));
    assert_eq!(invoke(&rt, &key, b"third").await.unwrap(), "third");
    let next = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .unwrap()
        .unwrap();
    assert!(next.text.contains("Forking fprocess"), "{next:?}");
    rt.remove(&key).await.unwrap();
    // The stream ends once the function is gone.
    let rest = tokio::time::timeout(Duration::from_secs(10), follow.collect::<Vec<_>>()).await;
    assert!(
        rest.is_ok(),
        "a follow stream must end when the function is removed"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_each_replicas_start_to_ready_time_once() {
    // An http-mode emulator that initialises for 0.3 s: each replica's start-to-ready time includes it.
    let dir = scratch("starts");
    let profiles = dir.join("profiles.json");
    let i = serde_json::json!({"mean_s": 0.3, "std_s": 0.0});
    let m = serde_json::json!({"a": 0.0, "b": 0.0, "c": 0.01});
    std::fs::write(
        &profiles,
        serde_json::json!({"source": "test", "profiles": {"model": {"init": {"cpu": i, "gpu": i}, "infer": {"cpu": m, "gpu": m}, "memory_mb": 64}}})
            .to_string(),
    )
    .unwrap();
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "model");
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let s = spec(
        &format!("{fnbin} --profile model --listen 127.0.0.1:5000"),
        &[
            ("mode", "http"),
            ("upstream_url", "http://127.0.0.1:5000"),
            ("SMILESS_PROFILES", &profiles.display().to_string()),
        ],
        &dir,
    );
    rt.apply(&key, s.clone(), 2).await.unwrap();
    wait_available(&rt, &key, 2, Duration::from_secs(10)).await;
    let starts = rt.take_start_times();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].0, key);
    let times = &starts[0].1;
    assert_eq!(times.len(), 2, "one per replica: {times:?}");
    assert!(
        times.iter().all(|&t| (0.3..5.0).contains(&t)),
        "start to ready includes the 0.3 s initialisation: {times:?}"
    );
    assert!(rt.take_start_times().is_empty(), "taken once");
    rt.shutdown().await;
}
