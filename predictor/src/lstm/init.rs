//! Deterministic weights: candle's CPU RNG cannot be seeded, so after a layer is built every `Var`
//! is overwritten from our own seeded RNG, in name order so the result does not depend on the
//! `VarMap`'s hash order. Also snapshot/restore of all weights for early stopping and cloning.
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;

/// Locks a VarMap's table. A poisoned lock only means another thread panicked mid-update; the
/// tensors are still valid, so we keep going with them.
fn vars(map: &VarMap) -> BTreeMap<String, Var> {
    let guard = map.data().lock().unwrap_or_else(|e| e.into_inner());
    guard.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Overwrites every variable with U(-1/√hidden, 1/√hidden) draws (PyTorch's LSTM default).
pub(crate) fn seed_vars(map: &VarMap, seed: u64, hidden: usize) -> candle_core::Result<()> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let k = 1.0 / (hidden.max(1) as f32).sqrt();
    for (_, var) in vars(map) {
        let shape = var.shape().clone();
        let data: Vec<f32> = (0..shape.elem_count())
            .map(|_| rng.random_range(-k..k))
            .collect();
        var.set(&Tensor::from_vec(data, shape, var.device())?)?;
    }
    Ok(())
}

/// Deep copies of all weights by name.
pub(crate) fn snapshot(map: &VarMap) -> candle_core::Result<BTreeMap<String, Tensor>> {
    vars(map)
        .into_iter()
        .map(|(k, v)| Ok((k, v.as_tensor().copy()?)))
        .collect()
}

/// Writes a snapshot back (names that are absent are left alone).
pub(crate) fn restore(map: &VarMap, snap: &BTreeMap<String, Tensor>) -> candle_core::Result<()> {
    for (k, var) in vars(map) {
        if let Some(t) = snap.get(&k) {
            var.set(t)?;
        }
    }
    Ok(())
}

/// The current value of one variable as a flat vector.
pub(crate) fn flat(map: &VarMap, name: &str) -> candle_core::Result<Vec<f32>> {
    let all = vars(map);
    let var = all
        .get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))?;
    var.as_tensor().flatten_all()?.to_vec1::<f32>()
}

/// Loads weights saved by [`save_weights`] into an already-built map (names and shapes must match).
pub(crate) fn load_weights(map: &mut VarMap, path: &std::path::Path) -> crate::error::Result<()> {
    map.load(path).map_err(|e| crate::error::Error::Model {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Saves every weight of `map` as safetensors.
pub(crate) fn save_weights(map: &VarMap, path: &std::path::Path) -> crate::error::Result<()> {
    map.save(path).map_err(|e| crate::error::Error::Model {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
