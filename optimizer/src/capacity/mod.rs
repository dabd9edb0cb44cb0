//! The cluster a plan must fit (DESIGN §7, "Capacity"): per node, allocatable CPU (millicores) and GPUs
//! split into MPS units, what a plan requests of them, and the packing that decides whether it can be
//! placed. [`joint`] plans every DAG and standalone function together against a [`Capacity`].
//!
//! **What a plan requests.** Every replica is one pod: a CPU replica requests its `cores` (requests =
//! limits, as the kube backend sets them), a GPU replica its share as MPS units of one GPU,
//! `⌈share · units / 100⌉` (at least one; the kube backend's rounding) and no CPU. A replica reserves
//! its requests only while it exists: [`timeline`] sweeps one burst's planned timeline per DAG and
//! takes the envelope of the replica sets alive at each instant (its peak set); the DAGs' peak sets
//! are summed, as their bursts may coincide. [`peak_replicas`] is how many replicas of a function
//! are alive while it is: all `replicas`, pre-warm `min(replicas, burst size)` (the replicas the
//! executor initialises for one burst; the model costs the same count).
//!
//! **Packing.** First-fit decreasing, as a scheduler placing the largest pods first would: GPU replicas
//! (largest share first) onto the first GPU, in node order, with enough free units; then CPU replicas
//! (most cores first) onto the first node with enough free millicores. A set of requests *fits* when
//! every replica is placed; the planner's "never more than can be placed" means exactly this packing.
//!
//! **Overcommit.** [`Capacity::overcommit`] multiplies every node's allocatable CPU (default 1: none).
//! For the local backend, where replicas are processes sharing the host's cores, a factor above 1 lets
//! a plan put more cores of replicas on the host than it has, trading latency for fitting. GPU units
//! are never overcommitted (MPS shares are hard partitions).
pub mod joint;
mod select;
#[cfg(test)]
mod tests;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::hardware::{Hardware, HardwareSpace};
pub use crate::hold::peak_replicas;
use crate::plan::Choice;

/// One GPU and the MPS units it is split into (100 for the local backend, which gives shares in
/// percent; the NVIDIA device plugin's `replicas` on a cluster, e.g. 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gpu {
    pub units: u32,
}

impl Gpu {
    /// Units a replica with `share_pct` of this GPU requests.
    pub fn units_for(self, share_pct: u32) -> u32 {
        (share_pct.min(100) * self.units).div_ceil(100).max(1)
    }
}

/// A node: allocatable CPU and GPUs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    /// Allocatable CPU in millicores.
    pub cpu_millis: u64,
    pub gpus: Vec<Gpu>,
}

/// A node as a Kubernetes Node object reports it: allocatable `cpu` (millicores), the extended GPU
/// resource's count (`nvidia.com/gpu`) and how many of those units make one GPU (the device plugin's
/// sharing `replicas`, 1 without sharing). Reads from JSON `{"name", "cpu_millis", "gpu_units",
/// "units_per_gpu"}` (`smiless plan --nodes`; GPU fields optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeNode {
    pub name: String,
    pub cpu_millis: u64,
    #[serde(default)]
    pub gpu_units: u32,
    #[serde(default = "one_unit")]
    pub units_per_gpu: u32,
}

fn one_unit() -> u32 {
    1
}

/// Why a capacity was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapacityError {
    #[error("a cluster needs at least one node")]
    NoNodes,
    #[error("node {node:?}: {why}")]
    BadNode { node: String, why: &'static str },
    #[error("overcommit factor {0} must be a finite number ≥ 1")]
    BadOvercommit(f64),
}

/// The cluster: its nodes and the CPU overcommit factor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capacity {
    pub nodes: Vec<Node>,
    /// Allocatable CPU is multiplied by this (≥ 1; default 1). See the module doc.
    pub overcommit: f64,
}

/// One replica's request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replica {
    /// The function it belongs to.
    pub function: String,
    pub hardware: Hardware,
}

/// The replicas function `name` has alive under `c` while it is (all at once: a standalone function,
/// a shared one).
pub fn requests(name: &str, c: &Choice, burst: u32) -> Vec<Replica> {
    (0..peak_replicas(c, burst))
        .map(|_| Replica {
            function: name.to_string(),
            hardware: c.hardware,
        })
        .collect()
}

/// What one node was given by a packing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeUse {
    pub node: String,
    pub cpu_millis_requested: u64,
    /// Allocatable CPU after the overcommit factor.
    pub cpu_millis_capacity: u64,
    pub gpu_units_requested: u32,
    pub gpu_units_capacity: u32,
    /// `function hardware` per placed replica, in placement order.
    pub replicas: Vec<String>,
}

/// The result of packing requests onto the nodes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Packing {
    pub nodes: Vec<NodeUse>,
    /// Replicas that found no node (empty when the requests fit).
    pub unplaced: Vec<Replica>,
}

impl Packing {
    pub fn fits(&self) -> bool {
        self.unplaced.is_empty()
    }
}

impl Capacity {
    /// This host: `cores` CPU cores and one entry per GPU with its MPS units (100 for the local
    /// backend's percent shares).
    pub fn host(cores: u32, gpu_units: &[u32]) -> Capacity {
        Capacity {
            nodes: vec![Node {
                name: "host".into(),
                cpu_millis: u64::from(cores) * 1000,
                gpus: gpu_units.iter().map(|&units| Gpu { units }).collect(),
            }],
            overcommit: 1.0,
        }
    }

    /// A cluster from its nodes' allocatable resources. A node's GPU units become
    /// `gpu_units / units_per_gpu` GPUs of `units_per_gpu` units (a remainder, one smaller GPU).
    pub fn from_kube_nodes(nodes: &[KubeNode]) -> Result<Capacity, CapacityError> {
        if nodes.is_empty() {
            return Err(CapacityError::NoNodes);
        }
        let nodes = nodes
            .iter()
            .map(|k| {
                if k.gpu_units > 0 && k.units_per_gpu == 0 {
                    return Err(CapacityError::BadNode {
                        node: k.name.clone(),
                        why: "GPU units but zero units per GPU",
                    });
                }
                let mut gpus = Vec::new();
                let mut left = k.gpu_units;
                while left > 0 {
                    let units = left.min(k.units_per_gpu);
                    gpus.push(Gpu { units });
                    left -= units;
                }
                Ok(Node {
                    name: k.name.clone(),
                    cpu_millis: k.cpu_millis,
                    gpus,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Capacity {
            nodes,
            overcommit: 1.0,
        })
    }

    /// The same cluster with CPU overcommitted by `factor` (≥ 1).
    pub fn with_overcommit(mut self, factor: f64) -> Result<Capacity, CapacityError> {
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(CapacityError::BadOvercommit(factor));
        }
        self.overcommit = factor;
        Ok(self)
    }

    fn cpu_capacity(&self, n: &Node) -> u64 {
        (n.cpu_millis as f64 * self.overcommit).floor() as u64
    }

    /// The hardware of `base` that one replica can get on some node: core counts that fit a node, GPU
    /// shares only when there is a GPU.
    pub fn space(&self, base: &HardwareSpace) -> HardwareSpace {
        let max_millis = self
            .nodes
            .iter()
            .map(|n| self.cpu_capacity(n))
            .max()
            .unwrap_or(0);
        let gpu = self.nodes.iter().any(|n| !n.gpus.is_empty());
        HardwareSpace {
            cpu_cores: base
                .cpu_cores
                .iter()
                .copied()
                .filter(|&c| u64::from(c) * 1000 <= max_millis)
                .collect(),
            gpu_shares: if gpu {
                base.gpu_shares.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Total (millicores, GPU units at a share of 100 % per GPU), for quick necessary checks.
    pub(crate) fn totals(&self) -> (u64, u32) {
        let cpu = self.nodes.iter().map(|n| self.cpu_capacity(n)).sum();
        let gpu = self.nodes.iter().map(|n| n.gpus.len() as u32).sum::<u32>() * 100;
        (cpu, gpu)
    }

    /// First-fit decreasing packing of `replicas` (module doc).
    pub fn pack(&self, replicas: &[Replica]) -> Packing {
        let mut order: Vec<&Replica> = replicas.iter().collect();
        // GPU first, larger first; then CPU, larger first; stable, so equal sizes keep their order.
        order.sort_by_key(|r| match r.hardware {
            Hardware::Gpu { share_pct } => (0, std::cmp::Reverse(share_pct)),
            Hardware::Cpu { cores } => (1, std::cmp::Reverse(cores)),
        });
        let mut uses: Vec<NodeUse> = self
            .nodes
            .iter()
            .map(|n| NodeUse {
                node: n.name.clone(),
                cpu_millis_requested: 0,
                cpu_millis_capacity: self.cpu_capacity(n),
                gpu_units_requested: 0,
                gpu_units_capacity: n.gpus.iter().map(|g| g.units).sum(),
                replicas: Vec::new(),
            })
            .collect();
        let mut gpu_used: Vec<Vec<u32>> =
            self.nodes.iter().map(|n| vec![0; n.gpus.len()]).collect();
        let mut unplaced = Vec::new();
        for r in order {
            let spot = match r.hardware {
                Hardware::Gpu { share_pct } => self.nodes.iter().enumerate().find_map(|(i, n)| {
                    n.gpus.iter().enumerate().find_map(|(g, gpu)| {
                        let u = gpu.units_for(share_pct);
                        (gpu_used[i][g] + u <= gpu.units).then_some((i, Some((g, u))))
                    })
                }),
                Hardware::Cpu { cores } => {
                    let m = u64::from(cores) * 1000;
                    uses.iter()
                        .position(|u| u.cpu_millis_requested + m <= u.cpu_millis_capacity)
                        .map(|i| (i, None))
                }
            };
            match spot {
                Some((i, Some((g, u)))) => {
                    gpu_used[i][g] += u;
                    uses[i].gpu_units_requested += u;
                    uses[i]
                        .replicas
                        .push(format!("{} {}", r.function, r.hardware));
                }
                Some((i, None)) => {
                    if let Hardware::Cpu { cores } = r.hardware {
                        uses[i].cpu_millis_requested += u64::from(cores) * 1000;
                    }
                    uses[i]
                        .replicas
                        .push(format!("{} {}", r.function, r.hardware));
                }
                None => unplaced.push(r.clone()),
            }
        }
        Packing {
            nodes: uses,
            unplaced,
        }
    }
}
