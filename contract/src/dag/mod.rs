//! DAGs served live (DESIGN §4): derived from the deployed functions' `com.smiless.*` annotations.
//!
//! The catalog stores functions only; DAGs are a pure function of them, so they persist with the catalog
//! and are derived again on restore instead of being stored twice. [`Registry::current`] recomputes them
//! whenever the catalog publishes a new snapshot (a pointer compare on the hot path).
//!
//! A DAG is in one of three states:
//! - **ready**: valid and invocable as `/function/<dag>`;
//! - **pending**: not complete yet, in a way more deployments can fix (a successor not deployed yet, or
//!   several entries while a function that joins them may still come). `faas-cli deploy` sends one
//!   function at a time, in no fixed order, so rejecting these would make a stack impossible to deploy;
//! - **invalid**: broken in a way no later deployment fixes (a cycle, members in different namespaces, a
//!   bad or misplaced SLA, a name that collides with a function). A deploy or update that would make its
//!   DAG invalid is refused with 400 naming the problem ([`check_deployment`]).
//!
//! [`live`] holds what the runner observes for the control loop. The runner that invokes a ready DAG is
//! `proxy::runner` (the request path); the listings, `/system/plan` and the per-DAG Prometheus series are
//! `api::dags` and `api::dag_metrics`.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};

use optimizer::dag::{ANN_DAG, ANN_NEXT};
use optimizer::{Dag, DagError, FunctionSpec};
use serde::Serialize;

use crate::catalog::{Catalog, FunctionRecord, State};
use crate::types::FunctionDeployment;

pub mod gather;
pub mod live;

/// The label every DAG carries in listings.
pub const LABEL_KIND: &str = "com.smiless.kind";

/// Where a DAG stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DagState {
    Ready,
    Pending { reason: String },
    Invalid { reason: String },
}

/// One DAG as derived from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct DagEntry {
    pub name: String,
    pub namespace: String,
    /// Member function names, sorted.
    pub members: Vec<String>,
    pub state: DagState,
    /// The validated graph (ready DAGs only).
    pub dag: Option<Dag>,
}

/// All DAGs of one catalog snapshot, by (namespace, name).
#[derive(Debug, Default)]
pub struct Dags {
    pub by_key: BTreeMap<(String, String), Arc<DagEntry>>,
}

impl Dags {
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<DagEntry>> {
        self.by_key.get(&(namespace.to_owned(), name.to_owned()))
    }
}

/// The DAGs of the current catalog snapshot, recomputed when the catalog changes, and what the runner
/// and the control loop observe and decide about them.
#[derive(Debug, Default)]
pub struct Registry {
    cache: RwLock<Option<(Arc<State>, Arc<Dags>)>>,
    pub live: live::Live,
    /// What the runner reports to the control loop.
    pub events: crate::events::Events,
    /// The batch queues of batched members (docs/batching.md).
    pub gatherers: gather::Gatherers,
}

impl Registry {
    /// The DAGs of the catalog as it is now.
    pub fn current(&self, catalog: &Catalog) -> Arc<Dags> {
        let snap = catalog.snapshot();
        if let Some((s, d)) = &*self.cache.read().unwrap_or_else(PoisonError::into_inner)
            && Arc::ptr_eq(s, &snap)
        {
            return Arc::clone(d);
        }
        // Derived from the same snapshot that is cached with it, so a write in between only causes one more
        // recomputation on the next call.
        let dags = Arc::new(derive(&catalog.all_functions()));
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) =
            Some((snap, Arc::clone(&dags)));
        dags
    }
}

fn spec(d: &FunctionDeployment) -> FunctionSpec {
    FunctionSpec {
        name: d.service.clone(),
        namespace: d.namespace.clone(),
        annotations: d.annotations.clone().unwrap_or_default(),
    }
}

fn dag_name(d: &FunctionDeployment) -> Option<String> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(ANN_DAG))
        .map(|s| s.trim().to_owned())
}

/// Derives every DAG from a list of deployments.
pub fn derive(recs: &[Arc<FunctionRecord>]) -> Dags {
    let deps: Vec<&FunctionDeployment> = recs.iter().map(|r| &r.deployment).collect();
    let mut groups: BTreeMap<String, Vec<FunctionSpec>> = BTreeMap::new();
    for d in &deps {
        if let Some(n) = dag_name(d) {
            groups.entry(n).or_default().push(spec(d));
        }
    }
    let functions: BTreeSet<(String, String)> = deps
        .iter()
        .map(|d| (d.namespace.clone(), d.service.clone()))
        .collect();
    let mut out = Dags::default();
    for (name, members) in groups {
        let e = classify(&name, &members, &functions);
        out.by_key
            .insert((e.namespace.clone(), e.name.clone()), Arc::new(e));
    }
    out
}

/// Validates one DAG's members (`functions`: every deployed (namespace, name), for name collisions).
fn classify(
    name: &str,
    members: &[FunctionSpec],
    functions: &BTreeSet<(String, String)>,
) -> DagEntry {
    let mut names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    names.sort();
    let namespace = members
        .first()
        .map(|m| m.namespace.clone())
        .unwrap_or_default();
    let entry = |state, dag| DagEntry {
        name: name.to_owned(),
        namespace: namespace.clone(),
        members: names.clone(),
        state,
        dag,
    };
    if name.is_empty() {
        return entry(
            DagState::Invalid {
                reason: DagError::EmptyName {
                    function: names.first().cloned().unwrap_or_default(),
                }
                .to_string(),
            },
            None,
        );
    }
    if functions.contains(&(namespace.clone(), name.to_owned())) {
        return entry(
            DagState::Invalid {
                reason: format!(
                    "DAG {name:?} has the name of a deployed function in namespace {namespace}: /function/{name} would be ambiguous"
                ),
            },
            None,
        );
    }
    match optimizer::dags_from_functions(members) {
        Ok(mut v) if v.len() == 1 => {
            let dag = v.pop();
            entry(DagState::Ready, dag)
        }
        Ok(_) => entry(
            DagState::Invalid {
                reason: format!("DAG {name:?}: unexpected grouping"),
            },
            None,
        ),
        Err(e @ (DagError::UnknownSuccessor { .. } | DagError::SeveralEntries { .. })) => {
            // Possibly just incomplete: check what is there without the missing successors; a definitive
            // error there (a cycle, mixed namespaces, …) makes the DAG invalid now.
            match optimizer::dags_from_functions(&without_unknown_successors(members)) {
                Err(
                    def @ (DagError::Cycle { .. }
                    | DagError::MixedNamespaces { .. }
                    | DagError::Duplicate { .. }
                    | DagError::BadSla { .. }
                    | DagError::BadBatch { .. }
                    | DagError::EmptyName { .. }),
                ) => entry(
                    DagState::Invalid {
                        reason: def.to_string(),
                    },
                    None,
                ),
                _ => entry(
                    DagState::Pending {
                        reason: e.to_string(),
                    },
                    None,
                ),
            }
        }
        Err(e) => entry(
            DagState::Invalid {
                reason: e.to_string(),
            },
            None,
        ),
    }
}

fn without_unknown_successors(members: &[FunctionSpec]) -> Vec<FunctionSpec> {
    let known: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    members
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(next) = m.annotations.get(ANN_NEXT) {
                let kept: Vec<&str> = next
                    .split(',')
                    .map(str::trim)
                    .filter(|s| known.contains(s))
                    .collect();
                m.annotations.insert(ANN_NEXT.to_owned(), kept.join(","));
            }
            m
        })
        .collect()
}

/// Refuses a deploy or update of `d` (namespace already resolved) that would leave a DAG invalid, or that
/// would give a function the name of a DAG. Returns the reason (a 400's message).
pub fn check_deployment(catalog: &Catalog, d: &FunctionDeployment) -> Result<(), String> {
    let mut d = d.clone();
    d.namespace = catalog.resolve_namespace(&d.namespace).to_owned();
    let mut recs: Vec<Arc<FunctionRecord>> = catalog
        .all_functions()
        .into_iter()
        .filter(|r| !(r.namespace() == d.namespace && r.name() == d.service))
        .collect();
    let before = derive(&recs);
    if before.get(&d.namespace, &d.service).is_some() {
        return Err(format!(
            "function {} has the name of DAG {} in namespace {}: /function/{} would be ambiguous",
            d.service, d.service, d.namespace, d.service
        ));
    }
    let touched = dag_name(&d);
    recs.push(Arc::new(FunctionRecord {
        deployment: d,
        replicas: 0,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        generation: 0,
    }));
    let after = derive(&recs);
    for e in after.by_key.values() {
        if Some(&e.name) != touched.as_ref() {
            continue;
        }
        if let DagState::Invalid { reason } = &e.state {
            return Err(format!("invalid DAG: {reason}"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
