//! The control loop's state under the provider's state directory, so that a restart (kill -9 included)
//! brings back what it learnt: `control/profiles.json` (the profiles it plans with), and per DAG
//! `control/<namespace>/<dag>/state.json` (the forecaster's history and score, the hardware each member
//! was planned on, the last plan and its reason) and the trained forecaster's weights: a directory
//! `…/lstm-<id>/` named by the file `…/lstm.current`.
//!
//! Files are replaced with [`contract::fsutil::write_atomic`], so a crash leaves the old version or the new
//! one, never half of one. New weights go to a fresh directory that `lstm.current` is then atomically
//! replaced to name: the only step that switches models is that one rename. (Older versions kept the
//! weights in `…/lstm/`; that directory is still read when there is no `lstm.current`, and removed by the
//! next save.)
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use optimizer::{Hardware, Load, ProfileSet};
use predictor::LstmForecaster;
use serde::{Deserialize, Serialize};

use super::forecast;
use contract::fsutil;

/// The file naming the live weights' directory.
const MODEL_POINTER: &str = "lstm.current";
/// Prefix of the weights' directories (`lstm-<id>`).
const MODEL_PREFIX: &str = "lstm-";
/// Where versions before [`MODEL_POINTER`] kept the weights.
const LEGACY_MODEL_DIR: &str = "lstm";
/// Permission bits of the control files (nothing secret; the state directory itself is private).
const FILE_MODE: u32 = 0o644;

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

/// Atomically replaces `path`, creating its directory when missing.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::write_atomic(path, bytes, FILE_MODE)
}

/// A weights directory name not used in `base` yet.
fn fresh_model_dir(base: &Path) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    loop {
        let name = format!(
            "{MODEL_PREFIX}{t:x}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        if !base.join(&name).exists() {
            return name;
        }
    }
}

/// Whether `name` (read from [`MODEL_POINTER`]) is a weights directory this module made.
fn is_model_dir_name(name: &str) -> bool {
    name.starts_with(MODEL_PREFIX) && !name.contains('/')
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

    /// Saves the weights into a fresh directory, flushes it, then points [`MODEL_POINTER`] at it (one
    /// atomic replace); older weights' directories are removed afterwards. A crash before the pointer is
    /// replaced leaves the previous model in use, after it the new one.
    pub fn save_model(&self, ns: &str, dag: &str, m: &LstmForecaster) -> io::Result<()> {
        let base = self.dag_dir(ns, dag);
        std::fs::create_dir_all(&base)?;
        let name = fresh_model_dir(&base);
        let dir = base.join(&name);
        if let Err(e) = m
            .save(&dir)
            .map_err(io::Error::other)
            .and_then(|()| fsutil::sync_files_in(&dir))
            .and_then(|()| fsutil::sync_dir(&base))
        {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        if let Err(e) = fsutil::write_atomic(&base.join(MODEL_POINTER), name.as_bytes(), FILE_MODE)
        {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        // Everything else that holds weights is stale now: earlier `lstm-*` directories, the legacy
        // `lstm/`, and the `.lstm-*` temporaries of the older swap.
        for entry in std::fs::read_dir(&base)?.flatten() {
            let Some(other) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let stale = other != name
                && (other.starts_with(MODEL_PREFIX)
                    || other == LEGACY_MODEL_DIR
                    || other.starts_with(".lstm-"));
            if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// The saved forecaster, when there is a readable one.
    pub fn load_model(&self, ns: &str, dag: &str) -> Option<LstmForecaster> {
        let base = self.dag_dir(ns, dag);
        let pointer = base.join(MODEL_POINTER);
        let dir = match std::fs::read_to_string(&pointer) {
            Ok(name) if is_model_dir_name(name.trim()) => base.join(name.trim()),
            Ok(_) => {
                tracing::warn!("ignoring {}: not a model directory name", pointer.display());
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => base.join(LEGACY_MODEL_DIR),
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", pointer.display());
                return None;
            }
        };
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

    #[test]
    fn model_save_replaces_the_pointer_and_cleans_up() {
        use predictor::TrainConfig;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        assert!(s.load_model("ns", "d").is_none());
        let base = dir.path().join("control/ns/d");
        // The pre-pointer layout is still read, and replaced by the next save.
        LstmForecaster::new(TrainConfig::default())
            .save(&base.join(LEGACY_MODEL_DIR))
            .unwrap();
        std::fs::create_dir_all(base.join(".lstm-old-7")).unwrap();
        assert!(s.load_model("ns", "d").is_some());
        let m = LstmForecaster::new(TrainConfig::default()).with_quantile(0.75);
        s.save_model("ns", "d", &m).unwrap();
        s.save_model("ns", "d", &m).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names.len(),
            2,
            "one weights directory and the pointer: {names:?}"
        );
        assert!(names[0].starts_with(MODEL_PREFIX), "{names:?}");
        assert_eq!(names[1], MODEL_POINTER);
        assert_eq!(
            std::fs::read_to_string(base.join(MODEL_POINTER)).unwrap(),
            names[0]
        );
        let back = s.load_model("ns", "d").unwrap();
        assert!((back.quantile() - 0.75).abs() < 1e-6);
        std::fs::write(base.join(MODEL_POINTER), "../../elsewhere").unwrap();
        assert!(
            s.load_model("ns", "d").is_none(),
            "a bad pointer is ignored"
        );
    }
}
