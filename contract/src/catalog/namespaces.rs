//! Namespace and secret operations of the catalog (secrets are files, see [`super::store`]).
use super::{Catalog, CatalogError, is_dns1123_label, is_dns1123_subdomain, store};
use crate::fsutil;
use crate::types::FunctionNamespace;

impl Catalog {
    /// Namespaces, sorted.
    pub fn namespaces(&self) -> Vec<FunctionNamespace> {
        self.snapshot().namespaces.values().cloned().collect()
    }

    pub fn namespace(&self, name: &str) -> Option<FunctionNamespace> {
        self.snapshot().namespaces.get(name).cloned()
    }

    pub fn has_namespace(&self, name: &str) -> bool {
        self.snapshot()
            .namespaces
            .contains_key(self.resolve_namespace(name))
    }

    /// Creates a namespace; 409 if it exists.
    pub fn create_namespace(&self, ns: FunctionNamespace) -> Result<(), CatalogError> {
        check_namespace_name(&ns.name)?;
        self.mutate(|s| {
            if s.namespaces.contains_key(&ns.name) {
                return Err(CatalogError::Conflict(format!(
                    "namespace {} already exists",
                    ns.name
                )));
            }
            s.namespaces.insert(ns.name.clone(), ns);
            Ok(())
        })
    }

    /// Replaces a namespace's labels and annotations; 404 if it does not exist.
    pub fn update_namespace(&self, ns: FunctionNamespace) -> Result<(), CatalogError> {
        self.mutate(|s| match s.namespaces.get_mut(&ns.name) {
            Some(slot) => {
                *slot = ns;
                Ok(())
            }
            None => Err(CatalogError::NamespaceNotFound(ns.name)),
        })
    }

    /// Deletes an empty namespace. The default namespace cannot be deleted.
    pub fn delete_namespace(&self, name: &str) -> Result<(), CatalogError> {
        if name == self.default_namespace {
            return Err(CatalogError::Conflict(format!(
                "namespace {name} is the default and cannot be deleted"
            )));
        }
        self.mutate(|s| {
            if !s.namespaces.contains_key(name) {
                return Err(CatalogError::NamespaceNotFound(name.to_owned()));
            }
            let busy = s.functions.get(name).is_some_and(|m| !m.is_empty())
                || s.secrets.get(name).is_some_and(|m| !m.is_empty());
            if busy {
                return Err(CatalogError::Conflict(format!(
                    "namespace {name} still holds functions or secrets; remove them first"
                )));
            }
            s.namespaces.remove(name);
            Ok(())
        })
    }

    /// Secret names of a namespace, sorted.
    pub fn secrets(&self, namespace: &str) -> Result<Vec<String>, CatalogError> {
        let ns = self.resolve_namespace(namespace);
        let snap = self.snapshot();
        if !snap.namespaces.contains_key(ns) {
            return Err(CatalogError::NamespaceNotFound(ns.to_owned()));
        }
        Ok(snap
            .secrets
            .get(ns)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Creates (`create = true`, 409 if present) or replaces (404 if absent) a secret's value.
    pub fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        value: &[u8],
        create: bool,
    ) -> Result<(), CatalogError> {
        if !is_dns1123_subdomain(name) {
            return Err(CatalogError::Invalid(format!(
                "invalid secret name {name:?}: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"
            )));
        }
        let ns = self.resolve_namespace(namespace).to_owned();
        let dir = self.secrets_dir(&ns);
        self.mutate(|s| {
            if !s.namespaces.contains_key(&ns) {
                return Err(CatalogError::NamespaceNotFound(ns.clone()));
            }
            let names = s.secrets.entry(ns.clone()).or_default();
            match (names.contains(name), create) {
                (true, true) => {
                    return Err(CatalogError::Conflict(format!(
                        "secret {name} already exists in namespace {ns}"
                    )));
                }
                (false, false) => {
                    return Err(CatalogError::SecretNotFound {
                        namespace: ns.clone(),
                        name: name.to_owned(),
                    });
                }
                _ => {}
            }
            store::ensure_private_dir(&dir)?;
            fsutil::write_atomic(&dir.join(name), value, 0o600)?;
            names.insert(name.to_owned());
            Ok(())
        })
    }

    /// Deletes a secret; 404 if absent.
    pub fn delete_secret(&self, namespace: &str, name: &str) -> Result<(), CatalogError> {
        let ns = self.resolve_namespace(namespace).to_owned();
        let dir = self.secrets_dir(&ns);
        self.mutate(|s| {
            let removed = s
                .secrets
                .get_mut(&ns)
                .is_some_and(|names| names.remove(name));
            if !removed {
                return Err(CatalogError::SecretNotFound {
                    namespace: ns.clone(),
                    name: name.to_owned(),
                });
            }
            fsutil::remove_durable(&dir.join(name))?;
            Ok(())
        })
    }
}

fn check_namespace_name(name: &str) -> Result<(), CatalogError> {
    if is_dns1123_label(name) {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "invalid namespace name {name:?}: must be a DNS-1123 label"
        )))
    }
}
