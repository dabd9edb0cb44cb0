//! Quick evaluation from the command line without the provider binary:
//! `cargo run -p predictor --example quick_eval -- 'synthetic:seed=1,rate=2,cv=1.5,hours=48'`.
use predictor::baselines::{Ewma, Fourier, HybridHistogram, LastValue};
use predictor::eval::{EvalConfig, NoProgress, evaluate};
use predictor::{Forecaster, LstmForecaster, TrainConfig, Workload};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synthetic:seed=1,rate=2,cv=1.5,hours=48".into());
    let series = spec.parse::<Workload>()?.load()?;
    let make = || -> Vec<Box<dyn Forecaster>> {
        vec![
            Box::new(LstmForecaster::new(TrainConfig::default())),
            Box::new(HybridHistogram::default()),
            Box::new(Ewma::default()),
            Box::new(Fourier::default()),
            Box::new(LastValue::default()),
        ]
    };
    let r = evaluate(&series, &make, &EvalConfig::default(), &mut NoProgress)?;
    for row in &r.rows {
        println!(
            "{:<20} under {:.3} over {:.3} iat_mae {:.2} predict {:.1}us train {:.1}s",
            row.forecaster,
            row.under_prediction_rate,
            row.over_provisioning,
            row.iat_mae_s,
            row.predict_us,
            row.train_s
        );
    }
    for p in &r.sweep {
        println!(
            "q={:<6} under {:.3} over {:.3}",
            p.quantile, p.under_prediction_rate, p.over_provisioning
        );
    }
    for m in &r.matched {
        println!("{m:?}");
    }
    Ok(())
}
