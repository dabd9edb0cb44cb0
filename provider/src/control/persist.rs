//! The control loop's state under the provider's state directory, so that a restart (kill -9 included)
//! brings back what it learnt: `control/profiles.json` (the profiles it plans with), and per DAG
//! `control/<namespace>/<dag>/state.json` (the forecaster's history and score, the hardware each member
//! was planned on, the last plan and its reason) and `…/lstm/` (the trained forecaster's weights).
//!
//! Files are replaced atomically (write a temporary file, rename it over), so a crash leaves the old
//! version or the new one, never half of one. The weights' directory is swapped the same way.
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use optimizer::{Hardware, Load, ProfileSet};
use predictor::LstmForecaster;
use serde::{Deserialize, Serialize};

use super::forecast;

/// What persists of one DAG's control.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DagSaved {
    pub forecast: forecast::Saved,
    /// The hardware each member was planned on (the planner's "current": hysteresis survives a restart).
    pub hardware: BTreeMap<String, Hardware>,
    /// The last plan as `/system/plan` showed it.
    pub plan: Option<serde_json::Value>,
    pub load: Option<Load>,
    pub reason: String,
    pub policy: String,
}

/// `<state dir>/control`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Directory names for namespace and DAG names (DNS labels in practice; anything else is escaped).
fn component(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.join("control"),
        }
    }

    fn dag_dir(&self, ns: &str, dag: &str) -> PathBuf {
        self.dir.join(component(ns)).join(component(dag))
    }

    pub fn save_profiles(&self, set: &ProfileSet) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(set).map_err(io::Error::other)?;
        write_atomic(&self.dir.join("profiles.json"), &json)
    }

    /// What the online refresh measured (`observed.json`, see [`super::refresh::Refresher::observed`]):
    /// for `smiless sim --world-profiles`; never loaded back (the planner's profiles are `profiles.json`).
    pub fn save_observed(&self, set: &ProfileSet) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(set).map_err(io::Error::other)?;
        write_atomic(&self.dir.join("observed.json"), &json)
    }

    /// The saved profiles, when there are valid ones.
    pub fn load_profiles(&self) -> Option<ProfileSet> {
        let p = self.dir.join("profiles.json");
        let text = std::fs::read_to_string(&p).ok()?;
        ProfileSet::from_json(&text)
            .inspect_err(|e| tracing::warn!("ignoring {}: {e}", p.display()))
            .ok()
    }

    pub fn save_dag(&self, ns: &str, dag: &str, s: &DagSaved) -> io::Result<()> {
        let json = serde_json::to_vec(s).map_err(io::Error::other)?;
        write_atomic(&self.dag_dir(ns, dag).join("state.json"), &json)
    }

    pub fn load_dag(&self, ns: &str, dag: &str) -> Option<DagSaved> {
        let p = self.dag_dir(ns, dag).join("state.json");
        let text = std::fs::read(&p).ok()?;
        serde_json::from_slice(&text)
            .inspect_err(|e| tracing::warn!("ignoring {}: {e}", p.display()))
            .ok()
    }

    /// Saves the weights into a fresh directory, then swaps it in.
    pub fn save_model(&self, ns: &str, dag: &str, m: &LstmForecaster) -> io::Result<()> {
        let base = self.dag_dir(ns, dag);
        let tmp = base.join(format!(".lstm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        m.save(&tmp).map_err(io::Error::other)?;
        let dst = base.join("lstm");
        let old = base.join(format!(".lstm-old-{}", std::process::id()));
        if dst.exists() {
            std::fs::rename(&dst, &old)?;
        }
        std::fs::rename(&tmp, &dst)?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    pub fn load_model(&self, ns: &str, dag: &str) -> Option<LstmForecaster> {
        let dir = self.dag_dir(ns, dag).join("lstm");
        if !dir.exists() {
            return None;
        }
        LstmForecaster::load(&dir)
            .inspect_err(|e| tracing::warn!("ignoring the forecaster in {}: {e}", dir.display()))
            .ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dag_state_and_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        assert!(s.load_dag("ns", "d").is_none());
        let mut saved = DagSaved {
            reason: "why".into(),
            ..DagSaved::default()
        };
        saved.forecast.counts = vec![0, 1, 2];
        saved
            .hardware
            .insert("f".into(), Hardware::Cpu { cores: 2 });
        s.save_dag("ns", "d/x", &saved).unwrap();
        let back = s.load_dag("ns", "d/x").unwrap();
        assert_eq!(back.forecast.counts, [0, 1, 2]);
        assert_eq!(back.hardware["f"], Hardware::Cpu { cores: 2 });
        assert_eq!(back.reason, "why");
        std::fs::write(dir.path().join("control/ns/d_x/state.json"), "{").unwrap();
        assert!(
            s.load_dag("ns", "d/x").is_none(),
            "a corrupt file is ignored"
        );
        s.save_profiles(&ProfileSet::paper()).unwrap();
        assert_eq!(s.load_profiles().unwrap(), ProfileSet::paper());
    }
}
