//! The standalone autoscaler's loop shell: every control tick, for each function that is in no DAG and
//! carries an autoscaling label ([`autoscale::labels::managed`]), sample the proxy's request counters
//! ([`contract::observe::requests`]), step its [`autoscale::Policy`] at the loop's (wall-clock) time and
//! scale through [`AppState::scale`] when the policy's desired count changes.
//!
//! Only a change of the policy's own desired count is written: a scale by someone else (an operator's
//! `/system/scale-function`, the gateway's `/system/alert`, a scale from zero) stands until the policy
//! next changes its mind. An update of the function (new labels, replicas reset to `scale.min`) re-reads
//! the labels and takes the updated count as the one in force. Labels the policy cannot use leave the
//! function unmanaged, with a warning naming the label.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use contract::catalog::FunctionRecord;
use contract::observe::requests::Sample;
use contract::state::AppState;
use optimizer::dag::ANN_DAG;

use crate::autoscale::{self, Kind, Policy};

/// One managed function: its policy (none while its labels are bad) and the count last applied.
#[derive(Debug)]
struct Managed {
    generation: u64,
    policy: Option<Policy>,
    applied: u32,
}

/// A scale the shell wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub namespace: String,
    pub name: String,
    pub from: u32,
    pub to: u32,
    /// What the policy measured (requests per second, or in flight).
    pub load: f64,
    pub kind: Kind,
}

/// Every managed function's state across ticks.
#[derive(Debug, Default)]
pub struct Standalone {
    fns: HashMap<(String, String), Managed>,
}

fn is_dag_member(rec: &FunctionRecord) -> bool {
    rec.deployment
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANN_DAG))
}

/// The replicas the joint planner reserves for functions in no DAG before it plans the DAGs: each
/// function's replica count in force (the autoscaler's or an operator's; its maximum would leave a
/// small host nothing), one core each (a standalone function has no planned hardware; on the local
/// backend its replicas run unpinned, on a cluster without a CPU request this is the floor).
pub fn reserved(functions: &[Arc<FunctionRecord>]) -> Vec<optimizer::capacity::joint::Standalone> {
    functions
        .iter()
        .filter(|r| !is_dag_member(r) && r.replicas > 0)
        .map(|r| optimizer::capacity::joint::Standalone {
            name: format!("{}.{}", r.name(), r.namespace()),
            hardware: optimizer::Hardware::Cpu { cores: 1 },
            replicas: r.replicas,
        })
        .collect()
}

impl Standalone {
    /// Steps every managed function of `functions` at `now`; returns the scales to apply (then report
    /// each success with [`Standalone::applied`]).
    pub fn decide(
        &mut self,
        now: f64,
        functions: &[Arc<FunctionRecord>],
        max_replicas: u32,
        sample: impl Fn(&str, &str) -> Sample,
    ) -> Vec<Change> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for rec in functions {
            let labels = rec.deployment.labels.as_ref();
            if is_dag_member(rec) || !autoscale::labels::managed(labels) {
                continue;
            }
            let key = (rec.namespace().to_owned(), rec.name().to_owned());
            seen.insert(key.clone(), ());
            let counters = sample(&key.0, &key.1);
            let m = match self.fns.get_mut(&key) {
                Some(m) if m.generation == rec.generation => m,
                old => {
                    let policy = match (autoscale::labels::parse(labels, max_replicas), old) {
                        (Err(e), _) => {
                            tracing::warn!("autoscale: {}.{} is not autoscaled: {e}", key.1, key.0);
                            None
                        }
                        (
                            Ok(spec),
                            Some(Managed {
                                policy: Some(p), ..
                            }),
                        ) => {
                            let mut p = p.clone();
                            p.set_spec(spec);
                            Some(p)
                        }
                        (Ok(spec), _) => Some(Policy::new(now, spec, counters, rec.replicas)),
                    };
                    self.fns.insert(
                        key.clone(),
                        Managed {
                            generation: rec.generation,
                            policy,
                            applied: rec.replicas,
                        },
                    );
                    let Some(m) = self.fns.get_mut(&key) else {
                        continue;
                    };
                    m
                }
            };
            let Some(p) = m.policy.as_mut() else {
                continue;
            };
            let to = p.step(now, counters);
            if to != m.applied {
                out.push(Change {
                    namespace: key.0,
                    name: key.1,
                    from: rec.replicas,
                    to,
                    load: p.load(),
                    kind: p.spec().kind,
                });
            }
        }
        self.fns.retain(|k, _| seen.contains_key(k));
        out
    }

    /// `change` was applied.
    pub fn applied(&mut self, change: &Change) {
        if let Some(m) = self
            .fns
            .get_mut(&(change.namespace.clone(), change.name.clone()))
        {
            m.applied = change.to;
        }
    }

    /// One tick against the live state: decide at the loop's clock, then scale.
    pub async fn tick(&mut self, state: &AppState) {
        let now = state.dags.events.now();
        let functions = state.catalog.all_functions();
        state
            .requests
            .retain(|ns, f| state.catalog.function(ns, f).is_some());
        let changes = self.decide(now, &functions, state.catalog.max_replicas(), |ns, f| {
            state.requests.sample(ns, f)
        });
        for c in changes {
            let unit = match c.kind {
                Kind::Rps => "req/s",
                Kind::Capacity => "in flight",
            };
            match state.scale(&c.namespace, &c.name, u64::from(c.to)).await {
                Ok(_) => {
                    tracing::info!(
                        "autoscale: {}.{} {} -> {} replicas ({:.2} {unit})",
                        c.name,
                        c.namespace,
                        c.from,
                        c.to,
                        c.load
                    );
                    self.applied(&c);
                }
                Err(e) => tracing::warn!(
                    "autoscale: scaling {}.{} to {} failed: {e}",
                    c.name,
                    c.namespace,
                    c.to
                ),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
