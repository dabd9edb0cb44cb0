//! Function profiles in the project's own format (DESIGN §6): initialisation time per device kind
//! (mean, std), the inference-time model `t(B, r) = a·B/r + b·B + c` with non-negative `a, b, c` per
//! device kind, and memory. `r` is the number of cores on a CPU and the GPU fraction (0.1 = 10 % MPS share)
//! on a GPU (see [`crate::hardware::Hardware::speed`]). Non-negative coefficients make every profile
//! physical by construction: latency never falls when the batch grows and never rises when `r` grows.
//! Every coefficient and initialisation time is at most [`MAX_SECONDS`], so every prediction is finite.
//!
//! The JSON file format:
//! ```json
//! {"source": "…", "profiles": {"speechrecognition": {
//!     "init": {"cpu": {"mean_s": 1.78, "std_s": 0.31}, "gpu": {"mean_s": 4.54, "std_s": 0.18}},
//!     "infer": {"cpu": {"a": 1.2, "b": 0.0, "c": 0.4}, "gpu": {"a": 0.001, "b": 0.004, "c": 0.19}},
//!     "memory_mb": 4096, "image_mb": 7140}}}
//! ```
//! [`ProfileSet::paper`] is the paper's 16 functions re-fitted (see [`crate::refit`]).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hardware::{DeviceKind, Hardware};

/// Initialisation (cold-start) time of one replica, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitStats {
    pub mean_s: f64,
    pub std_s: f64,
}

impl InitStats {
    /// The planner's estimate `mean + n·std` (the paper uses n = 3).
    pub fn estimate(&self, n_std: f64) -> f64 {
        self.mean_s + n_std * self.std_s
    }
}

/// `t(B, r) = a·B/r + b·B + c` seconds for one call serving a batch of `B` requests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyModel {
    /// Per-item work that parallelises over `r`.
    pub a: f64,
    /// Per-item work that does not.
    pub b: f64,
    /// Per-call overhead, amortised by batching.
    pub c: f64,
}

impl LatencyModel {
    pub fn time(&self, batch: u32, r: f64) -> f64 {
        let b = f64::from(batch);
        self.a * b / r + self.b * b + self.c
    }
}

/// A value per device kind.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerDevice<T> {
    pub cpu: T,
    pub gpu: T,
}

impl<T> PerDevice<T> {
    pub fn get(&self, kind: DeviceKind) -> &T {
        match kind {
            DeviceKind::Cpu => &self.cpu,
            DeviceKind::Gpu => &self.gpu,
        }
    }
}

/// One function's profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub init: PerDevice<InitStats>,
    pub infer: PerDevice<LatencyModel>,
    /// Memory a replica needs (informational: prices here are per core and per GPU share).
    pub memory_mb: u32,
    /// Container image size, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_mb: Option<u32>,
}

impl Profile {
    /// Seconds for one call of `batch` requests on `hw`.
    pub fn infer_time(&self, hw: Hardware, batch: u32) -> f64 {
        self.infer.get(hw.kind()).time(batch, hw.speed())
    }

    pub fn init(&self, hw: Hardware) -> InitStats {
        *self.init.get(hw.kind())
    }

    fn validate(&self, name: &str) -> Result<(), ProfileError> {
        let bad = |what: String| ProfileError::Invalid {
            name: name.to_string(),
            what,
        };
        for (kind, m) in [("cpu", &self.infer.cpu), ("gpu", &self.infer.gpu)] {
            for (coef, v) in [("a", m.a), ("b", m.b), ("c", m.c)] {
                if !(v.is_finite() && (0.0..=MAX_SECONDS).contains(&v)) {
                    return Err(bad(format!(
                        "infer.{kind}.{coef} = {v} must be in [0, {MAX_SECONDS}] s"
                    )));
                }
            }
            if m.a + m.b + m.c <= 0.0 {
                return Err(bad(format!("infer.{kind} predicts zero latency")));
            }
        }
        for (kind, i) in [("cpu", &self.init.cpu), ("gpu", &self.init.gpu)] {
            let ok = |v: f64| v.is_finite() && (0.0..=MAX_SECONDS).contains(&v);
            if !(ok(i.mean_s) && ok(i.std_s)) {
                return Err(bad(format!(
                    "init.{kind} mean/std must be in [0, {MAX_SECONDS}] s"
                )));
            }
        }
        Ok(())
    }
}

/// The largest coefficient or initialisation time a profile may declare, in seconds (about 11.6 days).
/// Every time the model predicts stays finite under it (`a·B/r` with a 1 % GPU share and a batch of
/// `u32::MAX` is about 4·10¹⁷ s); a file with `1e308` would otherwise predict infinite latencies.
pub const MAX_SECONDS: f64 = 1e6;

/// Why a profile file or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile file is not valid JSON in the smiless profile format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("profile {name:?} is invalid: {what}")]
    Invalid { name: String, what: String },
    #[error("unknown profile {name:?}; known profiles: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
}

/// A named set of profiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSet {
    /// Where the numbers come from.
    #[serde(default)]
    pub source: String,
    pub profiles: BTreeMap<String, Profile>,
}

/// The shipped table (generated by `cargo run -p optimizer --example refit_profiles`).
const PAPER_JSON: &str = include_str!("../profiles/paper.json");

impl ProfileSet {
    pub fn from_json(text: &str) -> Result<ProfileSet, ProfileError> {
        let set: ProfileSet = serde_json::from_str(text)?;
        for (name, p) in &set.profiles {
            p.validate(name)?;
        }
        Ok(set)
    }

    /// The paper's 16 functions, re-fitted to be physical (`optimizer/profiles/paper.json`).
    pub fn paper() -> ProfileSet {
        // The shipped file is validated by a unit test, so failing here is a build defect.
        ProfileSet::from_json(PAPER_JSON)
            .expect("optimizer/profiles/paper.json is valid (unit-tested)")
    }

    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_string(),
                known: self.profiles.keys().cloned().collect(),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paper_set_has_sixteen_physical_profiles() {
        let set = ProfileSet::paper();
        assert_eq!(set.profiles.len(), 16);
        for (name, p) in &set.profiles {
            for hw in crate::hardware::HardwareSpace::default().all() {
                let t1 = p.infer_time(hw, 1);
                assert!(t1 > 0.0, "{name} {hw}");
                assert!(
                    p.infer_time(hw, 4) >= t1,
                    "{name} {hw}: latency falls with batch"
                );
            }
            assert!(
                p.infer_time(Hardware::Cpu { cores: 8 }, 1)
                    <= p.infer_time(Hardware::Cpu { cores: 1 }, 1)
            );
        }
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let err = ProfileSet::paper().get("resnet").unwrap_err().to_string();
        assert!(
            err.contains("resnet") && err.contains("speechrecognition"),
            "{err}"
        );
    }

    #[test]
    fn rejects_negative_coefficients() {
        let text = PAPER_JSON.replacen("\"a\": ", "\"a\": -", 1);
        assert!(matches!(
            ProfileSet::from_json(&text),
            Err(ProfileError::Invalid { .. })
        ));
    }
}
