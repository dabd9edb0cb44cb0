//! The evaluation harness and the plot.
use super::lstm::pattern;
use super::small_cfg;
use predictor::baselines::{Ewma, Fourier, HybridHistogram, LastValue};
use predictor::eval::{EvalConfig, NoProgress, evaluate};
use predictor::plot::forecast_svg;
use predictor::{Forecaster, LstmForecaster, Workload};

fn all(_: usize) -> predictor::Result<Vec<Box<dyn Forecaster>>> {
    Ok(vec![
        Box::new(LstmForecaster::new(small_cfg(1)).with_quantile(0.95)),
        Box::new(HybridHistogram::default()),
        Box::new(Ewma::default()),
        Box::new(Fourier::default()),
        Box::new(LastValue::default()),
    ])
}

#[test]
fn lstm_learns_a_pattern_the_naive_baselines_miss() {
    let series = vec![pattern(480, 3)];
    let cfg = EvalConfig {
        train_fraction: 0.75,
        ..EvalConfig::default()
    };
    let r = evaluate(&series, &all, &cfg, &mut NoProgress).unwrap();
    assert_eq!(r.rows.len(), 5);
    assert_eq!(r.test_windows, 120);
    let under = |name: &str| {
        r.rows
            .iter()
            .find(|x| x.forecaster.starts_with(name))
            .unwrap()
            .under_prediction_rate
    };
    // Last value and EWMA under-predict every rising step of the cycle; the LSTM learns the cycle.
    assert!(under("last-value") > 0.3, "{}", under("last-value"));
    eprintln!("{}", r.render());
    assert!(
        under("lstm") < 0.5 * under("last-value"),
        "{}",
        under("lstm")
    );
    assert!(under("lstm") < 0.5 * under("ewma"));
    // The sweep is monotone in the coverage target and the matched rows read it.
    assert!(
        r.sweep
            .windows(2)
            .all(|w| w[0].under_prediction_rate >= w[1].under_prediction_rate)
    );
    assert_eq!(r.matched.len(), 4);
    for row in &r.rows {
        assert!(row.predict_us > 0.0 && row.over_provisioning.is_finite());
        assert!(row.iat_mae_s.is_finite());
    }
    let svg = forecast_svg(r.plot.as_ref().unwrap(), (800, 400)).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("last-value") && svg.contains("actual"));
}

#[test]
fn evaluates_a_generated_workload_end_to_end() {
    let series = "synthetic:seed=2,rate=0.05,cv=1.5,hours=10"
        .parse::<Workload>()
        .unwrap()
        .load()
        .unwrap();
    let r = evaluate(&series, &all, &EvalConfig::default(), &mut NoProgress).unwrap();
    assert_eq!(r.test_windows, 300);
    for row in &r.rows {
        assert!((0.0..=1.0).contains(&row.under_prediction_rate));
        // Sparse series: gaps of tens of seconds are forecast within minutes.
        assert!(row.iat_mae_s > 0.0 && row.iat_mae_s < 600.0, "{row:?}");
    }
    let bad = EvalConfig {
        window_s: 7,
        ..EvalConfig::default()
    };
    assert!(
        evaluate(
            &[predictor::Series {
                name: "x".into(),
                step_s: 60,
                counts: vec![1; 100]
            }],
            &all,
            &bad,
            &mut NoProgress
        )
        .is_err()
    );
}
