//! The host as the live planner sees it: what it has ([`host`]: the affinity cores and the GPUs, or
//! `SMILESS_GPUS`; [`host_of`]: the backend's hardware where it knows it), its hardware space (the core
//! counts and GPU shares it can give) and where a member's replicas run on it (CPU affinity, a GPU
//! share). Below the backends, the control loop and the profiler, which all place replicas; everything
//! but [`host`] is pure.
use optimizer::{Hardware, HardwareSpace};

use crate::backend::Placement;

/// What this machine offers the live planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub cpus: usize,
    pub gpus: u32,
}

/// The planner's hardware space on `host`: the default core counts that fit, and GPU shares only when
/// there is a GPU (a plan must not choose hardware the machine cannot give).
pub fn space(host: Host) -> HardwareSpace {
    let d = HardwareSpace::default();
    let mut cpu_cores: Vec<u32> = d
        .cpu_cores
        .into_iter()
        .filter(|c| usize::try_from(*c).is_ok_and(|c| c <= host.cpus))
        .collect();
    if cpu_cores.is_empty() {
        cpu_cores.push(1);
    }
    HardwareSpace {
        cpu_cores,
        gpu_shares: if host.gpus > 0 {
            d.gpu_shares
        } else {
            Vec::new()
        },
    }
}

/// Environment variable: how many GPUs the planner may use (default: the GPUs discovered, zero without a
/// CUDA driver; set it to plan GPU shares on a host without one, where `smiless-fn` emulates their timing).
pub const ENV_GPUS: &str = "SMILESS_GPUS";

/// The host as the planner sees it.
pub fn host() -> Host {
    Host {
        cpus: function_kit::emulator::affinity_cores(),
        gpus: std::env::var(ENV_GPUS)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(function_kit::gpu::visible_count),
    }
}

/// The capacity of `host` for the joint planner: one node of its cores, each GPU split into 100 MPS
/// units (the local backend gives shares in percent).
pub fn capacity(host: Host) -> optimizer::capacity::Capacity {
    let cores = u32::try_from(host.cpus).unwrap_or(u32::MAX).max(1);
    let gpus = vec![100; usize::try_from(host.gpus).unwrap_or(0)];
    optimizer::capacity::Capacity::host(cores, &gpus)
}

/// What the planner may use: the backend's hardware when it knows it (a cluster's nodes), else this host.
pub fn host_of(backend: &dyn crate::backend::Backend) -> Host {
    backend
        .hardware()
        .map_or_else(host, |(cpus, gpus)| Host { cpus, gpus })
}

/// Where to run `hw`: `cores` consecutive cores starting at `slot` (wrapping), or a share of GPU
/// `slot mod gpus`. Spreading members over different cores by `slot` keeps a DAG's functions from all
/// landing on core 0.
pub fn placement(hw: Hardware, slot: usize, host: Host) -> Placement {
    match hw {
        Hardware::Cpu { cores } => {
            let n = host.cpus.max(1);
            let k = usize::try_from(cores).unwrap_or(n).clamp(1, n);
            let mut cpus: Vec<usize> = (0..k).map(|i| (slot + i) % n).collect();
            cpus.sort_unstable();
            Placement { cpus, gpu: None }
        }
        Hardware::Gpu { share_pct } => Placement {
            cpus: Vec::new(),
            gpu: Some((
                u32::try_from(slot).unwrap_or(0) % host.gpus.max(1),
                u8::try_from(share_pct.clamp(1, 100)).unwrap_or(100),
            )),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placement_fits_the_host() {
        let host = Host { cpus: 4, gpus: 0 };
        assert_eq!(space(host).cpu_cores, [1, 2, 4]);
        assert!(space(host).gpu_shares.is_empty());
        assert_eq!(space(Host { cpus: 1, gpus: 1 }).gpu_shares.len(), 10);
        assert_eq!(placement(Hardware::Cpu { cores: 2 }, 3, host).cpus, [0, 3]);
        assert_eq!(
            placement(Hardware::Cpu { cores: 8 }, 0, host).cpus,
            [0, 1, 2, 3]
        );
        let g = placement(
            Hardware::Gpu { share_pct: 30 },
            3,
            Host { cpus: 2, gpus: 2 },
        );
        assert_eq!(g.gpu, Some((1, 30)));
    }
}
