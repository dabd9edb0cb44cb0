//! Quick evaluation from the command line without the provider binary:
//! `cargo run --release -p predictor --example quick_eval -- 'synthetic:seed=1,rate=2,cv=1.5,hours=48' [out.svg]`
//! (the same evaluation and table as `smiless forecast eval`).
use predictor::baselines::{Ewma, Fourier, HybridHistogram, LastValue};
use predictor::eval::{EvalConfig, NoProgress, evaluate};
use predictor::{Forecaster, LstmForecaster, TrainConfig, Workload};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synthetic:seed=1,rate=2,cv=1.5,hours=48".into());
    let series = spec.parse::<Workload>()?.load()?;
    let make = |_: usize| -> predictor::Result<Vec<Box<dyn Forecaster>>> {
        Ok(vec![
            Box::new(LstmForecaster::new(TrainConfig::default())),
            Box::new(HybridHistogram::default()),
            Box::new(Ewma::default()),
            Box::new(Fourier::default()),
            Box::new(LastValue::default()),
        ])
    };
    let r = evaluate(&series, &make, &EvalConfig::default(), &mut NoProgress)?;
    println!(
        "{} series, {} test windows, workload {spec}",
        r.series, r.test_windows
    );
    print!("{}", r.render());
    if let Some(path) = std::env::args().nth(2) {
        let svg = predictor::plot::forecast_svg(r.plot.as_ref().ok_or("no plot")?, (1000, 500))?;
        std::fs::write(path, svg)?;
    }
    Ok(())
}
