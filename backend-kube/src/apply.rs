//! Making the cluster match what the provider wants: server-side applies of a function's objects (and the
//! Namespace and Secrets it needs), deletes, and the reconciler's pass that repairs whatever a failed call or
//! an API-server outage left behind.
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::{CALL_TIMEOUT, Desired, FIELD_MANAGER, Inner, Key, call, error, lock, mapping};
use contract::backend::BackendError;
use contract::catalog::FunctionRecord;
use mapping::Hardware;

impl Inner {
    pub(super) fn observed(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&ObjectRef::new(name).within(namespace))
    }

    pub(super) fn key_lock(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.locks).entry(key.clone()).or_default())
    }

    /// Labels the namespace for OpenFaaS (creating it if needed), once per run.
    pub(super) async fn ensure_namespace(&self, ns: &str) -> Result<(), BackendError> {
        if lock(&self.namespaces).contains(ns) {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        // Forced: the `openfaas` label is ours to set even if another manager wrote it before.
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        call(
            &format!("applying namespace {ns}"),
            api.patch(ns, &pp, &Patch::Apply(&mapping::namespace(ns))),
        )
        .await?;
        lock(&self.namespaces).insert(ns.to_owned());
        Ok(())
    }

    /// Makes the Kubernetes Secret match the catalog's secret file: applied when the file exists,
    /// deleted (if the provider manages it) when it does not.
    pub(super) async fn sync_secret(&self, ns: &str, name: &str) -> Result<(), BackendError> {
        let path = self.secrets_root.join(ns).join(name);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let what = format!("secret {name} in {ns}");
        match tokio::fs::read(&path).await {
            Ok(value) => {
                self.ensure_namespace(ns).await?;
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                call(
                    &format!("applying {what}"),
                    api.patch(name, &pp, &Patch::Apply(&mapping::secret(ns, name, &value))),
                )
                .await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let managed = match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(name)).await {
                    Ok(Ok(Some(s))) => s
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(mapping::LABEL_MANAGED_BY))
                        .is_some_and(|v| v == mapping::MANAGED_BY),
                    Ok(Ok(None)) => false,
                    Ok(Err(e)) => return Err(error::map(&format!("reading {what}"), e)),
                    Err(_) => {
                        return Err(BackendError::Unavailable(format!(
                            "reading {what}: the Kubernetes API server did not answer"
                        )));
                    }
                };
                if managed {
                    match tokio::time::timeout(
                        CALL_TIMEOUT,
                        api.delete(name, &DeleteParams::default()),
                    )
                    .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) if error::is_not_found(&e) => {}
                        Ok(Err(e)) => return Err(error::map(&format!("deleting {what}"), e)),
                        Err(_) => {
                            return Err(BackendError::Unavailable(format!(
                                "deleting {what}: the Kubernetes API server did not answer"
                            )));
                        }
                    }
                }
            }
            Err(e) => {
                return Err(BackendError::Failed(format!(
                    "reading {}: {e}",
                    path.display()
                )));
            }
        }
        lock(&self.pending_secrets).remove(&(ns.to_owned(), name.to_owned()));
        Ok(())
    }

    /// The Deployment for a desired function, with its digest stamped.
    pub(super) fn desired_deployment(
        &self,
        rec: &FunctionRecord,
        planned: Hardware,
    ) -> Result<Deployment, BackendError> {
        let hw = mapping::hardware(&rec.deployment, planned)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        let mut dep = mapping::deployment(rec, hw, planned, &self.opts)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        mapping::stamp_digest(&mut dep);
        Ok(dep)
    }

    /// Applies what is desired for `key` (objects present with the desired spec, or gone).
    pub(super) async fn apply(&self, key: &Key) -> Result<(), BackendError> {
        let l = self.key_lock(key);
        let _g = l.lock().await;
        let Some(desired) = lock(&self.desired).get(key).cloned() else {
            return Ok(());
        };
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let deps: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let svcs: Api<Service> = Api::namespaced(self.client.clone(), ns);
        match desired {
            Desired::Present { rec, planned } => {
                let dep = self.desired_deployment(&rec, planned)?;
                self.ensure_namespace(ns).await?;
                for s in &rec.deployment.secrets {
                    self.sync_secret(ns, s).await?;
                }
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                call(
                    &format!("applying deployment {name} in {ns}"),
                    deps.patch(name, &pp, &Patch::Apply(&dep)),
                )
                .await?;
                let svc = mapping::service(&rec.deployment);
                call(
                    &format!("applying service {name} in {ns}"),
                    svcs.patch(name, &pp, &Patch::Apply(&svc)),
                )
                .await?;
            }
            Desired::Absent => {
                let dp = DeleteParams::foreground();
                for (what, r) in [
                    ("deployment", call_delete(&deps, name, &dp).await),
                    ("service", call_delete(&svcs, name, &dp).await),
                ] {
                    r.map_err(|e| match e {
                        BackendError::Failed(m) => {
                            BackendError::Failed(format!("deleting {what}: {m}"))
                        }
                        other => other,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// One reconcile pass: functions whose Deployment is missing or stale are applied again, functions
    /// deleted while the API server was away are deleted, failed secret syncs are retried.
    pub(super) async fn reconcile(&self) {
        let snapshot: Vec<(Key, Desired)> = lock(&self.desired)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, d) in snapshot {
            let observed = self.observed(&key.0, &key.1);
            let stale = match &d {
                Desired::Present { rec, planned } => {
                    let want = self
                        .desired_deployment(rec, *planned)
                        .ok()
                        .and_then(|d| d.metadata.annotations)
                        .and_then(|a| a.get(mapping::ANN_SPEC_HASH).cloned());
                    let have = observed
                        .as_ref()
                        .and_then(|o| o.metadata.annotations.as_ref())
                        .and_then(|a| a.get(mapping::ANN_SPEC_HASH).cloned());
                    want.is_some() && want != have
                }
                Desired::Absent => observed.is_some(),
            };
            if stale {
                if let Err(e) = self.apply(&key).await {
                    tracing::debug!("kubernetes: reconciling {}.{}: {e}", key.1, key.0);
                    continue;
                }
                tracing::info!("kubernetes: reconciled {}.{}", key.1, key.0);
            } else if matches!(d, Desired::Absent) {
                let mut m = lock(&self.desired);
                if matches!(m.get(&key), Some(Desired::Absent)) {
                    m.remove(&key);
                }
            }
        }
        let pending: Vec<Key> = lock(&self.pending_secrets).iter().cloned().collect();
        for (ns, name) in pending {
            if let Err(e) = self.sync_secret(&ns, &name).await {
                tracing::debug!("kubernetes: syncing secret {name}.{ns}: {e}");
            }
        }
    }
}

/// An API over every namespace, or only `scope`.
pub(super) fn scoped_api<K>(client: &kube::Client, scope: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Deletes an object; already gone counts as done.
pub(super) async fn call_delete<K>(
    api: &Api<K>,
    name: &str,
    dp: &DeleteParams,
) -> Result<(), BackendError>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match tokio::time::timeout(CALL_TIMEOUT, api.delete(name, dp)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if error::is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(error::map(&format!("deleting {name}"), e)),
        Err(_) => Err(BackendError::Unavailable(format!(
            "deleting {name}: the Kubernetes API server did not answer"
        ))),
    }
}
