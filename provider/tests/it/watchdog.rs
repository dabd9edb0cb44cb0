//! `smiless watchdog` as a real process in classic mode (env, cat, sha512sum, errors, timeouts, limits,
//! log lines, the lock file), and the process helpers the other modules share.
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

pub const SMILESS: &str = env!("CARGO_BIN_EXE_smiless");

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection; `Err` when the connection fails.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let res = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A watchdog child process; killed on drop.
pub struct Watchdog {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watchdog {
    pub async fn start(env: &[(&str, &str)]) -> Watchdog {
        let port = free_port();
        let child = Command::new(SMILESS)
            .arg("watchdog")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("port", port.to_string())
            .env("SMILESS_BIND", "127.0.0.1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wd = Watchdog {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        wd.wait_healthy(Duration::from_secs(10)).await;
        wd
    }

    pub async fn wait_healthy(&self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            if let Ok(r) = call(self.addr, "GET", "/_/health", &[], b"").await
                && r.status == 200
            {
                return;
            }
            assert!(
                t0.elapsed() < limit,
                "watchdog on {} not healthy after {limit:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the watchdog (SIGTERM) and returns its stderr.
    pub fn stop_and_read_log(mut self) -> String {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        log
    }
}

fn env_lines(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn classic_env_exposes_verbs_query_path_headers_and_function_env() {
    let wd = Watchdog::start(&[("fprocess", "env"), ("custom_env", "custom_env_value")]).await;
    for verb in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let r = call(wd.addr, verb, "/", &[], b"").await.unwrap();
        assert_eq!(r.status, 200, "{verb}: {}", r.text());
        assert!(
            r.text().contains(&format!("Http_Method={verb}")),
            "{verb}: {}",
            r.text()
        );
    }
    let r = call(
        wd.addr,
        "POST",
        "/some/path?testing=1&b=2",
        &[("X-Custom-Header", "hello"), ("content-type", "text/plain")],
        b"body",
    )
    .await
    .unwrap();
    let env = env_lines(&r.text());
    assert_eq!(env["Http_Query"], "testing=1&b=2");
    assert_eq!(env["Http_Path"], "/some/path");
    assert_eq!(env["Http_X_Custom_Header"], "hello");
    assert_eq!(env["Http_Content_Type"], "text/plain");
    assert_eq!(env["Http_Content_Length"], "4");
    assert_eq!(env["custom_env"], "custom_env_value");
    assert_eq!(env["fprocess"], "env");
    assert!(
        !env.contains_key("SMILESS_BIND"),
        "runtime-internal variables stay out of the function"
    );
    assert_eq!(
        r.headers["content-type"], "text/plain",
        "the request's content type is echoed"
    );
    let log = wd.stop_and_read_log();
    let forks = log
        .lines()
        .filter(|l| l.ends_with("Forking fprocess."))
        .count();
    assert_eq!(forks, 6, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" Wrote ") && l.contains(" Bytes - Duration: ")),
        "{log}"
    );
}

#[tokio::test]
async fn classic_binary_bodies_round_trip_and_hash() {
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cat = Watchdog::start(&[("fprocess", "cat")]).await;
    let r = call(cat.addr, "POST", "/", &[], &data).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "cat must return the exact bytes ({} vs {})",
        r.body.len(),
        data.len()
    );
    let log = cat.stop_and_read_log();
    assert!(
        log.contains(&format!("Wrote {} Bytes", data.len())),
        "{log}"
    );

    let hash = Watchdog::start(&[("fprocess", "sha512sum")]).await;
    let r = call(hash.addr, "POST", "/", &[], &data).await.unwrap();
    let mut local = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(local.stdin.as_mut().unwrap(), &data).unwrap();
    drop(local.stdin.take());
    let expected = String::from_utf8(local.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(r.text(), expected);
}

#[tokio::test]
async fn classic_failures_timeouts_and_inflight_limit() {
    // A non-zero exit is a 500 carrying the function's stderr.
    let fail = Watchdog::start(&[
        ("fprocess", "echo broken input >&2; exit 3"),
        ("combine_output", "false"),
    ])
    .await;
    let r = call(fail.addr, "POST", "/", &[], b"x").await.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.text().contains("broken input"), "{}", r.text());

    // exec_timeout kills the process.
    let slow = Watchdog::start(&[("fprocess", "sleep 20"), ("exec_timeout", "300ms")]).await;
    let t0 = Instant::now();
    let r = call(slow.addr, "POST", "/", &[], b"").await.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.text().contains("exec_timeout"), "{}", r.text());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "timed out after {:?}",
        t0.elapsed()
    );
    let log = slow.stop_and_read_log();
    assert!(log.contains("Killing process"), "{log}");

    // max_inflight: the second concurrent request is refused with 429.
    let busy = Watchdog::start(&[("fprocess", "sleep 3"), ("max_inflight", "1")]).await;
    let addr = busy.addr;
    let first =
        tokio::spawn(async move { call(addr, "POST", "/", &[], b"").await.unwrap().status });
    // At capacity once the first request runs; /_/ready says so.
    let t0 = Instant::now();
    while call(addr, "GET", "/_/ready", &[], b"")
        .await
        .unwrap()
        .status
        != 503
    {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "/_/ready never reported the limit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = call(addr, "POST", "/", &[], b"").await.unwrap();
    assert_eq!(second.status, 429, "{}", second.text());
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test]
async fn health_follows_the_lock_file() {
    let tmp = std::env::temp_dir().join(format!("smiless-wd-lock-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let wd = Watchdog::start(&[("fprocess", "cat"), ("TMPDIR", tmp.to_str().unwrap())]).await;
    let lock = tmp.join(".lock");
    assert!(
        lock.exists(),
        "the watchdog writes its lock file when ready"
    );
    std::fs::remove_file(&lock).unwrap();
    let r = call(wd.addr, "GET", "/_/health", &[], b"").await.unwrap();
    assert_eq!(r.status, 503, "no lock file, not healthy");
    drop(wd);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The pids of the children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// Gone or a zombie (dead, not yet reaped by whoever adopted it).
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

pub async fn wait_dead(pid: u32, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    is_dead(pid)
}

#[tokio::test]
async fn write_timeout_kills_the_whole_process_group() {
    let wd = Watchdog::start(&[
        ("fprocess", "sleep 30 & sleep 30; wait"),
        ("write_timeout", "1s"),
        ("exec_timeout", "0"),
    ])
    .await;
    let addr = wd.addr;
    let req = tokio::spawn(async move { call(addr, "POST", "/", &[], b"").await.unwrap() });
    // The shell and its two sleeps.
    let t0 = Instant::now();
    let tree = loop {
        let sh = children(wd.child.id());
        let sleeps: Vec<u32> = sh.iter().flat_map(|p| children(*p)).collect();
        if sh.len() == 1 && sleeps.len() == 2 {
            break [sh, sleeps].concat();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the function did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let r = req.await.unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    for pid in tree {
        assert!(
            wait_dead(pid, Duration::from_secs(5)).await,
            "{pid} outlived its request"
        );
    }
}
