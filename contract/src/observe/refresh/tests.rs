//! Tests of the estimator, drift assessment and the refresher's observations.
use optimizer::ProfileSet;

use super::*;

fn window(xs: &[f64]) -> Window {
    let mut w = Window::default();
    for &x in xs {
        w.push(x, 32);
    }
    w
}

fn profile() -> Profile {
    ProfileSet::paper()
        .get("speechrecognition")
        .unwrap()
        .clone()
}

#[test]
fn robust_estimate_ignores_outliers() {
    let w = window(&[1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 50.0, 1.0]);
    let r = w.robust(3.0).unwrap();
    assert!((r.median - 1.0).abs() < 1e-9);
    assert_eq!(r.kept, 7, "{r:?}");
    assert!((r.mean - 1.0).abs() < 0.02, "{r:?}");
    assert!(r.std < 0.1);
    assert!(Window::default().robust(3.0).is_none());
}

#[test]
fn window_keeps_the_last_samples() {
    let mut w = Window::default();
    for i in 0..10 {
        w.push(f64::from(i), 4);
    }
    assert_eq!(w.len(), 4);
    assert_eq!(w.robust(3.0).unwrap().median, 7.5);
    w.push(f64::NAN, 4);
    w.push(-1.0, 4);
    assert_eq!(w.len(), 4);
}

#[test]
fn no_drift_within_threshold_or_with_too_few_samples() {
    let p = profile();
    let hw = Hardware::Cpu { cores: 2 };
    let t = p.infer_time(hw, 1);
    let cfg = RefreshConfig::default();
    let near = window(&[t * 1.1; 10]);
    assert!(assess(&p, hw, &near, &Window::default(), &cfg).0.is_empty());
    let few = window(&[t * 3.0; 5]);
    assert!(assess(&p, hw, &few, &Window::default(), &cfg).0.is_empty());
}

#[test]
fn slower_inference_is_a_drift_absorbed_by_the_constant() {
    let p = profile();
    let hw = Hardware::Cpu { cores: 2 };
    let t = p.infer_time(hw, 1);
    // Mostly 2× slower, with two wild outliers that must not move the estimate.
    let mut xs = vec![t * 2.0; 10];
    xs.extend([t * 40.0, t * 0.01]);
    let (drifts, updated) = assess(
        &p,
        hw,
        &window(&xs),
        &Window::default(),
        &RefreshConfig::default(),
    );
    assert_eq!(drifts.len(), 1);
    assert_eq!(drifts[0].kind(), "infer");
    let u = updated.unwrap();
    assert!((u.infer_time(hw, 1) - 2.0 * t).abs() < 1e-9);
    assert_eq!(u.infer.cpu.a, p.infer.cpu.a, "shape kept");
    assert_eq!(u.infer.gpu, p.infer.gpu, "the other device is untouched");
}

#[test]
fn faster_inference_scales_down_and_stays_non_negative() {
    let m = LatencyModel {
        a: 1.0,
        b: 0.2,
        c: 0.4,
    };
    let c = corrected_model(&m, 2.0, 0.55);
    assert!((c.time(1, 2.0) - 0.55).abs() < 1e-12);
    assert!(c.a >= 0.0 && c.b >= 0.0 && c.c >= 0.0);
    assert!((c.a / c.c - m.a / m.c).abs() < 1e-12, "proportions kept");
}

#[test]
fn init_drift_uses_the_robust_mean_and_std() {
    let p = profile();
    let hw = Hardware::Cpu { cores: 1 };
    let mean = p.init(hw).mean_s;
    let init = window(&[
        mean * 2.0,
        mean * 2.1,
        mean * 1.9,
        mean * 2.0,
        mean * 2.05,
        mean * 1.95,
        mean * 2.0,
        mean * 2.0,
        1000.0,
    ]);
    let (drifts, updated) = assess(&p, hw, &Window::default(), &init, &RefreshConfig::default());
    assert_eq!(drifts.iter().map(Drift::kind).collect::<Vec<_>>(), ["init"]);
    let u = updated.unwrap();
    assert!(
        (u.init.cpu.mean_s - 2.0 * mean).abs() < 0.05 * mean,
        "{:?}",
        u.init.cpu
    );
    assert!(u.init.cpu.std_s < 0.1 * mean);
}

#[test]
fn refresher_counts_drift_clears_on_hardware_change_and_renders_the_metric() {
    let r = Refresher::default();
    let p = profile();
    let hw = Hardware::Cpu { cores: 1 };
    let t = p.infer_time(hw, 1);
    // Real seconds at time scale 0.1: 3× the profile time.
    for _ in 0..10 {
        r.observe("ns", "asr", t * 3.0 * 0.1, false, 0.1);
    }
    // The first check adopts the hardware and judges the samples.
    let (d, _) = r.check("ns", "asr", hw, &p);
    assert_eq!(d.len(), 1);
    assert_eq!(r.drift_total(), 1);
    for _ in 0..10 {
        r.observe("ns", "asr", t * 3.0 * 0.1, false, 0.1);
    }
    let (d, _) = r.check("ns", "asr", Hardware::Cpu { cores: 2 }, &p);
    assert!(
        d.is_empty(),
        "samples of cpu:1 are not judged against cpu:2"
    );
    assert_eq!(r.drift_total(), 1);
    let text = r.render();
    assert!(
        text.contains(
            "smiless_profile_drift_total{namespace=\"ns\",function=\"asr\",kind=\"infer\"} 1"
        ),
        "{text}"
    );
}
