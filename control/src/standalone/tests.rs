//! The shell against a real catalog and a fake backend ([`FixedBackend`]): which functions it manages,
//! that it scales through `AppState::scale`, and that a scale by hand stands.
use std::sync::Arc;

use contract::backend::fixed::FixedBackend;
use contract::catalog::Catalog;
use contract::config::Config;
use contract::types::FunctionDeployment;

use super::*;

fn state(dir: &std::path::Path) -> AppState {
    let catalog = Arc::new(Catalog::open(dir, "openfaas-fn", &[], 10).unwrap());
    AppState::new(
        catalog,
        Arc::new(FixedBackend::new(None)),
        &Config::for_tests(dir.to_owned()),
    )
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn deployment(
    name: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: "x".to_owned(),
        labels: map(labels),
        annotations: map(annotations),
        ..FunctionDeployment::default()
    }
}

fn deploy(s: &AppState, name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) {
    s.catalog
        .deploy(deployment(name, labels, annotations))
        .unwrap();
}

fn replicas(s: &AppState, name: &str) -> u32 {
    s.catalog.function("openfaas-fn", name).unwrap().replicas
}

/// `n` requests to `name`, each ended at once.
fn invoke(s: &AppState, name: &str, n: usize) {
    for _ in 0..n {
        drop(s.requests.start("openfaas-fn", name));
    }
}

#[test]
fn only_labelled_standalone_functions_are_managed_and_hand_scales_stand() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let rps = [
        ("com.openfaas.scale.type", "rps"),
        ("com.openfaas.scale.max", "2"),
    ];
    deploy(&s, "auto", &rps, &[]);
    deploy(&s, "plain", &[("com.openfaas.scale.max", "2")], &[]);
    deploy(&s, "member", &rps, &[("com.smiless.dag", "d")]);
    deploy(&s, "bad", &[("com.openfaas.scale.type", "cpu")], &[]);
    let mut sa = Standalone::default();
    let fns = s.catalog.all_functions();
    let sample = |ns: &str, f: &str| s.requests.sample(ns, f);
    assert!(sa.decide(0.0, &fns, 10, sample).is_empty());
    for name in ["auto", "plain", "member", "bad"] {
        invoke(&s, name, 50);
    }
    // 50 requests in 10 s = 5 req/s: only "auto" wants 2.
    let changes = sa.decide(10.0, &fns, 10, sample);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.name.as_str(), c.from, c.to))
            .collect::<Vec<_>>(),
        [("auto", 1, 2)]
    );
    // Not applied (say the scale failed): asked again on the next tick.
    assert_eq!(sa.decide(11.0, &fns, 10, sample).len(), 1);
    sa.applied(&changes[0]);
    assert!(sa.decide(12.0, &fns, 10, sample).is_empty());
    // A hand scale to 5 (the policy still wants 2): it stands while the policy's count is unchanged.
    s.catalog.scale("openfaas-fn", "auto", 5).unwrap();
    let fns = s.catalog.all_functions();
    assert!(sa.decide(13.0, &fns, 10, sample).is_empty());
    // An update re-reads the labels and takes the count it leaves (5: without scale.min the catalog
    // keeps it) as the one in force, so the policy's 2 is applied again.
    deploy_update(
        &s,
        "auto",
        &[
            ("com.openfaas.scale.type", "rps"),
            ("com.openfaas.scale.max", "3"),
        ],
    );
    let fns = s.catalog.all_functions();
    let c = sa.decide(14.0, &fns, 10, sample);
    assert_eq!(c.iter().map(|c| c.to).collect::<Vec<_>>(), [2], "{c:?}");
}

fn deploy_update(s: &AppState, name: &str, labels: &[(&str, &str)]) {
    s.catalog.update(deployment(name, labels, &[])).unwrap();
}

#[tokio::test]
async fn the_tick_scales_an_idle_function_to_zero_through_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let zero = [
        ("com.openfaas.scale.zero", "true"),
        ("com.openfaas.scale.zero-duration", "50ms"),
    ];
    deploy(&s, "idle", &zero, &[]);
    deploy(&s, "hand", &[], &[]);
    s.scale("openfaas-fn", "hand", 3).await.unwrap();
    let mut sa = Standalone::default();
    sa.tick(&s).await;
    assert_eq!(replicas(&s, "idle"), 1);
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    sa.tick(&s).await;
    assert_eq!(replicas(&s, "idle"), 0, "idle past zero-duration");
    assert_eq!(
        replicas(&s, "hand"),
        3,
        "an unmanaged function keeps its replicas"
    );
    // The next request (the proxy scales from zero and counts it) brings back the minimum.
    s.scale("openfaas-fn", "idle", 1).await.unwrap();
    invoke(&s, "idle", 1);
    sa.tick(&s).await;
    assert_eq!(replicas(&s, "idle"), 1);
    // Deleted functions' counters go.
    s.catalog.delete("openfaas-fn", "idle").unwrap();
    sa.tick(&s).await;
    assert_eq!(s.requests.sample("openfaas-fn", "idle").started, 0);
}
