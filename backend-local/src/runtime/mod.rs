//! The local backend's runtime: a supervisor of replica child processes.
//!
//! Every replica is a `smiless watchdog` child process listening on a free loopback port. The runtime keeps
//! the desired number of replicas per function, restarts replicas that exit, reports a replica as available
//! only once its watchdog's `/_/health` answers 200, replaces replicas without dropping requests when the
//! spec changes, and keeps a bounded per-function ring buffer of their output for `logs`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::stream::BoxStream;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

mod function;
mod launch;
mod logs;
mod replica;

use function::Function;
use launch::Launcher;
pub use launch::SECRETS_PATH_ENV;

/// Identifies a function: its OpenFaaS namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionKey {
    pub namespace: String,
    pub name: String,
}

impl FunctionKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for FunctionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.namespace)
    }
}

/// A share of one GPU through NVIDIA MPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuShare {
    /// The CUDA device index.
    pub device: u32,
    /// `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`, 1..=100.
    pub percent: u8,
}

/// What one replica runs: the process, its environment, its secrets and its hardware placement.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSpec {
    /// The function's `envProcess` (the watchdog's `fprocess`).
    pub fprocess: String,
    /// The function's `envVars`, plus watchdog settings such as `mode` and `upstream_url`.
    pub env: BTreeMap<String, String>,
    /// Names of the secrets the function may read at `/var/openfaas/secrets/<name>`.
    pub secrets: Vec<String>,
    /// Where this namespace's secret files are stored (`<dir>/<name>`).
    pub secrets_dir: PathBuf,
    /// The watchdog's `exec_timeout` unless `env` sets `exec_timeout` itself; zero means none.
    pub exec_timeout: Duration,
    /// Cores the replica may run on; `None` means any.
    pub cpu_set: Option<Vec<usize>>,
    /// The GPU share, if any.
    pub gpu: Option<GpuShare>,
}

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The `smiless` binary, run as `smiless watchdog` for every replica.
    pub exe: PathBuf,
    /// Scratch space for replicas (temporary directories, secret views).
    pub work_dir: PathBuf,
}

/// Desired and available replicas of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaStatus {
    pub desired: u32,
    /// Replicas whose health check passed (capped at `desired`).
    pub available: u32,
}

/// Which logs to return.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub key: FunctionKey,
    /// Only lines at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only the last `tail` lines of the history.
    pub tail: Option<usize>,
    /// Keep the stream open and yield new lines as they come.
    pub follow: bool,
}

/// One line of a replica's output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub name: String,
    pub namespace: String,
    /// The replica id.
    pub instance: String,
    pub timestamp: jiff::Timestamp,
    pub text: String,
}

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid replica spec for {key}: {reason}")]
    InvalidSpec { key: FunctionKey, reason: String },
    #[error("the watchdog binary {0} does not exist")]
    MissingExe(PathBuf),
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the runtime is shut down")]
    Shutdown,
    #[error("Runtime::new must be called inside a tokio runtime")]
    NoTokio,
}

/// The replica supervisor. Cheap to clone; every clone drives the same replicas.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    handle: tokio::runtime::Handle,
    launcher: Arc<Launcher>,
    prober: replica::Prober,
    functions: Mutex<HashMap<FunctionKey, Arc<Function>>>,
    next_id: AtomicU64,
    shut: AtomicBool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("secrets", &self.inner.launcher.secrets)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the runtime; must be called inside a tokio runtime, whose handle runs all process work.
    pub fn new(cfg: RuntimeConfig) -> Result<Self, RuntimeError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| RuntimeError::NoTokio)?;
        let launcher = Arc::new(Launcher::new(&cfg.exe, &cfg.work_dir, handle.clone())?);
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let prober = {
            let _guard = handle.enter();
            // Keep-alive between polls; the timer lets idle connections expire (without one they never do).
            Client::builder(TokioExecutor::new())
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(5))
                .build(conn)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                handle,
                launcher,
                prober,
                functions: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                shut: AtomicBool::new(false),
            }),
        })
    }

    /// How the replicas see their secrets here: `true` when at `/var/openfaas/secrets` through a private
    /// mount namespace, `false` when only through the `secret_mount_path` variable.
    pub fn secrets_mounted(&self) -> bool {
        matches!(
            self.inner.launcher.secrets,
            launch::SecretsMode::MountNamespace { .. }
        )
    }

    fn functions(&self) -> std::sync::MutexGuard<'_, HashMap<FunctionKey, Arc<Function>>> {
        self.inner
            .functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn function(&self, key: &FunctionKey) -> Option<Arc<Function>> {
        self.functions().get(key).cloned()
    }

    /// Seconds from start to first readiness of the replicas that became ready since the last call, per
    /// function.
    pub fn take_start_times(&self) -> Vec<(FunctionKey, Vec<f64>)> {
        self.functions()
            .iter()
            .map(|(k, f)| (k.clone(), f.take_start_times()))
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// Sets the desired state of a function; returns once the processes are started (not necessarily
    /// ready). A changed spec replaces the replicas without dropping requests: the new ones start, and the
    /// old ones leave rotation once the new ones are ready, then drain and stop.
    pub async fn apply(
        &self,
        key: &FunctionKey,
        spec: Arc<ReplicaSpec>,
        replicas: u32,
    ) -> Result<(), RuntimeError> {
        validate(key, &spec)?;
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(RuntimeError::Shutdown);
        }
        let this = self.clone();
        let key = key.clone();
        self.inner
            .handle
            .spawn(async move { this.apply_inner(key, spec, replicas).await })
            .await
            .map_err(|_| RuntimeError::Shutdown)?
    }

    async fn apply_inner(
        &self,
        key: FunctionKey,
        spec: Arc<ReplicaSpec>,
        replicas: u32,
    ) -> Result<(), RuntimeError> {
        loop {
            let f = self
                .functions()
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Function::new(key.clone())))
                .clone();
            let _op = f.ops.lock().await;
            if f.removed.load(Ordering::Acquire) {
                continue;
            }
            let inner = &self.inner;
            let plan = f.plan(spec.clone(), replicas, || {
                format!(
                    "{}-{}",
                    key.name,
                    inner.next_id.fetch_add(1, Ordering::Relaxed)
                )
            });
            for r in plan.start {
                tokio::spawn(replica::supervise(
                    f.clone(),
                    r,
                    inner.launcher.clone(),
                    inner.prober.clone(),
                ));
            }
            drain(&f, plan.retire);
            if let Some(generation) = plan.rollout {
                tokio::spawn(rollout(f.clone(), generation));
            }
            return Ok(());
        }
    }

    /// Stops every replica of a function (waiting until they are gone) and forgets it.
    pub async fn remove(&self, key: &FunctionKey) -> Result<(), RuntimeError> {
        let Some(f) = self.functions().remove(key) else {
            return Ok(());
        };
        self.inner
            .handle
            .spawn(stop_function(f))
            .await
            .map_err(|_| RuntimeError::Shutdown)
    }

    /// Desired and available replicas; zeros for an unknown function.
    pub fn status(&self, key: &FunctionKey) -> ReplicaStatus {
        self.function(key).map(|f| f.status()).unwrap_or_default()
    }

    /// The address of a ready replica (round-robin), waiting up to `wait` for one. It does not scale:
    /// with no replica desired it waits in vain.
    pub async fn ready_endpoint(&self, key: &FunctionKey, wait: Duration) -> Option<SocketAddr> {
        let f = self.function(key)?;
        if let Some(addr) = f.pick() {
            return Some(addr);
        }
        if wait.is_zero() {
            return None;
        }
        self.inner
            .handle
            .spawn(async move {
                let mut rx = f.subscribe();
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    if let Some(addr) = f.pick() {
                        return Some(addr);
                    }
                    match tokio::time::timeout_at(deadline, rx.changed()).await {
                        Ok(Ok(())) => {}
                        _ => return f.pick(),
                    }
                }
            })
            .await
            .ok()
            .flatten()
    }

    /// A caller found the replica at `addr` unreachable (connection refused or closed before a request
    /// was sent): it leaves rotation now and its supervisor checks its health at once, so a replica that
    /// died is not picked again while its exit is being noticed, and a live one comes back after one
    /// probe.
    pub fn unreachable(&self, key: &FunctionKey, addr: SocketAddr) {
        if let Some(f) = self.function(key) {
            f.unreachable(addr);
        }
    }

    /// The function's log lines: history (filtered by `since`, then the last `tail`), then new lines if
    /// `follow` (until the function is removed). An unknown function has none.
    pub fn logs(&self, q: LogQuery) -> BoxStream<'static, LogLine> {
        match self.function(&q.key) {
            Some(f) => f.logs.query(&q),
            None => Box::pin(futures::stream::empty()),
        }
    }

    /// Stops every replica of every function; later `apply` calls fail.
    pub async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::Release);
        let all: Vec<_> = self.functions().drain().map(|(_, f)| f).collect();
        let stops = all
            .into_iter()
            .map(|f| self.inner.handle.spawn(stop_function(f)));
        futures::future::join_all(stops).await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone without a shutdown: do not leave processes behind.
        for f in self
            .functions
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            // Stop first so that the supervisors, which may outlive this handle, do not restart them.
            f.stop_all();
            f.kill_all();
        }
    }
}

fn validate(key: &FunctionKey, spec: &ReplicaSpec) -> Result<(), RuntimeError> {
    let bad = |reason: String| {
        Err(RuntimeError::InvalidSpec {
            key: key.clone(),
            reason,
        })
    };
    if spec.fprocess.trim().is_empty() {
        return bad("fprocess (envProcess) is empty".into());
    }
    for name in &spec.secrets {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return bad(format!("secret name {name:?} is not a plain file name"));
        }
    }
    if let Some(gpu) = spec.gpu
        && !(1..=100).contains(&gpu.percent)
    {
        return bad(format!("GPU share {}% is not within 1..=100", gpu.percent));
    }
    if spec.cpu_set.as_ref().is_some_and(|c| c.is_empty()) {
        return bad("cpu_set is empty".into());
    }
    for name in [&key.name, &key.namespace] {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return bad(format!("{name:?} cannot name a function or namespace"));
        }
    }
    Ok(())
}

/// Takes replicas out of rotation now and stops them after [`function::DRAIN_DELAY`].
fn drain(f: &Arc<Function>, replicas: Vec<Arc<replica::Replica>>) {
    if replicas.is_empty() {
        return;
    }
    f.changed();
    tokio::spawn(async move {
        tokio::time::sleep(function::DRAIN_DELAY).await;
        for r in replicas {
            r.stop();
        }
    });
}

/// Waits for `generation` to be ready, then drains the older generations.
async fn rollout(f: Arc<Function>, generation: u64) {
    let mut rx = f.subscribe();
    loop {
        if let Some(old) = f.rollout_step(generation) {
            drain(&f, old);
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn stop_function(f: Arc<Function>) {
    let _op = f.ops.lock().await;
    f.removed.store(true, Ordering::Release);
    let mut rx = f.subscribe();
    f.stop_all();
    while !f.is_empty() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
