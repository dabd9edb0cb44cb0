//! `smiless profile` against the real provider on the local backend with `smiless-fn` replicas, and the
//! online profile refresh of the live control loop.
use std::time::Duration;

use profiler::{self, Config, NoProgress, client::Api};
use serde_json::json;

use crate::client::{get, request, send_json};
use crate::provider::Provider;

/// A profile with all three coefficients non-zero, so the fit has something to find in each.
const PROFILES: &str = r#"{"source": "test", "profiles": {
  "synthetic": {"init": {"cpu": {"mean_s": 2.0, "std_s": 0.2}, "gpu": {"mean_s": 3.0, "std_s": 0.3}},
                "infer": {"cpu": {"a": 1.0, "b": 0.1, "c": 0.3}, "gpu": {"a": 0.01, "b": 0.0, "c": 0.1}},
                "memory_mb": 512},
  "slow": {"init": {"cpu": {"mean_s": 1.0, "std_s": 0.1}, "gpu": {"mean_s": 1.0, "std_s": 0.1}},
           "infer": {"cpu": {"a": 2.0, "b": 0.0, "c": 1.0}, "gpu": {"a": 0.01, "b": 0.0, "c": 0.1}},
           "memory_mb": 512}}}"#;

/// Large enough that a call's fixed overhead (proxy, fork of the emulator: a few ms, more when the other
/// tests load the 2 cores) stays small against the emulated times.
const SCALE: &str = "0.05";

fn config(function: &str, cores: Vec<u32>, memory_mib: Vec<u64>) -> Config {
    Config {
        function: function.into(),
        namespace: None,
        cpu_cores: cores,
        gpu_shares: Vec::new(),
        default_grid: false,
        batches: vec![1, 2, 4, 8, 16],
        repeat: 3,
        exceed_prob: 0.05,
        time_scale: None,
        memory_mib,
        input: bytes::Bytes::from_static(b"{\"input\":\"x\"}"),
        heldout: None,
        ready_timeout: Duration::from_secs(20),
        base: None,
        profile_name: None,
    }
}

async fn deploy_emulator(addr: std::net::SocketAddr, dir: &std::path::Path, name: &str) {
    let file = dir.join("profiles.json");
    std::fs::write(&file, PROFILES).unwrap();
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let body = json!({
        "service": name, "image": "smiless/smiless-fn:test",
        "envProcess": format!("{fnbin} --profile synthetic --profiles {}", file.display()),
        "envVars": {"SMILESS_TIME_SCALE": SCALE},
        "annotations": {"com.smiless.profile": "synthetic"}
    });
    let r = send_json(addr, "POST", "/system/functions", &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_of_the_emulator_fits_within_the_must_show_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Provider::start(dir.path().join("state").as_path()).await;
    deploy_emulator(p.addr, dir.path(), "synth").await;
    let cores = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        vec![1, 2]
    } else {
        vec![1]
    };
    let api = Api::new(&format!("http://{}", p.addr), None, Duration::from_secs(30)).unwrap();
    let mut cfg = config("synth", cores.clone(), Vec::new());
    // Medians of 5 calls per cell: robust to a call delayed by the other tests' processes.
    cfg.repeat = 5;
    let report = profiler::run(&api, &cfg, &mut NoProgress).await.unwrap();
    eprintln!(
        "profile: fit {:?}, held-out {:?} error {:.3}, init {:?}",
        report.fit, report.heldout, report.heldout_error, report.init
    );
    let fit = &report.fit["cpu"];
    assert!(fit.mape < 0.10, "MAPE {}", fit.mape);
    assert!(
        report.heldout_error < 0.15,
        "held-out {}",
        report.heldout_error
    );
    assert_eq!(fit.points, cores.len() * 5);
    assert!(fit.a >= 0.0 && fit.b >= 0.0 && fit.c >= 0.0);
    // The time scale came from the function's environment; profile seconds recover the emulated model
    // (a = 1.0 per item on one core; overheads land in c).
    assert_eq!(report.time_scale, 0.05);
    // The per-item time on one core is the emulated a + b = 1.1 (a constant overhead cannot move it;
    // noise can shift weight between a and b, which only differ by 1/r).
    assert!((fit.a + fit.b - 1.1).abs() / 1.1 < 0.2, "{fit:?}");
    let t16 = report
        .profile
        .infer_time(optimizer::Hardware::Cpu { cores: 1 }, 16);
    assert!((t16 - 17.9).abs() / 17.9 < 0.2, "t(16, 1) = {t16}");
    // Initialisation: the emulator's 2.0 s mean (profile time), measured as cold − warm.
    let init = &report.init["cpu:1"];
    assert_eq!(init.samples_s.len(), 5);
    // Cold − warm also holds the replica's own start (process spawn, health check), which divided by
    // the time scale is a sizeable part of a profile second.
    assert!(init.mean_s > 1.6 && init.mean_s < 6.0, "{init:?}");
    assert!((init.n - 1.645).abs() < 0.01);
    // The copy is gone; the original is untouched.
    assert_eq!(
        get(p.addr, "/system/function/synth-profile").await.status,
        404
    );
    assert_eq!(get(p.addr, "/system/function/synth").await.status, 200);
    // The profile is in the planner's format.
    let set = report.into_set(None);
    let text = serde_json::to_string(&set).unwrap();
    let back = optimizer::ProfileSet::from_json(&text).unwrap();
    assert!(back.get("synthetic").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sweep_finds_the_rlimit_knee_and_bad_grids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Provider::start(dir.path().join("state").as_path()).await;
    deploy_emulator(p.addr, dir.path(), "mem").await;
    let api = Api::new(&format!("http://{}", p.addr), None, Duration::from_secs(30)).unwrap();
    let mut cfg = config("mem", vec![1], vec![512, 2]);
    cfg.batches = vec![1, 2, 4, 8];
    cfg.repeat = 3;
    let report = profiler::run(&api, &cfg, &mut NoProgress).await.unwrap();
    let m = &report.memory;
    eprintln!("memory: {m:?}");
    assert_eq!(m.sweep.len(), 2);
    assert!(m.sweep[0].ok, "512 MiB of address space serves: {m:?}");
    assert!(
        !m.sweep[1].ok,
        "2 MiB of address space cannot start a process: {m:?}"
    );
    assert_eq!(m.knee_mib, Some(512));
    assert_eq!(report.profile.memory_mb, 512);

    // More cores than the host has: the provider refuses the placement, and an explicit grid fails.
    let cfg = config("mem", vec![1, 4096], Vec::new());
    let err = profiler::run(&api, &cfg, &mut NoProgress).await;
    assert!(err.is_err());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_many = u32::try_from(cpus + 1).unwrap();
    let cfg = config("mem", vec![too_many], Vec::new());
    let err = profiler::run(&api, &cfg, &mut NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot place") && err.contains("CPU cores"),
        "{err}"
    );
    // An unknown function is a readable error.
    let err = profiler::run(&api, &config("nope", vec![1], Vec::new()), &mut NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not deployed"), "{err}");
}

#[test]
fn cli_rejects_bad_input_readably() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smiless"))
        .args([
            "profile",
            "f",
            "--provider",
            "http://127.0.0.1:9",
            "--batches",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--batches 0"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smiless"))
        .args(["profile", "f", "--provider", "localhost:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://HOST:PORT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_refresh_detects_a_drifted_profile_and_replans() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.json");
    std::fs::write(&file, PROFILES).unwrap();
    // The planner believes the member is `synthetic`; the replica really runs `slow` (t(1, r) is about
    // 2–3× larger): the observed times must drift the profile and re-plan.
    let (p, _) = Provider::start_with(
        dir.path().join("state").as_path(),
        &[
            ("basic_auth", "false"),
            ("SMILESS_TIME_SCALE", "0.02"),
            ("SMILESS_PROFILES", file.to_str().unwrap()),
        ],
    )
    .await;
    let fnbin = env!("CARGO_BIN_EXE_smiless-fn");
    let body = json!({
        "service": "m", "image": "smiless/smiless-fn:test",
        "envProcess": format!("{fnbin} --profile slow --profiles {}", file.display()),
        "envVars": {"SMILESS_TIME_SCALE": "0.02"},
        "annotations": {"com.smiless.dag": "d", "com.smiless.sla": "30s",
                        "com.smiless.profile": "synthetic"}
    });
    let r = send_json(p.addr, "POST", "/system/functions", &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let t0 = std::time::Instant::now();
    let mut seen = String::new();
    while t0.elapsed() < Duration::from_secs(40) {
        let r = request(p.addr, "POST", "/function/d", &[], b"x").await;
        assert_eq!(r.status, 200, "{}", r.text());
        seen = get(p.addr, "/metrics").await.text();
        if seen.contains(
            "smiless_profile_drift_total{namespace=\"openfaas-fn\",function=\"m\",kind=\"infer\"}",
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = seen
        .lines()
        .find(|l| l.starts_with("smiless_profile_drift_total{") && l.contains("kind=\"infer\""))
        .unwrap_or_else(|| panic!("no drift counted:\n{seen}"));
    assert!(line.ends_with(" 1") || line.ends_with(" 2"), "{line}");
}
