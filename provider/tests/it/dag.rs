//! DAGs served live: the real `smiless serve`, real replicas (shell scripts and the `smiless-fn`
//! emulator), DAGs declared with `com.smiless.*` annotations.
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{get, request, send_json};
use crate::provider::Provider;

fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn member(name: &str, fprocess: &str, dag: &str, next: &str, extra: Value) -> Value {
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

async fn deploy(addr: SocketAddr, body: &Value) -> (u16, String) {
    let r = send_json(addr, "POST", "/system/functions", body).await;
    (r.status, r.text())
}

async fn status(addr: SocketAddr, name: &str) -> Value {
    let r = get(addr, &format!("/system/function/{name}")).await;
    assert_eq!(r.status, 200, "{name}: {}", r.text());
    r.json()
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
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

    // Listed with the label; replicas are the minimum over the members.
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

    // The stock gateway scales a name whose availableReplicas is 0: for a DAG that wakes every member.
    let s = send_json(
        a,
        "POST",
        "/system/scale-function/p-left",
        &json!({"replicas": 0}),
    )
    .await;
    assert_eq!(s.status, 202);
    wait_for("the DAG at zero", async || {
        status(a, "pipe").await["availableReplicas"].as_u64() == Some(0)
    })
    .await;
    let s = send_json(
        a,
        "POST",
        "/system/scale-function/pipe",
        &json!({"replicas": 1}),
    )
    .await;
    assert_eq!(s.status, 202, "{}", s.text());
    wait_for("the DAG awake", async || {
        status(a, "pipe").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    assert_eq!(status(a, "p-left").await["replicas"], 1);

    // Pre-warm: p-left at 0 replicas is started after the DAG request arrives, while the entry is still
    // working (it touches `done` when it finishes).
    let s = send_json(
        a,
        "POST",
        "/system/scale-function/p-left",
        &json!({"replicas": 0}),
    )
    .await;
    assert_eq!(s.status, 202);
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
        format!("smiless_dag_e2e_seconds_bucket{{{l},le=\"+Inf\"}} 2"),
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
async fn emulated_dag_is_planned_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Provider::start_with(
        dir.path(),
        &[("basic_auth", "false"), ("SMILESS_TIME_SCALE", "0.02")],
    )
    .await;
    let a = p.addr;
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let emu = |name: &str, profile: &str, next: &str, extra: Value| {
        let mut m = member(
            name,
            &format!("{fnbin} --profile {profile}"),
            "voice",
            next,
            extra,
        );
        m["annotations"]["com.smiless.profile"] = json!(profile);
        m["envVars"] = json!({"SMILESS_TIME_SCALE": "0.02"});
        m
    };
    for m in [
        emu(
            "v-asr",
            "speechrecognition",
            "v-topic,v-tts",
            json!({"com.smiless.sla": "3s"}),
        ),
        emu("v-topic", "topicmodeling", "v-tts", json!({})),
        emu("v-tts", "texttospeech", "", json!({})),
    ] {
        let (code, text) = deploy(a, &m).await;
        assert_eq!(code, 202, "{text}");
    }
    wait_for("the DAG to be available", async || {
        status(a, "voice").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    let r = request(a, "POST", "/function/voice", &[], b"audio").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["emulator"], "smiless-fn");
    assert_eq!(out["profile"], "texttospeech");
    assert_eq!(out["time_scale"], 0.02);
    // The join's input was the object of its two predecessors' outputs.
    assert!(out["input_bytes"].as_u64() > Some(100), "{out}");

    // The control loop plans it within a few ticks.
    let mut d = Value::Null;
    wait_for("a plan", async || {
        let plan = get(a, "/system/plan").await.json();
        d = plan["dags"][0].clone();
        !d["control"]["plan"].is_null()
    })
    .await;
    assert_eq!(d["name"], "voice");
    assert_eq!(d["sla_s"], 3.0);
    let plan = &d["control"]["plan"];
    assert_eq!(plan["policy"], "smiless");
    assert!(plan["predicted_latency_s"].as_f64().unwrap() > 0.0);
    assert!(plan["cost_per_hour"].as_f64().unwrap() > 0.0);
    let fns = plan["functions"].as_array().unwrap();
    assert_eq!(fns.len(), 3);
    for f in fns {
        assert!(
            f["choice"]["hardware"].as_str().unwrap().contains(':'),
            "{f}"
        );
        assert!(f["choice"]["policy"]["kind"].is_string(), "{f}");
        assert!(f["alternatives"].is_array(), "{f}");
    }
    assert!(
        d["control"]["reason"].as_str().unwrap().contains("planned"),
        "{d}"
    );
    // Hardware: the plan fits the host and is applied (each member placed on its planned hardware).
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    for f in fns {
        let hw = f["choice"]["hardware"].as_str().unwrap();
        let cores: u64 = hw
            .strip_prefix("cpu:")
            .expect("no GPU here: CPU only")
            .parse()
            .unwrap();
        assert!(cores <= cpus, "{hw} on a {cpus}-core host");
    }
    assert_eq!(d["control"]["hardware_applied"], true, "{d}");
    let actions = d["control"]["actions"].as_array().unwrap();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.as_str().unwrap().contains("placed on"))
            .count(),
        3,
        "{d}"
    );
    assert!(d["stats"]["requests"].as_u64() >= Some(1));
    let m = get(a, "/metrics").await.text();
    assert!(
        m.contains("smiless_dag_plan_cost_per_hour{dag=\"voice\",namespace=\"openfaas-fn\"} "),
        "{m}"
    );
    // The sink's replica now runs on the planned hardware (a rolled replica reports it).
    let want = fns.iter().find(|f| f["name"] == "v-tts").unwrap()["choice"]["hardware"].clone();
    wait_for("v-tts on its planned hardware", async || {
        let r = request(a, "POST", "/function/voice", &[], b"audio").await;
        r.status == 200 && r.json()["hardware"] == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_http_mode_initialises_before_listening() {
    use std::io::{BufRead, BufReader};
    // A profile without variance, so the initialisation delay is exact: 0.8 s × scale 0.5 = 0.4 s.
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    let m = json!({"a": 0.02, "b": 0.0, "c": 0.01});
    let i = json!({"mean_s": 0.8, "std_s": 0.0});
    std::fs::write(
        &profiles,
        json!({"source": "test", "profiles": {"model": {
            "init": {"cpu": i, "gpu": i}, "infer": {"cpu": m, "gpu": m}, "memory_mb": 64}}})
        .to_string(),
    )
    .unwrap();
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smiless-fn"))
        .args([
            "--profile",
            "model",
            "--listen",
            "127.0.0.1:0",
            "--profiles",
        ])
        .arg(&profiles)
        .env("OMP_NUM_THREADS", "2")
        .env("SMILESS_TIME_SCALE", "0.5")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let waited = t0.elapsed();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    assert!(
        waited >= Duration::from_millis(400),
        "listening after {waited:?}, before its 0.4 s initialisation: {line}"
    );
    let r = request(addr, "POST", "/", &[], b"0123456789").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["emulator"], "smiless-fn");
    assert_eq!(out["hardware"], "cpu:2");
    assert_eq!(out["input_bytes"], 10);
    // t(1, 2) = 0.02/2 + 0.01 = 0.02 s, × 0.5.
    assert!(
        (out["compute_ms"].as_f64().unwrap() - 10.0).abs() < 1e-6,
        "{out}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
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
async fn prewarm_warms_up_the_emulator_before_its_request() {
    // Exact profiles: the entry computes 1 s; the downstream model initialises in 0.4 s.
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    let prof = |init: f64, c: f64| {
        let i = json!({"mean_s": init, "std_s": 0.0});
        let m = json!({"a": 0.0, "b": 0.0, "c": c});
        json!({"init": {"cpu": i, "gpu": i}, "infer": {"cpu": m, "gpu": m}, "memory_mb": 64})
    };
    std::fs::write(
        &profiles,
        json!({"source": "test", "profiles": {"slow": prof(0.0, 1.0), "model": prof(0.4, 0.01)}})
            .to_string(),
    )
    .unwrap();
    let (p, _) = Provider::start(&dir.path().join("state")).await;
    let a = p.addr;
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    for (name, profile, next) in [("w-a", "slow", "w-b"), ("w-b", "model", "")] {
        let mut m = member(
            name,
            &format!("{fnbin} --profile {profile}"),
            "warm",
            next,
            json!({}),
        );
        m["envVars"] = json!({"SMILESS_PROFILES": profiles.display().to_string()});
        assert_eq!(deploy(a, &m).await.0, 202);
    }
    wait_for("the DAG", async || {
        status(a, "warm").await["availableReplicas"].as_u64() == Some(1)
    })
    .await;
    let s = send_json(
        a,
        "POST",
        "/system/scale-function/w-b",
        &json!({"replicas": 0}),
    )
    .await;
    assert_eq!(s.status, 202);
    wait_for("w-b at zero", async || {
        status(a, "w-b").await["availableReplicas"].as_u64() == Some(0)
    })
    .await;
    // No SLA: no plan, so every downstream member is pre-warmed at the arrival; the emulator's 0.4 s
    // initialisation then runs during the entry's 1 s of work, not on the request.
    let r = request(a, "POST", "/function/warm", &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["profile"], "model");
    assert_eq!(
        out["init_ms"], 0.0,
        "the initialisation was paid by the warm-up: {out}"
    );
    let plan = get(a, "/system/plan").await.json();
    let stats = &plan["dags"][0]["stats"];
    assert_eq!(stats["prewarms"], 1, "{plan}");
    assert_eq!(stats["warmups"], 1, "{plan}");
    assert_eq!(stats["cold_starts"], 0, "{plan}");
}
