//! `smiless serve --backend kubernetes` settings: smiless' own flags (node selectors, the GPU resource) and
//! the faas-netes environment names the chart sets (`http_probe`, `image_pull_policy`, `set_nonroot_user`,
//! `readiness_probe_*`, `liveness_probe_*`; contract §5.3).
use super::mapping::{MappingError, Options, ProbeTiming, parse_selector};

/// Flags of the Kubernetes backend (ignored by the local backend).
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Node labels of CPU nodes, `k=v[,k=v]` (empty: none). CPU functions are pinned there.
    #[arg(
        long,
        env = "SMILESS_KUBE_CPU_NODE_SELECTOR",
        default_value = "node.smiless.dev/hardware=cpu"
    )]
    pub kube_cpu_node_selector: String,
    /// Node labels of GPU nodes, `k=v[,k=v]` (empty: none). GPU functions are pinned there.
    #[arg(
        long,
        env = "SMILESS_KUBE_GPU_NODE_SELECTOR",
        default_value = "node.smiless.dev/hardware=gpu"
    )]
    pub kube_gpu_node_selector: String,
    /// The extended resource of an MPS-shared GPU (as the NVIDIA device plugin exposes it).
    #[arg(
        long,
        env = "SMILESS_KUBE_GPU_RESOURCE",
        default_value = "nvidia.com/gpu"
    )]
    pub kube_gpu_resource: String,
    /// Units of that resource per physical GPU (the device plugin's MPS `replicas`): one unit is
    /// 100/N % of a GPU.
    #[arg(long, env = "SMILESS_KUBE_GPU_REPLICAS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub kube_gpu_replicas: u32,
    /// Probe `GET /_/health` on :8080 (true) or run `cat /tmp/.lock` (env `http_probe`).
    #[arg(long, env = "http_probe", default_value = "true")]
    pub http_probe: String,
    /// `Always`, `IfNotPresent` or `Never` (env `image_pull_policy`).
    #[arg(long, env = "image_pull_policy", default_value = "Always")]
    pub image_pull_policy: String,
    /// Run function containers as uid 12000 (env `set_nonroot_user`).
    #[arg(long, env = "set_nonroot_user", default_value = "false")]
    pub set_nonroot_user: String,
    #[arg(
        long,
        env = "readiness_probe_initial_delay_seconds",
        default_value_t = 2
    )]
    pub readiness_probe_initial_delay_seconds: i32,
    #[arg(long, env = "readiness_probe_timeout_seconds", default_value_t = 1)]
    pub readiness_probe_timeout_seconds: i32,
    #[arg(long, env = "readiness_probe_period_seconds", default_value_t = 2)]
    pub readiness_probe_period_seconds: i32,
    #[arg(
        long,
        env = "liveness_probe_initial_delay_seconds",
        default_value_t = 2
    )]
    pub liveness_probe_initial_delay_seconds: i32,
    #[arg(long, env = "liveness_probe_timeout_seconds", default_value_t = 1)]
    pub liveness_probe_timeout_seconds: i32,
    #[arg(long, env = "liveness_probe_period_seconds", default_value_t = 2)]
    pub liveness_probe_period_seconds: i32,
    /// `true`: watch and manage functions in every namespace labelled `openfaas=1` (needs a ClusterRole);
    /// otherwise only in the function namespace, with a namespaced Role (env `cluster_role`, faas-netes').
    #[arg(long, env = "cluster_role", default_value = "false")]
    pub cluster_role: String,
}

impl KubeArgs {
    /// The namespace the backend is confined to (`None` with `cluster_role=true`).
    pub fn scope(&self, function_namespace: &str) -> Option<String> {
        (self.cluster_role.trim() != "true").then(|| function_namespace.to_owned())
    }
}

impl TryFrom<&KubeArgs> for Options {
    type Error = MappingError;

    fn try_from(a: &KubeArgs) -> Result<Self, MappingError> {
        let policy = a.image_pull_policy.trim();
        if !matches!(policy, "Always" | "IfNotPresent" | "Never") {
            return Err(MappingError::Invalid {
                field: "image_pull_policy",
                value: policy.to_owned(),
                why: "expected Always, IfNotPresent or Never",
            });
        }
        Ok(Options {
            cpu_node_selector: parse_selector(&a.kube_cpu_node_selector)?,
            gpu_node_selector: parse_selector(&a.kube_gpu_node_selector)?,
            gpu_resource: a.kube_gpu_resource.trim().to_owned(),
            gpu_units_per_device: a.kube_gpu_replicas,
            http_probe: a.http_probe.trim() == "true",
            image_pull_policy: policy.to_owned(),
            set_nonroot_user: a.set_nonroot_user.trim() == "true",
            readiness: ProbeTiming {
                initial_delay_s: a.readiness_probe_initial_delay_seconds,
                timeout_s: a.readiness_probe_timeout_seconds,
                period_s: a.readiness_probe_period_seconds,
            },
            liveness: ProbeTiming {
                initial_delay_s: a.liveness_probe_initial_delay_seconds,
                timeout_s: a.liveness_probe_timeout_seconds,
                period_s: a.liveness_probe_period_seconds,
            },
        })
    }
}
