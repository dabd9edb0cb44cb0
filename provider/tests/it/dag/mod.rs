//! DAGs served live: the real `smiless serve`, real replicas (shell scripts and the `smiless-fn`
//! emulator), DAGs declared with `com.smiless.*` annotations.
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{get, request, send_json};
use crate::provider::Provider;

mod emulated;

pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

pub fn member(name: &str, fprocess: &str, dag: &str, next: &str, extra: Value) -> Value {
    let mut ann = json!({"com.smiless.dag": dag});
    if !next.is_empty() {
        ann["com.smiless.next"] = json!(next);
    }
    if let Value::Object(m) = extra {
        for (k, v) in m {
            ann[k] = v;
        }
    }
    json!({"service": name, "image": "local/test:1", "envProcess": fprocess, "annotations": ann})
}

pub async fn deploy(addr: SocketAddr, body: &Value) -> (u16, String) {
    let r = send_json(addr, "POST", "/system/functions", body).await;
    (r.status, r.text())
}

/// `POST /system/scale-function/{name}` to `replicas`; asserts the 202 (with the body on failure).
pub async fn scale(addr: SocketAddr, name: &str, replicas: u64) {
    let r = send_json(
        addr,
        "POST",
        &format!("/system/scale-function/{name}"),
        &json!({"replicas": replicas}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

pub async fn status(addr: SocketAddr, name: &str) -> Value {
    let r = get(addr, &format!("/system/function/{name}")).await;
    assert_eq!(r.status, 200, "{name}: {}", r.text());
    r.json()
}

pub async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !ok().await {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_join_listing_validation_prewarm() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("entry-done");
    let entry = script(
        dir.path(),
        "entry.sh",
        &format!(
            "IN=$(cat); sleep 1.5; touch {}; printf 'E:%s' \"$IN\"",
            done.display()
        ),
    );
    let left = script(
        dir.path(),
        "left.sh",
        "IN=$(cat); printf '{\"left\":\"%s\"}' \"$IN\"",
    );
    let right = script(dir.path(), "right.sh", "IN=$(cat); printf 'R:%s' \"$IN\"");
    let fail = script(
        dir.path(),
        "fail.sh",
        "cat >/dev/null; echo boom >&2; exit 3",
    );
    let (p, _) = Provider::start(dir.path().join("state").as_path()).await;
    let a = p.addr;

    // One function at a time, as faas-cli does: the DAG is pending until its last member arrives.
    let e = member("p-entry", &entry, "pipe", "p-left,p-right", json!({}));
    assert_eq!(deploy(a, &e).await.0, 202);
    let s = status(a, "pipe").await;
    assert_eq!(s["labels"]["com.smiless.kind"], "dag");
    let st = s["annotations"]["com.smiless.state"].as_str().unwrap();
    assert!(st.starts_with("pending") && st.contains("p-left"), "{st}");
    let r = request(a, "POST", "/function/pipe", &[], b"x").await;
    assert_eq!(
        r.status,
        503,
        "a pending DAG is not invocable: {}",
        r.text()
    );
    for m in [
        member("p-left", &left, "pipe", "p-join", json!({})),
        member("p-right", &right, "pipe", "p-join", json!({})),
        member("p-join", "cat", "pipe", "", json!({})),
    ] {
        assert_eq!(deploy(a, &m).await.0, 202);
    }

    // Listed with the label; replicas are the entry's.
    wait_for("the DAG to be available", async || {
        status(a, "pipe").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    let list = get(a, "/system/functions").await.json();
    let dag = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "pipe")
        .expect("the DAG is listed")
        .clone();
    assert_eq!(dag["labels"]["com.smiless.kind"], "dag");
    assert_eq!(
        dag["annotations"]["com.smiless.members"],
        "p-entry,p-join,p-left,p-right"
    );
    assert_eq!(dag["annotations"]["com.smiless.state"], "ready");
    assert_eq!(dag["replicas"], 1);

    // Invoked by name: entry → (left ‖ right) → join, which gets the object of both outputs.
    let r = request(a, "POST", "/function/pipe", &[], b"hello").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"p-left": {"left": "E:hello"}, "p-right": "R:E:hello"})
    );
    assert!(r.headers.contains_key("x-duration-seconds"));

    // Invalid DAGs are refused with the reason; a function cannot take a DAG's name.
    assert_eq!(
        deploy(a, &member("c-a", "cat", "cyc", "c-b", json!({})))
            .await
            .0,
        202
    );
    let (code, text) = deploy(a, &member("c-b", "cat", "cyc", "c-a", json!({}))).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("cycle") && text.contains("c-a"), "{text}");
    let (code, text) = deploy(a, &json!({"service":"pipe","image":"x","envProcess":"cat"})).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("DAG pipe"), "{text}");
    let (code, text) = deploy(
        a,
        &member("s-b", "cat", "slas", "", json!({"com.smiless.sla": "soon"})),
    )
    .await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("soon"), "{text}");

    // A failing member fails the request with a 5xx naming it.
    assert_eq!(
        deploy(a, &member("f-a", "cat", "broken", "f-b", json!({})))
            .await
            .0,
        202
    );
    assert_eq!(
        deploy(a, &member("f-b", &fail, "broken", "", json!({})))
            .await
            .0,
        202
    );
    wait_for("broken's members", async || {
        status(a, "broken").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    let r = request(a, "POST", "/function/broken", &[], b"x").await;
    assert!(r.status >= 500, "{}: {}", r.status, r.text());
    assert!(r.text().contains("f-b"), "{}", r.text());

    // A ready DAG's availability is its entry's: a released downstream member does not make it
    // unavailable (the runner and the pre-warms start it)...
    scale(a, "p-left", 0).await;
    wait_for("p-left at zero", async || {
        status(a, "p-left").await["availableReplicas"].as_u64() == Some(0)
    })
    .await;
    assert_eq!(status(a, "pipe").await["availableReplicas"], 1);
    // ...nor does a released entry: the runner cold-starts it, so the stock gateway never holds a
    // DAG request to scale it from zero (its replicas show the entry at zero).
    scale(a, "p-entry", 0).await;
    wait_for("the entry at zero", async || {
        status(a, "pipe").await["replicas"].as_u64() == Some(0)
    })
    .await;
    assert_eq!(status(a, "pipe").await["availableReplicas"], 1);
    // Scaling the DAG (faas-cli scale) raises every member.
    scale(a, "pipe", 1).await;
    wait_for("the DAG awake", async || {
        status(a, "pipe").await["replicas"].as_u64() == Some(1)
            && status(a, "p-entry").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    assert_eq!(status(a, "p-left").await["replicas"], 1);

    // Pre-warm: p-left at 0 replicas is started after the DAG request arrives, while the entry is still
    // working (it touches `done` when it finishes).
    scale(a, "p-left", 0).await;
    wait_for("p-left at zero", async || {
        status(a, "p-left").await["availableReplicas"].as_u64() == Some(0)
    })
    .await;
    std::fs::remove_file(&done).unwrap();
    let call =
        tokio::spawn(async move { request(a, "POST", "/function/pipe", &[], b"again").await });
    wait_for("p-left to be started", async || {
        status(a, "p-left").await["replicas"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        !done.exists(),
        "p-left must be started before its predecessor finishes"
    );
    let r = call.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(done.exists());
    let plan = get(a, "/system/plan").await.json();
    let d = plan["dags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "pipe")
        .unwrap()
        .clone();
    assert_eq!(d["state"], "ready");
    assert!(d["stats"]["prewarms"].as_u64() >= Some(1), "{d}");
    // The 503 while pending never reached the runner: two requests, no errors.
    assert_eq!(d["stats"]["requests"], 2, "{d}");
    assert_eq!(d["stats"]["errors"], 0, "{d}");

    // The same counters, and the latency histogram, on /metrics.
    let m = get(a, "/metrics").await.text();
    let l = "dag=\"pipe\",namespace=\"openfaas-fn\"";
    for want in [
        format!("smiless_dag_requests_total{{{l}}} 2"),
        format!("smiless_dag_errors_total{{{l}}} 0"),
        format!("smiless_dag_e2e_seconds_count{{{l}}} 2"),
        format!("smiless_dag_e2e_seconds_bucket{{le=\"+Inf\",{l}}} 2"),
        "smiless_dag_errors_total{dag=\"broken\",namespace=\"openfaas-fn\"} 1".to_string(),
    ] {
        assert!(m.contains(&want), "{want} missing from\n{m}");
    }
    assert!(
        m.contains(&format!("smiless_dag_prewarms_total{{{l}}} ")),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_are_derived_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (mut p, _) = Provider::start(&state).await;
    for m in [
        member("r-a", "cat", "again", "r-b", json!({})),
        member("r-b", "cat", "again", "", json!({})),
    ] {
        assert_eq!(deploy(p.addr, &m).await.0, 202);
    }
    p.kill9();
    drop(p);
    let (p, _) = Provider::start(&state).await;
    let a = p.addr;
    assert_eq!(
        status(a, "again").await["labels"]["com.smiless.kind"],
        "dag"
    );
    wait_for("the restored DAG to answer", async || {
        let r = request(a, "POST", "/function/again", &[], b"same").await;
        r.status == 200 && r.body == b"same"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_response_over_the_body_limit_fails_the_request_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let big = script(
        dir.path(),
        "big.sh",
        "cat >/dev/null; head -c 5000 /dev/zero | tr '\\0' a",
    );
    let small = script(dir.path(), "small.sh", "cat >/dev/null; printf ok");
    let (p, _) = Provider::start_with(
        dir.path().join("state").as_path(),
        &[("basic_auth", "false"), ("SMILESS_MAX_BODY", "1000")],
    )
    .await;
    let a = p.addr;
    for m in [
        member("b-entry", &small, "bounded", "b-big", json!({})),
        member("b-big", &big, "bounded", "", json!({})),
    ] {
        assert_eq!(deploy(a, &m).await.0, 202);
    }
    wait_for("the DAG to be available", async || {
        status(a, "bounded").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    let r = request(a, "POST", "/function/bounded", &[], b"x").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("over 1000 bytes"), "{}", r.text());
    // The same member alone, through the plain proxy, streams its response as OpenFaaS does.
    let r = request(a, "POST", "/function/b-big", &[], b"x").await;
    assert_eq!((r.status, r.body.len()), (200, 5000));
}
