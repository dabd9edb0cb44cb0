//! The Kubernetes backend (`smiless serve --backend kubernetes`): each function is a Deployment and a Service
//! mapped as faas-netes maps them ([`mapping`]), plus the control loop's plan (CPU cores, an MPS-shared GPU,
//! replicas). Secrets are Kubernetes Secrets, namespaces are labelled `openfaas=1`.
//!
//! State: the catalog holds what users asked for; the cluster holds what runs. Reads come from watch caches
//! (kube-runtime reflectors of Deployments, EndpointSlices and Nodes), so a restart of the provider or of the
//! API server loses nothing: the caches re-list when the watch comes back. Writes are server-side applies
//! (idempotent); a write that fails because the API server is unreachable answers 503 and is retried by the
//! reconciler ([`Inner::reconcile`]), which every few seconds re-applies any function whose Deployment is
//! missing or differs from the desired spec (by digest), so the provider recovers by itself.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use apply::scoped_api;
use contract::backend::{Backend, BackendError, LogRequest, Placement, ReplicaCounts};
use contract::catalog::FunctionRecord;
use contract::types::{FunctionDeployment, LABEL_FAAS_FUNCTION, LogMessage};
use mapping::Hardware;

mod apply;
pub mod config;
pub mod error;
mod import;
mod logs;
pub mod mapping;
pub mod status;

pub use config::KubeArgs;

/// Field manager of the provider's server-side applies.
const FIELD_MANAGER: &str = "smiless";
/// Longest wait for one API call before it counts as "API server unreachable" (503).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconciler period.
const RESYNC: Duration = Duration::from_secs(2);
/// Longest wait for the first list of the Deployment cache before a deploy reads a placement from it.
const CACHE_WAIT: Duration = Duration::from_secs(3);

type Key = (String, String);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its map consistent, so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the provider wants for one function.
#[derive(Debug, Clone)]
enum Desired {
    Present {
        rec: Arc<FunctionRecord>,
        /// The plan's hardware (what [`Backend::place`] last set).
        planned: Hardware,
    },
    /// Deleted: the reconciler removes the objects if a delete call failed.
    Absent,
}

/// See the module documentation.
#[derive(Clone)]
pub struct KubeBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KubeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackend").finish_non_exhaustive()
    }
}

struct Inner {
    client: kube::Client,
    opts: mapping::Options,
    /// The catalog's secret files (`<namespace>/<name>`): the values Kubernetes Secrets are made from.
    secrets_root: PathBuf,
    /// The only namespace managed (`cluster_role` is not `true`), else `None`.
    scope: Option<String>,
    deployments: Store<Deployment>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    desired: Mutex<HashMap<Key, Desired>>,
    /// One apply at a time per function, so a reconcile pass never interleaves with a newer change.
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Secrets whose last sync failed (retried by the reconciler).
    pending_secrets: Mutex<BTreeSet<Key>>,
    /// Namespaces already applied with the `openfaas` label in this run.
    namespaces: Mutex<HashSet<String>>,
    rr: AtomicUsize,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Runs `fut` with [`CALL_TIMEOUT`]; a timeout means the API server is unreachable.
async fn call<T>(
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r.map_err(|e| error::map(what, e)),
        Err(_) => Err(BackendError::Unavailable(format!(
            "{what}: the Kubernetes API server did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// Drives a reflector until the process ends; watch errors are retried with kube-runtime's backoff.
fn spawn_reflector<K>(api: Api<K>, cfg: watcher::Config) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&()).into_owned();
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(
            watcher(api, cfg)
                .default_backoff()
                .reflect(writer)
                .applied_objects()
        );
        let mut failing = false;
        while let Some(item) = s.next().await {
            match item {
                Err(e) if !failing => {
                    tracing::warn!("kubernetes: watch of {kind} failed (retrying): {e}");
                    failing = true;
                }
                Err(_) => {}
                Ok(_) if failing => {
                    tracing::info!("kubernetes: watch of {kind} is back");
                    failing = false;
                }
                Ok(_) => {}
            }
        }
    });
    (store, task)
}

impl KubeBackend {
    /// Connects with `KUBECONFIG` (or `~/.kube/config`, or the in-cluster service account) and starts
    /// the watches and the reconciler on the current tokio runtime. Does not need the API server to be up.
    /// Without `cluster_role=true` it watches and manages only `function_namespace`.
    pub async fn connect(
        args: &KubeArgs,
        secrets_root: PathBuf,
        function_namespace: &str,
    ) -> Result<Self, BackendError> {
        let opts = mapping::Options::try_from(args)
            .map_err(|e| BackendError::Invalid(format!("kubernetes backend settings: {e}")))?;
        let mut cfg = kube::Config::infer().await.map_err(|e| {
            BackendError::Failed(format!(
                "no Kubernetes configuration (set KUBECONFIG or run in a pod): {e}"
            ))
        })?;
        cfg.connect_timeout = Some(Duration::from_secs(3));
        let client = kube::Client::try_from(cfg)
            .map_err(|e| BackendError::Failed(format!("kubernetes client: {e}")))?;
        Ok(Self::with_client(
            client,
            opts,
            secrets_root,
            args.scope(function_namespace),
        ))
    }

    /// The backend over an existing client (tests build one against a given API server). `scope`: the
    /// only namespace it watches and manages (a namespaced Role suffices), `None` for all of them.
    pub fn with_client(
        client: kube::Client,
        opts: mapping::Options,
        secrets_root: PathBuf,
        scope: Option<String>,
    ) -> Self {
        let (deployments, t1) = spawn_reflector(
            scoped_api::<Deployment>(&client, scope.as_deref()),
            watcher::Config::default().labels(LABEL_FAAS_FUNCTION),
        );
        let (slices, t2) = spawn_reflector(
            scoped_api::<EndpointSlice>(&client, scope.as_deref()),
            watcher::Config::default().labels(LABEL_FAAS_FUNCTION),
        );
        let (nodes, t3) =
            spawn_reflector(Api::<Node>::all(client.clone()), watcher::Config::default());
        let inner = Arc::new(Inner {
            client,
            opts,
            secrets_root,
            scope,
            deployments,
            slices,
            nodes,
            desired: Mutex::default(),
            locks: Mutex::default(),
            pending_secrets: Mutex::default(),
            namespaces: Mutex::default(),
            rr: AtomicUsize::new(0),
            tasks: Mutex::default(),
        });
        let weak = Arc::downgrade(&inner);
        let t4 = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESYNC);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.reconcile().await;
            }
        });
        lock(&inner.tasks).extend([t1, t2, t3, t4]);
        KubeBackend { inner }
    }

    /// Whether the Deployment cache has been listed at least once (the API server was reachable).
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.inner.deployments.wait_until_ready())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The Deployment of a function as the watch cache has it.
    pub fn observed(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.inner.observed(namespace, name)
    }

    /// Sets what the provider wants for `f` and applies it.
    async fn set_and_apply(
        &self,
        f: &Arc<FunctionRecord>,
        planned: Option<Hardware>,
    ) -> Result<(), BackendError> {
        let key: Key = (f.namespace().to_owned(), f.name().to_owned());
        let known = match lock(&self.inner.desired).get(&key) {
            Some(Desired::Present { planned, .. }) => Some(*planned),
            _ => None,
        };
        let planned = match (planned, known) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            // First sight in this run (e.g. restoring after a restart): keep the plan the cluster has.
            (None, None) => {
                self.wait_synced(CACHE_WAIT).await;
                self.inner
                    .observed(&key.0, &key.1)
                    .map_or(Hardware::Unplanned, |d| mapping::placement_from(&d))
            }
        };
        lock(&self.inner.desired).insert(
            key.clone(),
            Desired::Present {
                rec: Arc::clone(f),
                planned,
            },
        );
        self.inner.apply(&key).await
    }
}

impl Backend for KubeBackend {
    fn orchestration(&self) -> &'static str {
        "kubernetes"
    }

    fn validate(&self, d: &FunctionDeployment) -> Result<(), BackendError> {
        if let Some(only) = &self.inner.scope
            && !d.namespace.is_empty()
            && d.namespace != *only
        {
            return Err(BackendError::Invalid(format!(
                "namespace {} is not allowed: this provider manages only {only} (set cluster_role=true to manage every namespace labelled openfaas=1)",
                d.namespace
            )));
        }
        mapping::validate(d).map_err(|e| BackendError::Invalid(e.to_string()))
    }

    fn deploy<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.set_and_apply(f, None))
    }

    fn update<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.set_and_apply(f, None))
    }

    fn scale<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.set_and_apply(f, None))
    }

    fn place<'a>(
        &'a self,
        f: &'a Arc<FunctionRecord>,
        placement: Option<Placement>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let planned = placement
            .as_ref()
            .map_or(Hardware::Unplanned, Hardware::from_placement);
        Box::pin(async move { self.set_and_apply(f, Some(planned)).await.map(|()| true) })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let key: Key = (namespace.to_owned(), name.to_owned());
            lock(&self.inner.desired).insert(key.clone(), Desired::Absent);
            self.inner.apply(&key).await
        })
    }

    fn secret_changed<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let r = self.inner.sync_secret(namespace, name).await;
            if r.is_err() {
                lock(&self.inner.pending_secrets).insert((namespace.to_owned(), name.to_owned()));
            }
            r
        })
    }

    fn hardware(&self) -> Option<(usize, u32)> {
        status::cluster_hardware(&self.inner.nodes.state(), &self.inner.opts)
    }

    fn capacity(&self) -> optimizer::capacity::Capacity {
        // Before the node watch has a node, this host stands in (as `hardware` does).
        status::cluster_capacity(&self.inner.nodes.state(), &self.inner.opts)
            .unwrap_or_else(|| contract::backend::host::capacity(contract::backend::host::host()))
    }

    fn status(&self, namespace: &str, name: &str) -> ReplicaCounts {
        self.inner
            .observed(namespace, name)
            .map(|d| status::counts(&d))
            .unwrap_or_default()
    }

    fn endpoint<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Option<SocketAddr>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let slices = self
                    .inner
                    .slices
                    .state_filter(|s| status::slice_of(s, namespace, name));
                let addrs = status::ready_addresses(slices.iter().map(|s| &**s));
                if !addrs.is_empty() {
                    let i = self.inner.rr.fetch_add(1, Ordering::Relaxed) % addrs.len();
                    return Some(addrs[i]);
                }
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    fn logs(&self, q: LogRequest) -> BoxStream<'static, LogMessage> {
        logs::stream(self.inner.client.clone(), q)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for t in lock(&self.inner.tasks).drain(..) {
                t.abort();
            }
        })
    }
}

/// Lists every object of `api` matching `labels`, failing as the backend fails (used by the import).
async fn list_all<K>(api: &Api<K>, labels: &str, what: &str) -> Result<Vec<K>, BackendError>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let lp = kube::api::ListParams::default().labels(labels);
    call(what, api.list(&lp)).await.map(|l| l.items)
}
