//! `smiless sim`: run planning policies against a workload in the trace-driven simulator
//! (`optimizer::sim`) and report cost, latency and SLA violations, normalised to OPT (the exhaustive
//! planner with an oracle of the future arrivals).
//!
//! Workloads come from the predictor crate's spec strings (`orcbench:…`, `synthetic:…`,
//! `azure-csv:PATH`); DAG `k` replays the workload's series `k` (modulo their number). Load estimation
//! for the online policies is pluggable: the simulator's recent-window estimator, or one of the
//! predictor's forecasters adapted to `optimizer::sim::LoadEstimator`.
//! `--experiment paper` regenerates the paper's evaluation into a results folder (see
//! docs/evaluation.md).
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use optimizer::sim::experiment::{self, Matrix, Outcome, Row, SIM_POLICIES};
use optimizer::sim::{SimOptions, report};
use optimizer::{Dag, ProfileSet, dags_from_functions, parse_duration_s, testkit};
use predictor::Workload;

pub(crate) mod estimator;
mod joint;
use estimator::estimator_factory;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  smiless sim --dag voice-assistant --sla 2s,4s --policies smiless,opt,icebreaker --workload orcbench:seed=1,model=0 --duration 2h
  smiless sim --stack stack.yml --dag all --sla 3s --workload synthetic:seed=2,rate=0.05,cv=3 --json out.json --plot out.svg
  smiless sim --experiment paper --duration 24h --out results/sim
  smiless sim --stack stack.yml --dag image-query --sla 4s --policies smiless --cpus 2 --gpus 0 --batches 1 --workload synthetic:seed=6,rate=0.05,cv=3,burst=1,hours=1,functions=1 --duration 10m
  smiless sim --joint --stack stack.yml --sla 8s --cpus 2 --gpus 0 --batches 1 --workload synthetic:seed=6,rate=0.05,cv=3,burst=1,hours=1,functions=3 --duration 10m

Without --stack the paper's three DAGs (voice-assistant, amber-alert, image-query) are built in.
Policies: smiless, opt (exhaustive planner fed the true load of the next 10 minutes), opt-gap (exhaustive
planner that knows every next arrival: a clairvoyant bound), orion, icebreaker, aquatope, grandslam,
homo (SMIless-Homo, CPU only), no-dag (SMIless-No-DAG), esg (ESG, HPDC'24), jolteon (Jolteon, NSDI'24).
Costs are $ of provisioned resource-seconds (init + busy + idle) at the paper's AWS prices; cost_vs_opt
divides by OPT's cost on the same DAG and SLA, cost_vs_bound by the offline lower bound (a clairvoyant
schedule's cost, docs/evaluation.md §3.1a).")]
pub struct Args {
    /// faas-cli stack file with com.smiless.* annotations (default: the paper's DAGs, built in).
    #[arg(long)]
    pub stack: Option<PathBuf>,
    /// A DAG name, or `all`.
    #[arg(long, default_value = "all")]
    pub dag: String,
    /// Comma-separated end-to-end SLAs, e.g. 2s,3s,4s.
    #[arg(long, default_value = "2s,3s,4s,5s,6s")]
    pub sla: String,
    /// Comma-separated policies (default: all eight).
    #[arg(long)]
    pub policies: Option<String>,
    /// Workload spec: orcbench:seed=N[,model=K], synthetic:seed=N[,rate=R,cv=C,burst=B], azure-csv:PATH.
    #[arg(long, default_value = "orcbench:seed=1,model=0")]
    pub workload: String,
    /// Simulated time, e.g. 2h, 30m, 1d.
    #[arg(long, default_value = "2h")]
    pub duration: String,
    /// Requests in this first stretch are billed but not counted in latency and SLA numbers.
    #[arg(long, default_value = "5m")]
    pub warmup: String,
    /// Load estimator of the online policies: recent (window with tail correction; the live loop's
    /// default), forecaster (the live loop's predictor forecasters: hybrid histogram, then LSTM), ewma,
    /// last, histogram.
    #[arg(long, default_value = "recent")]
    pub estimator: String,
    /// Plan for a host with this many CPU cores: larger core counts are not offered, as the live loop
    /// plans for its host (default: 1, 2, 4 and 8 cores).
    #[arg(long)]
    pub cpus: Option<usize>,
    /// GPUs of that host; 0 offers no GPU shares (default: GPU shares offered).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Comma-separated batch caps the planners may choose (default 1,4,16; the live loop gives a cap
    /// above 1 only to members that declare com.smiless.batch, docs/batching.md).
    #[arg(long)]
    pub batches: Option<String>,
    /// Profiles in the smiless JSON format (default: the paper's 16 functions, re-fitted).
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// Profiles the simulated replicas follow, where they differ from what the planners know (--profiles):
    /// e.g. a live provider's measured timings (`control/observed.json` in its state directory), to
    /// compare a live run with its simulation, or a what-if of slower models. Not with --experiment.
    #[arg(long)]
    pub world_profiles: Option<PathBuf>,
    /// Write the result rows as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG chart (cost × OPT per policy) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Run a named experiment (`paper`) into --out instead of one matrix.
    #[arg(long)]
    pub experiment: Option<String>,
    /// Results folder of --experiment.
    #[arg(long, default_value = "results/sim")]
    pub out: PathBuf,
    /// Seed of the simulator's randomness (init and inference times).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SLA quantile of the planners: keep-alive windows cover this fraction of bursts, and the queueing
    /// term sizes replicas so that at most the rest of the requests wait for a busy replica.
    #[arg(long, default_value_t = 0.999)]
    pub sla_quantile: f64,
    /// Planning SLA headroom: plans are made for SLA × (1 − headroom), to absorb inference noise and
    /// plan transitions the planners do not model.
    #[arg(long, default_value_t = HEADROOM)]
    pub headroom: f64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Simulate the DAGs together, decided jointly every tick against one capacity (this host, or
    /// --cpus and --gpus) by the live loop's joint step, smiless at the first --sla (docs/capacity.md).
    #[arg(long)]
    pub joint: bool,
    /// With --joint: CPU overcommit factor (≥ 1) of that capacity.
    #[arg(long, default_value_t = 1.0)]
    pub overcommit: f64,
}

fn duration_s(text: &str) -> Result<f64> {
    let t = text.trim();
    if let Some(d) = t.strip_suffix('d')
        && let Ok(days) = d.trim().parse::<f64>()
    {
        return Ok(days * 86_400.0);
    }
    humantime::parse_duration(t)
        .map(|d| d.as_secs_f64())
        .or_else(|_| parse_duration_s(t).map_err(anyhow::Error::from))
        .with_context(|| format!("invalid duration {text:?} (e.g. 2h, 30m, 1d, 90s)"))
}

/// The DAGs named by `--stack`/`--dag`.
fn dags(args: &Args) -> Result<Vec<Dag>> {
    let all: Vec<Dag> = match &args.stack {
        Some(path) => {
            let functions = super::plan::load_stack(path)?;
            dags_from_functions(&functions)
                .with_context(|| format!("invalid DAG in {}", path.display()))?
        }
        None => testkit::PAPER_DAGS
            .iter()
            .filter_map(|n| testkit::paper_dag(n))
            .collect(),
    };
    if args.dag == "all" {
        if all.is_empty() {
            bail!("no DAGs declared");
        }
        return Ok(all);
    }
    let names: Vec<&str> = args.dag.split(',').map(str::trim).collect();
    names
        .iter()
        .map(|n| {
            all.iter().find(|d| d.name == *n).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
                anyhow!("no DAG named {n:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

/// The planners' search space from `--cpus`, `--gpus` and `--batches` (none: the default space). The
/// hardware is restricted exactly as the live loop restricts it to its host.
fn search_space(args: &Args) -> Result<Option<optimizer::SearchSpace>> {
    if args.cpus.is_none() && args.gpus.is_none() && args.batches.is_none() {
        return Ok(None);
    }
    let mut space = optimizer::SearchSpace::default();
    if args.cpus == Some(0) {
        bail!("--cpus must be at least 1");
    }
    if args.cpus.is_some() || args.gpus.is_some() {
        space.hardware = contract::backend::host::space(contract::backend::host::Host {
            cpus: args.cpus.unwrap_or(usize::MAX),
            gpus: args.gpus.unwrap_or(1),
        });
    }
    if let Some(text) = &args.batches {
        space.batches = text
            .split(',')
            .map(|b| match b.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(anyhow!(
                    "invalid batch cap {b:?} in --batches (e.g. 1,4,16)"
                )),
            })
            .collect::<Result<_>>()?;
    }
    Ok(Some(space))
}

fn parse_slas(text: &str) -> Result<Vec<f64>> {
    text.split(',')
        .map(|s| parse_duration_s(s.trim()).map_err(anyhow::Error::from))
        .collect()
}

fn parse_policies(text: Option<&str>) -> Result<Vec<String>> {
    let Some(text) = text else {
        return Ok(SIM_POLICIES.iter().map(|s| s.to_string()).collect());
    };
    text.split(',')
        .map(|p| {
            let p = p.trim();
            if SIM_POLICIES.contains(&p) {
                Ok(p.to_string())
            } else {
                bail!("unknown policy {p:?}; known: {}", SIM_POLICIES.join(", "))
            }
        })
        .collect()
}

/// Arrival times (s) per series of the workload.
fn arrivals(spec: &str) -> Result<Vec<Vec<f64>>> {
    let w: Workload = spec.parse().with_context(|| format!("workload {spec:?}"))?;
    let series = w
        .load()
        .with_context(|| format!("loading workload {spec:?}"))?;
    if series.is_empty() {
        bail!("workload {spec:?} has no series");
    }
    Ok(series.iter().map(|s| s.arrival_times_s()).collect())
}

/// Runs one matrix with a progress bar on a terminal and plain lines otherwise.
fn run_matrix(m: &Matrix<'_>, estimator: &str, label: &str) -> Result<Vec<Outcome>> {
    let factory = estimator_factory(estimator)?;
    let total = m.dags.len() * m.slas.len() * m.policies.len();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(total as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        {
            b.set_style(style);
        }
        b.set_prefix(label.to_string());
        b
    });
    let progress = |k: usize, n: usize, r: &Row| {
        let msg = format!(
            "{} {} s {}: cost×OPT {} viol {:.2} %",
            r.dag,
            r.sla_s,
            r.policy,
            r.cost_vs_opt.map_or("?".into(), |x| format!("{x:.2}")),
            r.violation_ratio * 100.0
        );
        match &bar {
            Some(b) => {
                b.set_position(k as u64);
                b.set_message(msg);
            }
            None => eprintln!("[{label} {k}/{n}] {msg}"),
        }
    };
    let outs = experiment::run(m, factory.as_ref(), &progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(outs)
}

fn profiles(args: &Args) -> Result<ProfileSet> {
    match &args.profiles {
        Some(p) => load_profile_file(p),
        None => Ok(ProfileSet::paper()),
    }
}

fn load_profile_file(p: &Path) -> Result<ProfileSet> {
    ProfileSet::from_json(
        &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
    )
    .with_context(|| format!("{} is not a profile file", p.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Cost × OPT bars: one group per DAG (at the first SLA), one bar per policy.
fn cost_bars(rows: &[Row], sla: f64, title: &str) -> Result<String> {
    let dags: Vec<String> = rows
        .iter()
        .map(|r| r.dag.clone())
        .fold(Vec::new(), |mut v, d| {
            if !v.contains(&d) {
                v.push(d);
            }
            v
        });
    let policies: Vec<String> =
        rows.iter()
            .map(|r| r.policy.clone())
            .fold(Vec::new(), |mut v, p| {
                if !v.contains(&p) {
                    v.push(p);
                }
                v
            });
    let series: Vec<(String, Vec<f64>)> = policies
        .iter()
        .map(|p| {
            let v = dags
                .iter()
                .map(|d| {
                    rows.iter()
                        .find(|r| &r.dag == d && &r.policy == p && (r.sla_s - sla).abs() < 1e-9)
                        .and_then(|r| r.cost_vs_opt)
                        .unwrap_or(0.0)
                })
                .collect();
            (p.clone(), v)
        })
        .collect();
    Ok(report::bar_chart(
        title,
        "cost / OPT (log)",
        &dags,
        &series,
        true,
    )?)
}

pub fn run(args: Args) -> Result<()> {
    if let Some(name) = &args.experiment {
        if name != "paper" {
            bail!("unknown experiment {name:?}; known: paper");
        }
        if args.world_profiles.is_some() {
            bail!("--world-profiles is for one matrix, not with --experiment");
        }
        return run_paper(&args, &profiles(&args)?);
    }
    if args.joint {
        return joint::run(&args);
    }
    let dags = dags(&args)?;
    let slas = parse_slas(&args.sla)?;
    let policies = parse_policies(args.policies.as_deref())?;
    let duration = duration_s(&args.duration)?;
    let series = arrivals(&args.workload)?;
    let profiles = profiles(&args)?;
    let world = args
        .world_profiles
        .as_deref()
        .map(load_profile_file)
        .transpose()?;
    let m = Matrix {
        dags: dags
            .into_iter()
            .enumerate()
            .map(|(k, d)| (d, series[k % series.len()].as_slice()))
            .collect(),
        profiles: &profiles,
        world: world.as_ref(),
        slas: slas.clone(),
        policies,
        duration_s: duration,
        opts: SimOptions {
            seed: args.seed,
            warmup_s: duration_s(&args.warmup)?,
            ..SimOptions::default()
        },
        headroom: args.headroom,
        sla_quantile: args.sla_quantile,
        threads: args.threads,
        space: search_space(&args)?,
    };
    let outs = run_matrix(&m, &args.estimator, "sim")?;
    let rows: Vec<Row> = outs.iter().map(|o| o.row.clone()).collect();
    print!("{}", report::full_table(&rows));
    if let Some(p) = &args.json {
        write(p, &serde_json::to_string_pretty(&rows)?)?;
    }
    if let Some(p) = &args.plot {
        write(
            p,
            &cost_bars(
                &rows,
                slas[0],
                &format!("cost / OPT at SLA {} s ({})", slas[0], args.workload),
            )?,
        )?;
    }
    Ok(())
}

/// Planning SLA headroom against inference-time noise (the simulator's cv is 3 %, truncated at 2 cv).
pub const HEADROOM: f64 = 0.06;

/// `--experiment paper`: the main matrix (3 DAGs × SLA 2–6 s × 8 policies on the OrcBench model of
/// the Azure trace's largest cluster) and the bursty matrix (synthetic, CV 3, 10× bursts, SLA 3 s).
fn run_paper(args: &Args, profiles: &ProfileSet) -> Result<()> {
    let duration = duration_s(&args.duration)?;
    let hours = duration / 3600.0;
    let main_spec = format!(
        "orcbench:seed={},model=0,hours={hours},functions=3",
        args.seed
    );
    let bursty_spec = format!(
        "synthetic:seed={},rate=0.1,cv=3,burst=10,hours={hours},functions=3",
        args.seed
    );
    let dags: Vec<Dag> = testkit::PAPER_DAGS
        .iter()
        .filter_map(|n| testkit::paper_dag(n))
        .collect();
    let opts = SimOptions {
        seed: args.seed,
        warmup_s: duration_s(&args.warmup)?,
        ..SimOptions::default()
    };
    let policies = parse_policies(args.policies.as_deref())?;
    let mut results = Vec::new();
    for (label, spec, slas) in [
        ("main", &main_spec, vec![2.0, 3.0, 4.0, 5.0, 6.0]),
        ("bursty", &bursty_spec, vec![3.0]),
    ] {
        let series = arrivals(spec)?;
        let m = Matrix {
            dags: dags
                .iter()
                .cloned()
                .enumerate()
                .map(|(k, d)| (d, series[k % series.len()].as_slice()))
                .collect(),
            profiles,
            world: None,
            slas,
            policies: policies.clone(),
            duration_s: duration,
            opts,
            headroom: args.headroom,
            sla_quantile: args.sla_quantile,
            threads: args.threads,
            space: search_space(args)?,
        };
        let t0 = std::time::Instant::now();
        let outs = run_matrix(&m, &args.estimator, label)?;
        eprintln!(
            "{label}: {} runs in {:.1} s",
            outs.len(),
            t0.elapsed().as_secs_f64()
        );
        results.push(outs);
    }
    let meta = optimizer::sim::paper::Meta {
        main_workload: main_spec,
        bursty_workload: bursty_spec,
        duration_s: duration,
        seed: args.seed,
        estimator: args.estimator.clone(),
    };
    let files = optimizer::sim::paper::render(&results[0], &results[1], &meta)?;
    for (name, text) in &files {
        write(&args.out.join(name), text)?;
    }
    let rows: Vec<&Row> = results.iter().flatten().map(|o| &o.row).collect();
    write(
        &args.out.join("rows.json"),
        &serde_json::to_string_pretty(&rows)?,
    )?;
    if let Some(p) = &args.json {
        write(p, &serde_json::to_string_pretty(&rows)?)?;
    }
    let main_rows: Vec<Row> = results[0].iter().map(|o| o.row.clone()).collect();
    println!("{}", optimizer::sim::paper::headline(&main_rows));
    println!("wrote {} files to {}", files.len() + 1, args.out.display());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_slas_and_policies() {
        assert_eq!(duration_s("2h").unwrap(), 7200.0);
        assert_eq!(duration_s("1d").unwrap(), 86_400.0);
        assert_eq!(duration_s("90s").unwrap(), 90.0);
        assert!(duration_s("2x").is_err());
        assert_eq!(parse_slas("2s,1500ms").unwrap(), vec![2.0, 1.5]);
        assert_eq!(parse_policies(None).unwrap().len(), SIM_POLICIES.len());
        let err = parse_policies(Some("smiless,foo")).unwrap_err().to_string();
        assert!(err.contains("foo") && err.contains("opt-gap"), "{err}");
    }
}
