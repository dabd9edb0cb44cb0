//! The desired state: deployed functions (verbatim request + desired replicas), secrets and namespaces.
//!
//! Readers get an immutable snapshot (`Arc<State>`) behind a read lock, so the hot paths (status and
//! proxy look-ups) never wait on disk. Writers are serialised by a mutex; each write builds the next
//! state, persists it durably (see [`store`]) and only then publishes it, so what clients have seen
//! acknowledged is always on disk.
//!
//! Methods do blocking file I/O; async callers run them on a blocking thread.
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::types::{FunctionDeployment, FunctionNamespace, rfc3339};

mod namespaces;
mod store;
mod validate;

pub use validate::{is_dns1123_label, is_dns1123_subdomain, scale_min};

/// Catalog failures. The API maps each variant to one HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request is invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// No such function (404).
    #[error("function {name} not found in namespace {namespace}")]
    FunctionNotFound { namespace: String, name: String },
    /// No such secret (404).
    #[error("secret {name} not found in namespace {namespace}")]
    SecretNotFound { namespace: String, name: String },
    /// No such namespace (404).
    #[error("namespace {0} not found")]
    NamespaceNotFound(String),
    /// The object already exists or is in use (409).
    #[error("{0}")]
    Conflict(String),
    /// Disk trouble (500).
    #[error("catalog storage: {0}")]
    Io(#[from] io::Error),
    /// The persisted catalog cannot be parsed; refuse to start rather than lose it.
    #[error("catalog file is corrupt: {0}")]
    Corrupt(String),
}

/// One deployed function: the request as received (namespace resolved) and its desired replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionRecord {
    pub deployment: FunctionDeployment,
    /// Desired replicas; updated synchronously by scale so the next status read shows it (§4.2).
    pub replicas: u32,
    #[serde(with = "rfc3339")]
    pub created_at: jiff::Timestamp,
    /// Bumped by every update, so a backend can force a rollout even when nothing it sees changed
    /// (faas-netes' `uid` label does the same).
    #[serde(default)]
    pub generation: u64,
}

impl FunctionRecord {
    pub fn name(&self) -> &str {
        &self.deployment.service
    }
    pub fn namespace(&self) -> &str {
        &self.deployment.namespace
    }
}

type Functions = BTreeMap<String, BTreeMap<String, Arc<FunctionRecord>>>;

/// An immutable snapshot of the catalog.
#[derive(Debug, Clone, Default)]
pub struct State {
    functions: Functions,
    namespaces: BTreeMap<String, FunctionNamespace>,
    secrets: BTreeMap<String, BTreeSet<String>>,
}

/// The catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    root: PathBuf,
    default_namespace: String,
    max_replicas: u32,
    state: RwLock<Arc<State>>,
    writer: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the writer lock cannot leave the published state half-written (it is
    // swapped in whole), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Catalog {
    /// Opens (or creates) the catalog under `root`, restoring what was persisted. `namespaces` exist
    /// from the start in addition to `default_namespace`.
    pub fn open(
        root: &Path,
        default_namespace: &str,
        namespaces: &[String],
        max_replicas: u32,
    ) -> Result<Self, CatalogError> {
        store::ensure_private_dir(root)?;
        store::ensure_private_dir(&root.join("secrets"))?;
        let doc = store::load_document(&root.join("catalog.json"))?;
        let mut state = State::default();
        for ns in std::iter::once(default_namespace).chain(namespaces.iter().map(String::as_str)) {
            state
                .namespaces
                .insert(ns.to_owned(), builtin_namespace(ns));
        }
        for ns in doc.namespaces {
            state.namespaces.insert(ns.name.clone(), ns);
        }
        for f in doc.functions {
            state
                .namespaces
                .entry(f.deployment.namespace.clone())
                .or_insert_with(|| builtin_namespace(&f.deployment.namespace));
            state
                .functions
                .entry(f.deployment.namespace.clone())
                .or_default()
                .insert(f.deployment.service.clone(), Arc::new(f));
        }
        for (ns, name) in store::scan_secrets(&root.join("secrets"))? {
            state
                .namespaces
                .entry(ns.clone())
                .or_insert_with(|| builtin_namespace(&ns));
            state.secrets.entry(ns).or_default().insert(name);
        }
        Ok(Catalog {
            root: root.to_owned(),
            default_namespace: default_namespace.to_owned(),
            max_replicas,
            state: RwLock::new(Arc::new(state)),
            writer: Mutex::new(()),
        })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    pub fn max_replicas(&self) -> u32 {
        self.max_replicas
    }

    /// Empty means the default namespace (the gateway sends `namespace=` when it has none).
    pub fn resolve_namespace<'a>(&'a self, ns: &'a str) -> &'a str {
        if ns.is_empty() {
            &self.default_namespace
        } else {
            ns
        }
    }

    /// The directory holding `<namespace>/<name>` secret files.
    pub fn secrets_root(&self) -> PathBuf {
        self.root.join("secrets")
    }

    /// Where this namespace's secret files live (`<dir>/<name>`).
    pub fn secrets_dir(&self, namespace: &str) -> PathBuf {
        self.root.join("secrets").join(namespace)
    }

    /// One function, from memory.
    pub fn function(&self, namespace: &str, name: &str) -> Option<Arc<FunctionRecord>> {
        let ns = self.resolve_namespace(namespace);
        self.snapshot()
            .functions
            .get(ns)
            .and_then(|m| m.get(name))
            .cloned()
    }

    /// Every function of every namespace (used to restore the backend at start-up).
    pub fn all_functions(&self) -> Vec<Arc<FunctionRecord>> {
        self.snapshot()
            .functions
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// The functions of one namespace, by name.
    pub fn functions(&self, namespace: &str) -> Result<Vec<Arc<FunctionRecord>>, CatalogError> {
        let ns = self.resolve_namespace(namespace);
        let snap = self.snapshot();
        if !snap.namespaces.contains_key(ns) {
            return Err(CatalogError::NamespaceNotFound(ns.to_owned()));
        }
        Ok(snap
            .functions
            .get(ns)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    /// Builds the next state with `f`, persists it, then publishes it.
    fn mutate<R>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let _w = lock(&self.writer);
        let mut next = (*self.snapshot()).clone();
        let r = f(&mut next)?;
        let doc = store::Document {
            version: store::FORMAT_VERSION,
            functions: next
                .functions
                .values()
                .flat_map(|m| m.values().map(|r| (**r).clone()))
                .collect(),
            namespaces: next.namespaces.values().cloned().collect(),
        };
        let bytes =
            serde_json::to_vec_pretty(&doc).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        fsutil::write_atomic(&self.root.join("catalog.json"), &bytes, 0o600)?;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(r)
    }

    /// Checks a deployment and fills in its namespace.
    fn prepare(
        &self,
        state: &State,
        mut d: FunctionDeployment,
    ) -> Result<FunctionDeployment, CatalogError> {
        validate::deployment(&d, self.max_replicas)?;
        d.namespace = self.resolve_namespace(&d.namespace).to_owned();
        if !state.namespaces.contains_key(&d.namespace) {
            return Err(CatalogError::Invalid(format!(
                "namespace {} is not allowed: it does not exist (create it with faas-cli namespace create)",
                d.namespace
            )));
        }
        let have = state.secrets.get(&d.namespace);
        if let Some(missing) = d
            .secrets
            .iter()
            .find(|s| !have.is_some_and(|h| h.contains(*s)))
        {
            return Err(CatalogError::Invalid(format!(
                "unable to fetch secrets: secret {missing} not found in namespace {}",
                d.namespace
            )));
        }
        Ok(d)
    }

    /// Deploy: a new function with replicas = `com.openfaas.scale.min` (when > 0) or 1.
    pub fn deploy(&self, d: FunctionDeployment) -> Result<Arc<FunctionRecord>, CatalogError> {
        self.mutate(|s| {
            let d = self.prepare(s, d)?;
            let fns = s.functions.entry(d.namespace.clone()).or_default();
            if fns.contains_key(&d.service) {
                return Err(CatalogError::Conflict(format!(
                    "function {} already exists in namespace {}",
                    d.service, d.namespace
                )));
            }
            let replicas = validate::scale_min(&d, self.max_replicas)?.unwrap_or(1);
            let rec = Arc::new(FunctionRecord {
                deployment: d,
                replicas,
                created_at: jiff::Timestamp::now(),
                generation: 0,
            });
            fns.insert(rec.deployment.service.clone(), Arc::clone(&rec));
            Ok(rec)
        })
    }

    /// Update: replaces the stored request. Replicas reset to `com.openfaas.scale.min` when set (as
    /// faas-netes does), else stay. Returns the previous and the new record.
    pub fn update(
        &self,
        d: FunctionDeployment,
    ) -> Result<(Arc<FunctionRecord>, Arc<FunctionRecord>), CatalogError> {
        self.mutate(|s| {
            let ns = self.resolve_namespace(&d.namespace).to_owned();
            let old = s
                .functions
                .get(&ns)
                .and_then(|m| m.get(&d.service))
                .cloned()
                .ok_or_else(|| CatalogError::FunctionNotFound {
                    namespace: ns,
                    name: d.service.clone(),
                })?;
            let d = self.prepare(s, d)?;
            let replicas = validate::scale_min(&d, self.max_replicas)?.unwrap_or(old.replicas);
            let rec = Arc::new(FunctionRecord {
                deployment: d,
                replicas,
                created_at: old.created_at,
                generation: old.generation + 1,
            });
            s.functions
                .entry(rec.deployment.namespace.clone())
                .or_default()
                .insert(rec.deployment.service.clone(), Arc::clone(&rec));
            Ok((old, rec))
        })
    }

    /// Puts a record back exactly (used to roll back when the backend refuses a change).
    pub fn restore(&self, rec: Arc<FunctionRecord>) -> Result<(), CatalogError> {
        self.mutate(|s| {
            s.functions
                .entry(rec.deployment.namespace.clone())
                .or_default()
                .insert(rec.deployment.service.clone(), rec);
            Ok(())
        })
    }

    /// Removes a function; returns what was removed.
    pub fn delete(&self, namespace: &str, name: &str) -> Result<Arc<FunctionRecord>, CatalogError> {
        let ns = self.resolve_namespace(namespace).to_owned();
        self.mutate(|s| {
            let removed = s.functions.get_mut(&ns).and_then(|m| m.remove(name));
            if s.functions.get(&ns).is_some_and(BTreeMap::is_empty) {
                s.functions.remove(&ns);
            }
            removed.ok_or(CatalogError::FunctionNotFound {
                namespace: ns.clone(),
                name: name.to_owned(),
            })
        })
    }

    /// Sets the desired replicas; returns the new record. Out of range → `Invalid`.
    pub fn scale(
        &self,
        namespace: &str,
        name: &str,
        replicas: u64,
    ) -> Result<Arc<FunctionRecord>, CatalogError> {
        let ns = self.resolve_namespace(namespace).to_owned();
        let n = u32::try_from(replicas)
            .ok()
            .filter(|n| *n <= self.max_replicas)
            .ok_or_else(|| {
                CatalogError::Invalid(format!(
                    "replicas must be between 0 and {}, got {replicas}",
                    self.max_replicas
                ))
            })?;
        // Fast path: the gateway and the proxy repeat scale calls; an unchanged count needs no write.
        if let Some(cur) = self.function(&ns, name).filter(|r| r.replicas == n) {
            return Ok(cur);
        }
        self.mutate(|s| {
            let slot = s
                .functions
                .get_mut(&ns)
                .and_then(|m| m.get_mut(name))
                .ok_or_else(|| CatalogError::FunctionNotFound {
                    namespace: ns.clone(),
                    name: name.to_owned(),
                })?;
            if slot.replicas != n {
                let mut rec = (**slot).clone();
                rec.replicas = n;
                *slot = Arc::new(rec);
            }
            Ok(Arc::clone(slot))
        })
    }
}

fn builtin_namespace(name: &str) -> FunctionNamespace {
    FunctionNamespace {
        name: name.to_owned(),
        labels: [("openfaas".to_owned(), "1".to_owned())].into(),
        annotations: [("openfaas".to_owned(), "1".to_owned())].into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
