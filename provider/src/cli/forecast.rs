//! `smiless forecast`: train the LSTM forecasters on a workload and compare them with the baselines.
//!
//! `train` fits one [`LstmForecaster`] per series of the workload and saves it (safetensors plus
//! `meta.json`) under `--out`, one directory per series. `eval` fits every forecaster on the first
//! part of each series, walks the rest window by window and prints under-prediction rate,
//! over-provisioning, inter-arrival MAE and timings; `--plot` writes an SVG of forecast vs actual.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use predictor::baselines::{Ewma, Fourier, HybridHistogram, LastValue};
use predictor::eval::{EvalConfig, EvalReport, Progress, evaluate};
use predictor::lstm::Pretrained;
use predictor::progress::StderrProgress;
use predictor::{Forecaster, History, LstmForecaster, Series, TrainConfig, Workload};
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Train the LSTM count classifier and inter-arrival model per series and save them.
    #[command(after_help = "Examples:
  smiless forecast train --workload synthetic:seed=1,rate=2,cv=1.5,hours=48 --out models/
  smiless forecast train --workload azure-csv:invocations_per_function_md.anon.d01.csv --max-series 5 --out models/ --json
Workloads: orcbench:seed=N[,model=K][,dir=PATH][,hours=H][,functions=F]
           synthetic:seed=N[,rate=R][,cv=C][,burst=B][,hours=H][,functions=F]
           azure-csv:PATH
Tip: RAYON_NUM_THREADS=1 trains faster on small machines (candle's kernels are tiny here).")]
    Train(TrainArgs),
    /// Evaluate the LSTM against the hybrid histogram, EWMA, Fourier and last-value baselines.
    #[command(after_help = "Examples:
  smiless forecast eval --workload synthetic:seed=1,rate=2,cv=1.5,hours=48
  smiless forecast eval --workload orcbench:seed=1,functions=3,hours=48 --json
  smiless forecast eval --workload synthetic:seed=1,rate=0.05,hours=48 --plot forecast.svg
  smiless forecast eval --workload synthetic:seed=1,rate=2,hours=48 --models models/  # saved LSTMs
Metrics: under-prediction rate (actual count above the provisioned upper edge), over-provisioning
(sum of excess / sum of actual), inter-arrival MAE (s), predict time per forecast (us), train time (s).")]
    Eval(EvalArgs),
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// Workload spec (see below).
    #[arg(long)]
    pub workload: String,
    /// Forecast window in seconds (a multiple of the series step; 60 for Azure CSV data).
    #[arg(long, default_value_t = 60)]
    pub window_s: u32,
    /// Share of each series used for training (the rest is the test part in `eval`).
    #[arg(long, default_value_t = 0.5)]
    pub train_fraction: f64,
    /// Seed of the LSTM initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Coverage target of the LSTM count class (the provisioned class is the smallest whose
    /// cumulative probability reaches it).
    #[arg(long, default_value_t = 0.9)]
    pub quantile: f32,
    /// Use at most this many series of the workload.
    #[arg(long)]
    pub max_series: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: Common,
    /// Directory for the models (one sub-directory per series).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// Write an SVG of forecast vs actual for the first series.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Evaluate models saved by `forecast train` (same workload and train fraction) instead of
    /// training a fresh LSTM.
    #[arg(long)]
    pub models: Option<PathBuf>,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Train(a) => train(&a),
        Command::Eval(a) => eval(&a),
    }
}

fn load_series(c: &Common) -> anyhow::Result<Vec<Series>> {
    if !(0.05..=0.95).contains(&c.train_fraction) {
        bail!("--train-fraction must be in [0.05, 0.95]");
    }
    if !(0.0..1.0).contains(&c.quantile) || c.quantile <= 0.0 {
        bail!("--quantile must be in (0, 1)");
    }
    let workload: Workload = c.workload.parse()?;
    let mut series = workload.load()?;
    if let Some(n) = c.max_series {
        series.truncate(n.max(1));
    }
    if series.is_empty() {
        bail!("the workload has no series");
    }
    Ok(series)
}

fn train_config(c: &Common) -> TrainConfig {
    TrainConfig {
        seed: c.seed,
        ..TrainConfig::default()
    }
}

/// Directory of series `i`: its index and a file-name-safe form of its name.
fn series_dir(out: &Path, i: usize, s: &Series) -> PathBuf {
    let safe: String = s
        .name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' {
                ch
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    out.join(format!("{i:04}-{safe}"))
}

#[derive(Debug, Serialize)]
struct TrainRow {
    series: String,
    dir: PathBuf,
    train_windows: usize,
    count_seq_len: Option<usize>,
    count_val_loss: Option<(f32, f32)>,
    iat_seq_len: Option<usize>,
    iat_val_loss: Option<(f32, f32)>,
    train_s: f64,
}

fn train(a: &TrainArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let series = load_series(c)?;
    let mut progress = StderrProgress::new();
    progress.stage("train", series.len() as u64);
    let mut rows = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let per = (c.window_s / s.step_s.max(1)).max(1) as usize;
        let windows = s.counts.len() / per;
        let train_windows = (windows as f64 * c.train_fraction) as usize;
        let (head, _) = s.split_at(train_windows * per);
        let history = History::from_series(&head, c.window_s)?;
        let mut f = LstmForecaster::new(train_config(c)).with_quantile(c.quantile);
        let t0 = Instant::now();
        f.fit(&history)
            .with_context(|| format!("training on series {}", s.name))?;
        let train_s = t0.elapsed().as_secs_f64();
        let dir = series_dir(&a.out, i, s);
        f.save(&dir)?;
        let r = f.report();
        let loss = |traces: &[(usize, predictor::lstm::TrainTrace)], l: Option<usize>| {
            traces
                .iter()
                .find(|(k, _)| Some(*k) == l)
                .map(|(_, t)| (t.initial_val_loss, t.best_val_loss))
        };
        rows.push(TrainRow {
            series: s.name.clone(),
            dir,
            train_windows,
            count_seq_len: r.count_seq_len,
            count_val_loss: loss(&r.count, r.count_seq_len),
            iat_seq_len: r.iat_seq_len,
            iat_val_loss: loss(&r.iat, r.iat_seq_len),
            train_s,
        });
        progress.advance(1);
    }
    progress.finish();
    if c.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<28} {:>7} {:>5} {:>17} {:>5} {:>17} {:>8}",
        "series", "windows", "L", "count val loss", "L", "iat val loss", "train s"
    );
    let fmt_loss = |l: Option<(f32, f32)>| {
        l.map_or("skipped".to_string(), |(a, b)| format!("{a:.3} -> {b:.3}"))
    };
    let fmt_l = |l: Option<usize>| l.map_or("-".to_string(), |v| v.to_string());
    for r in &rows {
        println!(
            "{:<28} {:>7} {:>5} {:>17} {:>5} {:>17} {:>8.1}",
            truncate(&r.series, 28),
            r.train_windows,
            fmt_l(r.count_seq_len),
            fmt_loss(r.count_val_loss),
            fmt_l(r.iat_seq_len),
            fmt_loss(r.iat_val_loss),
            r.train_s
        );
    }
    println!("saved under {}", a.out.display());
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('~');
        t
    }
}

fn eval(a: &EvalArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let series = load_series(c)?;
    let cfg = EvalConfig {
        window_s: c.window_s,
        train_fraction: c.train_fraction,
        ..EvalConfig::default()
    };
    let models = a.models.clone();
    let tc = train_config(c);
    let quantile = c.quantile;
    let series_for_make = series.clone();
    let make = move |i: usize| -> predictor::Result<Vec<Box<dyn Forecaster>>> {
        let lstm: Box<dyn Forecaster> = match &models {
            Some(dir) => {
                let d = series_dir(dir, i, &series_for_make[i]);
                Box::new(Pretrained(
                    LstmForecaster::load(&d)?.with_quantile(quantile),
                ))
            }
            None => Box::new(LstmForecaster::new(tc.clone()).with_quantile(quantile)),
        };
        Ok(vec![
            lstm,
            Box::new(HybridHistogram::default()),
            Box::new(Ewma::default()),
            Box::new(Fourier::default()),
            Box::new(LastValue::default()),
        ])
    };
    let mut progress = StderrProgress::new();
    let report = evaluate(&series, &make, &cfg, &mut progress)?;
    progress.finish();
    if let Some(p) = &a.plot {
        let trace = report.plot.as_ref().context("no test windows to plot")?;
        let svg = predictor::plot::forecast_svg(trace, (1000, 500))?;
        std::fs::write(p, svg).with_context(|| format!("writing {}", p.display()))?;
    }
    if c.json {
        println!("{}", serde_json::to_string_pretty(&report.rows)?);
        return Ok(());
    }
    print_report(&report, c, a.plot.as_deref());
    Ok(())
}

fn print_report(r: &EvalReport, c: &Common, plot: Option<&Path>) {
    println!(
        "{} series, {} test windows of {} s, workload {}",
        r.series, r.test_windows, c.window_s, c.workload
    );
    print!("{}", r.render());
    if let Some(p) = plot {
        println!("plot written to {}", p.display());
    }
}
