//! Backends make the catalog's desired state real and answer for the running replicas.
//!
//! The HTTP layer talks only to [`Backend`]. Its implementations: the local backend (crate
//! `backend-local`) drives child processes, the Kubernetes backend (crate `backend-kube`) runs each
//! function as a Deployment and a Service, and [`fixed`] routes every function to one fixed address
//! (benchmarks, HTTP-layer tests).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::catalog::FunctionRecord;
use crate::types::{FunctionDeployment, LogMessage};

pub mod fixed;
pub mod host;
pub mod placement;

/// Backend failures. `Invalid` is the caller's fault (400); `Unavailable` is a dependency that cannot be
/// reached now, e.g. the Kubernetes API server (503, retry later); the rest are the provider's (500).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Invalid(String),
    #[error("backend failure: {0}")]
    Failed(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

/// Desired and ready replicas as the backend sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    pub desired: u32,
    /// Replicas whose health check passed: what `availableReplicas` reports and the proxy routes to.
    pub available: u32,
}

/// Planned hardware for a function's replicas (the control loop's choice; DESIGN §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Cores the replicas may run on (empty: any).
    pub cpus: Vec<usize>,
    /// `(device, percent)`: a GPU share through MPS.
    pub gpu: Option<(u32, u8)>,
}

/// Which log lines to return (contract §1.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub namespace: String,
    pub name: String,
    /// Only this replica's lines.
    pub instance: Option<String>,
    pub since: Option<jiff::Timestamp>,
    /// Only the last `tail` lines of the history.
    pub tail: Option<usize>,
    pub follow: bool,
}

/// The operations the HTTP layer needs from a backend.
///
/// `deploy`, `update` and `scale` receive the full record (desired replicas included); each is
/// idempotent, so restoring after a restart is just `deploy` of every record again.
pub trait Backend: Send + Sync + 'static {
    /// `orchestration` in `/system/info`.
    fn orchestration(&self) -> &'static str;

    /// Rejects what this backend cannot run (checked before the catalog records anything).
    fn validate(&self, _d: &FunctionDeployment) -> Result<(), BackendError> {
        Ok(())
    }

    /// Starts a new function (or re-creates it after a restart).
    fn deploy<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Rolls a function to a new spec without dropping requests.
    fn update<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Changes the number of replicas to `f.replicas`.
    fn scale<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Runs `f`'s replicas on `placement` (`None`: back to the deployment's default); a change rolls the
    /// replicas. Returns whether the backend applied it (the default: it cannot place hardware).
    fn place<'a>(
        &'a self,
        _f: &'a Arc<FunctionRecord>,
        _placement: Option<Placement>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async { Ok(false) })
    }

    /// A secret was created, updated or deleted in the catalog (its value is the catalog's file, or gone).
    /// Backends that keep secrets elsewhere (Kubernetes Secrets) sync it here.
    fn secret_changed<'a>(
        &'a self,
        _namespace: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    /// What the planner may place functions on, when the backend knows better than this host: cores of
    /// the largest node and whole GPUs (`None`: plan for this host).
    fn hardware(&self) -> Option<(usize, u32)> {
        None
    }

    /// The cluster the control loop's joint planner must fit (docs/capacity.md): per node, allocatable
    /// CPU and GPU units. The default is this host (its affinity cores, each GPU as 100 MPS units), what
    /// backends that run replicas here share; a cluster backend reads its nodes.
    fn capacity(&self) -> optimizer::capacity::Capacity {
        host::capacity(host::host())
    }

    /// `(namespace, name, seconds)` from a replica's start to its first readiness, for every replica that
    /// became ready since the last call (the online refresh's initialisation samples). Empty where the
    /// backend does not see replicas start.
    fn take_start_times(&self) -> Vec<(String, String, f64)> {
        Vec::new()
    }

    /// Stops and forgets a function.
    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Replica counts, from memory (called for every status read).
    fn status(&self, namespace: &str, name: &str) -> ReplicaCounts;

    /// A ready replica's address, waiting up to `wait` for one; `None` if none became ready.
    fn endpoint<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Option<SocketAddr>>;

    /// The proxy could not reach `addr`, a replica [`Backend::endpoint`] named: the connection was
    /// refused or closed before the request was sent. A backend that picks replicas itself takes that
    /// one out of rotation until its health check passes again, so the retry goes elsewhere (the
    /// default: nothing, for a backend that routes through one stable address).
    fn unreachable(&self, _namespace: &str, _name: &str, _addr: SocketAddr) {}

    /// Log lines: the history, then (with `follow`) new lines until the stream is dropped.
    fn logs(&self, q: LogRequest) -> BoxStream<'static, LogMessage>;

    /// Stops everything (graceful shutdown).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// How often [`wait_endpoint`] asks again when the backend answered at once without a replica.
pub const ENDPOINT_POLL: Duration = Duration::from_millis(20);

/// A ready replica of `namespace/name`, asking `backend` until `deadline`: the one wait loop of the
/// request path (the invocation proxy and the DAG runner). A backend may answer `None` before its own
/// wait is over (one that does not know the function yet, right after a restart while the catalog is
/// being restored), so the question is repeated every [`ENDPOINT_POLL`] while `keep_waiting()` still
/// holds; `None` when the deadline is near or the caller gave up.
pub async fn wait_endpoint(
    backend: &dyn Backend,
    namespace: &str,
    name: &str,
    deadline: tokio::time::Instant,
    mut keep_waiting: impl FnMut() -> bool,
) -> Option<SocketAddr> {
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Some(addr) = backend.endpoint(namespace, name, left).await {
            return Some(addr);
        }
        if !keep_waiting() || tokio::time::Instant::now() + ENDPOINT_POLL >= deadline {
            return None;
        }
        tokio::time::sleep(ENDPOINT_POLL).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A backend whose functions are ready once deployed with replicas.
    fn backend() -> (fixed::FixedBackend, SocketAddr) {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        (fixed::FixedBackend::new(Some(addr)), addr)
    }

    #[tokio::test]
    async fn wait_endpoint_returns_a_ready_replica_at_once() {
        let (b, addr) = backend();
        let rec = Arc::new(FunctionRecord {
            deployment: FunctionDeployment {
                service: "f".into(),
                namespace: "ns".into(),
                ..Default::default()
            },
            replicas: 1,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            generation: 0,
        });
        b.deploy(&rec).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let asked = Cell::new(0);
        let got = wait_endpoint(&b, "ns", "f", deadline, || {
            asked.set(asked.get() + 1);
            true
        })
        .await;
        assert_eq!(got, Some(addr));
        assert_eq!(asked.get(), 0, "no second question");
    }

    #[tokio::test]
    async fn wait_endpoint_polls_until_the_caller_gives_up_or_the_deadline() {
        let (b, _) = backend(); // nothing deployed: never ready
        let far = tokio::time::Instant::now() + Duration::from_secs(5);
        let asked = Cell::new(0);
        let got = wait_endpoint(&b, "ns", "f", far, || {
            asked.set(asked.get() + 1);
            asked.get() < 3
        })
        .await;
        assert_eq!(got, None);
        assert_eq!(asked.get(), 3, "asked again while keep_waiting held");

        let start = tokio::time::Instant::now();
        let near = start + Duration::from_millis(100);
        assert_eq!(wait_endpoint(&b, "ns", "f", near, || true).await, None);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(80) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
