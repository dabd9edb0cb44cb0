//! The live loop's joint decision on a fake 2-core backend serving the three DAGs of `stack.yml`: at
//! every tick the plans' requests fit the 2 cores, and a degraded DAG says why in the plan view that
//! `/system/plan` shows.
use std::collections::BTreeMap;
use std::sync::Arc;

use contract::backend::fixed::FixedBackend;
use contract::catalog::Catalog;
use contract::config::Config;
use contract::types::FunctionDeployment;
use optimizer::capacity::Capacity;
use optimizer::dag::{ANN_DAG, ANN_NEXT, ANN_PROFILE, ANN_SLA};
use optimizer::testkit::{PAPER_DAGS, stack_dag};

use super::*;

/// The three DAGs of `stack.yml` (their SLA set to `sla`) on a backend of `capacity`.
fn state(dir: &std::path::Path, capacity: Capacity, sla: &str) -> Arc<AppState> {
    let catalog = Arc::new(Catalog::open(dir, "openfaas-fn", &[], 10).unwrap());
    for name in PAPER_DAGS {
        let dag = stack_dag(name).unwrap();
        for (i, n) in dag.nodes.iter().enumerate() {
            let next: Vec<&str> = dag.succ[i]
                .iter()
                .map(|&j| dag.nodes[j].name.as_str())
                .collect();
            let mut ann: BTreeMap<String, String> = [
                (ANN_DAG.to_owned(), name.to_owned()),
                (ANN_NEXT.to_owned(), next.join(",")),
            ]
            .into();
            if let Some(p) = &n.profile {
                ann.insert(ANN_PROFILE.to_owned(), p.clone());
            }
            if i == dag.entry {
                ann.insert(ANN_SLA.to_owned(), sla.to_owned());
            }
            catalog
                .deploy(FunctionDeployment {
                    service: n.name.clone(),
                    image: "x".to_owned(),
                    annotations: Some(ann),
                    ..FunctionDeployment::default()
                })
                .unwrap();
        }
    }
    Arc::new(AppState::new(
        catalog,
        Arc::new(FixedBackend::new(None).with_capacity(capacity)),
        &Config::for_tests(dir.to_owned()),
    ))
}

/// `n` arrivals of DAG `name` now (profile time).
fn arrive(state: &AppState, lp: &mut Loop, name: &str, n: usize) {
    let now = state.dags.live.now() / state.dags.live.time_scale;
    let v = lp
        .arrivals
        .entry(("openfaas-fn".to_owned(), name.to_owned()))
        .or_default();
    v.extend((0..n).map(|i| now + i as f64 * 1e-3));
}

/// The three DAGs on a backend of `capacity` after one tick with three arrivals each.
async fn one_tick(
    dir: &std::path::Path,
    capacity: Capacity,
    sla: &str,
    overcommit: f64,
) -> Arc<AppState> {
    let state = state(dir, capacity, sla);
    let mut lp = new_loop(
        &state,
        LivePolicy::Smiless,
        EstimatorKind::Recent,
        overcommit,
    );
    for name in PAPER_DAGS {
        arrive(&state, &mut lp, name, 3);
    }
    on_tick(&state, &mut lp).await;
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_dags_on_two_cores_never_request_more_than_two_cores() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), Capacity::host(2, &[]), "8s");
    let mut lp = new_loop(&state, LivePolicy::Smiless, EstimatorKind::Recent, 1.0);
    let mut degraded_seen = false;
    for tick in 0..12 {
        // Loads that change between ticks: bursts on one DAG after another.
        let dag = PAPER_DAGS[tick % 3];
        arrive(&state, &mut lp, dag, 1 + 4 * (tick % 4));
        on_tick(&state, &mut lp).await;
        let cap = state
            .dags
            .live
            .capacity()
            .expect("a joint decision was made");
        assert_eq!(cap.nodes.len(), 1);
        let host = &cap.nodes[0];
        assert_eq!(host.cpu_millis_capacity, 2000, "2 cores, overcommit 1");
        assert!(
            host.cpu_millis_requested <= host.cpu_millis_capacity,
            "tick {tick}: {host:?}"
        );
        let mut views = 0;
        for name in PAPER_DAGS {
            let v = state.dags.live.plan("openfaas-fn", name).unwrap();
            assert!(v.plan.is_some(), "{name}: {}", v.reason);
            if let Some(d) = &v.degradation {
                degraded_seen = true;
                assert_eq!(d.dag, name);
                assert!(v.reason.contains("degraded"), "{}", v.reason);
            }
            views += 1;
        }
        assert_eq!(views, 3);
    }
    assert!(degraded_seen, "three DAGs at 8 s do not fit 2 cores");
    // What `/system/plan` embeds: each DAG's view with its degradation, and the capacity.
    let va = state
        .dags
        .live
        .plan("openfaas-fn", "voice-assistant")
        .unwrap();
    let json = serde_json::to_value(&va).unwrap();
    let kind = json["degradation"]["reason"]["kind"].as_str().unwrap();
    assert!(kind == "capacity" || kind == "sla-below-fastest", "{json}");
    let cap = serde_json::to_value(state.dags.live.capacity().unwrap()).unwrap();
    assert_eq!(cap["overcommit"], 1.0);
    assert_eq!(cap["nodes"][0]["cpu_millis_capacity"], 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overcommit_and_a_larger_host_lift_the_degradation() {
    let dir = tempfile::tempdir().unwrap();
    let state = one_tick(dir.path(), Capacity::host(64, &[]), "8s", 2.0).await;
    let cap = state.dags.live.capacity().unwrap();
    assert_eq!(cap.overcommit, 2.0);
    assert_eq!(cap.nodes[0].cpu_millis_capacity, 128_000);
    for name in PAPER_DAGS {
        let v = state.dags.live.plan("openfaas-fn", name).unwrap();
        assert!(v.degradation.is_none(), "{name}: {}", v.reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_that_is_not_deployed_runs_on_demand_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // One core: the stack's 2 s SLAs; voice-assistant's fastest plan needs more than there is.
    let state = one_tick(dir.path(), Capacity::host(1, &[]), "2s", 1.0).await;
    let absent: Vec<_> = PAPER_DAGS
        .iter()
        .filter_map(|n| state.dags.live.plan("openfaas-fn", n))
        .filter(|v| {
            v.degradation
                .as_ref()
                .is_some_and(|d| d.predicted_latency_s.is_none())
        })
        .collect();
    assert!(!absent.is_empty(), "one core holds at most one DAG's peak");
    for v in absent {
        let plan = v.plan.unwrap();
        assert_eq!(plan.policy, "not deployed");
        assert!(v.reason.contains("not deployed"), "{}", v.reason);
        for f in &plan.functions {
            assert_eq!(
                f.choice.policy,
                optimizer::ColdStart::KeepAlive { seconds: 0.0 },
                "released after each use"
            );
        }
    }
}
