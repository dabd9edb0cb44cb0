//! The Kubernetes objects of a function: its Deployment (request + plan, as faas-netes maps it), its Service,
//! the Secrets and Namespace it needs, and the reverse: the function and the plan read back from a Deployment.
use super::*;

/// The projected-secrets volume's name (faas-netes' naming).
pub fn secrets_volume_name(service: &str) -> String {
    format!("{service}-projected-secrets")
}

/// The Deployment of `rec` on hardware `hw` (already resolved with [`hardware`]). `placement` is the plan's
/// hardware as recorded in [`ANN_PLACEMENT`] (what a restarted provider restores).
pub fn deployment(
    rec: &FunctionRecord,
    hw: Hardware,
    planned: Hardware,
    o: &Options,
) -> Result<Deployment, MappingError> {
    let d = &rec.deployment;
    let name = &d.service;
    let user_ann = user_annotations(d);
    let request_json = serde_json::to_string(d)
        .map_err(|_| invalid("deployment", name, "cannot be serialised"))?;
    let mut dep_ann = user_ann.clone();
    dep_ann.insert(ANN_REQUEST.into(), request_json);
    dep_ann.insert(ANN_GENERATION.into(), rec.generation.to_string());
    if let Some(p) = planned.render() {
        dep_ann.insert(ANN_PLACEMENT.into(), p);
    }
    let mut pod_ann = user_ann;
    pod_ann.insert(ANN_GENERATION.into(), rec.generation.to_string());
    let mut pod_labels = fn_labels(name);
    pod_labels.extend(d.labels.clone().unwrap_or_default());
    pod_labels.insert(LABEL_FAAS_FUNCTION.into(), name.clone());

    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if !d.secrets.is_empty() {
        volumes.push(Volume {
            name: secrets_volume_name(name),
            projected: Some(ProjectedVolumeSource {
                sources: Some(
                    d.secrets
                        .iter()
                        .map(|s| VolumeProjection {
                            secret: Some(SecretProjection {
                                name: s.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: secrets_volume_name(name),
            mount_path: SECRETS_MOUNT_PATH.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if d.read_only_root_filesystem {
        // A read-only root still needs a writable /tmp (faas-netes mounts an emptyDir there).
        volumes.push(Volume {
            name: "temp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: "temp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        });
    }
    let container = Container {
        name: name.clone(),
        image: Some(d.image.clone()),
        image_pull_policy: Some(o.image_pull_policy.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: FUNCTION_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env(d, hw)).filter(|e| !e.is_empty()),
        resources: Some(resources(d, hw, o)),
        readiness_probe: Some(probe(o, o.readiness)),
        liveness_probe: Some(probe(o, o.liveness)),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(d.read_only_root_filesystem),
            allow_privilege_escalation: Some(false),
            run_as_user: o.set_nonroot_user.then_some(12000),
            ..Default::default()
        }),
        volume_mounts: Some(mounts).filter(|m| !m.is_empty()),
        ..Default::default()
    };
    let selector = node_selector(d, hw, o);
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(d.namespace.clone()),
            labels: Some(fn_labels(name)),
            annotations: Some(dep_ann),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(i32::try_from(rec.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(fn_labels(name)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            revision_history_limit: Some(10),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_ann),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    node_selector: Some(selector).filter(|s| !s.is_empty()),
                    restart_policy: Some("Always".into()),
                    dns_policy: Some("ClusterFirst".into()),
                    enable_service_links: Some(false),
                    volumes: Some(volumes).filter(|v| !v.is_empty()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The Service: ClusterIP, port 8080 named `http`, selecting the function's pods. Unlike faas-netes it
/// carries the `faas_function` label, which the EndpointSlice controller copies onto the Service's slices,
/// so the provider watches exactly its functions' endpoints.
pub fn service(d: &FunctionDeployment) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(d.service.clone()),
            namespace: Some(d.namespace.clone()),
            labels: Some(fn_labels(&d.service)),
            annotations: Some(user_annotations(d)),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(fn_labels(&d.service)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: FUNCTION_PORT,
                target_port: Some(IntOrString::Int(FUNCTION_PORT)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A secret created through the API: one key named after the secret, so the file is
/// `/var/openfaas/secrets/<name>`.
pub fn secret(namespace: &str, name: &str, value: &[u8]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some([(LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned())].into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some([(name.to_owned(), k8s_openapi::ByteString(value.to_vec()))].into()),
        ..Default::default()
    }
}

/// A function namespace: labelled and annotated `openfaas: "1"`.
pub fn namespace(name: &str) -> Namespace {
    let one = || [(LABEL_OPENFAAS_NS.to_owned(), "1".to_owned())].into();
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(one()),
            annotations: Some(one()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// FNV-1a over the object's JSON: a digest that is stable across runs and Rust versions.
pub fn digest<T: serde::Serialize>(obj: &T) -> String {
    let bytes = serde_json::to_vec(obj).unwrap_or_default();
    format!("{:016x}", optimizer::fnv1a(&bytes))
}

/// Stamps the spec digest on a built Deployment (computed before the stamp, so it covers everything else).
pub fn stamp_digest(dep: &mut Deployment) -> String {
    let h = digest(&*dep);
    dep.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANN_SPEC_HASH.into(), h.clone());
    h
}

/// The function a Deployment runs, read back from [`ANN_REQUEST`] (`None` for Deployments the provider did
/// not make, or with an unreadable annotation).
pub fn record_from(dep: &Deployment) -> Option<FunctionRecord> {
    let ann = dep.metadata.annotations.as_ref()?;
    let mut d: FunctionDeployment = serde_json::from_str(ann.get(ANN_REQUEST)?).ok()?;
    d.namespace = dep.metadata.namespace.clone()?;
    d.service = dep.metadata.name.clone()?;
    let replicas = dep
        .spec
        .replicas
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(1);
    Some(FunctionRecord {
        deployment: d,
        replicas,
        created_at: dep
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(jiff::Timestamp::now, |t| t.0),
        generation: ann
            .get(ANN_GENERATION)
            .and_then(|g| g.parse().ok())
            .unwrap_or(0),
    })
}

/// The plan's hardware recorded on a Deployment ([`ANN_PLACEMENT`]); unplanned when absent.
pub fn placement_from(dep: &Deployment) -> Hardware {
    dep.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_PLACEMENT))
        .and_then(|p| Hardware::parse(p).ok())
        .unwrap_or(Hardware::Unplanned)
}
