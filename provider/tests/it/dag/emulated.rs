//! DAGs of `smiless-fn` emulator replicas: planned by the control loop, placed on their hardware, warmed up
//! by pre-warms; and the emulator's http mode on its own.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{deploy, member, scale, status, wait_for};
use crate::client::{get, request};
use crate::provider::Provider;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulated_dag_is_planned_and_served() {
    let dir = tempfile::tempdir().unwrap();
    // Prices 100 000 times the default per core-hour (the GPU's unchanged; this host plans CPUs only):
    // the plan keeps its shape (every option's cost scales alike) and its cost shows the file was read.
    let prices = dir.path().join("prices.json");
    std::fs::write(&prices, r#"{"cpu_core_hour": 3400.0, "gpu_hour": 3.06}"#).unwrap();
    let (p, _) = Provider::start_with(
        dir.path(),
        &[
            ("basic_auth", "false"),
            ("SMILESS_TIME_SCALE", "0.02"),
            ("SMILESS_PRICES", prices.to_str().unwrap()),
        ],
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
    let mut report = Value::Null;
    wait_for("a plan", async || {
        report = get(a, "/system/plan").await.json();
        d = report["dags"][0].clone();
        !d["control"]["plan"].is_null()
    })
    .await;
    assert_eq!(report["prices"]["cpu_core_hour"], 3400.0, "{report}");
    // At the default 0.034 $ per core-hour even 60 always-on cores cost 2 $/h; any plan of three
    // members at these prices costs far more (even the lean one that fits a 2-core host).
    assert!(
        d["control"]["plan"]["cost_per_hour"].as_f64().unwrap() > 10.0,
        "{d}"
    );
    // Planned against this host's cores: what the plan requests fits them (docs/capacity.md "Live").
    let host = &report["capacity"]["nodes"][0];
    assert!(
        host["cpu_millis_requested"].as_u64() <= host["cpu_millis_capacity"].as_u64(),
        "{report}"
    );
    assert_eq!(report["capacity"]["overcommit"], 1.0, "{report}");
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
    // The first plan's reason, or a later tick's when the wait caught one.
    let reason = d["control"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("re-planned") || reason.contains("plan unchanged"),
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
    let line = crate::provider::first_line(stderr).await;
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
    scale(a, "w-b", 0).await;
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
    assert_eq!(stats["cold_starts"], 0, "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_emulator_replica_initialises_before_it_serves() {
    // Classic mode: the runtime's warm-up call pays the initialisation before the replica takes requests.
    replicas_initialise_before_they_serve(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_emulator_replicas_each_get_their_own_upstream_port() {
    // http mode (as stack.yml runs it): every replica names the same `upstream_url` port, as in a pod; the
    // local runtime gives each its own, so three replicas come up on one host and serve.
    replicas_initialise_before_they_serve(true).await;
}

/// A model that initialises in 0.4 s: a replica the runtime starts (from zero, or a second one for a
/// burst) takes requests only once initialised, so no request ever pays it.
async fn replicas_initialise_before_they_serve(http_mode: bool) {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    crate::provider::model_profiles(&profiles, 0.4, 0.05);
    let (p, _) = Provider::start(&dir.path().join("state")).await;
    let a = p.addr;
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let mut env = json!({"SMILESS_PROFILES": profiles.display().to_string()});
    let mut process = format!("{fnbin} --profile model");
    if http_mode {
        env["mode"] = json!("http");
        env["upstream_url"] = json!("http://127.0.0.1:5000");
        process.push_str(" --listen 127.0.0.1:5000");
    }
    let f = json!({
        "service": "solo", "image": "local/test:1",
        "envProcess": process,
        "envVars": env,
    });
    assert_eq!(deploy(a, &f).await.0, 202);
    let available =
        |n: u64| async move { status(a, "solo").await["availableReplicas"].as_u64() == Some(n) };
    wait_for("the first replica", async || available(1).await).await;
    scale(a, "solo", 3).await;
    wait_for("three replicas", async || available(3).await).await;
    let calls = (0..6).map(|_| request(a, "POST", "/function/solo", &[], b"x"));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, 200, "{}", r.text());
        let out = r.json();
        assert_eq!(
            out["init_ms"], 0.0,
            "a request paid the initialisation: {out}"
        );
        assert_eq!(out["emulator"], "smiless-fn", "{out}");
    }
    if http_mode {
        // Three emulator processes listen, each on a port of its own (with one shared port, two would
        // fail to bind and every watchdog would proxy to the first).
        let logs = request(
            a,
            "GET",
            "/system/logs?name=solo&follow=false&tail=-1",
            &[],
            b"",
        )
        .await
        .text();
        let ports: std::collections::BTreeSet<&str> = logs
            .split("listening on 127.0.0.1:")
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .collect();
        assert_eq!(ports.len(), 3, "{logs}");
        assert!(!ports.contains("5000"), "{logs}");
    }
}
