//! The shared training loop: AdamW on shuffled mini-batches (shuffled by our seeded RNG), validation
//! after every epoch, early stopping with patience, and the best epoch's weights restored at the end.
use super::init::{restore, snapshot};
use candle_core::Tensor;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of LSTM training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Seed for weight init and batch order.
    pub seed: u64,
    /// Hidden size of the count LSTM.
    pub count_hidden: usize,
    /// Hidden size of each of the inter-arrival model's two LSTMs.
    pub iat_hidden: usize,
    /// Sequence lengths tried per series; the one with the lowest validation loss is kept.
    pub seq_candidates: Vec<usize>,
    /// Epoch limit.
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Chronological share of samples held out for validation.
    pub val_fraction: f64,
    /// At most this many samples, spread evenly over the history (bounds training time on long or
    /// dense series).
    pub max_samples: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            count_hidden: 32,
            iat_hidden: 16,
            seq_candidates: vec![8, 16],
            max_epochs: 40,
            patience: 4,
            batch: 128,
            lr: 1e-2,
            weight_decay: 1e-4,
            val_fraction: 0.2,
            max_samples: 2000,
        }
    }
}

/// What one training run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainTrace {
    /// Validation loss of the seeded initial weights.
    pub initial_val_loss: f32,
    /// Best validation loss reached (its weights are the ones kept).
    pub best_val_loss: f32,
    /// Epochs run before stopping.
    pub epochs: usize,
}

/// Trains the variables of `map`. `step_loss` computes the training loss of a batch of sample
/// indices (into `0..n_train`); `val_loss` the validation loss.
pub(crate) fn fit_loop(
    map: &VarMap,
    cfg: &TrainConfig,
    epochs: usize,
    n_train: usize,
    step_loss: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    val_loss: impl Fn() -> candle_core::Result<f32>,
) -> candle_core::Result<TrainTrace> {
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(map.all_vars(), params)?;
    // Batch order from our own RNG, offset from the init seed so the two streams differ.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0x9e37_79b9_7f4a_7c15);
    let initial = val_loss()?;
    let mut best = initial;
    let mut best_w = snapshot(map)?;
    let mut bad = 0;
    let mut run = 0;
    let mut order: Vec<u32> = (0..n_train as u32).collect();
    for _ in 0..epochs {
        run += 1;
        // Fisher-Yates with our RNG.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(cfg.batch.max(1)) {
            let idx = Tensor::new(chunk, &super::device())?;
            let loss = step_loss(&idx)?;
            opt.backward_step(&loss)?;
        }
        let v = val_loss()?;
        // Improvements below 0.1 % are noise; they should not keep training alive.
        if v < best - 1e-3 * best.abs().max(1e-3) {
            best = v;
            best_w = snapshot(map)?;
            bad = 0;
        } else {
            bad += 1;
            if bad >= cfg.patience {
                break;
            }
        }
    }
    restore(map, &best_w)?;
    Ok(TrainTrace {
        initial_val_loss: initial,
        best_val_loss: best,
        epochs: run,
    })
}
