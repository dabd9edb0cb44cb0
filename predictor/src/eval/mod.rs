//! The comparison: each forecaster is fitted on the first part of every series and then walks the
//! rest window by window, forecasting at every window boundary from everything seen so far.
//!
//! Metrics, pooled over all test windows of all series:
//! - **under-prediction rate**: share of windows whose actual count exceeds the forecast upper edge;
//! - **over-provisioning**: Σ max(0, upper − actual) / Σ actual, the excess capacity relative to the
//!   load actually served (0.5 = half again as much as needed);
//! - **inter-arrival MAE** (s): at each boundary, |forecast gap − actual gap| where the actual gap
//!   runs from the last arrival before the boundary to the first one after it;
//! - **predict µs**: mean wall time of one `forecast` call; **train s**: total fitting time.
//!
//! For forecasters with class probabilities (the LSTM) the coverage target is also swept, which gives
//! its whole under-prediction/over-provisioning curve; [`MatchedRow`] reads that curve at each
//! baseline's over-provisioning, the fair "at equal or lower over-provisioning" comparison.
mod render;

use crate::error::{Error, Result};
use crate::forecast::Forecaster;
use crate::lstm::LstmForecaster;
use crate::series::{History, Series};
use serde::Serialize;
use std::time::Instant;

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Forecast window in seconds (a multiple of the series step).
    pub window_s: u32,
    /// Share of each series used for fitting.
    pub train_fraction: f64,
    /// Coverage targets swept for probabilistic forecasters.
    pub quantiles: Vec<f32>,
    /// Test windows kept for the plot (of the first series).
    pub plot_windows: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            window_s: 60,
            train_fraction: 0.5,
            // Fine steps so a baseline's over-provisioning can be matched closely.
            quantiles: (1..=39)
                .map(|i| i as f32 / 40.0)
                .chain([0.98, 0.99, 0.995])
                .collect(),
            plot_windows: 360,
        }
    }
}

/// One forecaster's pooled metrics (the `--json` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRow {
    pub forecaster: String,
    pub under_prediction_rate: f64,
    pub over_provisioning: f64,
    pub iat_mae_s: f64,
    pub predict_us: f64,
    pub train_s: f64,
}

/// A point of the LSTM's trade-off curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    pub quantile: f32,
    pub under_prediction_rate: f64,
    pub over_provisioning: f64,
}

/// The LSTM read at a baseline's over-provisioning: the lowest LSTM under-prediction rate over
/// coverage targets whose over-provisioning is at most the baseline's (`None` if even the lowest
/// target over-provisions more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedRow {
    pub baseline: String,
    pub baseline_under: f64,
    pub baseline_over: f64,
    pub lstm: Option<SweepPoint>,
}

/// Actual and forecast counts of the plotted windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotTrace {
    pub series: String,
    pub window_s: u32,
    pub actual: Vec<u32>,
    pub forecasts: Vec<(String, Vec<u32>)>,
}

/// Everything an evaluation produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub rows: Vec<EvalRow>,
    pub sweep: Vec<SweepPoint>,
    pub matched: Vec<MatchedRow>,
    pub series: usize,
    pub test_windows: usize,
    pub plot: Option<PlotTrace>,
}

/// Progress callbacks (the CLI draws bars with them).
pub trait Progress {
    /// A new stage with `total` units of work.
    fn stage(&mut self, _name: &str, _total: u64) {}
    /// `n` more units done.
    fn advance(&mut self, _n: u64) {}
}

/// Progress that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Default, Clone)]
struct Acc {
    windows: u64,
    under: u64,
    excess: f64,
    actual: f64,
    iat_abs: f64,
    iat_n: u64,
    predict_ns: u128,
    predicts: u64,
    train_s: f64,
}

impl Acc {
    fn under_rate(&self) -> f64 {
        self.under as f64 / self.windows.max(1) as f64
    }
    fn over(&self) -> f64 {
        self.excess / self.actual.max(1.0)
    }
}

/// Builds the forecasters for series number `i` (fresh ones per series).
pub type Factory<'a> = &'a dyn Fn(usize) -> Result<Vec<Box<dyn Forecaster>>>;

/// Evaluates the forecasters that `make` builds on `series`.
pub fn evaluate(
    series: &[Series],
    make: Factory<'_>,
    cfg: &EvalConfig,
    progress: &mut dyn Progress,
) -> Result<EvalReport> {
    if series.is_empty() {
        return Err(Error::TooLittleData("no series to evaluate".into()));
    }
    if !(0.05..=0.95).contains(&cfg.train_fraction) {
        return Err(Error::Invalid(
            "train fraction must be in [0.05, 0.95]".into(),
        ));
    }
    let names: Vec<String> = make(0)?.iter().map(|f| f.name()).collect();
    let mut acc = vec![Acc::default(); names.len()];
    let mut sweep_acc = vec![Acc::default(); cfg.quantiles.len()];
    let mut sweep_owner: Option<usize> = None;
    let mut plot = None;
    let mut test_windows = 0usize;
    let per_window = (cfg.window_s / series[0].step_s.max(1)).max(1) as usize;
    let total: u64 = series
        .iter()
        .map(|s| {
            let n = s.counts.len() / per_window;
            (n - (n as f64 * cfg.train_fraction) as usize) as u64
        })
        .sum();
    progress.stage("fit", (series.len() * names.len()) as u64);
    let mut fitted: Vec<Vec<Box<dyn Forecaster>>> = Vec::with_capacity(series.len());
    let mut splits = Vec::with_capacity(series.len());
    for (si, s) in series.iter().enumerate() {
        let per = (cfg.window_s / s.step_s.max(1)).max(1) as usize;
        let n_windows = s.counts.len() / per;
        let train_windows = (n_windows as f64 * cfg.train_fraction) as usize;
        if train_windows == 0 || train_windows >= n_windows {
            return Err(Error::TooLittleData(format!(
                "series {} has {n_windows} windows of {} s; need at least 2",
                s.name, cfg.window_s
            )));
        }
        let (train, test) = s.split_at(train_windows * per);
        let history = History::from_series(&train, cfg.window_s)?;
        let mut fs = make(si)?;
        if fs.len() != names.len() {
            return Err(Error::Invalid(
                "the factory built a different set of forecasters".into(),
            ));
        }
        for (i, f) in fs.iter_mut().enumerate() {
            let t0 = Instant::now();
            f.fit(&history)?;
            acc[i].train_s += t0.elapsed().as_secs_f64();
            progress.advance(1);
        }
        fitted.push(fs);
        splits.push((history, test, per));
    }
    progress.stage("evaluate", total);
    for (si, (fs, (history, test, per))) in fitted.iter().zip(splits).enumerate() {
        let mut h = history;
        let counts = &test.counts[..(test.counts.len() / per) * per];
        // next_event[i]: first step >= i with an arrival.
        let mut next_event = vec![usize::MAX; counts.len() + 1];
        for i in (0..counts.len()).rev() {
            next_event[i] = if counts[i] > 0 { i } else { next_event[i + 1] };
        }
        let plot_from = (counts.len() / per).saturating_sub(cfg.plot_windows);
        let mut trace = (si == 0).then(|| PlotTrace {
            series: test.name.clone(),
            window_s: cfg.window_s,
            actual: Vec::new(),
            forecasts: names.iter().map(|n| (n.clone(), Vec::new())).collect(),
        });
        for (w, chunk) in counts.chunks_exact(per).enumerate() {
            let start = w * per;
            let actual = chunk.iter().map(|&c| u64::from(c)).sum::<u64>();
            let actual_gap = match (h.since_last_event_s(), next_event[start]) {
                (Some(e), n) if n != usize::MAX => {
                    Some((e + ((n - start) as u64) * u64::from(test.step_s)) as f64)
                }
                _ => None,
            };
            for (i, f) in fs.iter().enumerate() {
                let t0 = Instant::now();
                let fc = f.forecast(&h);
                acc[i].predict_ns += t0.elapsed().as_nanos();
                acc[i].predicts += 1;
                let a = &mut acc[i];
                a.windows += 1;
                let upper = u64::from(fc.count_upper);
                if upper < actual {
                    a.under += 1;
                }
                a.excess += upper.saturating_sub(actual) as f64;
                a.actual += actual as f64;
                if let Some(g) = actual_gap {
                    a.iat_abs += (f64::from(fc.next_interarrival_s) - g).abs();
                    a.iat_n += 1;
                }
                if let Some(t) = trace.as_mut()
                    && w >= plot_from
                {
                    t.forecasts[i].1.push(fc.count_upper);
                }
                if sweep_owner.is_none_or(|o| o == i)
                    && let Some(p) = f.class_distribution(&h)
                {
                    sweep_owner = Some(i);
                    let classes = crate::forecast::CountClasses::default();
                    for (q, sa) in cfg.quantiles.iter().zip(sweep_acc.iter_mut()) {
                        let up = u64::from(classes.upper(LstmForecaster::pick_class(&p, *q).0));
                        sa.windows += 1;
                        if up < actual {
                            sa.under += 1;
                        }
                        sa.excess += up.saturating_sub(actual) as f64;
                        sa.actual += actual as f64;
                    }
                }
            }
            if let Some(t) = trace.as_mut()
                && w >= plot_from
            {
                t.actual.push(actual.min(u64::from(u32::MAX)) as u32);
            }
            h.extend(chunk);
            test_windows += 1;
            progress.advance(1);
        }
        if trace.is_some() {
            plot = trace;
        }
    }
    let rows: Vec<EvalRow> = names
        .iter()
        .zip(&acc)
        .map(|(n, a)| EvalRow {
            forecaster: n.clone(),
            under_prediction_rate: a.under_rate(),
            over_provisioning: a.over(),
            iat_mae_s: if a.iat_n > 0 {
                a.iat_abs / a.iat_n as f64
            } else {
                f64::NAN
            },
            predict_us: a.predict_ns as f64 / 1000.0 / a.predicts.max(1) as f64,
            train_s: a.train_s,
        })
        .collect();
    let sweep: Vec<SweepPoint> = match sweep_owner {
        Some(_) => cfg
            .quantiles
            .iter()
            .zip(&sweep_acc)
            .map(|(q, a)| SweepPoint {
                quantile: *q,
                under_prediction_rate: a.under_rate(),
                over_provisioning: a.over(),
            })
            .collect(),
        None => Vec::new(),
    };
    let matched = match sweep_owner {
        None => Vec::new(),
        Some(owner) => rows
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != owner)
            .map(|(_, r)| MatchedRow {
                baseline: r.forecaster.clone(),
                baseline_under: r.under_prediction_rate,
                baseline_over: r.over_provisioning,
                lstm: sweep
                    .iter()
                    .filter(|p| p.over_provisioning <= r.over_provisioning + 1e-12)
                    .min_by(|a, b| a.under_prediction_rate.total_cmp(&b.under_prediction_rate))
                    .cloned(),
            })
            .collect(),
    };
    Ok(EvalReport {
        rows,
        sweep,
        matched,
        series: series.len(),
        test_windows,
        plot,
    })
}
