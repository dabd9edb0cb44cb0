//! The count classifier: one LSTM over the last L windows (features: log count scaled by the
//! training maximum, and the time of day as sine/cosine) and a linear layer to count-class logits,
//! trained with cross-entropy. Classification rather than regression gives a distribution over
//! classes, so the provisioned class can be chosen for a target coverage (see `quantile`).
use super::infer::{Cell, Dense, softmax};
use super::init::{load_weights, restore, save_weights, seed_vars, snapshot};
use super::train::{TrainConfig, TrainTrace, fit_loop};
use crate::error::{Error, Result};
use crate::forecast::CountClasses;
use crate::series::{DAY_S, History};
use candle_core::{DType, Module, Tensor};
use candle_nn::rnn::{LSTM, LSTMConfig, RNN};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

const FEATURES: usize = 3;

/// Shape and scaling of a trained count model (saved beside its weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountMeta {
    /// Windows fed per forecast (chosen by validation).
    pub seq_len: usize,
    /// LSTM hidden size.
    pub hidden: usize,
    /// Classes the head predicts (the first `n_classes` of the count classes).
    pub n_classes: usize,
    /// ln(1 + max training count), the feature scale.
    pub scale: f32,
}

struct Net {
    lstm: LSTM,
    head: Linear,
}

impl Net {
    fn build(map: &VarMap, meta: &CountMeta) -> candle_core::Result<Self> {
        let vb = VarBuilder::from_varmap(map, DType::F32, &super::device());
        Ok(Self {
            lstm: candle_nn::lstm(FEATURES, meta.hidden, LSTMConfig::default(), vb.pp("lstm"))?,
            head: candle_nn::linear(meta.hidden, meta.n_classes, vb.pp("head"))?,
        })
    }
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let states = self.lstm.seq(x)?;
        let last = states
            .last()
            .ok_or_else(|| candle_core::Error::Msg("empty sequence".into()))?;
        self.head.forward(&last.h)
    }
}

/// A trained count model: candle weights (for saving and fine-tuning) and the fast mirror.
pub(crate) struct CountModel {
    pub(crate) meta: CountMeta,
    pub(crate) map: VarMap,
    cell: Cell,
    head: Dense,
}

fn window_features(h: &History, t: usize, scale: f32, out: &mut Vec<f32>) {
    let c = h.windows()[t] as f32;
    let tod = (h.window_tod_s(t) + u64::from(h.window_s()) / 2) as f32 / DAY_S as f32;
    let ang = 2.0 * std::f32::consts::PI * tod;
    out.extend_from_slice(&[(1.0 + c).ln() / scale, ang.sin(), ang.cos()]);
}

/// Inputs `[N, L, F]` and class targets `[N]` for targets `ts`.
fn dataset(
    h: &History,
    meta: &CountMeta,
    classes: &CountClasses,
    ts: &[usize],
) -> candle_core::Result<(Tensor, Tensor)> {
    let l = meta.seq_len;
    let mut x = Vec::with_capacity(ts.len() * l * FEATURES);
    let mut y = Vec::with_capacity(ts.len());
    for &t in ts {
        for s in t - l..t {
            window_features(h, s, meta.scale, &mut x);
        }
        y.push(classes.class_of(h.windows()[t]).min(meta.n_classes - 1) as u32);
    }
    Ok((
        Tensor::from_vec(x, (ts.len(), l, FEATURES), &super::device())?,
        Tensor::from_vec(y, ts.len(), &super::device())?,
    ))
}

/// Target windows used for training: the most recent `max_samples` that have `l_max` windows of
/// context, split chronologically into train and validation.
fn targets(n: usize, l_max: usize, cfg: &TrainConfig) -> Result<(Vec<usize>, Vec<usize>)> {
    if n < l_max + 20 {
        return Err(Error::TooLittleData(format!(
            "{n} windows; the count model needs at least {}",
            l_max + 20
        )));
    }
    let all = super::spread(l_max, n, cfg.max_samples);
    Ok(super::split_validation(all, cfg.val_fraction))
}

impl CountModel {
    fn new(meta: CountMeta) -> Result<Self> {
        let map = VarMap::new();
        Net::build(&map, &meta)?;
        Self::with_map(meta, map)
    }

    fn with_map(meta: CountMeta, map: VarMap) -> Result<Self> {
        let cell = Cell::from_varmap(&map, "lstm", FEATURES, meta.hidden)?;
        let head = Dense::from_varmap(&map, "head", meta.hidden)?;
        Ok(Self {
            meta,
            map,
            cell,
            head,
        })
    }

    /// Refreshes the fast mirror after the candle weights changed.
    fn refresh(self) -> Result<Self> {
        Self::with_map(self.meta, self.map)
    }

    /// A deep copy (new variables), so fine-tuning never touches the serving model.
    pub(crate) fn deep_clone(&self) -> Result<Self> {
        let copy = Self::new(self.meta.clone())?;
        restore(&copy.map, &snapshot(&self.map)?)?;
        copy.refresh()
    }

    /// Loads weights saved by [`CountModel::save`].
    pub(crate) fn load(meta: CountMeta, path: &std::path::Path) -> Result<Self> {
        let mut model = Self::new(meta)?;
        load_weights(&mut model.map, path)?;
        model.refresh()
    }

    pub(crate) fn save(&self, path: &std::path::Path) -> Result<()> {
        save_weights(&self.map, path)
    }

    /// Trains one model per candidate sequence length and keeps the best on validation.
    pub(crate) fn train(
        h: &History,
        classes: &CountClasses,
        cfg: &TrainConfig,
    ) -> Result<(Self, Vec<(usize, TrainTrace)>)> {
        let l_max = cfg.seq_candidates.iter().copied().max().unwrap_or(8).max(1);
        let (tr, va) = targets(h.windows().len(), l_max, cfg)?;
        let max_train = tr.iter().map(|&t| h.windows()[t]).max().unwrap_or(0);
        let n_classes = (classes.class_of(max_train) + 2).min(classes.len());
        let scale = (1.0 + max_train as f32).ln().max(std::f32::consts::LN_2);
        let mut best: Option<(f32, Self)> = None;
        let mut traces = Vec::new();
        for &l in &cfg.seq_candidates {
            let meta = CountMeta {
                seq_len: l.max(1),
                hidden: cfg.count_hidden,
                n_classes,
                scale,
            };
            let model = Self::new(meta)?;
            seed_vars(&model.map, cfg.seed, cfg.count_hidden)?;
            let (model, trace) = model.fit(h, classes, cfg, cfg.max_epochs, &tr, &va)?;
            traces.push((l, trace.clone()));
            if best.as_ref().is_none_or(|(b, _)| trace.best_val_loss < *b) {
                best = Some((trace.best_val_loss, model));
            }
        }
        let (_, model) =
            best.ok_or_else(|| Error::Invalid("no sequence length candidates".into()))?;
        Ok((model, traces))
    }

    fn fit(
        self,
        h: &History,
        classes: &CountClasses,
        cfg: &TrainConfig,
        epochs: usize,
        tr: &[usize],
        va: &[usize],
    ) -> Result<(Self, TrainTrace)> {
        let net = Net::build(&self.map, &self.meta)?;
        let (xt, yt) = dataset(h, &self.meta, classes, tr)?;
        let (xv, yv) = dataset(h, &self.meta, classes, va)?;
        let trace = fit_loop(
            &self.map,
            cfg,
            epochs,
            tr.len(),
            |idx| {
                let logits = net.logits(&xt.index_select(idx, 0)?)?;
                candle_nn::loss::cross_entropy(&logits, &yt.index_select(idx, 0)?)
            },
            || candle_nn::loss::cross_entropy(&net.logits(&xv)?, &yv)?.to_scalar::<f32>(),
        )?;
        Ok((self.refresh()?, trace))
    }

    /// Fine-tunes a copy on the most recent data for `epochs` epochs (no sequence search).
    pub(crate) fn fine_tune(
        &self,
        h: &History,
        classes: &CountClasses,
        cfg: &TrainConfig,
        epochs: usize,
    ) -> Result<(Self, TrainTrace)> {
        let (tr, va) = targets(h.windows().len(), self.meta.seq_len, cfg)?;
        self.deep_clone()?.fit(h, classes, cfg, epochs, &tr, &va)
    }

    /// Class probabilities for the next window.
    pub(crate) fn probabilities(&self, h: &History) -> Vec<f32> {
        let n = h.windows().len();
        let start = n.saturating_sub(self.meta.seq_len);
        let mut x = Vec::with_capacity(self.meta.seq_len * FEATURES);
        for t in start..n {
            window_features(h, t, self.meta.scale, &mut x);
        }
        let mut logits = self.head.apply(&self.cell.run(&x));
        softmax(&mut logits);
        logits
    }

    /// Candle's forward pass on the same input as [`CountModel::probabilities`] (for tests).
    #[cfg(test)]
    pub(crate) fn probabilities_candle(&self, h: &History) -> Result<Vec<f32>> {
        let net = Net::build(&self.map, &self.meta)?;
        let n = h.windows().len();
        let (x, _) = dataset_tail(h, &self.meta, n)?;
        let p = candle_nn::ops::softmax_last_dim(&net.logits(&x)?)?;
        Ok(p.flatten_all()?.to_vec1::<f32>()?)
    }
}

#[cfg(test)]
fn dataset_tail(h: &History, meta: &CountMeta, n: usize) -> candle_core::Result<(Tensor, ())> {
    let mut x = Vec::new();
    for t in n - meta.seq_len..n {
        window_features(h, t, meta.scale, &mut x);
    }
    Ok((
        Tensor::from_vec(x, (1, meta.seq_len, FEATURES), &super::device())?,
        (),
    ))
}
