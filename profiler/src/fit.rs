//! Fitting the inference-time model `t(B, r) = a·B/r + b·B + c` with `a, b, c ≥ 0` to measured cells.
//!
//! **Why non-negative.** A negative coefficient makes latency fall as the batch grows or rise with more
//! cores: the defect of the SMIless artifact's fits (`reference/smiless-artifact.md` §3). The planner
//! extrapolates the model to batches and hardware it did not measure, so it must be physical.
//!
//! **How.** The model is linear in its features `(B/r, B, 1)`. Each feature subset (the "active set") is
//! fitted by ordinary least squares with linfa-linear (no intercept: the constant is a feature column); the
//! non-negative least-squares optimum is the unconstrained optimum on its own active set, so the best
//! *feasible* (all coefficients ≥ 0) of the 8 subsets is the exact NNLS solution. Three coefficients make
//! the enumeration cheaper than an iterative solver and exact.
//!
//! **Weights.** Every row is divided by its measured time, so the fit minimises squared *relative* error:
//! a 10 ms cell weighs as much as a 2 s cell, which is what MAPE (the reported error) measures.
//!
//! linfa pins ndarray 0.16; it is used here only, behind plain slices, so nothing else depends on it.
use linfa::traits::Fit as _;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2};
use optimizer::profile::LatencyModel;

/// One measured cell: a call of `batch` requests on speed `r` (cores, or the GPU fraction) took `t_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub batch: u32,
    pub r: f64,
    pub t_s: f64,
}

/// Why a fit could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("a fit needs at least {need} measured points, got {got}")]
    TooFewPoints { need: usize, got: usize },
    #[error(
        "measured point {0:?} is not usable: batch ≥ 1, r > 0 and a positive finite time are required"
    )]
    BadPoint(Point),
    #[error(
        "no non-negative fit exists for these points (every active set was singular or infeasible)"
    )]
    NoFeasibleFit,
}

/// A fitted model and its error on the points it was fitted to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub model: LatencyModel,
    /// Mean absolute percentage error over the fitted points, as a fraction (0.05 = 5 %).
    pub mape: f64,
}

fn features(p: &Point) -> [f64; 3] {
    let b = f64::from(p.batch);
    [b / p.r, b, 1.0]
}

fn check(points: &[Point]) -> Result<(), FitError> {
    for p in points {
        if p.batch == 0 || !(p.r.is_finite() && p.r > 0.0) || !(p.t_s.is_finite() && p.t_s > 0.0) {
            return Err(FitError::BadPoint(*p));
        }
    }
    Ok(())
}

/// Unconstrained relative least squares on the feature columns in `active` (linfa-linear OLS).
fn ols_on(points: &[Point], active: &[usize]) -> Option<[f64; 3]> {
    if active.is_empty() {
        return Some([0.0; 3]);
    }
    let mut x = Array2::<f64>::zeros((points.len(), active.len()));
    let mut y = Array1::<f64>::zeros(points.len());
    for (i, p) in points.iter().enumerate() {
        let f = features(p);
        let w = 1.0 / p.t_s;
        for (j, &k) in active.iter().enumerate() {
            x[[i, j]] = f[k] * w;
        }
        y[i] = 1.0;
    }
    let ds = linfa::Dataset::new(x, y);
    let model = LinearRegression::new()
        .with_intercept(false)
        .fit(&ds)
        .ok()?;
    let params = model.params();
    let mut coef = [0.0; 3];
    for (j, &k) in active.iter().enumerate() {
        let v = *params.get(j)?;
        if !v.is_finite() {
            return None;
        }
        coef[k] = v;
    }
    Some(coef)
}

fn relative_sse(points: &[Point], coef: &[f64; 3]) -> f64 {
    points
        .iter()
        .map(|p| {
            let f = features(p);
            let pred = f[0] * coef[0] + f[1] * coef[1] + f[2] * coef[2];
            ((pred - p.t_s) / p.t_s).powi(2)
        })
        .sum()
}

/// The plain (unconstrained) least-squares fit on all three features: what a naive fit would report, kept
/// so tests and the docs can show where it goes negative.
pub fn ols(points: &[Point]) -> Result<LatencyModel, FitError> {
    check(points)?;
    let [a, b, c] = ols_on(points, &[0, 1, 2]).ok_or(FitError::NoFeasibleFit)?;
    Ok(LatencyModel { a, b, c })
}

/// The non-negative relative-least-squares fit (see the module documentation).
pub fn fit(points: &[Point]) -> Result<Fit, FitError> {
    check(points)?;
    if points.len() < 3 {
        return Err(FitError::TooFewPoints {
            need: 3,
            got: points.len(),
        });
    }
    let mut best: Option<([f64; 3], f64)> = None;
    // Bit k of `set` says feature k is active: all 8 subsets, the empty one included (it predicts 0
    // everywhere, the worst feasible answer, so it only wins when nothing else is feasible — and then it
    // is rejected below because a profile must predict a positive time).
    for set in 0u8..8 {
        let active: Vec<usize> = (0..3).filter(|k| set & (1 << k) != 0).collect();
        let Some(coef) = ols_on(points, &active) else {
            continue;
        };
        // Tiny negative round-off on an active coefficient is zero, not infeasibility.
        if coef.iter().any(|&v| v < -1e-12) {
            continue;
        }
        let coef = coef.map(|v| v.max(0.0));
        let err = relative_sse(points, &coef);
        if best.is_none_or(|(_, e)| err < e) {
            best = Some((coef, err));
        }
    }
    let (coef, _) = best.ok_or(FitError::NoFeasibleFit)?;
    if coef.iter().sum::<f64>() <= 0.0 {
        return Err(FitError::NoFeasibleFit);
    }
    let model = LatencyModel {
        a: coef[0],
        b: coef[1],
        c: coef[2],
    };
    Ok(Fit {
        model,
        mape: mape(&model, points),
    })
}

/// Mean absolute percentage error of `model` on `points`, as a fraction.
pub fn mape(model: &LatencyModel, points: &[Point]) -> f64 {
    if points.is_empty() {
        return 0.0;
    }
    let sum: f64 = points
        .iter()
        .map(|p| ((model.time(p.batch, p.r) - p.t_s) / p.t_s).abs())
        .sum();
    sum / points.len() as f64
}

/// Fits without `points[held]` and returns the relative error of the prediction at that point.
pub fn heldout_error(points: &[Point], held: usize) -> Result<f64, FitError> {
    let Some(target) = points.get(held) else {
        return Err(FitError::TooFewPoints {
            need: held + 1,
            got: points.len(),
        });
    };
    let rest: Vec<Point> = points
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != held)
        .map(|(_, p)| *p)
        .collect();
    let f = fit(&rest)?;
    Ok(((f.model.time(target.batch, target.r) - target.t_s) / target.t_s).abs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn grid(m: &LatencyModel, cores: &[f64], batches: &[u32]) -> Vec<Point> {
        cores
            .iter()
            .flat_map(|&r| {
                batches.iter().map(move |&batch| Point {
                    batch,
                    r,
                    t_s: m.time(batch, r),
                })
            })
            .collect()
    }

    #[test]
    fn recovers_known_coefficients_exactly() {
        let truth = LatencyModel {
            a: 0.8,
            b: 0.05,
            c: 0.2,
        };
        let pts = grid(&truth, &[1.0, 2.0, 4.0], &[1, 2, 4, 8, 16]);
        let f = fit(&pts).unwrap();
        assert!((f.model.a - 0.8).abs() < 1e-9, "{f:?}");
        assert!((f.model.b - 0.05).abs() < 1e-9, "{f:?}");
        assert!((f.model.c - 0.2).abs() < 1e-9, "{f:?}");
        assert!(f.mape < 1e-9);
    }

    #[test]
    fn recovers_known_coefficients_under_noise() {
        let truth = LatencyModel {
            a: 0.5,
            b: 0.02,
            c: 0.1,
        };
        // ±3 % deterministic "noise", alternating.
        let pts: Vec<Point> = grid(&truth, &[1.0, 2.0], &[1, 2, 4, 8, 16])
            .into_iter()
            .enumerate()
            .map(|(i, p)| Point {
                t_s: p.t_s * if i % 2 == 0 { 1.03 } else { 0.97 },
                ..p
            })
            .collect();
        let f = fit(&pts).unwrap();
        assert!((f.model.a - 0.5).abs() / 0.5 < 0.1, "{f:?}");
        assert!(f.mape < 0.04, "{f:?}");
    }

    #[test]
    fn clamps_where_ols_goes_negative() {
        // Latency that falls a little as the batch grows on one core (the artifact's defect): plain OLS
        // answers with a negative per-item term; the constrained fit must not.
        let pts = vec![
            Point {
                batch: 1,
                r: 1.0,
                t_s: 1.00,
            },
            Point {
                batch: 2,
                r: 1.0,
                t_s: 0.95,
            },
            Point {
                batch: 4,
                r: 1.0,
                t_s: 0.90,
            },
            Point {
                batch: 1,
                r: 2.0,
                t_s: 0.80,
            },
            Point {
                batch: 4,
                r: 2.0,
                t_s: 0.60,
            },
        ];
        let naive = ols(&pts).unwrap();
        assert!(
            naive.a < 0.0 || naive.b < 0.0 || naive.c < 0.0,
            "the test data must make OLS negative: {naive:?}"
        );
        let f = fit(&pts).unwrap();
        let m = f.model;
        assert!(m.a >= 0.0 && m.b >= 0.0 && m.c >= 0.0, "{m:?}");
        assert!(m.time(16, 1.0) >= m.time(1, 1.0));
        // It is the best feasible fit: no feasible single-feature model does better.
        let constant = LatencyModel {
            a: 0.0,
            b: 0.0,
            c: 0.85,
        };
        assert!(
            relative_sse(&pts, &[m.a, m.b, m.c]) <= relative_sse(&pts, &[0.0, 0.0, constant.c])
        );
    }

    #[test]
    fn heldout_point_is_predicted_from_the_others() {
        let truth = LatencyModel {
            a: 1.0,
            b: 0.1,
            c: 0.3,
        };
        let pts = grid(&truth, &[1.0, 2.0], &[1, 2, 4, 8, 16]);
        let e = heldout_error(&pts, 7).unwrap();
        assert!(e < 1e-9, "{e}");
        // A wrong point is not predicted: the error shows it.
        let mut bad = pts.clone();
        bad[7].t_s *= 2.0;
        assert!(heldout_error(&bad, 7).unwrap() > 0.4);
    }

    #[test]
    fn rejects_unusable_input() {
        assert!(matches!(
            fit(&[Point {
                batch: 1,
                r: 1.0,
                t_s: 1.0
            }]),
            Err(FitError::TooFewPoints { .. })
        ));
        let bad = [Point {
            batch: 0,
            r: 1.0,
            t_s: 1.0,
        }; 3];
        assert!(matches!(fit(&bad), Err(FitError::BadPoint(_))));
        let nan = [Point {
            batch: 1,
            r: 1.0,
            t_s: f64::NAN,
        }; 3];
        assert!(matches!(fit(&nan), Err(FitError::BadPoint(_))));
        assert!(heldout_error(&[], 0).is_err());
    }
}
