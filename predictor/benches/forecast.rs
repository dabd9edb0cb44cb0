//! Benchmarks: one forecast per forecaster (criterion), and one LSTM training run on one day of
//! per-second counts aggregated to 60 s windows (timed once; criterion's minimum of ten samples
//! would take ten minutes). Targets: a forecast ≤ 100 µs, training ≤ 60 s on 2 cores (release).
//!
//! The machine this runs on may be shared, so besides wall time the bench prints CPU time (from
//! `/proc`): the cost of a forecast or a training run without the waiting for a core.
//!
//! `cargo bench -p predictor --bench forecast` (add `RAYON_NUM_THREADS=1` to compare threading).
use criterion::Criterion;
use predictor::baselines::{Ewma, Fourier, HybridHistogram, LastValue};
use predictor::{Forecaster, History, LstmForecaster, TrainConfig, Workload};
use std::hint::black_box;
use std::time::Instant;

const SPEC: &str = "synthetic:seed=1,rate=2,cv=1.5,hours=24";

/// CPU time of this thread in ns (first field of `/proc/thread-self/schedstat`), if readable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// CPU time of the whole process in seconds (utime + stime of `/proc/self/stat`, at the usual
/// 100 ticks per second), if readable.
fn process_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A forecaster under another name (for the longest-sequence LSTM row).
struct Named(&'static str, LstmForecaster);

impl Forecaster for Named {
    fn name(&self) -> String {
        self.0.to_string()
    }
    fn forecast(&self, h: &History) -> predictor::Forecast {
        self.1.forecast(h)
    }
}

fn main() {
    let series = SPEC
        .parse::<Workload>()
        .and_then(|w| w.load())
        .expect("the bench workload spec is valid");
    let history = History::from_series(&series[0], 60).expect("60 s is a multiple of 1 s");
    let mut lstm = LstmForecaster::new(TrainConfig::default());
    let (t0, c0) = (Instant::now(), process_cpu_s());
    lstm.fit(&history).expect("one day is enough data to train");
    let train_s = t0.elapsed().as_secs_f64();
    let cpu_s = process_cpu_s().zip(c0).map(|(b, a)| b - a);
    let r = lstm.report();
    println!(
        "train one day ({SPEC}; {} windows, {} events): wall {train_s:.1} s ({:.2}x of the 60 s budget), \
         CPU {} s; count L={:?}, iat L={:?}; RAYON_NUM_THREADS={}; load average {}",
        history.windows().len(),
        history.gaps_s().len(),
        train_s / 60.0,
        cpu_s.map_or("?".into(), |c| format!("{c:.1}")),
        r.count_seq_len,
        r.iat_seq_len,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        loadavg(),
    );
    // The forecast cost grows with the chosen sequence length; time the longest candidate too
    // (one epoch: the cost of a forecast does not depend on how well the weights are trained).
    let mut longest = LstmForecaster::new(TrainConfig {
        seq_candidates: vec![16],
        max_epochs: 1,
        ..TrainConfig::default()
    });
    longest
        .fit(&history)
        .expect("one day is enough data to train");
    let forecasters: Vec<Box<dyn Forecaster>> = vec![
        Box::new(lstm),
        Box::new(Named("lstm L=16 (longest)", longest)),
        Box::new(HybridHistogram::default()),
        Box::new(Ewma::default()),
        Box::new(Fourier::default()),
        Box::new(LastValue::default()),
    ];
    println!(
        "{:<18} {:>14} {:>14}",
        "forecaster", "wall us/call", "CPU us/call"
    );
    for f in &forecasters {
        let n = 2000u32;
        let (t0, c0) = (Instant::now(), thread_cpu_ns());
        for _ in 0..n {
            black_box(f.forecast(black_box(&history)));
        }
        let wall = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let cpu = thread_cpu_ns()
            .zip(c0)
            .map(|(b, a)| (b - a) as f64 / 1e3 / f64::from(n));
        println!(
            "{:<18} {:>14.2} {:>14}",
            f.name(),
            wall,
            cpu.map_or("?".into(), |c| format!("{c:.2}"))
        );
    }
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("forecast_one_window");
    for f in &forecasters {
        group.bench_function(f.name(), |b| {
            b.iter(|| black_box(f.forecast(black_box(&history))))
        });
    }
    group.finish();
    c.final_summary();
}
