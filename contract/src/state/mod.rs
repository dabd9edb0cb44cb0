//! The state every request handler and the control loop share ([`AppState`]): the catalog, the backend,
//! the DAG registry and the HTTP settings, with [`AppState::scale`] (the one way to set a function's
//! replicas), and the API's error type ([`ApiError`]), which the scale returns. Below the HTTP routes
//! (`api`), the request path (`proxy`) and the control loop (`control`), so each of them takes the state
//! without importing the others.
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::backend::Backend;
use crate::catalog::{Catalog, FunctionRecord};
use crate::config::{Config, Credentials};
use crate::types::ProviderInfo;

mod error;

pub use error::{ApiError, decode};

/// Shared state of every handler.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub backend: Arc<dyn Backend>,
    pub credentials: Option<Credentials>,
    /// Upstream timeout of the proxy and the longest wait for a ready replica.
    pub read_timeout: Duration,
    /// Bounds `follow=true` log streams (zero = unbounded).
    pub write_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_idle_conns_per_host: usize,
    pub metrics: Arc<crate::prom::http::Metrics>,
    pub info: ProviderInfo,
    /// DAGs derived from the catalog, and what the DAG runner and the control loop see and decide.
    pub dags: Arc<crate::dag::Registry>,
    /// The prices the control loop plans and bills with (`SMILESS_PRICES`).
    pub prices: optimizer::Prices,
    /// Requests started and in flight per function, counted by the proxy, sampled by the autoscaler.
    pub requests: Arc<crate::observe::requests::Requests>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The git sha captured by `build.rs` (or `SMILESS_GIT_SHA`), never empty.
pub const GIT_SHA: &str = env!("SMILESS_GIT_SHA");

impl AppState {
    pub fn new(catalog: Arc<Catalog>, backend: Arc<dyn Backend>, config: &Config) -> Self {
        let info = ProviderInfo {
            provider: "smiless".into(),
            version: Some(crate::types::VersionInfo {
                commit_message: String::new(),
                sha: GIT_SHA.into(),
                release: env!("CARGO_PKG_VERSION").into(),
            }),
            orchestration: backend.orchestration().into(),
        };
        AppState {
            catalog,
            backend,
            credentials: config.credentials.clone(),
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            max_body_bytes: config.max_body_bytes,
            max_idle_conns_per_host: config.max_idle_conns_per_host,
            metrics: Arc::default(),
            info,
            dags: Arc::default(),
            prices: config.prices,
            requests: Arc::default(),
        }
    }

    /// Sets a function's desired replicas: catalog first (durable, visible to the next status read at
    /// once, §4.2), then the backend. Shared by the scale route and the proxy's scale-from-zero.
    pub async fn scale(
        &self,
        namespace: &str,
        name: &str,
        replicas: u64,
    ) -> Result<Arc<FunctionRecord>, ApiError> {
        let catalog = Arc::clone(&self.catalog);
        let (ns, n) = (namespace.to_owned(), name.to_owned());
        let rec = web::block(move || catalog.scale(&ns, &n, replicas)).await??;
        let live = &self.dags.live;
        live.replica_time
            .set(namespace, name, rec.replicas, live.now());
        self.backend.scale(&rec).await?;
        Ok(rec)
    }
}
