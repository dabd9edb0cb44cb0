//! Integration tests of the predictor crate (one binary, modules by concept).
#![allow(clippy::unwrap_used)]

mod eval;
mod lstm;
mod workload;

use predictor::TrainConfig;
use std::path::PathBuf;

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("predictor-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small, fast training configuration for tests.
pub fn small_cfg(seed: u64) -> TrainConfig {
    TrainConfig {
        seed,
        count_hidden: 12,
        iat_hidden: 8,
        seq_candidates: vec![4, 8],
        max_epochs: 12,
        patience: 4,
        batch: 64,
        max_samples: 600,
        ..TrainConfig::default()
    }
}
