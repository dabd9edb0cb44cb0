//! Workload sources: determinism, calibration, fixtures, malformed input.
use super::scratch;
use predictor::workload::orcbench::OrcModel;
use predictor::{Error, Series, Workload};

fn load(spec: &str) -> Vec<Series> {
    spec.parse::<Workload>().unwrap().load().unwrap()
}

#[test]
fn synthetic_is_deterministic_per_seed() {
    let a = load("synthetic:seed=5,rate=0.5,cv=1.5,hours=2,functions=2");
    let b = load("synthetic:seed=5,rate=0.5,cv=1.5,hours=2,functions=2");
    let c = load("synthetic:seed=6,rate=0.5,cv=1.5,hours=2,functions=2");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].counts.len(), 7200);
    assert_ne!(a[0].counts, a[1].counts);
}

#[test]
fn synthetic_has_diurnal_swing_and_requested_burstiness() {
    let s = &load("synthetic:seed=1,rate=2,cv=0.5,hours=24")[0];
    let hourly = s.aggregate(3600).unwrap();
    // Trough around midnight, peak around noon: about 2x (noise allowed).
    let night = f64::from(hourly[0] + hourly[23]) / 2.0;
    let noon = f64::from(hourly[11] + hourly[12]) / 2.0;
    let swing = noon / night;
    assert!((1.7..2.3).contains(&swing), "swing {swing}");
    let smooth = s.interarrival_cv().unwrap();
    let bursty = load("synthetic:seed=1,rate=2,cv=2,hours=24")[0]
        .interarrival_cv()
        .unwrap();
    assert!(smooth < 1.0, "cv {smooth}");
    assert!(bursty > 1.5, "cv {bursty}");
    let timer = &load("synthetic:seed=1,rate=0.1,cv=0,hours=1")[0];
    assert!(timer.interarrival_cv().unwrap() < 0.05);
}

#[test]
fn synthetic_population_has_about_forty_percent_bursty_apps() {
    // Rates fixed so every function has enough arrivals to measure; CVs drawn from the mix.
    let all = load("synthetic:seed=11,rate=0.2,hours=6,functions=60");
    let cvs: Vec<f64> = all.iter().filter_map(|s| s.interarrival_cv()).collect();
    let share = cvs.iter().filter(|&&c| c > 1.0).count() as f64 / cvs.len() as f64;
    assert!((0.25..0.55).contains(&share), "share {share}");
}

#[test]
fn orcbench_embedded_and_from_directory() {
    let a = load("orcbench:seed=3,model=0,hours=1");
    assert_eq!(a.len(), 1);
    assert!(a[0].total() > 50, "cluster 0 median rate is ~10/min");
    assert_eq!(a, load("orcbench:seed=3,model=0,hours=1"));
    // A fixture model written by the test: a constant rate of 6/min = one call every 10 s.
    let dir = scratch("orc");
    let json = format!(
        "{{\"inverse_ecdf\": [{}], \"num_functions\": 4, \"cpu\": [100.0], \"mbs\": [128.0]}}",
        vec!["6.0"; 20].join(",")
    );
    std::fs::write(dir.join("7-model"), json).unwrap();
    let spec = format!("orcbench:seed=1,model=7,dir={},hours=1", dir.display());
    let s = &load(&spec)[0];
    assert!((359..=361).contains(&s.total()), "{}", s.total());
    assert!(s.interarrival_cv().unwrap() < 0.05);
    // Malformed model file: the error names the line and column.
    std::fs::write(dir.join("8-model"), "{\n \"inverse_ecdf\": [1.0,,]\n}").unwrap();
    let err = OrcModel::load(&dir, 8).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 2, .. }), "{err}");
    let missing = format!("orcbench:seed=1,model=9,dir={}", dir.display());
    let err = missing.parse::<Workload>().unwrap().load().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn azure_csv_file() {
    let dir = scratch("csv");
    let p = dir.join("d01.csv");
    let mut text = String::from("HashOwner,HashApp,HashFunction,Trigger");
    for m in 1..=1440 {
        text.push_str(&format!(",{m}"));
    }
    text.push('\n');
    for f in 0..2 {
        text.push_str(&format!("o,a,fn{f},http"));
        for m in 0..1440 {
            text.push_str(&format!(",{}", (m + f) % 3));
        }
        text.push('\n');
    }
    std::fs::write(&p, &text).unwrap();
    let s = load(&format!("azure-csv:{}", p.display()));
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].name, "fn1");
    assert_eq!(s[0].step_s, 60);
    assert_eq!(&s[0].counts[..4], &[0, 1, 2, 0]);
    std::fs::write(&p, text.replacen(",2,0,1", ",2,zero,1", 1)).unwrap();
    let err = format!("azure-csv:{}", p.display())
        .parse::<Workload>()
        .unwrap()
        .load()
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Parse { line: 2, .. }), "{msg}");
    assert!(msg.contains("zero"), "{msg}");
    let gone = "azure-csv:/nonexistent/x.csv".parse::<Workload>().unwrap();
    assert!(matches!(gone.load(), Err(Error::Io { .. })));
}
