//! Fits the LSTM forecaster on one day of per-second counts and prints what fitting did:
//! `cargo run --release -p predictor --example fit_one_day -- 'synthetic:seed=1,rate=2,cv=1.5'`.
use predictor::{Forecaster, History, LstmForecaster, TrainConfig, Workload};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synthetic:seed=1,rate=2,cv=1.5,hours=24".into());
    let series = spec.parse::<Workload>()?.load()?;
    let h = History::from_series(&series[0], 60)?;
    println!("{} windows, {} events", h.windows().len(), h.gaps_s().len());
    let mut f = LstmForecaster::new(TrainConfig::default());
    let t0 = Instant::now();
    f.fit(&h)?;
    println!("fit {:.2} s", t0.elapsed().as_secs_f64());
    println!("{}", serde_json::to_string_pretty(f.report())?);
    Ok(())
}
