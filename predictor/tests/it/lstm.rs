//! The LSTM forecaster: training, determinism, persistence, online updates.
use super::{scratch, small_cfg};
use predictor::lstm::online::OnlineLstm;
use predictor::{Error, Forecaster, History, LstmForecaster, Series};

/// A periodic pattern with noise at a 60 s step (one window per entry).
pub fn pattern(n: usize, seed: u64) -> Series {
    let base = [0u32, 2, 9, 30, 9, 2];
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let counts = (0..n)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = base[i % base.len()];
            if b == 0 {
                0
            } else {
                b + ((x >> 33) % 3) as u32
            }
        })
        .collect();
    Series {
        name: "pattern".into(),
        step_s: 60,
        counts,
    }
}

fn history(n: usize) -> History {
    History::from_series(&pattern(n, 1), 60).unwrap()
}

#[test]
fn training_reduces_validation_loss_and_picks_a_sequence_length() {
    let mut f = LstmForecaster::new(small_cfg(1));
    f.fit(&history(400)).unwrap();
    let r = f.report();
    assert!(f.has_count_model() && f.has_iat_model());
    assert_eq!(r.count.len(), 2);
    for (_, t) in r.count.iter().chain(&r.iat) {
        assert!(
            t.best_val_loss < 0.8 * t.initial_val_loss,
            "{} -> {}",
            t.initial_val_loss,
            t.best_val_loss
        );
    }
    assert!([4, 8].contains(&r.count_seq_len.unwrap()));
    // The best candidate is the chosen one.
    let best = r
        .count
        .iter()
        .min_by(|a, b| a.1.best_val_loss.total_cmp(&b.1.best_val_loss))
        .unwrap();
    assert_eq!(Some(best.0), r.count_seq_len);
}

#[test]
fn same_seed_same_forecasts_other_seed_differs() {
    let h = history(300);
    let fit = |seed| {
        let mut f = LstmForecaster::new(small_cfg(seed));
        f.fit(&h).unwrap();
        f
    };
    let (a, b, c) = (fit(3), fit(3), fit(4));
    let mut probe = h.clone();
    for k in 0..12 {
        probe.push(k % 5);
        assert_eq!(a.forecast(&probe), b.forecast(&probe));
        assert_eq!(a.class_distribution(&probe), b.class_distribution(&probe));
    }
    assert_ne!(a.class_distribution(&h), c.class_distribution(&h));
    assert_eq!(a.report(), b.report());
}

#[test]
fn save_and_load_give_identical_forecasts() {
    let h = history(300);
    let mut f = LstmForecaster::new(small_cfg(2)).with_quantile(0.8);
    f.fit(&h).unwrap();
    let dir = scratch("save");
    f.save(&dir).unwrap();
    assert!(dir.join("count.safetensors").exists() && dir.join("iat.safetensors").exists());
    let g = LstmForecaster::load(&dir).unwrap();
    assert_eq!(g.quantile(), 0.8);
    assert_eq!(f.forecast(&h), g.forecast(&h));
    assert_eq!(f.class_distribution(&h), g.class_distribution(&h));
    std::fs::write(
        dir.join("meta.json"),
        "{\"format\": 1,\n \"quantile\": oops}",
    )
    .unwrap();
    let err = LstmForecaster::load(&dir).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 2, .. }), "{err}");
}

#[test]
fn too_little_data_falls_back_instead_of_failing() {
    let mut f = LstmForecaster::new(small_cfg(1));
    f.fit(&history(15)).unwrap();
    assert!(!f.has_count_model());
    assert!(f.report().count_skipped.is_some());
    let fc = f.forecast(&history(15));
    assert!(fc.count_upper >= 9);
}

#[test]
fn online_update_runs_in_background_and_swaps() {
    let h = history(300);
    let mut f = LstmForecaster::new(small_cfg(5));
    f.fit(&h).unwrap();
    let before = f.class_distribution(&h);
    let online = OnlineLstm::new(f);
    // Recent data with a different level: fine-tuning must move the forecast.
    let shifted = Series {
        name: "shifted".into(),
        step_s: 60,
        counts: pattern(300, 9).counts.iter().map(|c| c * 4).collect(),
    };
    let recent = History::from_series(&shifted, 60).unwrap();
    online.start_update(recent.clone(), 6).unwrap();
    // The caller is not blocked: the old model still serves while the update runs.
    assert_eq!(online.generation(), 0);
    assert_eq!(online.class_distribution(&h), before);
    assert!(matches!(online.start_update(recent, 1), Err(Error::Busy)));
    online.wait().unwrap();
    assert_eq!(online.generation(), 1);
    assert!(!online.is_updating());
    assert_ne!(online.class_distribution(&h), before);
}
