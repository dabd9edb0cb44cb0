//! The pure mapping of a function (its deployment request, desired replicas and planned hardware) to the
//! Kubernetes objects that run it: a Deployment and a Service per function, as faas-netes maps them with its
//! 2022 semantics (contract §5.1), plus the plan (CPU requests/limits, an MPS-shared GPU, node selection).
//!
//! Nothing here does I/O, so every rule is table-tested; `docs/kubernetes.md` lists each field it sets.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HTTPGetAction, Namespace,
    PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, Secret,
    SecretProjection, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use contract::backend::Placement;
use contract::catalog::FunctionRecord;
use contract::types::{FunctionDeployment, LABEL_FAAS_FUNCTION};

/// Where secrets are mounted in every function container (as faas-netes does).
pub const SECRETS_MOUNT_PATH: &str = "/var/openfaas/secrets";
/// The function's port (the watchdog's).
pub const FUNCTION_PORT: i32 = 8080;
/// The MPS environment variable that limits a client's share of the GPU's threads.
pub const ENV_MPS_PERCENTAGE: &str = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE";
/// Deployment annotation: the deployment request exactly as received (JSON), so status echoes it and a
/// provider with an empty catalog can take the function over from the cluster.
pub const ANN_REQUEST: &str = "com.smiless.request";
/// Deployment annotation: the planned hardware (`cpu:N` or `gpu:P`), so a restarted provider keeps it.
pub const ANN_PLACEMENT: &str = "com.smiless.placement";
/// Deployment and pod-template annotation: the catalog generation; a new one rolls the pods (as
/// faas-netes' `uid` label does).
pub const ANN_GENERATION: &str = "com.smiless.generation";
/// Deployment annotation: a digest of the applied spec; the reconciler re-applies when it differs.
pub const ANN_SPEC_HASH: &str = "com.smiless.spec-hash";
/// User annotation pinning a function's hardware (`cpu:N` cores or `gpu:P` percent of one GPU); it wins
/// over the plan. faas-cli cannot send GPU limits, so this is how a stack file asks for a GPU.
pub const ANN_HARDWARE: &str = "com.smiless.hardware";
/// Label on the Secrets the provider manages (the value faas-netes uses).
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "openfaas";
/// Label (and annotation) that marks a namespace as an OpenFaaS function namespace.
pub const LABEL_OPENFAAS_NS: &str = "openfaas";

/// Mapping failures: all the caller's fault (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("invalid {field} {value:?}: {why}")]
    Invalid {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

fn invalid(field: &'static str, value: &str, why: &'static str) -> MappingError {
    MappingError::Invalid {
        field,
        value: value.to_owned(),
        why,
    }
}

/// Probe timings (faas-netes 2022 reads them from `readiness_probe_*` / `liveness_probe_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay_s: i32,
    pub timeout_s: i32,
    pub period_s: i32,
}

/// Cluster-wide settings of the mapping (from `smiless serve` flags and faas-netes' environment names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Node labels of CPU nodes (empty: no selector).
    pub cpu_node_selector: BTreeMap<String, String>,
    /// Node labels of GPU nodes (empty: no selector).
    pub gpu_node_selector: BTreeMap<String, String>,
    /// The extended resource of a GPU share (the device plugin's MPS-shared resource).
    pub gpu_resource: String,
    /// How many units of `gpu_resource` one GPU is split into (the device plugin's MPS `replicas`).
    pub gpu_units_per_device: u32,
    /// `http_probe`: probe `GET /_/health` (true) or `cat /tmp/.lock` (false).
    pub http_probe: bool,
    pub image_pull_policy: String,
    /// `set_nonroot_user`: run as uid 12000.
    pub set_nonroot_user: bool,
    pub readiness: ProbeTiming,
    pub liveness: ProbeTiming,
}

impl Default for Options {
    fn default() -> Self {
        let t = ProbeTiming {
            initial_delay_s: 2,
            timeout_s: 1,
            period_s: 2,
        };
        Options {
            cpu_node_selector: [("node.smiless.dev/hardware".to_owned(), "cpu".to_owned())].into(),
            gpu_node_selector: [("node.smiless.dev/hardware".to_owned(), "gpu".to_owned())].into(),
            gpu_resource: "nvidia.com/gpu".into(),
            gpu_units_per_device: 10,
            http_probe: true,
            image_pull_policy: "Always".into(),
            set_nonroot_user: false,
            readiness: t,
            liveness: t,
        }
    }
}

/// Parses `k=v,k2=v2` (empty: no labels).
pub fn parse_selector(s: &str) -> Result<BTreeMap<String, String>, MappingError> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.contains('=') => {
                out.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => return Err(invalid("node selector", part, "expected key=value")),
        }
    }
    Ok(out)
}

/// The hardware a function's pods get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardware {
    /// Nothing planned or pinned: the request's own limits and requests, on CPU nodes unless it asks
    /// for GPUs in its limits.
    Unplanned,
    /// `cores` whole cores (requests = limits).
    Cpu { cores: u32 },
    /// A share of one GPU through MPS, in percent of its threads.
    Gpu { percent: u8 },
}

impl Hardware {
    /// `cpu:N` / `gpu:P`, the form of [`ANN_HARDWARE`] and [`ANN_PLACEMENT`].
    pub fn parse(s: &str) -> Result<Hardware, MappingError> {
        let why = "expected cpu:CORES (1-1024) or gpu:PERCENT (1-100)";
        let (kind, n) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| invalid(ANN_HARDWARE, s, why))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| invalid(ANN_HARDWARE, s, why))?;
        match (kind.trim(), n) {
            ("cpu", 1..=1024) => Ok(Hardware::Cpu { cores: n }),
            ("gpu", 1..=100) => Ok(Hardware::Gpu {
                percent: u8::try_from(n).map_err(|_| invalid(ANN_HARDWARE, s, why))?,
            }),
            _ => Err(invalid(ANN_HARDWARE, s, why)),
        }
    }

    /// The inverse of [`Hardware::parse`] (`None` for [`Hardware::Unplanned`]).
    pub fn render(self) -> Option<String> {
        match self {
            Hardware::Unplanned => None,
            Hardware::Cpu { cores } => Some(format!("cpu:{cores}")),
            Hardware::Gpu { percent } => Some(format!("gpu:{percent}")),
        }
    }

    /// The control loop's placement: the number of cores it chose, or its GPU share (the device index
    /// means nothing on a cluster: the scheduler picks the node and the device plugin the GPU).
    pub fn from_placement(p: &Placement) -> Hardware {
        match p.gpu {
            Some((_, percent)) => Hardware::Gpu {
                percent: percent.clamp(1, 100),
            },
            None if p.cpus.is_empty() => Hardware::Unplanned,
            None => Hardware::Cpu {
                cores: u32::try_from(p.cpus.len()).unwrap_or(u32::MAX),
            },
        }
    }
}

/// The hardware of a function: its pinned [`ANN_HARDWARE`] annotation, else the plan's placement.
pub fn hardware(d: &FunctionDeployment, planned: Hardware) -> Result<Hardware, MappingError> {
    match d.annotations.as_ref().and_then(|a| a.get(ANN_HARDWARE)) {
        Some(pinned) => Hardware::parse(pinned),
        None => Ok(planned),
    }
}

/// GPU units for `percent` of one GPU split into `units_per_device` (rounded up: a plan's share is a
/// minimum, and at least one unit).
pub fn gpu_units(percent: u8, units_per_device: u32) -> u32 {
    (u32::from(percent) * units_per_device).div_ceil(100).max(1)
}

/// Checks what the API would otherwise only reject at apply time: quantities, labels, hardware.
pub fn validate(d: &FunctionDeployment) -> Result<(), MappingError> {
    if let Some(v) = d.labels.as_ref().and_then(|l| l.get(LABEL_FAAS_FUNCTION))
        && *v != d.service
    {
        return Err(invalid(
            "label faas_function",
            v,
            "it must equal the function name (the Deployment's selector uses it)",
        ));
    }
    hardware(d, Hardware::Unplanned)?;
    for (field, r) in [("limits", &d.limits), ("requests", &d.requests)] {
        let Some(r) = r else { continue };
        for (what, v) in [("memory", &r.memory), ("cpu", &r.cpu)] {
            if !v.is_empty() && !is_quantity(v) {
                return Err(invalid(
                    if field == "limits" {
                        "limit"
                    } else {
                        "request"
                    },
                    &format!("{what}={v}"),
                    "not a Kubernetes quantity (e.g. 128Mi, 500m, 2)",
                ));
            }
        }
        for v in [&r.nvidia_gpu, &r.amd_gpu, &r.intel_gpu] {
            if !v.is_empty() && v.parse::<u32>().is_err() {
                return Err(invalid("GPU limit", v, "GPUs are whole numbers"));
            }
        }
    }
    Ok(())
}

/// A Kubernetes resource quantity: a decimal number with an optional suffix (binary, decimal or an
/// exponent), as `resource.ParseQuantity` accepts it.
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let digits_ok = !num.is_empty()
        && num.chars().filter(|c| *c == '.').count() <= 1
        && num.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || (suffix.len() > 1
        && suffix.starts_with(['e', 'E'])
        && suffix[1..]
            .strip_prefix(['+', '-'])
            .unwrap_or(&suffix[1..])
            .chars()
            .all(|c| c.is_ascii_digit())
        && suffix.len() > 1 + usize::from(suffix[1..].starts_with(['+', '-'])));
    digits_ok && suffix_ok
}

/// The user's annotations plus `prometheus.io.scrape: "false"` unless set (faas-netes).
fn user_annotations(d: &FunctionDeployment) -> BTreeMap<String, String> {
    let mut a = d.annotations.clone().unwrap_or_default();
    a.entry("prometheus.io.scrape".into())
        .or_insert_with(|| "false".into());
    a
}

fn fn_labels(name: &str) -> BTreeMap<String, String> {
    [(LABEL_FAAS_FUNCTION.to_owned(), name.to_owned())].into()
}

/// `constraints` → nodeSelector: every `key=value` with exactly two parts (faas-netes 2022); other forms
/// (e.g. Swarm's `node.platform.os == linux`) are ignored as faas-netes ignores them.
pub fn constraints_selector(constraints: &[String]) -> BTreeMap<String, String> {
    constraints
        .iter()
        .filter_map(|c| {
            let parts: Vec<&str> = c.split('=').collect();
            match parts.as_slice() {
                [k, v] => Some((k.trim().to_owned(), v.trim().to_owned())),
                _ => None,
            }
        })
        .collect()
}

fn requested_gpus(d: &FunctionDeployment) -> bool {
    [&d.limits, &d.requests].into_iter().flatten().any(|r| {
        [&r.nvidia_gpu, &r.amd_gpu, &r.intel_gpu]
            .into_iter()
            .any(|v| v.parse::<u32>().is_ok_and(|n| n > 0))
    })
}

/// The node selector: the hardware's node labels, then the user's constraints (which win per key).
pub fn node_selector(
    d: &FunctionDeployment,
    hw: Hardware,
    o: &Options,
) -> BTreeMap<String, String> {
    let gpu = match hw {
        Hardware::Gpu { .. } => true,
        Hardware::Cpu { .. } => false,
        Hardware::Unplanned => requested_gpus(d),
    };
    let mut sel = if gpu {
        o.gpu_node_selector.clone()
    } else {
        o.cpu_node_selector.clone()
    };
    sel.extend(constraints_selector(&d.constraints));
    sel
}

/// Container resources: the request's memory always; CPU from the plan (requests = limits = cores) or
/// the request; a GPU share as `units` of the MPS-shared resource (a limit only: Kubernetes requires an
/// extended resource's request to equal its limit and fills it in).
pub fn resources(d: &FunctionDeployment, hw: Hardware, o: &Options) -> ResourceRequirements {
    let mut limits = BTreeMap::new();
    let mut requests = BTreeMap::new();
    let q = |s: &str| Quantity(s.to_owned());
    if let Some(l) = &d.limits {
        if !l.memory.is_empty() {
            limits.insert("memory".to_owned(), q(&l.memory));
        }
        if !l.cpu.is_empty() {
            limits.insert("cpu".to_owned(), q(&l.cpu));
        }
        for (key, v) in [
            ("nvidia.com/gpu", &l.nvidia_gpu),
            ("amd.com/gpu", &l.amd_gpu),
            ("intel.com/gpu", &l.intel_gpu),
        ] {
            if !v.is_empty() && hw == Hardware::Unplanned {
                limits.insert(key.to_owned(), q(v));
            }
        }
    }
    if let Some(r) = &d.requests {
        if !r.memory.is_empty() {
            requests.insert("memory".to_owned(), q(&r.memory));
        }
        if !r.cpu.is_empty() {
            requests.insert("cpu".to_owned(), q(&r.cpu));
        }
    }
    match hw {
        Hardware::Unplanned => {}
        Hardware::Cpu { cores } => {
            limits.insert("cpu".into(), q(&cores.to_string()));
            requests.insert("cpu".into(), q(&cores.to_string()));
        }
        Hardware::Gpu { percent } => {
            limits.insert(
                o.gpu_resource.clone(),
                q(&gpu_units(percent, o.gpu_units_per_device).to_string()),
            );
        }
    }
    ResourceRequirements {
        limits: Some(limits).filter(|m| !m.is_empty()),
        requests: Some(requests).filter(|m| !m.is_empty()),
        ..Default::default()
    }
}

/// The container environment, sorted by name: `fprocess`, the request's variables, and for a GPU share
/// the MPS thread percentage (set last, so a user's own value cannot contradict the plan).
pub fn env(d: &FunctionDeployment, hw: Hardware) -> Vec<EnvVar> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if !d.env_process.is_empty() {
        env.insert("fprocess".into(), d.env_process.clone());
    }
    env.extend(d.env_vars.clone());
    if let Hardware::Gpu { percent } = hw {
        env.insert(ENV_MPS_PERCENTAGE.into(), percent.to_string());
    }
    env.into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            ..Default::default()
        })
        .collect()
}

fn probe(o: &Options, t: ProbeTiming) -> Probe {
    let mut p = Probe {
        initial_delay_seconds: Some(t.initial_delay_s),
        timeout_seconds: Some(t.timeout_s),
        period_seconds: Some(t.period_s),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    };
    if o.http_probe {
        p.http_get = Some(HTTPGetAction {
            path: Some("/_/health".into()),
            port: IntOrString::Int(FUNCTION_PORT),
            scheme: Some("HTTP".into()),
            ..Default::default()
        });
    } else {
        p.exec = Some(ExecAction {
            command: Some(vec!["cat".into(), "/tmp/.lock".into()]),
        });
    }
    p
}

mod objects;
pub use objects::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
