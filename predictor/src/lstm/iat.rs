//! The dual-input inter-arrival model: two LSTMs run side by side, one over the last L gaps and one
//! over the last L event counts (both log-scaled by their training maxima); their final hidden states
//! are summed and a linear layer predicts the next gap on the same log scale. Trained with L1 loss,
//! so the forecast is the conditional median gap, the MAE-optimal point forecast. Unlike the
//! artifact's model, the window is a real sequence and no LSTM state leaks between samples.
use super::infer::{Cell, Dense};
use super::init::{load_weights, restore, save_weights, seed_vars, snapshot};
use super::spread;
use super::train::{TrainConfig, TrainTrace, fit_loop};
use crate::error::{Error, Result};
use crate::series::History;
use candle_core::{DType, Module, Tensor};
use candle_nn::rnn::{LSTM, LSTMConfig, RNN};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Shape and scaling of a trained inter-arrival model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IatMeta {
    /// Events fed per forecast (chosen by validation).
    pub seq_len: usize,
    /// Hidden size of each LSTM.
    pub hidden: usize,
    /// ln(1 + max training gap in s).
    pub gap_scale: f32,
    /// ln(1 + max training event count).
    pub count_scale: f32,
}

struct Net {
    gaps: LSTM,
    counts: LSTM,
    head: Linear,
}

impl Net {
    fn build(map: &VarMap, meta: &IatMeta) -> candle_core::Result<Self> {
        let vb = VarBuilder::from_varmap(map, DType::F32, &super::device());
        Ok(Self {
            gaps: candle_nn::lstm(1, meta.hidden, LSTMConfig::default(), vb.pp("gaps"))?,
            counts: candle_nn::lstm(1, meta.hidden, LSTMConfig::default(), vb.pp("counts"))?,
            head: candle_nn::linear(meta.hidden, 1, vb.pp("head"))?,
        })
    }
    fn predict(&self, xg: &Tensor, xc: &Tensor) -> candle_core::Result<Tensor> {
        let last = |s: Vec<candle_nn::rnn::LSTMState>| {
            s.last()
                .map(|st| st.h.clone())
                .ok_or_else(|| candle_core::Error::Msg("empty sequence".into()))
        };
        let h = (last(self.gaps.seq(xg)?)? + last(self.counts.seq(xc)?)?)?;
        self.head.forward(&h)
    }
}

/// A trained inter-arrival model.
pub(crate) struct IatModel {
    pub(crate) meta: IatMeta,
    pub(crate) map: VarMap,
    gaps: Cell,
    counts: Cell,
    head: Dense,
}

type Data = (Tensor, Tensor, Tensor);

/// Inputs `[N, L, 1]` ×2 and targets `[N, 1]` for target events `ks`.
fn dataset(h: &History, meta: &IatMeta, ks: &[usize]) -> candle_core::Result<Data> {
    let l = meta.seq_len;
    let (g, c) = (h.gaps_s(), h.event_counts());
    let mut xg = Vec::with_capacity(ks.len() * l);
    let mut xc = Vec::with_capacity(ks.len() * l);
    let mut y = Vec::with_capacity(ks.len());
    for &k in ks {
        for j in k - l..k {
            xg.push((1.0 + g[j]).ln() / meta.gap_scale);
            xc.push((1.0 + c[j] as f32).ln() / meta.count_scale);
        }
        y.push((1.0 + g[k]).ln() / meta.gap_scale);
    }
    let n = ks.len();
    Ok((
        Tensor::from_vec(xg, (n, l, 1), &super::device())?,
        Tensor::from_vec(xc, (n, l, 1), &super::device())?,
        Tensor::from_vec(y, (n, 1), &super::device())?,
    ))
}

fn targets(n: usize, l_max: usize, cfg: &TrainConfig) -> Result<(Vec<usize>, Vec<usize>)> {
    if n < l_max + 20 {
        return Err(Error::TooLittleData(format!(
            "{n} events; the inter-arrival model needs at least {}",
            l_max + 20
        )));
    }
    // The first gap is measured from the start of the series, not from an arrival: skip it.
    let all = spread(l_max + 1, n, cfg.max_samples);
    Ok(super::split_validation(all, cfg.val_fraction))
}

fn l1(pred: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    (pred - y)?.abs()?.mean_all()
}

impl IatModel {
    fn new(meta: IatMeta) -> Result<Self> {
        let map = VarMap::new();
        Net::build(&map, &meta)?;
        Self::with_map(meta, map)
    }

    fn with_map(meta: IatMeta, map: VarMap) -> Result<Self> {
        Ok(Self {
            gaps: Cell::from_varmap(&map, "gaps", 1, meta.hidden)?,
            counts: Cell::from_varmap(&map, "counts", 1, meta.hidden)?,
            head: Dense::from_varmap(&map, "head", meta.hidden)?,
            meta,
            map,
        })
    }

    fn refresh(self) -> Result<Self> {
        Self::with_map(self.meta, self.map)
    }

    pub(crate) fn deep_clone(&self) -> Result<Self> {
        let copy = Self::new(self.meta.clone())?;
        restore(&copy.map, &snapshot(&self.map)?)?;
        copy.refresh()
    }

    pub(crate) fn load(meta: IatMeta, path: &std::path::Path) -> Result<Self> {
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
        cfg: &TrainConfig,
    ) -> Result<(Self, Vec<(usize, TrainTrace)>)> {
        let l_max = cfg.seq_candidates.iter().copied().max().unwrap_or(8).max(1);
        let (tr, va) = targets(h.gaps_s().len(), l_max, cfg)?;
        let first = tr.first().copied().unwrap_or(0).saturating_sub(l_max);
        let max_gap = h.gaps_s()[first..].iter().copied().fold(1.0f32, f32::max);
        let max_count = h.event_counts()[first..].iter().copied().max().unwrap_or(1);
        let mut best: Option<(f32, Self)> = None;
        let mut traces = Vec::new();
        for &l in &cfg.seq_candidates {
            let meta = IatMeta {
                seq_len: l.max(1),
                hidden: cfg.iat_hidden,
                gap_scale: (1.0 + max_gap).ln().max(std::f32::consts::LN_2),
                count_scale: (1.0 + max_count as f32).ln().max(std::f32::consts::LN_2),
            };
            let model = Self::new(meta)?;
            seed_vars(&model.map, cfg.seed.wrapping_add(1), cfg.iat_hidden)?;
            let (model, trace) = model.fit(h, cfg, cfg.max_epochs, &tr, &va)?;
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
        cfg: &TrainConfig,
        epochs: usize,
        tr: &[usize],
        va: &[usize],
    ) -> Result<(Self, TrainTrace)> {
        let net = Net::build(&self.map, &self.meta)?;
        let (tg, tc, ty) = dataset(h, &self.meta, tr)?;
        let (vg, vc, vy) = dataset(h, &self.meta, va)?;
        let trace = fit_loop(
            &self.map,
            cfg,
            epochs,
            tr.len(),
            |idx| {
                let p = net.predict(&tg.index_select(idx, 0)?, &tc.index_select(idx, 0)?)?;
                l1(&p, &ty.index_select(idx, 0)?)
            },
            || l1(&net.predict(&vg, &vc)?, &vy)?.to_scalar::<f32>(),
        )?;
        Ok((self.refresh()?, trace))
    }

    pub(crate) fn fine_tune(
        &self,
        h: &History,
        cfg: &TrainConfig,
        epochs: usize,
    ) -> Result<(Self, TrainTrace)> {
        let (tr, va) = targets(h.gaps_s().len(), self.meta.seq_len, cfg)?;
        self.deep_clone()?.fit(h, cfg, epochs, &tr, &va)
    }

    /// Predicted next gap in seconds (unconditioned on the time already elapsed).
    pub(crate) fn predict_gap_s(&self, h: &History) -> Option<f32> {
        let (g, c) = (h.gaps_s(), h.event_counts());
        if g.is_empty() {
            return None;
        }
        let start = g.len().saturating_sub(self.meta.seq_len);
        let xg: Vec<f32> = g[start..]
            .iter()
            .map(|&x| (1.0 + x).ln() / self.meta.gap_scale)
            .collect();
        let xc: Vec<f32> = c[start..]
            .iter()
            .map(|&x| (1.0 + x as f32).ln() / self.meta.count_scale)
            .collect();
        let hg = self.gaps.run(&xg);
        let hc = self.counts.run(&xc);
        let hsum: Vec<f32> = hg.iter().zip(&hc).map(|(a, b)| a + b).collect();
        let y = self.head.apply(&hsum)[0];
        // Cap the exponent so a wild output cannot overflow to infinity.
        Some(((y * self.meta.gap_scale).min(30.0).exp() - 1.0).max(h.step_s() as f32))
    }
}
