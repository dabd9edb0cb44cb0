//! Fast restart: `smiless serve` started again on the state directory of a provider killed with SIGKILL
//! (functions deployed, their replicas killed with it) serves them again well under a second.
//!
//! The bound is asserted on the provider's own report (`restore: … every one serving N ms after start`,
//! measured from its `main`), not on the test's clock: on a loaded machine the test's own scheduling and
//! the process start before `main` would make a wall-clock bound flaky without saying anything about the
//! provider. Three classic-mode `cat` functions restart in ~0.1–0.3 s here (debug build, a 2-core machine
//! shared with other builds), so 1 s is a real margin and a regression to the seconds fails. The first
//! 200 through `/function/NAME` is checked too, with a wall-clock bound that is generous on purpose.
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{get, request, send_json};
use crate::provider::{Provider, listening_addr};

const FUNCTIONS: usize = 3;

/// The "every one serving N ms after start" figure of a restore report line.
fn serving_ms(line: &str) -> Option<u64> {
    let rest = line.split("every one serving ").nth(1)?;
    rest.split(" ms").next()?.trim().parse().ok()
}

#[test]
fn the_report_line_parses() {
    let l = "INFO smiless::cli::serve: restore: 3 functions deployed 41 ms after start; every one serving 163 ms after start";
    assert_eq!(serving_ms(l), Some(163));
    assert_eq!(
        serving_ms("restore: not every restored function serves"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill9_serves_again_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = Provider::start(dir.path()).await;
    for i in 0..FUNCTIONS {
        let body = json!({"service": format!("f{i}"), "image": "i", "envProcess": "cat"});
        let r = send_json(p.addr, "POST", "/system/functions", &body).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let t0 = Instant::now();
    for i in 0..FUNCTIONS {
        while get(p.addr, &format!("/system/function/f{i}")).await.json()["availableReplicas"] != 1
        {
            assert!(t0.elapsed() < Duration::from_secs(30), "f{i} never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    p.kill9();

    let started = Instant::now();
    let mut child = Provider::command(dir.path(), &[("basic_auth", "false"), ("RUST_LOG", "info")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, report) = std::sync::mpsc::channel();
    // Reads the log for the report, then keeps draining it so the provider never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(ms) = serving_ms(&line) {
                let _ = tx.send(ms);
            }
        }
    });
    let addr = listening_addr(stdout).await;
    let p2 = Provider { child, addr };
    let r = request(p2.addr, "POST", "/function/f0", &[], b"back").await;
    let first_200 = started.elapsed();
    assert_eq!((r.status, r.text()), (200, "back".to_owned()));
    let serving = tokio::task::spawn_blocking(move || report.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the provider reports when every restored function serves");
    eprintln!(
        "restart: every function serving {serving} ms after the provider's start (its report); \
         first 200 through /function/f0 {} ms after spawning it (the test's clock)",
        first_200.as_millis()
    );
    assert!(serving < 1000, "restart took {serving} ms to serve again");
    assert!(
        first_200 < Duration::from_secs(5),
        "first 200 after {first_200:?}"
    );
}
