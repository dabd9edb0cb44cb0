//! A synthetic workload generator calibrated to the Azure Functions 2019 trace's published statistics
//! (Shahrad et al., ATC'20): per-app rates spanning eight orders of magnitude, a diurnal swing of about
//! 2× over a constant base of 50 % of the peak, lower weekends, bursts, and an inter-arrival CV above 1
//! for about 40 % of apps.
//!
//! Arrivals are a renewal process in *operational time* (gamma gaps with mean 1 and the requested CV;
//! CV 0 is a timer) mapped to wall time through the rate λ(t) = rate · diurnal(t) · weekly(t) ·
//! burst(t). Bursts are a two-state Markov chain per minute (mean 5 min long, about 5 % of the time at
//! `burst`× the rate), normalised so the long-run mean rate stays `rate`. Timers (CV 0) are not
//! modulated. Everything is drawn from one seeded RNG, so a spec always yields the same series.
use super::{KeyValues, duration_and_functions};
use crate::series::{DAY_S, Series};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma};

/// Parameters of `synthetic:` workloads.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// RNG seed.
    pub seed: u64,
    /// Mean invocations per second for every function; `None` draws each from the trace's rate mix.
    pub rate_per_s: Option<f64>,
    /// Renewal CV for every function; `None` draws it (13 % timers, 47 % in [0.3, 0.9], 40 % in (1, 4]).
    pub cv: Option<f64>,
    /// Burst multiplier; `None` means 4× for functions with CV > 1 and no bursts otherwise.
    pub burst: Option<f64>,
    /// Length of each series in hours.
    pub hours: f64,
    /// Number of functions (series).
    pub functions: usize,
}

impl SyntheticSpec {
    pub(crate) fn from_args(kv: &KeyValues) -> Result<Self, String> {
        kv.check_keys(&["seed", "rate", "cv", "burst", "hours", "functions"])?;
        let seed = kv.get("seed")?.ok_or("seed=N is required")?;
        let rate_per_s: Option<f64> = kv.get("rate")?;
        if let Some(r) = rate_per_s
            && !(r > 0.0 && r <= 10_000.0)
        {
            return Err(format!("rate={r} must be in (0, 10000] per second"));
        }
        let cv: Option<f64> = kv.get("cv")?;
        if let Some(c) = cv
            && !(0.0..=10.0).contains(&c)
        {
            return Err(format!("cv={c} must be in [0, 10]"));
        }
        let burst: Option<f64> = kv.get("burst")?;
        if let Some(b) = burst
            && !(1.0..=100.0).contains(&b)
        {
            return Err(format!("burst={b} must be in [1, 100]"));
        }
        let (hours, functions) = duration_and_functions(kv)?;
        Ok(Self {
            seed,
            rate_per_s,
            cv,
            burst,
            hours,
            functions,
        })
    }
}

/// Draws a per-app mean rate (per minute) from a piecewise log-uniform mix calibrated so that
/// P(≤ 1/h) = 0.45, P(≤ 1/min) = 0.81 and P(> 1/s) = 0.03, over 10⁻⁴ … 10⁴ per minute.
pub fn draw_rate_per_min(rng: &mut impl RngExt) -> f64 {
    let hour = (1.0f64 / 60.0).log10();
    let sec = 60.0f64.log10();
    let segments = [
        (0.45, -4.0, hour),
        (0.36, hour, 0.0),
        (0.16, 0.0, sec),
        (0.03, sec, 4.0),
    ];
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (mass, lo, hi) in segments {
        acc += mass;
        if u < acc {
            return 10f64.powf(lo + (hi - lo) * rng.random::<f64>());
        }
    }
    10f64.powf(sec + (4.0 - sec) * rng.random::<f64>())
}

/// Draws a renewal CV: 13 % timers (0), 47 % in [0.3, 0.9], 40 % in (1, 4].
pub fn draw_cv(rng: &mut impl RngExt) -> f64 {
    let u: f64 = rng.random();
    if u < 0.13 {
        0.0
    } else if u < 0.60 {
        0.3 + 0.6 * rng.random::<f64>()
    } else {
        1.0 + 3.0 * rng.random::<f64>().max(1e-6)
    }
}

/// Diurnal factor with mean 1: the peak at noon is twice the trough at midnight.
pub fn diurnal(t_s: u64) -> f64 {
    let phase = (t_s % DAY_S) as f64 / DAY_S as f64;
    let shape = (1.0 - (2.0 * std::f64::consts::PI * phase).cos()) / 2.0;
    (0.5 + 0.5 * shape) / 0.75
}

/// Weekly factor: days 5 and 6 of each week (the weekend) run at 80 %.
fn weekly(t_s: u64) -> f64 {
    if (t_s / DAY_S) % 7 >= 5 { 0.8 } else { 1.0 }
}

const BURST_ON: f64 = 0.01;
const BURST_OFF: f64 = 0.2;

/// Generates the spec's series.
pub fn generate(spec: &SyntheticSpec) -> Vec<Series> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let seconds = (spec.hours * 3600.0).round() as u64;
    (0..spec.functions)
        .map(|i| {
            let rate = spec
                .rate_per_s
                .unwrap_or_else(|| draw_rate_per_min(&mut rng) / 60.0);
            let cv = spec.cv.unwrap_or_else(|| draw_cv(&mut rng));
            let burst = spec.burst.unwrap_or(if cv > 1.0 { 4.0 } else { 1.0 });
            // Each function gets its own stream so adding functions does not change earlier ones.
            let fseed = rng.random::<u64>();
            Series {
                name: format!("synthetic-s{}-f{i}", spec.seed),
                step_s: 1,
                counts: one_function(fseed, rate, cv, burst, seconds),
            }
        })
        .collect()
}

fn one_function(seed: u64, rate: f64, cv: f64, burst: f64, seconds: u64) -> Vec<u32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // Gap in operational time: mean 1, the requested CV (gamma shape 1/cv²); CV 0 is a timer.
    let gamma = (cv > 0.0)
        .then(|| Gamma::new(1.0 / (cv * cv), cv * cv).ok())
        .flatten();
    let gap = |rng: &mut Xoshiro256PlusPlus| gamma.as_ref().map_or(1.0, |g| g.sample(rng));
    let timer = gamma.is_none();
    let pi_on = BURST_ON / (BURST_ON + BURST_OFF);
    let burst_norm = 1.0 + (burst - 1.0) * pi_on;
    let mut in_burst = false;
    let mut tau = 0.0f64;
    let mut next = rng.random::<f64>() * gap(&mut rng);
    let mut counts = Vec::with_capacity(seconds as usize);
    for t in 0..seconds {
        if t % 60 == 0 && burst > 1.0 {
            let flip: f64 = rng.random();
            in_burst = if in_burst {
                flip >= BURST_OFF
            } else {
                flip < BURST_ON
            };
        }
        let lam = if timer {
            rate
        } else {
            let b = if in_burst { burst } else { 1.0 } / burst_norm;
            rate * diurnal(t) * weekly(t) * b
        };
        let end = tau + lam;
        let mut c = 0u32;
        while next < end {
            c = c.saturating_add(1);
            next += gap(&mut rng).max(1e-9);
        }
        tau = end;
        counts.push(c);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_mix_matches_published_shares() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let n = 20_000;
        let rates: Vec<f64> = (0..n).map(|_| draw_rate_per_min(&mut rng)).collect();
        let share =
            |f: &dyn Fn(f64) -> bool| rates.iter().filter(|&&r| f(r)).count() as f64 / n as f64;
        assert!((share(&|r| r <= 1.0 / 60.0) - 0.45).abs() < 0.02);
        assert!((share(&|r| r <= 1.0) - 0.81).abs() < 0.02);
        assert!((share(&|r| r > 60.0) - 0.03).abs() < 0.01);
        let cvs: Vec<f64> = (0..n).map(|_| draw_cv(&mut rng)).collect();
        let over = cvs.iter().filter(|&&c| c > 1.0).count() as f64 / n as f64;
        assert!((over - 0.40).abs() < 0.02);
    }

    #[test]
    fn diurnal_swing_is_two_x_over_half_base() {
        let lo = diurnal(0);
        let hi = diurnal(DAY_S / 2);
        assert!((hi / lo - 2.0).abs() < 1e-9);
        let mean = (0..DAY_S).step_by(60).map(diurnal).sum::<f64>() / (DAY_S / 60) as f64;
        assert!((mean - 1.0).abs() < 1e-6);
    }
}
