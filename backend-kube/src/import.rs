//! Taking over what the cluster already runs: at start-up the catalog learns the function namespaces
//! (labelled `openfaas=1`), the functions (Deployments carrying the provider's request annotation) and the
//! provider-managed Secrets it does not know yet. So a provider whose state directory is empty (a new pod
//! with an `emptyDir`) lists, scales and deletes the functions a previous instance deployed.
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;

use super::{KubeBackend, list_all, mapping};
use contract::backend::BackendError;
use contract::catalog::{Catalog, CatalogError};
use contract::types::{FunctionNamespace, LABEL_FAAS_FUNCTION};

/// What an import added to the catalog.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub namespaces: usize,
    pub functions: usize,
    pub secrets: usize,
}

fn catalog_err(e: CatalogError) -> BackendError {
    BackendError::Failed(format!("importing into the catalog: {e}"))
}

impl KubeBackend {
    /// Adds to `catalog` what the cluster holds and the catalog lacks (never overwrites the catalog).
    pub async fn import(&self, catalog: &Arc<Catalog>) -> Result<Imported, BackendError> {
        let client = self.inner.client.clone();
        let mut out = Imported::default();
        let sel = format!("{}=1", mapping::LABEL_OPENFAAS_NS);
        let namespaces = list_all(
            &Api::<Namespace>::all(client.clone()),
            &sel,
            "listing namespaces",
        )
        .await?;
        let scope = self.inner.scope.clone();
        let names: Vec<String> = namespaces
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| scope.as_ref().is_none_or(|s| s == n))
            .collect();
        for n in &namespaces {
            let Some(name) = n.metadata.name.clone() else {
                continue;
            };
            if !names.contains(&name) || catalog.namespace(&name).is_some() {
                continue;
            }
            let ns = FunctionNamespace {
                name,
                labels: n.metadata.labels.clone().unwrap_or_default(),
                annotations: n.metadata.annotations.clone().unwrap_or_default(),
            };
            let c = Arc::clone(catalog);
            match tokio::task::spawn_blocking(move || c.create_namespace(ns)).await {
                Ok(Ok(())) => out.namespaces += 1,
                Ok(Err(CatalogError::Conflict(_))) => {}
                Ok(Err(e)) => return Err(catalog_err(e)),
                Err(e) => return Err(BackendError::Failed(e.to_string())),
            }
        }
        let deps = list_all(
            &super::apply::scoped_api::<Deployment>(&client, scope.as_deref()),
            LABEL_FAAS_FUNCTION,
            "listing deployments",
        )
        .await?;
        for dep in &deps {
            let Some(rec) = mapping::record_from(dep) else {
                continue;
            };
            if !names.contains(&rec.deployment.namespace)
                || catalog.function(rec.namespace(), rec.name()).is_some()
            {
                continue;
            }
            let c = Arc::clone(catalog);
            tokio::task::spawn_blocking(move || c.restore(Arc::new(rec)))
                .await
                .map_err(|e| BackendError::Failed(e.to_string()))?
                .map_err(catalog_err)?;
            out.functions += 1;
        }
        let managed = format!("{}={}", mapping::LABEL_MANAGED_BY, mapping::MANAGED_BY);
        for ns in &names {
            let secrets = list_all(
                &Api::<Secret>::namespaced(client.clone(), ns),
                &managed,
                "listing secrets",
            )
            .await?;
            let have = catalog.secrets(ns).unwrap_or_default();
            for s in secrets {
                let Some(name) = s.metadata.name.clone() else {
                    continue;
                };
                if have.contains(&name) {
                    continue;
                }
                let value = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&name).or_else(|| d.values().next()))
                    .map(|b| b.0.clone())
                    .unwrap_or_default();
                let (c, ns) = (Arc::clone(catalog), ns.clone());
                tokio::task::spawn_blocking(move || c.put_secret(&ns, &name, &value, true))
                    .await
                    .map_err(|e| BackendError::Failed(e.to_string()))?
                    .map_err(catalog_err)?;
                out.secrets += 1;
            }
        }
        Ok(out)
    }
}
