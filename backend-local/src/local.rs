//! The local backend: every replica is a `smiless watchdog` child process, supervised by
//! [`crate::runtime::Runtime`]. This module only translates catalog records into replica specs.
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::runtime::{FunctionKey, LogQuery, ReplicaSpec, Runtime, RuntimeError};
use contract::backend::{Backend, BackendError, LogRequest, Placement, ReplicaCounts};
use contract::catalog::FunctionRecord;
use contract::types::{FunctionDeployment, LogMessage};

/// Environment variable carrying a digest of the function's secret values. Replicas read secrets when
/// they start, so a changed value must change the spec to roll the replicas (the certifier's secret
/// update test expects the new value a few seconds after `PUT /system/functions`).
pub const SECRETS_DIGEST_ENV: &str = "SMILESS_SECRETS_DIGEST";

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    rt: Runtime,
    secrets_root: PathBuf,
    exec_timeout: Duration,
    /// Hardware the control loop placed functions on (by namespace and name).
    placements: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), Placement>>>,
    /// MPS and the GPU calibration file, on a host with a GPU.
    gpu: Option<Arc<function_kit::gpu::local::LocalGpu>>,
}

impl LocalBackend {
    /// `secrets_root` holds `<namespace>/<name>` secret files (the catalog's layout); `exec_timeout` is
    /// the replicas' default request timeout.
    pub fn new(rt: Runtime, secrets_root: PathBuf, exec_timeout: Duration) -> Self {
        LocalBackend {
            rt,
            secrets_root,
            exec_timeout,
            placements: Arc::default(),
            gpu: None,
        }
    }

    /// Gives GPU-share replicas the MPS daemon (started on first use) and the calibration file.
    pub fn with_gpu(mut self, gpu: Option<function_kit::gpu::local::LocalGpu>) -> Self {
        self.gpu = gpu.map(Arc::new);
        self
    }

    async fn apply(&self, f: &FunctionRecord) -> Result<(), BackendError> {
        let key = FunctionKey::new(f.namespace(), f.name());
        let mut spec = replica_spec(f, &self.secrets_root, self.exec_timeout);
        let placed = self
            .placements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(f.namespace().to_owned(), f.name().to_owned()))
            .cloned()
            .or_else(|| {
                contract::backend::placement::from_annotation(&f.deployment)
                    .ok()
                    .flatten()
            });
        if let Some(p) = placed {
            let s = Arc::make_mut(&mut spec);
            s.cpu_set = Some(p.cpus).filter(|c| !c.is_empty());
            s.gpu = p
                .gpu
                .map(|(device, percent)| crate::runtime::GpuShare { device, percent });
            if let (Some(g), Some(share)) = (&self.gpu, s.gpu) {
                s.env.extend(g.replica_env(share.device, share.percent));
            }
        }
        self.rt.apply(&key, spec, f.replicas).await.map_err(map_err)
    }
}

/// The replica spec of a record: its process, environment (plus the secrets digest) and secrets.
pub fn replica_spec(
    f: &FunctionRecord,
    secrets_root: &std::path::Path,
    exec_timeout: Duration,
) -> Arc<ReplicaSpec> {
    let d = &f.deployment;
    let secrets_dir = secrets_root.join(&d.namespace);
    let mut env = d.env_vars.clone();
    if !d.secrets.is_empty() {
        let mut h = std::hash::DefaultHasher::new();
        for s in &d.secrets {
            s.hash(&mut h);
            // A missing file hashes as empty; the replica then reports the error itself.
            std::fs::read(secrets_dir.join(s))
                .unwrap_or_default()
                .hash(&mut h);
        }
        env.insert(
            SECRETS_DIGEST_ENV.to_owned(),
            format!("{:016x}", h.finish()),
        );
    }
    Arc::new(ReplicaSpec {
        fprocess: d.env_process.clone(),
        env,
        secrets: d.secrets.clone(),
        secrets_dir,
        exec_timeout,
        cpu_set: None,
        gpu: None,
    })
}

fn map_err(e: RuntimeError) -> BackendError {
    match e {
        RuntimeError::InvalidSpec { .. } => BackendError::Invalid(e.to_string()),
        other => BackendError::Failed(other.to_string()),
    }
}

impl Backend for LocalBackend {
    fn orchestration(&self) -> &'static str {
        "local"
    }

    fn validate(&self, d: &FunctionDeployment) -> Result<(), BackendError> {
        contract::backend::placement::from_annotation(d).map_err(BackendError::Invalid)?;
        if d.env_process.trim().is_empty() {
            return Err(BackendError::Invalid(
                "envProcess (fprocess) is required on the local backend: it is the command each replica runs"
                    .into(),
            ));
        }
        Ok(())
    }

    fn deploy<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.apply(f))
    }

    fn update<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.apply(f))
    }

    fn scale<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.apply(f))
    }

    fn place<'a>(
        &'a self,
        f: &'a Arc<FunctionRecord>,
        placement: Option<Placement>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let key = (f.namespace().to_owned(), f.name().to_owned());
            {
                let mut m = self
                    .placements
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let changed = match &placement {
                    Some(p) => m.insert(key, p.clone()).as_ref() != Some(p),
                    None => m.remove(&key).is_some(),
                };
                if !changed {
                    return Ok(true);
                }
            }
            self.apply(f).await.map(|()| true)
        })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.placements
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&(namespace.to_owned(), name.to_owned()));
            self.rt
                .remove(&FunctionKey::new(namespace, name))
                .await
                .map_err(map_err)
        })
    }

    fn take_start_times(&self) -> Vec<(String, String, f64)> {
        self.rt
            .take_start_times()
            .into_iter()
            .flat_map(|(k, times)| {
                times
                    .into_iter()
                    .map(move |t| (k.namespace.clone(), k.name.clone(), t))
            })
            .collect()
    }

    fn status(&self, namespace: &str, name: &str) -> ReplicaCounts {
        let s = self.rt.status(&FunctionKey::new(namespace, name));
        ReplicaCounts {
            desired: s.desired,
            available: s.available,
        }
    }

    fn endpoint<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Option<SocketAddr>> {
        Box::pin(async move {
            self.rt
                .ready_endpoint(&FunctionKey::new(namespace, name), wait)
                .await
        })
    }

    fn unreachable(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.rt
            .unreachable(&FunctionKey::new(namespace, name), addr);
    }

    fn logs(&self, q: LogRequest) -> BoxStream<'static, LogMessage> {
        let instance = q.instance;
        let lines = self.rt.logs(LogQuery {
            key: FunctionKey::new(q.namespace, q.name),
            since: q.since,
            tail: q.tail,
            follow: q.follow,
        });
        lines
            .filter(move |l| std::future::ready(instance.as_ref().is_none_or(|i| *i == l.instance)))
            .map(|l| LogMessage {
                name: l.name,
                namespace: l.namespace,
                instance: l.instance,
                timestamp: l.timestamp,
                text: l.text,
            })
            .boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.rt.shutdown().await;
            // After the replicas: MPS clients must be gone before the daemon is told to quit.
            if let Some(g) = &self.gpu {
                g.shutdown();
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spec_changes_exactly_when_a_secret_value_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ns")).unwrap();
        std::fs::write(dir.path().join("ns/s"), "v1").unwrap();
        let rec = FunctionRecord {
            deployment: FunctionDeployment {
                service: "f".into(),
                namespace: "ns".into(),
                env_process: "cat".into(),
                env_vars: [("k".to_owned(), "v".to_owned())].into(),
                secrets: vec!["s".into()],
                ..Default::default()
            },
            replicas: 1,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            generation: 0,
        };
        let t = Duration::from_secs(1);
        let a = replica_spec(&rec, dir.path(), t);
        assert_eq!(a.secrets_dir, dir.path().join("ns"));
        assert_eq!(a.env.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            replica_spec(&rec, dir.path(), t),
            a,
            "same values, same spec (no needless rollout)"
        );
        std::fs::write(dir.path().join("ns/s"), "v2").unwrap();
        assert_ne!(
            replica_spec(&rec, dir.path(), t).env,
            a.env,
            "a new value rolls the replicas"
        );
    }
}
