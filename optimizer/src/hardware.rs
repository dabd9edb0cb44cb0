//! Hardware choices for one replica: a CPU with a number of cores, or a share of one GPU through NVIDIA
//! MPS (`CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`). The textual form (`cpu:2`, `gpu:30`) is what the CLI prints
//! and what the JSON plan carries.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The two device kinds a profile distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

/// One replica's hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hardware {
    /// `cores` whole CPU cores.
    Cpu { cores: u32 },
    /// `share_pct` percent (1..=100) of one GPU's SMs through MPS.
    Gpu { share_pct: u32 },
}

impl Hardware {
    pub fn kind(self) -> DeviceKind {
        match self {
            Hardware::Cpu { .. } => DeviceKind::Cpu,
            Hardware::Gpu { .. } => DeviceKind::Gpu,
        }
    }

    /// The `r` of the latency model `t(B, r) = a·B/r + b·B + c`: cores for a CPU, the fraction of the
    /// GPU (0.1 for a 10 % share) for a GPU, so that `a` is "seconds per item on one core / a whole GPU".
    pub fn speed(self) -> f64 {
        match self {
            Hardware::Cpu { cores } => f64::from(cores),
            Hardware::Gpu { share_pct } => f64::from(share_pct) / 100.0,
        }
    }
}

impl fmt::Display for Hardware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hardware::Cpu { cores } => write!(f, "cpu:{cores}"),
            Hardware::Gpu { share_pct } => write!(f, "gpu:{share_pct}"),
        }
    }
}

/// Why a hardware string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hardware {0:?}: expected cpu:<cores 1..=256> or gpu:<share percent 1..=100>")]
pub struct HardwareParseError(pub String);

impl FromStr for Hardware {
    type Err = HardwareParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HardwareParseError(s.to_string());
        let (kind, amount) = s.split_once(':').ok_or_else(err)?;
        let amount: u32 = amount.trim().parse().map_err(|_| err())?;
        match kind.trim() {
            "cpu" if (1..=256).contains(&amount) => Ok(Hardware::Cpu { cores: amount }),
            "gpu" if (1..=100).contains(&amount) => Ok(Hardware::Gpu { share_pct: amount }),
            _ => Err(err()),
        }
    }
}

impl Serialize for Hardware {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hardware {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The hardware the planner may choose from. Defaults: CPU cores {1, 2, 4, 8} and GPU shares
/// {10, 20, …, 100} %, the space of DESIGN §1.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareSpace {
    pub cpu_cores: Vec<u32>,
    pub gpu_shares: Vec<u32>,
}

impl Default for HardwareSpace {
    fn default() -> Self {
        HardwareSpace {
            cpu_cores: vec![1, 2, 4, 8],
            gpu_shares: (1..=10).map(|i| i * 10).collect(),
        }
    }
}

impl HardwareSpace {
    /// CPU only (SMIless-Homo and the CPU-only baselines).
    pub fn cpu_only(&self) -> HardwareSpace {
        HardwareSpace {
            cpu_cores: self.cpu_cores.clone(),
            gpu_shares: Vec::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = Hardware> + '_ {
        let cpus = self.cpu_cores.iter().map(|&cores| Hardware::Cpu { cores });
        cpus.chain(
            self.gpu_shares
                .iter()
                .map(|&share_pct| Hardware::Gpu { share_pct }),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_form() {
        for hw in HardwareSpace::default().all() {
            assert_eq!(hw.to_string().parse::<Hardware>().unwrap(), hw);
        }
        assert_eq!(
            "gpu:30".parse::<Hardware>().unwrap(),
            Hardware::Gpu { share_pct: 30 }
        );
        assert!("gpu:130".parse::<Hardware>().is_err());
        assert!("tpu:1".parse::<Hardware>().is_err());
        assert!("cpu".parse::<Hardware>().is_err());
    }

    #[test]
    fn speed_is_cores_or_fraction() {
        assert_eq!(Hardware::Cpu { cores: 4 }.speed(), 4.0);
        assert!((Hardware::Gpu { share_pct: 30 }.speed() - 0.3).abs() < 1e-12);
    }
}
