//! Workloads: where invocation series come from, named by a spec string.
//!
//! | spec | source |
//! |---|---|
//! | `orcbench:seed=N[,model=K][,dir=PATH][,hours=H][,functions=F]` | OrcBench cluster models of the Azure 2019 trace ([`orcbench`]) |
//! | `synthetic:seed=N[,rate=R][,cv=C][,burst=B][,hours=H][,functions=F]` | generator calibrated to the trace's statistics ([`synthetic`]) |
//! | `azure-csv:PATH` | a file in the Azure Functions 2019 per-minute format ([`azure_csv`]) |
//!
//! Generated workloads are per-second counts starting at midnight, deterministic from the seed.
pub mod azure_csv;
pub mod orcbench;
pub mod synthetic;

use crate::error::{Error, Result};
use crate::series::Series;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed workload spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// OrcBench cluster models.
    OrcBench(orcbench::OrcBenchSpec),
    /// The calibrated synthetic generator.
    Synthetic(synthetic::SyntheticSpec),
    /// An Azure Functions 2019 CSV file.
    AzureCsv(PathBuf),
}

impl Workload {
    /// Produces the workload's series (one per function).
    pub fn load(&self) -> Result<Vec<Series>> {
        match self {
            Self::OrcBench(s) => orcbench::generate(s),
            Self::Synthetic(s) => Ok(synthetic::generate(s)),
            Self::AzureCsv(p) => azure_csv::read_file(p),
        }
    }
}

impl FromStr for Workload {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |message: String| Error::Spec {
            spec: spec.to_string(),
            message,
        };
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected KIND:ARGS, e.g. synthetic:seed=1".into()))?;
        match kind {
            "azure-csv" => {
                if rest.is_empty() {
                    return Err(bad("azure-csv needs a file path".into()));
                }
                Ok(Self::AzureCsv(PathBuf::from(rest)))
            }
            "orcbench" => orcbench::OrcBenchSpec::from_args(&KeyValues::parse(rest).map_err(bad)?)
                .map(Self::OrcBench)
                .map_err(bad),
            "synthetic" => {
                synthetic::SyntheticSpec::from_args(&KeyValues::parse(rest).map_err(bad)?)
                    .map(Self::Synthetic)
                    .map_err(bad)
            }
            other => Err(bad(format!(
                "unknown kind {other:?} (expected orcbench, synthetic or azure-csv)"
            ))),
        }
    }
}

/// `key=value` pairs of a spec; every key must be consumed, so typos are reported.
#[derive(Debug)]
pub(crate) struct KeyValues {
    pairs: Vec<(String, String)>,
}

impl KeyValues {
    fn parse(s: &str) -> std::result::Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, found {part:?}"))?;
            if pairs.iter().any(|(pk, _)| pk == k) {
                return Err(format!("key {k:?} given twice"));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(Self { pairs })
    }

    /// Fails on any key not in `allowed`.
    pub(crate) fn check_keys(&self, allowed: &[&str]) -> std::result::Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(format!(
                "unknown key {k:?} (allowed: {})",
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn get<T: FromStr>(&self, key: &str) -> std::result::Result<Option<T>, String> {
        match self.pairs.iter().find(|(k, _)| k == key) {
            None => Ok(None),
            Some((_, v)) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}={v:?} is not a valid value")),
        }
    }

    pub(crate) fn raw(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Common `hours=` / `functions=` keys with their limits.
pub(crate) fn duration_and_functions(kv: &KeyValues) -> std::result::Result<(f64, usize), String> {
    let hours: f64 = kv.get("hours")?.unwrap_or(24.0);
    if !(hours > 0.0 && hours <= 24.0 * 28.0) {
        return Err(format!("hours={hours} must be in (0, 672]"));
    }
    let functions: usize = kv.get("functions")?.unwrap_or(1);
    if !(1..=10_000).contains(&functions) {
        return Err(format!("functions={functions} must be in 1..=10000"));
    }
    Ok((hours, functions))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let w: Workload = "synthetic:seed=3,rate=2,cv=1.5,hours=2".parse().unwrap();
        let Workload::Synthetic(s) = w else {
            panic!("wrong kind")
        };
        assert_eq!(s.seed, 3);
        assert_eq!(s.rate_per_s, Some(2.0));
        assert_eq!(s.cv, Some(1.5));
        let w: Workload = "orcbench:seed=1,model=9".parse().unwrap();
        assert!(matches!(w, Workload::OrcBench(ref o) if o.model == Some(9)));
        let w: Workload = "azure-csv:/tmp/a,b.csv".parse().unwrap();
        assert_eq!(w, Workload::AzureCsv(PathBuf::from("/tmp/a,b.csv")));
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "synthetic",
            "synthetic:rate=2",
            "synthetic:seed=x",
            "synthetic:seed=1,sed=2",
            "synthetic:seed=1,seed=2",
            "synthetic:seed=1,hours=0",
            "orcbench:seed=1,model=99",
            "azure-csv:",
            "nope:seed=1",
        ] {
            let err = bad.parse::<Workload>().unwrap_err();
            assert!(matches!(err, Error::Spec { .. }), "{bad}: {err}");
        }
    }
}
