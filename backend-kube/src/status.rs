//! What the cluster says about a function, read from the watch caches: replica counts from its Deployment and
//! ready endpoints from its Service's EndpointSlices. Pure functions over the cached objects, unit-tested.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::mapping::{FUNCTION_PORT, Options};
use contract::backend::ReplicaCounts;

/// Desired (`spec.replicas`) and available (`status.availableReplicas`) replicas of a Deployment.
pub fn counts(dep: &Deployment) -> ReplicaCounts {
    let to_u32 = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    ReplicaCounts {
        desired: to_u32(dep.spec.replicas),
        available: to_u32(dep.status.as_ref().and_then(|s| s.available_replicas)),
    }
}

/// The port of the slice's `http` port (the Service names it), else its only port, else 8080.
fn slice_port(s: &EndpointSlice) -> u16 {
    let ports = s.ports.as_deref().unwrap_or_default();
    ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .or_else(|| (ports.len() == 1).then(|| &ports[0]))
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(u16::try_from(FUNCTION_PORT).unwrap_or(8080))
}

/// Ready addresses of a Service's slices, sorted (a stable order for round-robin). An endpoint is ready when
/// its `ready` condition is not false (the API's rule: unset means ready) and it is not terminating.
pub fn ready_addresses<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for s in slices {
        if !matches!(s.address_type.as_str(), "IPv4" | "IPv6") {
            continue; // FQDN slices carry no IPs.
        }
        let port = slice_port(s);
        for e in s.endpoints.as_deref().unwrap_or_default() {
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            out.extend(
                e.addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, port)),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a slice belongs to the Service `name` in `namespace`.
pub fn slice_of(s: &EndpointSlice, namespace: &str, name: &str) -> bool {
    s.metadata.namespace.as_deref() == Some(namespace)
        && s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .is_some_and(|n| n == name)
}

/// Whole units of a quantity (`16`, `15900m` → 15); `None` for forms a node never reports for CPUs or GPUs.
pub fn whole_units(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<u64>().ok().map(|m| m / 1000),
        None => q.parse().ok(),
    }
}

/// Whether node `n` carries every label of `sel`.
fn matches(n: &Node, sel: &BTreeMap<String, String>) -> bool {
    let labels = n.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Node `n`'s allocatable quantity of resource `r`, as written.
fn allocatable<'a>(n: &'a Node, r: &str) -> Option<&'a str> {
    n.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(r))
        .map(|q| q.0.as_str())
}

/// What the cluster offers the planner: the cores of the largest node matching the CPU selector and the
/// whole GPUs on nodes matching the GPU selector (allocatable units ÷ units per GPU). `None` before the
/// node cache has any node (the planner then keeps its own host's view).
pub fn cluster_hardware(nodes: &[Arc<Node>], o: &Options) -> Option<(usize, u32)> {
    if nodes.is_empty() {
        return None;
    }
    let alloc = |n: &Node, r: &str| allocatable(n, r).and_then(whole_units).unwrap_or(0);
    let cpus = nodes
        .iter()
        .filter(|n| matches(n, &o.cpu_node_selector))
        .map(|n| alloc(n, "cpu"))
        .max()
        .unwrap_or(0);
    let gpus: u64 = nodes
        .iter()
        .filter(|n| matches(n, &o.gpu_node_selector))
        .map(|n| alloc(n, &o.gpu_resource) / u64::from(o.gpu_units_per_device.max(1)))
        .sum();
    Some((
        usize::try_from(cpus).unwrap_or(usize::MAX).max(1),
        u32::try_from(gpus).unwrap_or(u32::MAX),
    ))
}

/// Millicores of a CPU quantity (`"2500m"`, `"16"`, `"1.5"`).
pub fn millis(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse().ok(),
        None => q
            .parse::<u64>()
            .ok()
            .and_then(|c| c.checked_mul(1000))
            .or_else(|| {
                let c: f64 = q.parse().ok()?;
                (c.is_finite() && c >= 0.0).then(|| (c * 1000.0).round() as u64)
            }),
    }
}

/// The cluster as the joint planner sees it (docs/capacity.md): per node, allocatable CPU where CPU
/// replicas may go (nodes matching the CPU selector) and the GPU resource's units where GPU replicas
/// may go (the GPU selector), `units_per_device` units to a GPU. Nodes matching neither are left out
/// (no replica of ours is scheduled there). `None` before the node cache has a node that matches.
pub fn cluster_capacity(nodes: &[Arc<Node>], o: &Options) -> Option<optimizer::capacity::Capacity> {
    let kube: Vec<optimizer::capacity::KubeNode> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let (cpu, gpu) = (
                matches(n, &o.cpu_node_selector),
                matches(n, &o.gpu_node_selector),
            );
            (cpu || gpu).then(|| optimizer::capacity::KubeNode {
                name: n
                    .metadata
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("node-{i}")),
                cpu_millis: if cpu {
                    allocatable(n, "cpu").and_then(millis).unwrap_or(0)
                } else {
                    0
                },
                gpu_units: if gpu {
                    allocatable(n, &o.gpu_resource)
                        .and_then(whole_units)
                        .and_then(|u| u32::try_from(u).ok())
                        .unwrap_or(0)
                } else {
                    0
                },
                units_per_gpu: o.gpu_units_per_device.max(1),
            })
        })
        .collect();
    optimizer::capacity::Capacity::from_kube_nodes(&kube).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn ep(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: ready,
                terminating,
            }),
            ..Default::default()
        }
    }

    fn slice(
        ns: &str,
        svc: &str,
        ty: &str,
        ports: Vec<(&str, i32)>,
        eps: Vec<Endpoint>,
    ) -> EndpointSlice {
        EndpointSlice {
            address_type: ty.into(),
            endpoints: Some(eps),
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                labels: Some([("kubernetes.io/service-name".to_owned(), svc.to_owned())].into()),
                ..Default::default()
            },
            ports: Some(
                ports
                    .into_iter()
                    .map(|(n, p)| EndpointPort {
                        name: Some(n.into()),
                        port: Some(p),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn only_ready_non_terminating_ips_on_the_http_port() {
        let a = slice(
            "ns",
            "f",
            "IPv4",
            vec![("metrics", 9100), ("http", 8080)],
            vec![
                ep("10.0.0.2", Some(true), None),
                ep("10.0.0.1", None, None), // unset ready = ready
                ep("10.0.0.3", Some(false), None),
                ep("10.0.0.4", Some(true), Some(true)),
                ep("not-an-ip", Some(true), None),
            ],
        );
        let b = slice(
            "ns",
            "f",
            "IPv4",
            vec![("", 9000)],
            vec![ep("10.0.0.9", Some(true), None)],
        );
        let fqdn = slice(
            "ns",
            "f",
            "FQDN",
            vec![("http", 8080)],
            vec![ep("x.example", Some(true), None)],
        );
        let got = ready_addresses([&a, &b, &fqdn]);
        let want: Vec<SocketAddr> = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.9:9000"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert!(ready_addresses(std::iter::empty()).is_empty());
    }

    #[test]
    fn slices_are_matched_by_namespace_and_service_label() {
        let s = slice("ns", "f", "IPv4", vec![], vec![]);
        assert!(slice_of(&s, "ns", "f"));
        assert!(!slice_of(&s, "other", "f"));
        assert!(!slice_of(&s, "ns", "g"));
    }

    fn node(hw: &str, cpu: &str, gpu: Option<&str>) -> Arc<Node> {
        use k8s_openapi::api::core::v1::NodeStatus;
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut alloc = BTreeMap::from([("cpu".to_owned(), Quantity(cpu.into()))]);
        if let Some(g) = gpu {
            alloc.insert("nvidia.com/gpu".into(), Quantity(g.into()));
        }
        Arc::new(Node {
            metadata: ObjectMeta {
                labels: Some([("node.smiless.dev/hardware".to_owned(), hw.to_owned())].into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                allocatable: Some(alloc),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn cluster_hardware_from_the_nodes() {
        let o = Options::default();
        // The e2e cluster: two 16-core CPU nodes, two GPU nodes with one GPU as 10 MPS units each.
        let nodes = [
            node("cpu", "16", None),
            node("cpu", "15900m", None),
            node("gpu", "32", Some("10")),
            node("gpu", "32", Some("10")),
        ];
        assert_eq!(cluster_hardware(&nodes, &o), Some((16, 2)));
        assert_eq!(
            cluster_hardware(&nodes[..2], &o),
            Some((16, 0)),
            "no GPU node: no GPU"
        );
        assert_eq!(cluster_hardware(&[], &o), None);
        // The joint planner's view: CPU only where CPU replicas go, GPUs of 10 units where GPU ones go.
        let cap = cluster_capacity(&nodes, &o).unwrap();
        let cpu: Vec<u64> = cap.nodes.iter().map(|n| n.cpu_millis).collect();
        assert_eq!(cpu, [16_000, 15_900, 0, 0]);
        let units: Vec<Vec<u32>> = cap
            .nodes
            .iter()
            .map(|n| n.gpus.iter().map(|g| g.units).collect())
            .collect();
        assert_eq!(units, [vec![], vec![], vec![10], vec![10]]);
        assert_eq!(cluster_capacity(&[], &o), None);
        assert_eq!(millis("2500m"), Some(2500));
        assert_eq!(millis("16"), Some(16_000));
        assert_eq!(millis("1.5"), Some(1500));
        assert_eq!(millis("x"), None);
        assert_eq!(whole_units("2500m"), Some(2));
        assert_eq!(whole_units("x"), None);
    }

    #[test]
    fn counts_read_spec_and_status() {
        use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
        let d = Deployment {
            spec: DeploymentSpec {
                replicas: Some(3),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                available_replicas: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            counts(&d),
            ReplicaCounts {
                desired: 3,
                available: 2
            }
        );
        assert_eq!(counts(&Deployment::default()), ReplicaCounts::default());
    }
}
