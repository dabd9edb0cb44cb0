//! The bill of provisioned replica time: every replica is billed for the seconds it spends
//! initialising, busy and idle, at its hardware's price (DESIGN §6, the paper's cost metric).
use serde::Serialize;

use crate::hardware::Hardware;
use crate::prices::Prices;

/// Provisioned time of replicas, split the way the cost metric is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ledger {
    /// $ while initialising, busy and idle (provisioned resource-seconds × price).
    pub cost_init: f64,
    pub cost_busy: f64,
    pub cost_idle: f64,
    pub gpu_cost: f64,
    /// Core-seconds of CPU replicas and GPU-seconds (share-weighted) of GPU replicas.
    pub cpu_core_s: f64,
    pub gpu_s: f64,
}

/// The three states a provisioned replica is billed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Billed {
    Init,
    Busy,
    Idle,
}

impl Ledger {
    /// Bills `dt` seconds of one replica on `hw` in state `what`.
    pub fn bill(&mut self, prices: &Prices, hw: Hardware, what: Billed, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        let c = prices.per_second(hw) * dt;
        match what {
            Billed::Init => self.cost_init += c,
            Billed::Busy => self.cost_busy += c,
            Billed::Idle => self.cost_idle += c,
        }
        match hw {
            Hardware::Cpu { cores } => self.cpu_core_s += f64::from(cores) * dt,
            Hardware::Gpu { share_pct } => {
                self.gpu_s += f64::from(share_pct) / 100.0 * dt;
                self.gpu_cost += c;
            }
        }
    }

    pub fn total(&self) -> f64 {
        self.cost_init + self.cost_busy + self.cost_idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bills_gpu_share_by_fraction() {
        let p = Prices::default();
        let mut l = Ledger::default();
        l.bill(&p, Hardware::Gpu { share_pct: 10 }, Billed::Idle, 3600.0);
        l.bill(&p, Hardware::Cpu { cores: 2 }, Billed::Busy, 3600.0);
        assert!((l.cost_idle - 0.306).abs() < 1e-9 && (l.cost_busy - 0.068).abs() < 1e-9);
        assert!((l.gpu_s - 360.0).abs() < 1e-9 && (l.cpu_core_s - 7200.0).abs() < 1e-9);
        assert!((l.gpu_cost - 0.306).abs() < 1e-9);
    }
}
