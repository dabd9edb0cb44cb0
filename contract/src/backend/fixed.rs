//! A backend that routes every function to one fixed upstream address and treats every desired replica as
//! ready. It runs nothing itself: `smiless bench proxy` uses it to put the provider's proxy in front of
//! an in-process upstream, and the HTTP-layer tests use it to exercise routes without child processes.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::{Backend, BackendError, LogRequest, ReplicaCounts};
use crate::catalog::FunctionRecord;
use crate::types::LogMessage;

/// See the module documentation.
#[derive(Debug)]
pub struct FixedBackend {
    upstream: Option<SocketAddr>,
    // namespace → name → desired; nested so look-ups borrow `&str` without allocating.
    replicas: RwLock<HashMap<String, HashMap<String, u32>>>,
    /// The capacity it reports (`None`: this host's, the trait's default).
    capacity: Option<optimizer::capacity::Capacity>,
}

impl FixedBackend {
    /// `upstream = None` makes every function unreachable (the proxy answers 503).
    pub fn new(upstream: Option<SocketAddr>) -> Self {
        FixedBackend {
            upstream,
            replicas: RwLock::new(HashMap::new()),
            capacity: None,
        }
    }

    /// The same backend reporting `capacity` (tests of the joint control loop: a fake small host).
    #[must_use]
    pub fn with_capacity(mut self, capacity: optimizer::capacity::Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    fn set(&self, f: &FunctionRecord) {
        self.replicas
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(f.namespace().to_owned())
            .or_default()
            .insert(f.name().to_owned(), f.replicas);
    }

    fn desired(&self, namespace: &str, name: &str) -> u32 {
        let map = self.replicas.read().unwrap_or_else(PoisonError::into_inner);
        map.get(namespace)
            .and_then(|m| m.get(name))
            .copied()
            .unwrap_or(0)
    }
}

impl Backend for FixedBackend {
    fn orchestration(&self) -> &'static str {
        "fixed"
    }

    fn deploy<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        self.set(f);
        Box::pin(async { Ok(()) })
    }

    fn update<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        self.deploy(f)
    }

    fn scale<'a>(&'a self, f: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        self.deploy(f)
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        if let Some(m) = self
            .replicas
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(namespace)
        {
            m.remove(name);
        }
        Box::pin(async { Ok(()) })
    }

    fn status(&self, namespace: &str, name: &str) -> ReplicaCounts {
        let desired = self.desired(namespace, name);
        let available = if self.upstream.is_some() { desired } else { 0 };
        ReplicaCounts { desired, available }
    }

    fn endpoint<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        _wait: Duration,
    ) -> BoxFuture<'a, Option<SocketAddr>> {
        let ready = self.status(namespace, name).available > 0;
        let addr = self.upstream.filter(|_| ready);
        Box::pin(async move { addr })
    }

    fn capacity(&self) -> optimizer::capacity::Capacity {
        self.capacity
            .clone()
            .unwrap_or_else(|| super::host::capacity(super::host::host()))
    }

    fn logs(&self, _q: LogRequest) -> BoxStream<'static, LogMessage> {
        Box::pin(futures::stream::empty())
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
