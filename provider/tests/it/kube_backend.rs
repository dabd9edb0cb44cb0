//! The Kubernetes backend against a REAL API server (e2e/kube/cluster.sh: kube-apiserver, controller manager,
//! scheduler and kwok's fake CPU/GPU nodes). It runs when `SMILESS_KUBECONFIG_TEST` names a kubeconfig; with
//! `SMILESS_KUBE_REQUIRE=1` and no kubeconfig it FAILS; with neither it prints that it did not run (which is
//! not coverage: the real coverage is e2e/kube.sh).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backend_kube::KubeBackend;
use backend_kube::mapping::{self, Options};
use contract::backend::{Backend, Placement};
use contract::catalog::FunctionRecord;
use contract::types::FunctionDeployment;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams};

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("SMILESS_KUBECONFIG_TEST").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("SMILESS_KUBE_REQUIRE").as_deref() != Ok("1"),
                "SMILESS_KUBE_REQUIRE=1 but SMILESS_KUBECONFIG_TEST does not name a kubeconfig"
            );
            eprintln!(
                "kube integration test NOT RUN: set SMILESS_KUBECONFIG_TEST=<kubeconfig of a test cluster>"
            );
            None
        }
    }
}

async fn client(path: &PathBuf) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// Polls `f` every 200 ms for up to `secs`; panics with `what` on timeout.
async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn record(ns: &str, name: &str, replicas: u32, generation: u64) -> Arc<FunctionRecord> {
    Arc::new(FunctionRecord {
        deployment: FunctionDeployment {
            service: name.into(),
            namespace: ns.into(),
            image: "smiless/smiless-fn:latest".into(),
            env_process: "cat".into(),
            secrets: vec!["it-secret".into()],
            ..Default::default()
        },
        replicas,
        created_at: jiff::Timestamp::now(),
        generation,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_backend_drives_a_real_api_server() {
    let Some(path) = kubeconfig() else { return };
    let client = client(&path).await;
    let ns = format!("smiless-it-{:08x}", rand::random::<u32>());
    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(secrets.path().join(&ns)).unwrap();
    std::fs::write(secrets.path().join(&ns).join("it-secret"), "s3cret").unwrap();
    let b = KubeBackend::with_client(
        client.clone(),
        Options::default(),
        secrets.path().to_owned(),
        None,
    );
    assert!(
        b.wait_synced(Duration::from_secs(30)).await,
        "the watch cache lists"
    );
    assert_eq!(b.orchestration(), "kubernetes");

    // Secret: synced from the catalog's file into a labelled Kubernetes Secret. A just-started API server
    // may refuse writes for a moment (the backend says 503 then), so the first write is retried.
    eventually(30, "the API server accepts the first write", async || {
        b.secret_changed(&ns, "it-secret").await.is_ok()
    })
    .await;
    let s: Secret = Api::namespaced(client.clone(), &ns)
        .get("it-secret")
        .await
        .unwrap();
    assert_eq!(s.data.unwrap()["it-secret"].0, b"s3cret");
    let n: Namespace = Api::all(client.clone()).get(&ns).await.unwrap();
    assert_eq!(
        n.metadata.labels.unwrap()["openfaas"],
        "1",
        "namespace labelled for OpenFaaS"
    );

    // Deploy on a planned GPU share: the scheduler puts the pod on a GPU node, the cache sees it ready.
    let rec = record(&ns, "itfn", 1, 0);
    b.deploy(&rec).await.unwrap();
    let placed = b
        .place(
            &rec,
            Some(Placement {
                cpus: vec![],
                gpu: Some((0, 20)),
            }),
        )
        .await
        .unwrap();
    assert!(placed);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deps.get("itfn").await.unwrap();
    let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
    let limits = c.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(
        limits["nvidia.com/gpu"].0, "2",
        "20 % of a GPU = 2 MPS units"
    );
    assert_eq!(
        mapping::placement_from(&d),
        mapping::Hardware::Gpu { percent: 20 }
    );
    eventually(60, "one available replica in the watch cache", async || {
        b.status(&ns, "itfn").available == 1
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let list = pods
        .list(&ListParams::default().labels("faas_function=itfn"))
        .await
        .unwrap();
    let node = list
        .items
        .iter()
        .find_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .unwrap();
    assert!(node.starts_with("gpu-node-"), "scheduled on {node}");
    // The proxy's resolution: a ready endpoint from the EndpointSlices (kwok gives pods IPs).
    let ep = b.endpoint(&ns, "itfn", Duration::from_secs(30)).await;
    assert!(
        ep.is_some_and(|a| a.port() == 8080),
        "ready endpoint: {ep:?}"
    );

    // Scale to zero: spec.replicas 0, and the endpoint goes away.
    let zero = record(&ns, "itfn", 0, 0);
    b.scale(&zero).await.unwrap();
    assert_eq!(deps.get("itfn").await.unwrap().spec.replicas, Some(0));
    eventually(60, "no replica left", async || {
        b.status(&ns, "itfn").available == 0
    })
    .await;

    // A second backend (a restarted provider) keeps the plan the cluster records.
    b.shutdown().await;
    let b2 = KubeBackend::with_client(
        client.clone(),
        Options::default(),
        secrets.path().to_owned(),
        Some(ns.clone()),
    );
    b2.deploy(&record(&ns, "itfn", 1, 0)).await.unwrap();
    let d = deps.get("itfn").await.unwrap();
    let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"].0,
        "2"
    );

    // Delete: Deployment and Service gone.
    b2.delete(&ns, "itfn").await.unwrap();
    eventually(60, "the Deployment is deleted", async || {
        deps.get_opt("itfn").await.unwrap().is_none()
    })
    .await;
    b2.shutdown().await;
    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}
