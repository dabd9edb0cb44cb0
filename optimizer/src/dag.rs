//! DAGs of functions, declared with the `com.smiless.*` annotations (DESIGN §4):
//! `com.smiless.dag` (every member: the DAG's name), `com.smiless.next` (comma-separated successors),
//! `com.smiless.sla` (the entry: end-to-end SLA, e.g. `2s`), `com.smiless.profile` (profile name),
//! `com.smiless.batch` (the function answers batched calls, docs/batching.md: `true`, or the largest
//! batch it takes; absent or `false`: one request per call).
//! [`dags_from_functions`] turns a deployment's function list into validated DAGs; the provider calls it
//! at deploy time and `smiless plan` calls it on a stack file.
use std::collections::{BTreeMap, HashMap};

pub const ANN_DAG: &str = "com.smiless.dag";
pub const ANN_NEXT: &str = "com.smiless.next";
pub const ANN_SLA: &str = "com.smiless.sla";
pub const ANN_PROFILE: &str = "com.smiless.profile";
pub const ANN_BATCH: &str = "com.smiless.batch";

/// The largest batch `com.smiless.batch: true` allows (the batch format's bound).
pub const MAX_DECLARED_BATCH: u32 = 1024;

/// A deployed function as the provider (or a stack file) sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSpec {
    pub name: String,
    pub namespace: String,
    pub annotations: BTreeMap<String, String>,
}

/// A validated DAG: at least one node, exactly one entry, every node reachable from it, acyclic.
#[derive(Clone, Debug, PartialEq)]
pub struct Dag {
    pub name: String,
    pub namespace: String,
    /// SLA from the entry's `com.smiless.sla`, in seconds.
    pub sla_s: Option<f64>,
    pub nodes: Vec<DagNode>,
    pub succ: Vec<Vec<usize>>,
    pub pred: Vec<Vec<usize>>,
    /// A topological order (entry first).
    pub topo: Vec<usize>,
    pub entry: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DagNode {
    pub name: String,
    /// `com.smiless.profile`, when declared.
    pub profile: Option<String>,
    /// `com.smiless.batch`: the largest batch the function takes in one call (docs/batching.md); `None`
    /// when it does not declare batching. A planner that honours declarations
    /// (`SearchSpace::batch_opt_in`) gives it batch 1.
    pub max_batch: Option<u32>,
}

/// Why a DAG declaration was rejected. Each message names the DAG and the offending functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DagError {
    #[error("DAG {dag:?} has no functions")]
    Empty { dag: String },
    #[error("function {function:?} has an empty {ANN_DAG} annotation")]
    EmptyName { function: String },
    #[error("DAG {dag:?}: function {function:?} is declared twice")]
    Duplicate { dag: String, function: String },
    #[error(
        "DAG {dag:?}: function {function:?} names successor {successor:?}, which is not a member of the DAG"
    )]
    UnknownSuccessor {
        dag: String,
        function: String,
        successor: String,
    },
    #[error("DAG {dag:?} has a cycle: {}", cycle.join(" -> "))]
    Cycle { dag: String, cycle: Vec<String> },
    #[error("DAG {dag:?} has several entries (functions without predecessors): {}", entries.join(", "))]
    SeveralEntries { dag: String, entries: Vec<String> },
    #[error("DAG {dag:?} has members in different namespaces: {}", namespaces.join(", "))]
    MixedNamespaces {
        dag: String,
        namespaces: Vec<String>,
    },
    #[error("DAG {dag:?}: {ANN_SLA} is on {function:?}, but the entry is {entry:?}")]
    SlaNotOnEntry {
        dag: String,
        function: String,
        entry: String,
    },
    #[error(
        "DAG {dag:?}: function {function:?}: {ANN_BATCH}={value:?} is not true, false or a batch size from 1 to {MAX_DECLARED_BATCH}"
    )]
    BadBatch {
        dag: String,
        function: String,
        value: String,
    },
    #[error("DAG {dag:?}: function {function:?}: {source}")]
    BadSla {
        dag: String,
        function: String,
        source: DurationError,
    },
}

/// Why a duration such as an SLA did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected a positive number with an optional unit s or ms, e.g. 2s, 1.5s, 800ms"
)]
pub struct DurationError(pub String);

/// Parses `2s`, `2.5s`, `800ms` or a bare number of seconds.
pub fn parse_duration_s(text: &str) -> Result<f64, DurationError> {
    let t = text.trim();
    let err = || DurationError(text.to_string());
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| err())?;
    if v.is_finite() && v > 0.0 {
        Ok(v * scale)
    } else {
        Err(err())
    }
}

/// `com.smiless.batch`: `true` → the largest batch, a number N ≥ 1 → N (1 means no batching), `false` →
/// none; anything else is invalid (`None`).
pub fn parse_batch(text: &str) -> Option<Option<u32>> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(Some(MAX_DECLARED_BATCH)),
        "false" => Some(None),
        t => match t.parse::<u32>().ok()? {
            1 => Some(None),
            n @ 2..=MAX_DECLARED_BATCH => Some(Some(n)),
            _ => None,
        },
    }
}

impl Dag {
    /// Builds and validates a DAG from `(name, profile, successors)` triples.
    pub fn build(
        name: &str,
        namespace: &str,
        members: &[(String, Option<String>, Vec<String>)],
        sla_s: Option<f64>,
    ) -> Result<Dag, DagError> {
        let dag = name.to_string();
        if members.is_empty() {
            return Err(DagError::Empty { dag });
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, (n, _, _)) in members.iter().enumerate() {
            if index.insert(n.as_str(), i).is_some() {
                return Err(DagError::Duplicate {
                    dag,
                    function: n.clone(),
                });
            }
        }
        let n = members.len();
        let mut succ = vec![Vec::new(); n];
        let mut pred = vec![Vec::new(); n];
        for (i, (fname, _, next)) in members.iter().enumerate() {
            for s in next {
                let &j = index
                    .get(s.as_str())
                    .ok_or_else(|| DagError::UnknownSuccessor {
                        dag: dag.clone(),
                        function: fname.clone(),
                        successor: s.clone(),
                    })?;
                if !succ[i].contains(&j) {
                    succ[i].push(j);
                    pred[j].push(i);
                }
            }
        }
        let nodes: Vec<DagNode> = members
            .iter()
            .map(|(n, p, _)| DagNode {
                name: n.clone(),
                profile: p.clone(),
                max_batch: None,
            })
            .collect();
        if let Some(cycle) = find_cycle(&succ) {
            return Err(DagError::Cycle {
                dag,
                cycle: cycle.iter().map(|&i| nodes[i].name.clone()).collect(),
            });
        }
        let entries: Vec<usize> = (0..n).filter(|&i| pred[i].is_empty()).collect();
        if entries.len() > 1 {
            return Err(DagError::SeveralEntries {
                dag,
                entries: entries.iter().map(|&i| nodes[i].name.clone()).collect(),
            });
        }
        // Acyclic and non-empty, so an in-degree-0 node exists.
        let entry = entries[0];
        let topo = topo_order(&succ, &pred);
        Ok(Dag {
            name: dag,
            namespace: namespace.to_string(),
            sla_s,
            nodes,
            succ,
            pred,
            topo,
            entry,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn sinks(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.succ[i].is_empty())
    }
}

/// Kahn's algorithm, smallest index first among ready nodes so the order is deterministic.
fn topo_order(succ: &[Vec<usize>], pred: &[Vec<usize>]) -> Vec<usize> {
    let mut indeg: Vec<usize> = pred.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..succ.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(succ.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &succ[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.insert(j);
            }
        }
    }
    order
}

/// A cycle as a node list closed on its first node, if any (iterative DFS; the stack is the current path).
fn find_cycle(succ: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = succ.len();
    let mut colour = vec![0u8; n]; // 0 new, 1 on the current path, 2 done
    for root in 0..n {
        if colour[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = 1;
        while let Some(top) = stack.last_mut() {
            let (v, k) = *top;
            if k < succ[v].len() {
                top.1 += 1;
                let w = succ[v][k];
                if colour[w] == 1 {
                    let from = stack.iter().position(|&(u, _)| u == w).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|&(u, _)| u).collect();
                    cycle.push(w);
                    return Some(cycle);
                }
                if colour[w] == 0 {
                    colour[w] = 1;
                    stack.push((w, 0));
                }
            } else {
                colour[v] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Groups functions by `com.smiless.dag` and validates each group. Functions without the annotation are
/// not members of any DAG and are ignored. DAGs come back sorted by name.
pub fn dags_from_functions(functions: &[FunctionSpec]) -> Result<Vec<Dag>, DagError> {
    let mut groups: BTreeMap<&str, Vec<&FunctionSpec>> = BTreeMap::new();
    for f in functions {
        if let Some(d) = f.annotations.get(ANN_DAG) {
            let d = d.trim();
            if d.is_empty() {
                return Err(DagError::EmptyName {
                    function: f.name.clone(),
                });
            }
            groups.entry(d).or_default().push(f);
        }
    }
    let mut dags = Vec::with_capacity(groups.len());
    for (name, members) in groups {
        let mut namespaces: Vec<String> = members.iter().map(|f| f.namespace.clone()).collect();
        namespaces.sort();
        namespaces.dedup();
        if namespaces.len() > 1 {
            return Err(DagError::MixedNamespaces {
                dag: name.to_string(),
                namespaces,
            });
        }
        let triples: Vec<(String, Option<String>, Vec<String>)> = members
            .iter()
            .map(|f| {
                let next = f
                    .annotations
                    .get(ANN_NEXT)
                    .map(|s| {
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let profile = f.annotations.get(ANN_PROFILE).map(|s| s.trim().to_string());
                (f.name.clone(), profile, next)
            })
            .collect();
        let mut dag = Dag::build(name, &namespaces[0], &triples, None)?;
        for f in &members {
            if let (Some(v), Some(i)) = (f.annotations.get(ANN_BATCH), dag.index_of(&f.name)) {
                dag.nodes[i].max_batch = parse_batch(v).ok_or_else(|| DagError::BadBatch {
                    dag: name.to_string(),
                    function: f.name.clone(),
                    value: v.clone(),
                })?;
            }
            if let Some(sla) = f.annotations.get(ANN_SLA) {
                let entry = &dag.nodes[dag.entry].name;
                if &f.name != entry {
                    return Err(DagError::SlaNotOnEntry {
                        dag: name.to_string(),
                        function: f.name.clone(),
                        entry: entry.clone(),
                    });
                }
                dag.sla_s = Some(parse_duration_s(sla).map_err(|source| DagError::BadSla {
                    dag: name.to_string(),
                    function: f.name.clone(),
                    source,
                })?);
            }
        }
        dags.push(dag);
    }
    Ok(dags)
}
