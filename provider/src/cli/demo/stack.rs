//! The faas-cli stack file as deployment requests: each function's `image`, `fprocess`, `environment`,
//! `labels`, `annotations` and `namespace` become a `FunctionDeployment` JSON body for
//! `POST /system/functions`, as faas-cli would send it. The demo adds the shared time scale to every
//! function's environment (the runtime does not pass the provider's environment to replicas).
use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct Stack {
    #[serde(default)]
    functions: BTreeMap<String, Function>,
}

#[derive(Debug, Deserialize)]
struct Function {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    fprocess: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Deployment bodies for every function of the stack text.
pub fn deployments(text: &str, time_scale: f64) -> Result<Vec<Value>> {
    let stack: Stack = serde_saphyr::from_str(text).map_err(|e| {
        anyhow!("not a valid stack file (annotation and environment values must be strings): {e}")
    })?;
    if stack.functions.is_empty() {
        bail!("the stack file declares no functions");
    }
    stack
        .functions
        .into_iter()
        .map(|(name, f)| {
            let fprocess = f.fprocess.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
                anyhow!("function {name} has no fprocess (the local backend runs it)")
            })?;
            let mut env = f.environment;
            env.insert(
                function_kit::emulator::ENV_TIME_SCALE.to_owned(),
                time_scale.to_string(),
            );
            let mut d = json!({
                "service": name,
                "image": f.image.unwrap_or_else(|| "smiless/smiless-fn:latest".into()),
                "envProcess": fprocess,
                "envVars": env,
                "labels": f.labels,
                "annotations": f.annotations,
            });
            if let Some(ns) = f.namespace {
                d["namespace"] = Value::String(ns);
            }
            Ok(d)
        })
        .collect()
}

/// The DAG names declared by the deployments' `com.smiless.dag` annotations, sorted.
pub fn dag_names(deployments: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = deployments
        .iter()
        .filter_map(|d| d["annotations"][optimizer::dag::ANN_DAG].as_str())
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_stack_becomes_thirteen_deployments_and_three_dags() {
        let d = deployments(super::super::EMBEDDED_STACK, 0.1).unwrap();
        assert_eq!(d.len(), 13);
        assert_eq!(
            dag_names(&d),
            ["amber-alert", "image-query", "voice-assistant"]
        );
        let va = d
            .iter()
            .find(|x| x["service"] == "va-speechrecognition")
            .unwrap();
        assert_eq!(
            va["envProcess"],
            "smiless-fn --profile speechrecognition --listen 127.0.0.1:5000"
        );
        assert_eq!(va["envVars"]["SMILESS_TIME_SCALE"], "0.1");
        assert_eq!(va["envVars"]["mode"], "http");
        assert_eq!(va["envVars"]["upstream_url"], "http://127.0.0.1:5000");
        assert_eq!(va["annotations"]["com.smiless.sla"], "2s");
    }

    #[test]
    fn refuses_a_function_without_fprocess() {
        let e = deployments("functions:\n  f:\n    image: x\n", 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("f has no fprocess"), "{e}");
        assert!(deployments("functions: {}\n", 1.0).is_err());
    }
}
