//! Workloads from the OrcBench cluster models of the Azure Functions 2019 trace (MIT, see
//! `data/orcbench/README.md`).
//!
//! Each model holds 2,000 quantiles of the per-invocation rate (1/min); as in OrcBench, the next
//! inter-arrival time is the reciprocal of a uniformly drawn quantile. The process is therefore a
//! renewal process with *no* temporal structure (no diurnal cycle, no bursts that persist): the best
//! any forecaster can do on it is to learn the marginal distribution. Three models are embedded
//! (clusters 0, 9 and 18); any of the 25 can be read from a directory with `dir=PATH`.
use super::{KeyValues, duration_and_functions};
use crate::error::{Error, Result};
use crate::series::Series;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Cluster models shipped inside the crate: (cluster index, JSON text).
const EMBEDDED: [(usize, &str); 3] = [
    (0, include_str!("../../data/orcbench/0-model")),
    (9, include_str!("../../data/orcbench/9-model")),
    (18, include_str!("../../data/orcbench/18-model")),
];
/// OrcBench has clusters 0..=24.
const CLUSTERS: usize = 25;

/// Parameters of `orcbench:` workloads.
#[derive(Debug, Clone, PartialEq)]
pub struct OrcBenchSpec {
    /// RNG seed.
    pub seed: u64,
    /// Cluster to use for every function; `None` picks per function, weighted by `num_functions`.
    pub model: Option<usize>,
    /// Directory holding `K-model` files; `None` uses the embedded clusters.
    pub dir: Option<PathBuf>,
    /// Length of each series in hours.
    pub hours: f64,
    /// Number of functions (series).
    pub functions: usize,
}

impl OrcBenchSpec {
    pub(crate) fn from_args(kv: &KeyValues) -> std::result::Result<Self, String> {
        kv.check_keys(&["seed", "model", "dir", "hours", "functions"])?;
        let seed = kv.get("seed")?.ok_or("seed=N is required")?;
        let model: Option<usize> = kv.get("model")?;
        let dir = kv.raw("dir").map(PathBuf::from);
        if let Some(m) = model {
            if m >= CLUSTERS {
                return Err(format!("model={m}: OrcBench has clusters 0..=24"));
            }
            if dir.is_none() && !EMBEDDED.iter().any(|(k, _)| *k == m) {
                return Err(format!(
                    "model={m} is not embedded (only 0, 9, 18); add dir=PATH to read it"
                ));
            }
        }
        let (hours, functions) = duration_and_functions(kv)?;
        Ok(Self {
            seed,
            model,
            dir,
            hours,
            functions,
        })
    }
}

/// One OrcBench cluster model.
#[derive(Debug, Clone, Deserialize)]
pub struct OrcModel {
    /// Ascending quantiles of the invocation rate, per minute.
    pub inverse_ecdf: Vec<f64>,
    /// Functions of the trace in this cluster (its weight).
    pub num_functions: u64,
    /// Quantiles of execution time, ms.
    pub cpu: Vec<f64>,
    /// Quantiles of allocated memory, MB.
    pub mbs: Vec<f64>,
}

impl OrcModel {
    /// Parses a model; `source_name` labels errors (a path or "embedded 0-model").
    pub fn from_json(source_name: &str, text: &str) -> Result<Self> {
        let m: Self = serde_json::from_str(text).map_err(|e| Error::Parse {
            source_name: source_name.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let bad = |message: &str| Error::Parse {
            source_name: source_name.to_string(),
            line: 1,
            column: 1,
            message: message.to_string(),
        };
        if m.inverse_ecdf.is_empty() {
            return Err(bad("inverse_ecdf is empty"));
        }
        if m.inverse_ecdf.iter().any(|&q| !(q.is_finite() && q > 0.0)) {
            return Err(bad(
                "inverse_ecdf holds a rate that is not positive and finite",
            ));
        }
        Ok(m)
    }

    /// Reads `dir/K-model`.
    pub fn load(dir: &Path, cluster: usize) -> Result<Self> {
        let path = dir.join(format!("{cluster}-model"));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_json(&path.display().to_string(), &text)
    }

    /// One inter-arrival time in seconds.
    pub fn sample_iat_s(&self, rng: &mut impl RngExt) -> f64 {
        60.0 / self.inverse_ecdf[rng.random_range(0..self.inverse_ecdf.len())]
    }
}

/// Loads the clusters the spec may use: (cluster, model).
fn models(spec: &OrcBenchSpec) -> Result<Vec<(usize, OrcModel)>> {
    let wanted: Vec<usize> = match spec.model {
        Some(m) => vec![m],
        None if spec.dir.is_some() => (0..CLUSTERS).collect(),
        None => EMBEDDED.iter().map(|(k, _)| *k).collect(),
    };
    wanted
        .into_iter()
        .map(|k| {
            let m = match &spec.dir {
                Some(d) => OrcModel::load(d, k)?,
                None => {
                    let text = EMBEDDED
                        .iter()
                        .find(|(e, _)| *e == k)
                        .map(|(_, t)| *t)
                        .ok_or_else(|| Error::Invalid(format!("cluster {k} is not embedded")))?;
                    OrcModel::from_json(&format!("embedded {k}-model"), text)?
                }
            };
            Ok((k, m))
        })
        .collect()
}

/// Generates the spec's series (per-second counts).
pub fn generate(spec: &OrcBenchSpec) -> Result<Vec<Series>> {
    let models = models(spec)?;
    let total_weight: u64 = models.iter().map(|(_, m)| m.num_functions.max(1)).sum();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let seconds = (spec.hours * 3600.0).round() as usize;
    let mut out = Vec::with_capacity(spec.functions);
    for i in 0..spec.functions {
        let mut pick = rng.random_range(0..total_weight);
        let (cluster, model) = models
            .iter()
            .find(|(_, m)| {
                let w = m.num_functions.max(1);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(&models[0]);
        let mut frng = Xoshiro256PlusPlus::seed_from_u64(rng.random::<u64>());
        let mut counts = vec![0u32; seconds];
        // Start inside a gap, not on an arrival, so series do not all begin with a burst.
        let mut t = frng.random::<f64>() * model.sample_iat_s(&mut frng);
        while (t as usize) < seconds {
            counts[t as usize] = counts[t as usize].saturating_add(1);
            t += model.sample_iat_s(&mut frng);
        }
        out.push(Series {
            name: format!("orcbench-c{cluster}-s{}-f{i}", spec.seed),
            step_s: 1,
            counts,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn embedded_models_parse() {
        for (k, text) in EMBEDDED {
            let m = OrcModel::from_json(&format!("{k}"), text).unwrap();
            assert_eq!(m.inverse_ecdf.len(), 2000);
            assert!(m.inverse_ecdf.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = OrcModel::from_json("x", "{\n  \"inverse_ecdf\": [1.0,\n  oops]\n}").unwrap_err();
        match err {
            Error::Parse { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column >= 3);
            }
            other => panic!("unexpected {other}"),
        }
    }
}
