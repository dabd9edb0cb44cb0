//! Table tests of the mapping: each row is a request (and plan) and the Kubernetes fields it must produce.
use super::*;
use contract::types::FunctionResources;

fn rec(d: FunctionDeployment, replicas: u32) -> FunctionRecord {
    FunctionRecord {
        deployment: FunctionDeployment {
            namespace: if d.namespace.is_empty() {
                "openfaas-fn".into()
            } else {
                d.namespace.clone()
            },
            ..d
        },
        replicas,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        generation: 3,
    }
}

fn base() -> FunctionDeployment {
    FunctionDeployment {
        service: "f".into(),
        image: "img:1".into(),
        env_process: "cat".into(),
        ..Default::default()
    }
}

fn res(cpu: &str, memory: &str) -> Option<FunctionResources> {
    Some(FunctionResources {
        cpu: cpu.into(),
        memory: memory.into(),
        ..Default::default()
    })
}

fn pod(dep: &Deployment) -> &PodSpec {
    dep.spec.template.spec.as_ref().unwrap()
}

fn container(dep: &Deployment) -> &Container {
    &pod(dep).containers[0]
}

fn q(m: &Option<BTreeMap<String, Quantity>>, k: &str) -> Option<String> {
    m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
}

fn env_of(dep: &Deployment) -> Vec<(String, String)> {
    container(dep)
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

#[test]
fn hardware_table() {
    let o = Options::default();
    // (annotation, plan, expected cpu limit, cpu request, gpu limit, MPS env, node hardware label)
    type Row = (
        Option<&'static str>,
        Hardware,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );
    let rows: [Row; 7] = [
        (
            None,
            Hardware::Unplanned,
            Some("500m"),
            Some("250m"),
            None,
            None,
            "cpu",
        ),
        (
            None,
            Hardware::Cpu { cores: 4 },
            Some("4"),
            Some("4"),
            None,
            None,
            "cpu",
        ),
        (
            None,
            Hardware::Gpu { percent: 30 },
            Some("500m"),
            Some("250m"),
            Some("3"),
            Some("30"),
            "gpu",
        ),
        (
            None,
            Hardware::Gpu { percent: 25 },
            Some("500m"),
            Some("250m"),
            Some("3"),
            Some("25"),
            "gpu",
        ),
        (
            None,
            Hardware::Gpu { percent: 100 },
            Some("500m"),
            Some("250m"),
            Some("10"),
            Some("100"),
            "gpu",
        ),
        // A pinned annotation wins over the plan.
        (
            Some("gpu:10"),
            Hardware::Cpu { cores: 2 },
            Some("500m"),
            Some("250m"),
            Some("1"),
            Some("10"),
            "gpu",
        ),
        (
            Some("cpu:8"),
            Hardware::Gpu { percent: 50 },
            Some("8"),
            Some("8"),
            None,
            None,
            "cpu",
        ),
    ];
    for (ann, planned, cpu_l, cpu_r, gpu, mps, node) in rows {
        let mut d = base();
        d.limits = res("500m", "128Mi");
        d.requests = res("250m", "64Mi");
        if let Some(a) = ann {
            d.annotations = Some([(ANN_HARDWARE.to_owned(), a.to_owned())].into());
        }
        let r = rec(d, 2);
        let hw = hardware(&r.deployment, planned).unwrap();
        let dep = deployment(&r, hw, planned, &o).unwrap();
        let c = container(&dep);
        let rr = c.resources.as_ref().unwrap();
        let row = format!("{ann:?} {planned:?}");
        assert_eq!(q(&rr.limits, "cpu").as_deref(), cpu_l, "{row}: cpu limit");
        assert_eq!(
            q(&rr.requests, "cpu").as_deref(),
            cpu_r,
            "{row}: cpu request"
        );
        assert_eq!(
            q(&rr.limits, "nvidia.com/gpu").as_deref(),
            gpu,
            "{row}: gpu limit"
        );
        assert_eq!(
            q(&rr.requests, "nvidia.com/gpu"),
            None,
            "{row}: no gpu request"
        );
        assert_eq!(
            q(&rr.limits, "memory").as_deref(),
            Some("128Mi"),
            "{row}: memory kept"
        );
        let env = env_of(&dep);
        let got_mps = env
            .iter()
            .find(|(k, _)| k == ENV_MPS_PERCENTAGE)
            .map(|(_, v)| v.as_str());
        assert_eq!(got_mps, mps, "{row}: MPS env");
        let sel = pod(&dep).node_selector.clone().unwrap();
        assert_eq!(
            sel.get("node.smiless.dev/hardware").map(String::as_str),
            Some(node),
            "{row}"
        );
        assert_eq!(dep.spec.replicas, Some(2), "{row}: replicas");
        let recorded = dep
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(ANN_PLACEMENT)
            .cloned();
        assert_eq!(
            recorded,
            planned.render(),
            "{row}: the plan is recorded, not the pin"
        );
    }
}

#[test]
fn unplanned_gpu_limits_from_the_request_go_to_gpu_nodes() {
    let mut d = base();
    d.limits = Some(FunctionResources {
        nvidia_gpu: "2".into(),
        ..Default::default()
    });
    let r = rec(d, 1);
    let dep = deployment(
        &r,
        Hardware::Unplanned,
        Hardware::Unplanned,
        &Options::default(),
    )
    .unwrap();
    let rr = container(&dep).resources.clone().unwrap();
    assert_eq!(q(&rr.limits, "nvidia.com/gpu").as_deref(), Some("2"));
    assert_eq!(
        pod(&dep).node_selector.as_ref().unwrap()["node.smiless.dev/hardware"],
        "gpu"
    );
}

#[test]
fn gpu_units_round_up_and_follow_the_split() {
    let rows = [
        (10, 10, 1),
        (15, 10, 2),
        (100, 10, 10),
        (1, 10, 1),
        (50, 4, 2),
        (30, 1, 1),
        (100, 7, 7),
    ];
    for (pct, per, want) in rows {
        assert_eq!(gpu_units(pct, per), want, "{pct}% of {per}");
    }
}

#[test]
fn faas_netes_fields_table() {
    let o = Options::default();
    let mut d = base();
    d.env_vars = [
        ("b".to_owned(), "2".to_owned()),
        ("a".to_owned(), "1".to_owned()),
    ]
    .into();
    d.labels = Some([("team".to_owned(), "x".to_owned())].into());
    d.annotations = Some([("topic".to_owned(), "t".to_owned())].into());
    d.constraints = vec![
        "disk=ssd".into(),
        "node.smiless.dev/hardware=special".into(),
        "node.platform.os == linux".into(),
    ];
    d.secrets = vec!["s1".into(), "s2".into()];
    d.read_only_root_filesystem = true;
    let r = rec(d, 0);
    let dep = deployment(&r, Hardware::Unplanned, Hardware::Unplanned, &o).unwrap();
    let meta = &dep.metadata;
    // Deployment: only the faas_function label; user annotations + prometheus + our own.
    assert_eq!(meta.labels.clone().unwrap(), fn_labels("f"));
    let ann = meta.annotations.clone().unwrap();
    assert_eq!(ann["topic"], "t");
    assert_eq!(ann["prometheus.io.scrape"], "false");
    assert_eq!(ann[ANN_GENERATION], "3");
    let echoed: FunctionDeployment = serde_json::from_str(&ann[ANN_REQUEST]).unwrap();
    assert_eq!(echoed, r.deployment, "the request is stored verbatim");
    let spec = &dep.spec;
    assert_eq!(spec.replicas, Some(0), "scale to zero is spec.replicas = 0");
    assert_eq!(spec.selector.match_labels.clone().unwrap(), fn_labels("f"));
    let ru = spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(ru.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(ru.max_surge, Some(IntOrString::Int(1)));
    let tmeta = spec.template.metadata.as_ref().unwrap();
    let tl = tmeta.labels.clone().unwrap();
    assert_eq!(
        (tl["faas_function"].as_str(), tl["team"].as_str()),
        ("f", "x")
    );
    assert_eq!(tmeta.annotations.as_ref().unwrap()[ANN_GENERATION], "3");
    let p = pod(&dep);
    let sel = p.node_selector.clone().unwrap();
    assert_eq!(sel["disk"], "ssd");
    assert_eq!(
        sel["node.smiless.dev/hardware"], "special",
        "constraints win per key"
    );
    assert_eq!(sel.len(), 2, "a Swarm-style constraint is ignored: {sel:?}");
    assert_eq!(p.enable_service_links, Some(false));
    let c = container(&dep);
    assert_eq!(c.image.as_deref(), Some("img:1"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let names: Vec<String> = env_of(&dep).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        ["a", "b", "fprocess"],
        "env sorted by name, fprocess included"
    );
    let port = &c.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("http"), 8080)
    );
    let rp = c.readiness_probe.as_ref().unwrap();
    assert_eq!(
        rp.http_get.as_ref().unwrap().path.as_deref(),
        Some("/_/health")
    );
    assert_eq!(c.liveness_probe, c.readiness_probe);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_user, None);
    // Secrets: one projected volume at /var/openfaas/secrets; a writable /tmp for the read-only root.
    let vols = p.volumes.clone().unwrap();
    let proj = vols
        .iter()
        .find(|v| v.name == "f-projected-secrets")
        .unwrap();
    let srcs: Vec<String> = proj
        .projected
        .as_ref()
        .unwrap()
        .sources
        .clone()
        .unwrap()
        .into_iter()
        .map(|s| s.secret.unwrap().name)
        .collect();
    assert_eq!(srcs, ["s1", "s2"]);
    assert!(
        vols.iter()
            .any(|v| v.name == "temp" && v.empty_dir.is_some())
    );
    let mounts = c.volume_mounts.clone().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == SECRETS_MOUNT_PATH && m.read_only == Some(true))
    );
    assert!(mounts.iter().any(|m| m.mount_path == "/tmp"));
}

#[test]
fn exec_probe_nonroot_and_pull_policy_options() {
    let o = Options {
        http_probe: false,
        set_nonroot_user: true,
        image_pull_policy: "IfNotPresent".into(),
        cpu_node_selector: BTreeMap::new(),
        ..Options::default()
    };
    let dep = deployment(
        &rec(base(), 1),
        Hardware::Unplanned,
        Hardware::Unplanned,
        &o,
    )
    .unwrap();
    let c = container(&dep);
    let cmd = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .exec
        .as_ref()
        .unwrap()
        .command
        .clone();
    assert_eq!(cmd.unwrap(), ["cat", "/tmp/.lock"]);
    assert_eq!(
        c.security_context.as_ref().unwrap().run_as_user,
        Some(12000)
    );
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert!(
        pod(&dep).node_selector.is_none(),
        "empty selector: none set"
    );
    assert!(pod(&dep).volumes.is_none() && c.volume_mounts.is_none());
}

#[test]
fn service_secret_and_namespace_objects() {
    let mut d = base();
    d.namespace = "ns".into();
    let s = service(&d);
    assert_eq!(s.metadata.labels.clone().unwrap(), fn_labels("f"));
    let spec = s.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.selector.unwrap(), fn_labels("f"));
    let p = &spec.ports.unwrap()[0];
    assert_eq!(
        (p.port, p.target_port.clone()),
        (8080, Some(IntOrString::Int(8080)))
    );
    let sec = secret("ns", "k", b"v");
    assert_eq!(sec.data.unwrap()["k"].0, b"v");
    assert_eq!(sec.metadata.labels.unwrap()[LABEL_MANAGED_BY], MANAGED_BY);
    let n = namespace("ns");
    assert_eq!(n.metadata.labels.unwrap()["openfaas"], "1");
}

#[test]
fn record_and_placement_round_trip_through_the_deployment() {
    let mut d = base();
    d.labels = Some([("com.openfaas.scale.min".to_owned(), "2".to_owned())].into());
    let r = rec(d, 4);
    let planned = Hardware::Gpu { percent: 40 };
    let mut dep = deployment(&r, planned, planned, &Options::default()).unwrap();
    dep.metadata.namespace = Some("openfaas-fn".into());
    let back = record_from(&dep).unwrap();
    assert_eq!(back.deployment, r.deployment);
    assert_eq!((back.replicas, back.generation), (4, 3));
    assert_eq!(placement_from(&dep), planned);
    assert_eq!(
        record_from(&Deployment::default()),
        None,
        "not ours: no record"
    );
}

#[test]
fn digest_changes_with_the_spec_only() {
    let o = Options::default();
    let a = deployment(
        &rec(base(), 1),
        Hardware::Unplanned,
        Hardware::Unplanned,
        &o,
    )
    .unwrap();
    let b = deployment(
        &rec(base(), 1),
        Hardware::Unplanned,
        Hardware::Unplanned,
        &o,
    )
    .unwrap();
    let c = deployment(
        &rec(base(), 2),
        Hardware::Unplanned,
        Hardware::Unplanned,
        &o,
    )
    .unwrap();
    assert_eq!(digest(&a), digest(&b));
    assert_ne!(digest(&a), digest(&c), "replicas are part of the spec");
    let mut s = a.clone();
    let h = stamp_digest(&mut s);
    assert_eq!(h, digest(&a));
    assert_eq!(s.metadata.annotations.unwrap()[ANN_SPEC_HASH], h);
}

#[test]
fn validation_table() {
    let ok = |f: &dyn Fn(&mut FunctionDeployment)| {
        let mut d = base();
        f(&mut d);
        validate(&d)
    };
    assert!(ok(&|_| {}).is_ok());
    assert!(ok(&|d| d.limits = res("2", "1Gi")).is_ok());
    assert!(ok(&|d| d.limits = res("0.5", "1e3")).is_ok());
    assert!(ok(&|d| d.limits = res("two", "")).is_err());
    assert!(ok(&|d| d.requests = res("", "12XB")).is_err());
    assert!(
        ok(&|d| d.labels = Some([("faas_function".to_owned(), "g".to_owned())].into())).is_err()
    );
    assert!(
        ok(&|d| d.labels = Some([("faas_function".to_owned(), "f".to_owned())].into())).is_ok()
    );
    for bad in ["gpu:0", "gpu:101", "cpu:0", "tpu:1", "gpu", "gpu:x"] {
        assert!(
            ok(&|d| d.annotations = Some([(ANN_HARDWARE.to_owned(), bad.to_owned())].into()))
                .is_err(),
            "{bad}"
        );
    }
    assert!(
        ok(&|d| d.limits = Some(FunctionResources {
            nvidia_gpu: "0.5".into(),
            ..Default::default()
        }))
        .is_err()
    );
}

#[test]
fn selectors_parse_and_reject() {
    assert_eq!(parse_selector("").unwrap(), BTreeMap::new());
    let s = parse_selector("a=b, c=d").unwrap();
    assert_eq!((s["a"].as_str(), s["c"].as_str()), ("b", "d"));
    assert!(parse_selector("a").is_err());
    assert!(parse_selector("a=b=c").is_err());
    assert_eq!(
        Hardware::from_placement(&Placement {
            cpus: vec![0, 1, 2],
            gpu: None
        }),
        Hardware::Cpu { cores: 3 }
    );
    assert_eq!(
        Hardware::from_placement(&Placement {
            cpus: vec![],
            gpu: Some((1, 20))
        }),
        Hardware::Gpu { percent: 20 }
    );
    assert_eq!(
        Hardware::from_placement(&Placement::default()),
        Hardware::Unplanned
    );
}

#[test]
fn digest_is_pinned() {
    // FNV-1a of the JSON text, as 16 hex digits: a changed value re-rolls every Deployment the provider made.
    assert_eq!(digest(&serde_json::json!({"a": 1})), "9c3e82dd6fcae8b1");
    let dep = deployment(
        &rec(base(), 1),
        Hardware::Unplanned,
        Hardware::Unplanned,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(digest(&dep), "b62a613f9c3d5859");
}
