//! Small statistics for the profiler: mean and sample standard deviation, the median, and the `n` of
//! the planner's `mean + n·std` initialisation estimate from a target probability of exceeding it.
//!
//! **n from a probability.** Assuming initialisation times are normal, `P(init > mean + n·std) = p` gives
//! `n = Φ⁻¹(1 − p)` (p = 0.05 → n ≈ 1.645; the paper's fixed n = 3 is p ≈ 0.00135). Φ is computed from the
//! complementary error function and inverted by bisection: exact to well below the noise of any
//! measurement, and no table to get wrong.

/// Mean and sample standard deviation (n − 1); `None` for no values. One value has std 0.
pub fn mean_std(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return Some((mean, 0.0));
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, var.sqrt()))
}

/// The median (the mean of the middle two for an even count); `None` for no values. NaNs sort last.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// erfc(x), fractional error below 1.2e-7 everywhere (the classic Chebyshev-fitted rational form).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Why a probability was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("exceedance probability {0} must be in (0, 0.5]: the estimate mean + n·std with n ≥ 0")]
pub struct ProbabilityError(pub f64);

/// The `n` with `P(Z > n) = p` for a standard normal Z, `p` in (0, 0.5].
pub fn n_for_exceed_prob(p: f64) -> Result<f64, ProbabilityError> {
    if !(p.is_finite() && p > 0.0 && p <= 0.5) {
        return Err(ProbabilityError(p));
    }
    // normal_tail is decreasing; n = 40 has a tail far below any f64 probability a user can mean.
    let (mut lo, mut hi) = (0.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_tail(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn n_matches_the_normal_quantiles() {
        // Standard normal upper quantiles (textbook values).
        for (p, n) in [
            (0.5, 0.0),
            (0.158_655_25, 1.0),
            (0.05, 1.644_853_6),
            (0.025, 1.959_964),
            (0.01, 2.326_347_9),
            (0.001_349_9, 3.0),
        ] {
            let got = n_for_exceed_prob(p).unwrap();
            assert!((got - n).abs() < 2e-4, "p={p}: {got} vs {n}");
        }
        // Smaller p, larger n.
        assert!(n_for_exceed_prob(0.01).unwrap() > n_for_exceed_prob(0.05).unwrap());
    }

    #[test]
    fn bad_probabilities_are_errors() {
        for p in [0.0, -0.1, 0.6, 1.0, f64::NAN] {
            assert!(n_for_exceed_prob(p).is_err(), "{p}");
        }
    }

    #[test]
    fn mean_std_and_median() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - 1.290_994_4).abs() < 1e-6);
        assert_eq!(mean_std(&[5.0]), Some((5.0, 0.0)));
        assert_eq!(mean_std(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
