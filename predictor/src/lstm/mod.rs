//! LSTM forecasters (candle-nn on CPU): the count classifier ([`count`]) and the dual-input
//! inter-arrival model ([`iat`]) behind one [`LstmForecaster`], plus the non-blocking online
//! update ([`online`]).
//!
//! Training is deterministic from [`TrainConfig::seed`]: weights are initialised from our own seeded
//! RNG and batches are shuffled by it. Forecasts run on a plain-Rust copy of the weights
//! ([`infer`]), which keeps one forecast in the tens of microseconds.
pub mod count;
pub mod iat;
mod infer;
mod init;
pub mod online;
pub mod train;

use crate::error::{Error, Result};
use crate::forecast::{CountClasses, Forecast, Forecaster};
use crate::series::History;
use count::{CountMeta, CountModel};
use iat::{IatMeta, IatModel};
use serde::{Deserialize, Serialize};
use std::path::Path;
pub use train::{TrainConfig, TrainTrace};

/// Version of the on-disk layout written by [`LstmForecaster::save`].
const FORMAT: u32 = 1;

/// What fitting did: per candidate sequence length, the validation losses, for both models.
/// A model that could not be trained (too little data) has an empty list and a reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// (sequence length, trace) per candidate for the count model.
    pub count: Vec<(usize, TrainTrace)>,
    /// Chosen count sequence length.
    pub count_seq_len: Option<usize>,
    /// Why the count model was not trained, if it was not.
    pub count_skipped: Option<String>,
    /// (sequence length, trace) per candidate for the inter-arrival model.
    pub iat: Vec<(usize, TrainTrace)>,
    /// Chosen inter-arrival sequence length.
    pub iat_seq_len: Option<usize>,
    /// Why the inter-arrival model was not trained, if it was not.
    pub iat_skipped: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedMeta {
    format: u32,
    train: TrainConfig,
    quantile: f32,
    classes: CountClasses,
    count: Option<CountMeta>,
    iat: Option<IatMeta>,
}

/// The LSTM forecaster: count classes from the classifier, provisioned at the smallest class whose
/// cumulative probability reaches `quantile`; the next gap from the inter-arrival model.
pub struct LstmForecaster {
    cfg: TrainConfig,
    classes: CountClasses,
    quantile: f32,
    count: Option<CountModel>,
    iat: Option<IatModel>,
    report: FitReport,
}

impl std::fmt::Debug for LstmForecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LstmForecaster")
            .field("quantile", &self.quantile)
            .field("count", &self.count.as_ref().map(|m| &m.meta))
            .field("iat", &self.iat.as_ref().map(|m| &m.meta))
            .finish()
    }
}

impl LstmForecaster {
    /// An untrained forecaster; call [`Forecaster::fit`] before use.
    pub fn new(cfg: TrainConfig) -> Self {
        Self {
            cfg,
            classes: CountClasses::default(),
            quantile: 0.9,
            count: None,
            iat: None,
            report: FitReport::default(),
        }
    }

    /// Sets the coverage target used to pick the provisioned class (clamped to [0.01, 0.999]).
    pub fn with_quantile(mut self, q: f32) -> Self {
        self.quantile = q.clamp(0.01, 0.999);
        self
    }

    /// The coverage target.
    pub fn quantile(&self) -> f32 {
        self.quantile
    }

    /// What the last fit did.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Saves `meta.json`, `count.safetensors` and `iat.safetensors` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let meta = SavedMeta {
            format: FORMAT,
            train: self.cfg.clone(),
            quantile: self.quantile,
            classes: self.classes.clone(),
            count: self.count.as_ref().map(|m| m.meta.clone()),
            iat: self.iat.as_ref().map(|m| m.meta.clone()),
        };
        let json = serde_json::to_string_pretty(&meta)
            .map_err(|e| Error::Invalid(format!("cannot encode model metadata: {e}")))?;
        let p = dir.join("meta.json");
        std::fs::write(&p, json).map_err(|e| Error::io(&p, e))?;
        if let Some(m) = &self.count {
            m.save(&dir.join("count.safetensors"))?;
        }
        if let Some(m) = &self.iat {
            m.save(&dir.join("iat.safetensors"))?;
        }
        Ok(())
    }

    /// Loads a forecaster saved by [`LstmForecaster::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join("meta.json");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let meta: SavedMeta = serde_json::from_str(&text).map_err(|e| Error::Parse {
            source_name: p.display().to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if meta.format != FORMAT {
            return Err(Error::Model {
                path: p,
                message: format!("format {} (this version reads {FORMAT})", meta.format),
            });
        }
        let count = meta
            .count
            .map(|m| CountModel::load(m, &dir.join("count.safetensors")))
            .transpose()?;
        let iat = meta
            .iat
            .map(|m| IatModel::load(m, &dir.join("iat.safetensors")))
            .transpose()?;
        Ok(Self {
            cfg: meta.train,
            classes: meta.classes,
            quantile: meta.quantile,
            count,
            iat,
            report: FitReport::default(),
        })
    }

    /// A copy fine-tuned for `epochs` epochs on `recent` (both models, sequence lengths kept).
    /// Models that are missing, or that the recent data is too short for, are copied unchanged.
    pub fn fine_tuned(&self, recent: &History, epochs: usize) -> Result<Self> {
        let count = match &self.count {
            Some(m) => Some(
                match m.fine_tune(recent, &self.classes, &self.cfg, epochs) {
                    Ok((m, _)) => m,
                    Err(Error::TooLittleData(_)) => m.deep_clone()?,
                    Err(e) => return Err(e),
                },
            ),
            None => None,
        };
        let iat = match &self.iat {
            Some(m) => Some(match m.fine_tune(recent, &self.cfg, epochs) {
                Ok((m, _)) => m,
                Err(Error::TooLittleData(_)) => m.deep_clone()?,
                Err(e) => return Err(e),
            }),
            None => None,
        };
        Ok(Self {
            cfg: self.cfg.clone(),
            classes: self.classes.clone(),
            quantile: self.quantile,
            count,
            iat,
            report: self.report.clone(),
        })
    }

    /// Picks the provisioned class from class probabilities: the smallest class whose cumulative
    /// probability reaches `q`. Returns (class, cumulative probability).
    pub fn pick_class(probs: &[f32], q: f32) -> (usize, f32) {
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if acc >= q {
                return (i, acc.min(1.0));
            }
        }
        (probs.len().saturating_sub(1), acc.min(1.0))
    }

    /// Whether the count model is trained (otherwise forecasts fall back to recent maxima).
    pub fn has_count_model(&self) -> bool {
        self.count.is_some()
    }
    /// Whether the inter-arrival model is trained (otherwise the last gap is used).
    pub fn has_iat_model(&self) -> bool {
        self.iat.is_some()
    }
}

/// Splits training targets chronologically: the last `val_fraction` (at least one) validate.
pub(crate) fn split_validation(mut all: Vec<usize>, val_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let n_val = ((all.len() as f64 * val_fraction).ceil() as usize).clamp(1, all.len() - 1);
    let va = all.split_off(all.len() - n_val);
    (all, va)
}

/// Target indices in `lo..hi`, at most `max` of them, spread evenly over the whole range (every
/// k-th) rather than only the most recent: a dense series has tens of thousands of events a day, and
/// its most recent few thousand would all come from one hour of one part of the daily cycle.
pub(crate) fn spread(lo: usize, hi: usize, max: usize) -> Vec<usize> {
    let n = hi.saturating_sub(lo);
    let stride = n.div_ceil(max.max(1)).max(1);
    // Anchor at the end so the most recent target is always included.
    let mut v: Vec<usize> = (lo..hi).rev().step_by(stride).collect();
    v.reverse();
    v
}

/// The device models train on: the CPU, or with the opt-in `cuda` feature the first CUDA device when
/// one is present. The models are small, so the CPU is the default and usually the faster choice;
/// forecasts always run on the CPU copy of the weights.
pub(crate) fn device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    {
        candle_core::Device::cuda_if_available(0).unwrap_or(candle_core::Device::Cpu)
    }
    #[cfg(not(feature = "cuda"))]
    {
        candle_core::Device::Cpu
    }
}

/// Runs `f` inside a one-thread rayon pool (see `fit`); if the pool cannot be built, runs it as is.
pub(crate) fn single_threaded<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

impl Forecaster for LstmForecaster {
    fn name(&self) -> String {
        format!("lstm(q={})", self.quantile)
    }

    fn fit(&mut self, train: &History) -> Result<()> {
        let mut report = FitReport::default();
        // The two models train at the same time on two threads, each with a one-thread rayon pool:
        // candle's kernels on these small matrices lose more to cross-thread hand-offs than they
        // gain, so two single-threaded trainings use two cores better than one shared one.
        let (count, iat) = std::thread::scope(|s| {
            let c =
                s.spawn(|| single_threaded(|| CountModel::train(train, &self.classes, &self.cfg)));
            let i = s.spawn(|| single_threaded(|| IatModel::train(train, &self.cfg)));
            (c.join(), i.join())
        });
        let panicked = || Error::Invalid("a training thread panicked".into());
        match count.map_err(|_| panicked())? {
            Ok((m, traces)) => {
                report.count_seq_len = Some(m.meta.seq_len);
                report.count = traces;
                self.count = Some(m);
            }
            Err(Error::TooLittleData(why)) => {
                report.count_skipped = Some(why);
                self.count = None;
            }
            Err(e) => return Err(e),
        }
        match iat.map_err(|_| panicked())? {
            Ok((m, traces)) => {
                report.iat_seq_len = Some(m.meta.seq_len);
                report.iat = traces;
                self.iat = Some(m);
            }
            Err(Error::TooLittleData(why)) => {
                report.iat_skipped = Some(why);
                self.iat = None;
            }
            Err(e) => return Err(e),
        }
        self.report = report;
        Ok(())
    }

    fn forecast(&self, h: &History) -> Forecast {
        let (class, confidence) = match self.class_distribution(h) {
            Some(p) => Self::pick_class(&p, self.quantile),
            None => {
                // No model: provision for the largest of the last four windows.
                let w = h.windows();
                let m = w[w.len().saturating_sub(4)..]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0);
                (self.classes.class_of(m), 0.5)
            }
        };
        let gap = self
            .iat
            .as_ref()
            .and_then(|m| m.predict_gap_s(h))
            .or_else(|| h.gaps_s().last().copied())
            .unwrap_or(h.window_s() as f32);
        Forecast {
            count_class: class,
            count_upper: self.classes.upper(class),
            next_interarrival_s: h.condition_gap(gap),
            confidence,
        }
    }

    fn class_distribution(&self, h: &History) -> Option<Vec<f32>> {
        self.count.as_ref().map(|m| m.probabilities(h))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_the_range() {
        assert_eq!(spread(2, 7, 100), vec![2, 3, 4, 5, 6]);
        let v = spread(10, 1010, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(*v.last().unwrap(), 1009);
        assert!(v[0] < 20);
    }

    #[test]
    fn pick_class_reaches_quantile() {
        let p = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(LstmForecaster::pick_class(&p, 0.25).0, 1);
        assert_eq!(LstmForecaster::pick_class(&p, 0.6).0, 2);
        assert_eq!(LstmForecaster::pick_class(&p, 0.999).0, 3);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod mirror_tests {
    use super::*;
    use crate::series::Series;

    #[test]
    fn fast_forward_matches_candle() {
        let counts = (0..200u32).map(|i| (i * 7) % 13).collect();
        let s = Series {
            name: "m".into(),
            step_s: 60,
            counts,
        };
        let h = History::from_series(&s, 60).unwrap();
        let cfg = TrainConfig {
            count_hidden: 10,
            seq_candidates: vec![6],
            max_epochs: 2,
            ..TrainConfig::default()
        };
        let (m, _) = CountModel::train(&h, &CountClasses::default(), &cfg).unwrap();
        let fast = m.probabilities(&h);
        let slow = m.probabilities_candle(&h).unwrap();
        assert_eq!(fast.len(), slow.len());
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

/// A forecaster loaded from disk whose `fit` is a no-op, for evaluating saved models as they are.
#[derive(Debug)]
pub struct Pretrained(pub LstmForecaster);

impl Forecaster for Pretrained {
    fn name(&self) -> String {
        format!("saved-{}", self.0.name())
    }
    fn forecast(&self, h: &History) -> Forecast {
        self.0.forecast(h)
    }
    fn class_distribution(&self, h: &History) -> Option<Vec<f32>> {
        self.0.class_distribution(h)
    }
}
