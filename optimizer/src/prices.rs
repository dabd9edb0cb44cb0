//! Prices per resource-second. The file format is JSON, `{"cpu_core_hour": 0.034, "gpu_hour": 3.06}`
//! ($ per core-hour and per whole-GPU-hour); a GPU share is priced by its fraction. The default is the
//! SMIless paper's table (reference: smiless-artifact §2): AWS c6g at $0.034 per core-hour and a
//! p3.2xlarge (one V100) at $3.06 per hour, whose tenth (0.306) is the artifact's price of a 10 % share.
use serde::{Deserialize, Serialize};

use crate::hardware::Hardware;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// $ per CPU core per hour.
    pub cpu_core_hour: f64,
    /// $ per whole GPU per hour; a share of `p` % costs `p/100` of this.
    pub gpu_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            cpu_core_hour: 0.034,
            gpu_hour: 3.06,
        }
    }
}

/// Why a price file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error(
        "price file is not valid JSON of the form {{\"cpu_core_hour\": 0.034, \"gpu_hour\": 3.06}}: {0}"
    )]
    Json(#[from] serde_json::Error),
    #[error("price {field} = {value} must be a positive finite number")]
    NotPositive { field: &'static str, value: f64 },
}

impl Prices {
    pub fn from_json(text: &str) -> Result<Prices, PriceError> {
        let p: Prices = serde_json::from_str(text)?;
        for (field, value) in [("cpu_core_hour", p.cpu_core_hour), ("gpu_hour", p.gpu_hour)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(PriceError::NotPositive { field, value });
            }
        }
        Ok(p)
    }

    /// $ per second for one replica on `hw`.
    pub fn per_second(&self, hw: Hardware) -> f64 {
        match hw {
            Hardware::Cpu { cores } => f64::from(cores) * self.cpu_core_hour / 3600.0,
            Hardware::Gpu { share_pct } => f64::from(share_pct) / 100.0 * self.gpu_hour / 3600.0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_paper_table() {
        let p = Prices::default();
        // 10 % of the GPU is the artifact's 0.306 $/h; 2 cores is c6g.large's 0.068 $/h.
        assert!((p.per_second(Hardware::Gpu { share_pct: 10 }) * 3600.0 - 0.306).abs() < 1e-12);
        assert!((p.per_second(Hardware::Cpu { cores: 2 }) * 3600.0 - 0.068).abs() < 1e-12);
    }

    #[test]
    fn parses_and_rejects() {
        let p = Prices::from_json(r#"{"cpu_core_hour": 0.05, "gpu_hour": 2.0}"#).unwrap();
        assert_eq!(p.gpu_hour, 2.0);
        assert!(matches!(
            Prices::from_json(r#"{"cpu_core_hour": -1, "gpu_hour": 2.0}"#),
            Err(PriceError::NotPositive {
                field: "cpu_core_hour",
                ..
            })
        ));
        assert!(Prices::from_json(r#"{"cpu": 1}"#).is_err());
    }
}
