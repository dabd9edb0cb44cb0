//! Batching live (docs/batching.md): the DAG runner gathers concurrent requests to a member that declares
//! batching and that the plan batches into one framed call of a real `smiless-fn --listen` process, which
//! counts the calls it serves; a member that does not declare batching is called once per request even
//! when the plan says batch 4.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;
use contract::backend::Backend;
use contract::backend::fixed::FixedBackend;
use contract::catalog::Catalog;
use contract::config::Config;
use contract::dag::live::PlanView;
use contract::state::AppState;
use contract::types::FunctionDeployment;
use serde_json::{Value, json};

use crate::client::request;

/// Kills the emulator however the test ends (a panic must not leave it holding the test's output).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `smiless-fn --listen` process with a profile whose batches are cheap per item: t(B) = 0.01·B + 0.2 s.
fn emulator(dir: &std::path::Path) -> (Killed, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let profiles = dir.join("profiles.json");
    let m = json!({"a": 0.0, "b": 0.01, "c": 0.2});
    let i = json!({"mean_s": 0.0, "std_s": 0.0});
    std::fs::write(
        &profiles,
        json!({"source": "test", "profiles": {"model": {
            "init": {"cpu": i, "gpu": i}, "infer": {"cpu": m, "gpu": m}, "memory_mb": 64}}})
        .to_string(),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smiless-fn"))
        .args([
            "--profile",
            "model",
            "--listen",
            "127.0.0.1:0",
            "--profiles",
        ])
        .arg(&profiles)
        .env("OMP_NUM_THREADS", "1")
        .env("SMILESS_TIME_SCALE", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    // Keep reading, so the emulator's later lines never meet a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    (Killed(child), addr)
}

/// The provider in process on the fixed backend (every member is the emulator); the DAG `b` is
/// `b-entry` → `b-model`, only `b-model` declares `com.smiless.batch`; the plan batches both by 4.
fn provider(dir: &std::path::Path, upstream: SocketAddr) -> SocketAddr {
    let config = Config::for_tests(dir.to_owned());
    let catalog = Arc::new(Catalog::open(dir, &config.default_namespace, &[], 10).unwrap());
    let backend = Arc::new(FixedBackend::new(Some(upstream)));
    for (name, extra) in [
        (
            "b-entry",
            json!({"com.smiless.next": "b-model", "com.smiless.sla": "5s"}),
        ),
        ("b-model", json!({"com.smiless.batch": "4"})),
    ] {
        let mut ann: serde_json::Map<String, Value> = extra.as_object().unwrap().clone();
        ann.insert("com.smiless.dag".into(), json!("b"));
        ann.insert("com.smiless.profile".into(), json!("model"));
        let rec = catalog
            .deploy(FunctionDeployment {
                service: name.into(),
                image: "emulator".into(),
                env_process: "smiless-fn".into(),
                annotations: Some(serde_json::from_value(Value::Object(ann)).unwrap()),
                ..Default::default()
            })
            .unwrap();
        futures::executor::block_on(backend.deploy(&rec)).unwrap();
    }
    let state = web::Data::new(AppState::new(catalog, backend, &config));
    // The plan: every member batch 4 (as a planner without declarations would say).
    let dag = state
        .dags
        .current(&state.catalog)
        .by_key
        .values()
        .next()
        .unwrap()
        .dag
        .clone()
        .unwrap();
    assert_eq!(
        dag.nodes[dag.index_of("b-model").unwrap()].max_batch,
        Some(4)
    );
    let cpu = optimizer::Hardware::Cpu { cores: 1 };
    let on = optimizer::ColdStart::AlwaysOn;
    let mut plan = optimizer::testkit::plan_of(&dag, &[(on, cpu, 1), (on, cpu, 1)]);
    for f in &mut plan.functions {
        f.choice.batch = 4;
    }
    state.dags.live.set_plan(
        &dag.namespace,
        &dag.name,
        PlanView {
            plan: Some(plan),
            load: None,
            reason: "test".into(),
            decided_at: jiff::Timestamp::now(),
            actions: Vec::new(),
            hardware_applied: true,
            degradation: None,
        },
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let s = actix_web::HttpServer::new(move || contract::api::app(state.clone()))
                .workers(2)
                .bind(("127.0.0.1", 0))
                .unwrap();
            tx.send(s.addrs()[0]).unwrap();
            let _ = s.run().await;
        });
    });
    rx.recv().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_runner_gathers_concurrent_requests_into_one_batch_call() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, upstream) = emulator(dir.path());
    let addr = provider(dir.path(), upstream);
    let calls: Vec<_> = (0..4)
        .map(|k| {
            tokio::spawn(async move {
                request(
                    addr,
                    "POST",
                    "/function/b",
                    &[],
                    format!("req{k}").as_bytes(),
                )
                .await
            })
        })
        .collect();
    let mut outs = Vec::new();
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        outs.push(r.json());
    }
    // Each answer is b-model's part of a batch call: the answers that share a call number are that
    // call's batch, and the four requests took fewer calls than requests (one call of 4 unless the
    // host's load spread the entry's answers over more than the gather window).
    let mut by_call: BTreeMap<u64, u64> = BTreeMap::new();
    for o in &outs {
        assert_eq!(o["profile"], "model", "{o}");
        *by_call.entry(o["call"].as_u64().unwrap()).or_default() += 1;
    }
    for o in &outs {
        assert_eq!(
            o["batch"].as_u64(),
            Some(by_call[&o["call"].as_u64().unwrap()]),
            "{outs:?}"
        );
    }
    assert!(by_call.len() < 4, "{outs:?}");
    // The entry, which declares nothing, was called once per request: the emulator served 4 entry
    // calls and the model's batch calls, no more.
    let last = *by_call.keys().next_back().unwrap();
    assert_eq!(last, 4 + by_call.len() as u64, "{outs:?}");
}
