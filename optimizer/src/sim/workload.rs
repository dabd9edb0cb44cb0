//! A minimal arrival generator for the simulator's own tests and benchmarks, so the optimizer crate
//! needs no workload crate. The CLI (`smiless sim --workload …`) takes real workloads (the OrcBench
//! models of the Azure trace, the calibrated synthetic generator, Azure CSV files) from the predictor
//! crate instead.
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Poisson arrivals at `rate_per_s` for `duration_s` seconds.
pub fn poisson(seed: u64, rate_per_s: f64, duration_s: f64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::new();
    if !(rate_per_s > 0.0 && rate_per_s.is_finite()) {
        return out;
    }
    let mut t = 0.0;
    loop {
        t += exp(&mut rng, 1.0 / rate_per_s);
        if t >= duration_s {
            return out;
        }
        out.push(t);
    }
}

/// A bursty (on/off modulated Poisson) workload: quiet periods at `base_rate` alternate with bursts at
/// `burst_factor × base_rate`; mean quiet and burst lengths in seconds.
pub fn bursty(
    seed: u64,
    base_rate: f64,
    burst_factor: f64,
    quiet_s: f64,
    burst_s: f64,
    duration_s: f64,
) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::new();
    if !(base_rate > 0.0 && burst_factor >= 1.0 && quiet_s > 0.0 && burst_s > 0.0) {
        return out;
    }
    let (mut t, mut on) = (0.0, false);
    while t < duration_s {
        let len = exp(&mut rng, if on { burst_s } else { quiet_s });
        let end = (t + len).min(duration_s);
        let rate = if on {
            base_rate * burst_factor
        } else {
            base_rate
        };
        let mut s = t;
        loop {
            s += exp(&mut rng, 1.0 / rate);
            if s >= end {
                break;
            }
            out.push(s);
        }
        t = end;
        on = !on;
    }
    out
}

fn exp(rng: &mut Xoshiro256PlusPlus, mean: f64) -> f64 {
    // Inverse CDF; 1 − u is in (0, 1] so the log is finite.
    -mean * (1.0 - rng.random::<f64>()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_has_its_rate_and_is_seeded() {
        let a = poisson(7, 0.5, 20_000.0);
        assert!(
            (a.len() as f64 / 10_000.0 - 1.0).abs() < 0.05,
            "{}",
            a.len()
        );
        assert_eq!(a, poisson(7, 0.5, 20_000.0));
        assert_ne!(a, poisson(8, 0.5, 20_000.0));
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn bursty_is_overdispersed() {
        let a = bursty(1, 0.05, 20.0, 600.0, 60.0, 86_400.0);
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!(sd / m > 1.5, "cv {}", sd / m);
    }
}
