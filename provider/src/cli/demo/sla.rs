//! The SLAs the demo runs with: the stack's, unless this host cannot meet them. A DAG whose SLA is below
//! the latency of its fastest plan on this host (its cores and GPUs, the paper's profiles the emulated
//! functions reproduce) would show 0 % met whatever the planner does; the demo raises such an SLA to
//! twice the fastest latency, rounded up to a whole second (the margin the live e2e showed this host
//! needs for cold starts and contention, docs/live.md), and says so before the replay. `--sla` overrides.
use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use optimizer::{FunctionSpec, Load, PlanInput, ProfileSet, dags_from_functions};
use serde_json::Value;

/// What the demo decided for one DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub dag: String,
    /// The stack's SLA (seconds), if it declares one.
    pub declared_s: Option<f64>,
    /// The fastest plan's latency on this host.
    pub fastest_s: f64,
    /// The SLA the demo runs with.
    pub sla_s: f64,
}

impl Choice {
    /// The line the demo prints when it changed the stack's SLA.
    pub fn note(&self) -> Option<String> {
        match self.declared_s {
            Some(d) if (d - self.sla_s).abs() < 1e-9 => None,
            Some(d) if d < self.fastest_s => Some(format!(
                "{}: the stack's SLA {d} s is below this host's fastest plan ({:.2} s); running it at {} s (pass --sla to choose)",
                self.dag, self.fastest_s, self.sla_s
            )),
            _ => Some(format!("{}: SLA {} s", self.dag, self.sla_s)),
        }
    }
}

/// The SLA for a DAG whose fastest plan takes `fastest_s`: the declared one when the host can meet it,
/// else twice the fastest latency rounded up to a whole second.
pub fn feasible(declared_s: Option<f64>, fastest_s: f64) -> f64 {
    match declared_s {
        Some(d) if d >= fastest_s => d,
        _ => (2.0 * fastest_s).ceil().max(1.0),
    }
}

/// `--sla`: `auto`, one duration for every DAG, or `DAG=DUR` pairs (the others stay `auto`).
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let t = text.trim();
    if t == "auto" {
        return Ok(out);
    }
    if !t.contains('=') {
        out.insert(String::new(), optimizer::parse_duration_s(t)?);
        return Ok(out);
    }
    for pair in t.split(',') {
        let Some((dag, d)) = pair.split_once('=') else {
            bail!("--sla {text:?}: expected auto, a duration, or DAG=DURATION pairs");
        };
        out.insert(
            dag.trim().to_owned(),
            optimizer::parse_duration_s(d.trim())?,
        );
    }
    Ok(out)
}

/// The deployments as the planner's function specs (name, namespace, annotations).
pub fn specs(deployments: &[Value]) -> Vec<FunctionSpec> {
    deployments
        .iter()
        .map(|d| FunctionSpec {
            name: d["service"].as_str().unwrap_or_default().to_owned(),
            namespace: d["namespace"].as_str().unwrap_or("openfaas-fn").to_owned(),
            annotations: d["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Decides each DAG's SLA and writes it into the entry's `com.smiless.sla` annotation.
pub fn apply(
    deployments: &mut [Value],
    given: &BTreeMap<String, f64>,
    host: contract::backend::host::Host,
) -> Result<Vec<Choice>> {
    let specs = specs(deployments);
    let dags = dags_from_functions(&specs).context("the stack's DAGs")?;
    let profiles = ProfileSet::paper();
    let mut out = Vec::new();
    for dag in dags {
        let declared = dag.sla_s;
        let name = dag.name.clone();
        let entry = dag.nodes[dag.entry].name.clone();
        let load = Load::new(None, Some(60.0))?;
        let mut input = PlanInput::new(dag, &profiles, declared.unwrap_or(1.0), load)
            .with_context(|| format!("planning {name}"))?;
        input.space.hardware = contract::backend::host::space(host);
        let fastest = optimizer::planners::fastest_latency(&input);
        let sla = given
            .get(&name)
            .or_else(|| given.get(""))
            .copied()
            .unwrap_or_else(|| feasible(declared, fastest));
        if let Some(d) = deployments
            .iter_mut()
            .find(|d| d["service"].as_str() == Some(entry.as_str()))
        {
            d["annotations"][optimizer::dag::ANN_SLA] = Value::String(format!("{sla}s"));
        }
        out.push(Choice {
            dag: name,
            declared_s: declared,
            fastest_s: fastest,
            sla_s: sla,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use contract::backend::host::Host;

    #[test]
    fn an_sla_the_host_meets_is_kept_and_one_it_cannot_is_raised() {
        // (declared, fastest) -> SLA
        for (declared, fastest, want) in [
            (Some(2.0), 1.5, 2.0),
            (Some(2.0), 2.0, 2.0),
            (Some(2.0), 2.64, 6.0),
            (None, 0.3, 1.0),
            (None, 3.2, 7.0),
        ] {
            assert_eq!(feasible(declared, fastest), want, "{declared:?} {fastest}");
        }
    }

    #[test]
    fn sla_flags_parse() {
        assert!(parse("auto").unwrap().is_empty());
        assert_eq!(parse("5s").unwrap()[""], 5.0);
        let m = parse("image-query=5s, voice-assistant=8s").unwrap();
        assert_eq!((m["image-query"], m["voice-assistant"]), (5.0, 8.0));
        assert!(parse("image-query=").is_err() && parse("x=1s,y").is_err());
    }

    /// On a 2-core host without a GPU, the repository's 2 s SLAs are raised where the fastest plan is
    /// slower, and the entry's annotation carries what the demo runs with.
    #[test]
    fn the_repository_stack_on_two_cores_gets_slas_it_can_meet() {
        let text = include_str!("../../../../stack.yml");
        let mut deps = super::super::stack::deployments(text, 0.1).unwrap();
        let host = Host { cpus: 2, gpus: 0 };
        let choices = apply(&mut deps, &BTreeMap::new(), host).unwrap();
        assert_eq!(choices.len(), 3);
        for c in &choices {
            assert!(c.sla_s >= c.fastest_s, "{c:?}");
            assert_eq!(c.declared_s, Some(2.0));
        }
        let va = choices.iter().find(|c| c.dag == "voice-assistant").unwrap();
        assert!(va.fastest_s > 2.0 && va.sla_s > 2.0, "{va:?}");
        assert!(
            va.note()
                .unwrap()
                .contains("below this host's fastest plan")
        );
        let entry = deps
            .iter()
            .find(|d| d["service"] == "va-speechrecognition")
            .unwrap();
        assert_eq!(
            entry["annotations"]["com.smiless.sla"],
            format!("{}s", va.sla_s)
        );
        // An explicit SLA wins.
        let given = parse("voice-assistant=9s").unwrap();
        let choices = apply(&mut deps, &given, host).unwrap();
        let va = choices.iter().find(|c| c.dag == "voice-assistant").unwrap();
        assert_eq!(va.sla_s, 9.0);
    }
}
