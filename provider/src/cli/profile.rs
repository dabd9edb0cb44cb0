//! `smiless profile <function>`: measure a deployed function through the provider's (or the gateway's)
//! API and fit its profile ([`profiler`]); save it in the project's profile format, plot measured vs
//! fitted, print a table or `--json`.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use optimizer::{Hardware, ProfileSet};

use profiler::{self, Config, Progress, Report, client::Api};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  smiless profile asr --provider http://127.0.0.1:8081 --cores 1,2 --out asr.json --plot asr.svg
  smiless profile asr --gateway http://127.0.0.1:8080 --auth admin:$(cat password) --json
  smiless profile tts --cores 1,2,4 --batches 1,2,4,8,16 --repeat 5 --exceed-prob 0.01 --memory 512,128,32
  smiless plan --stack stack.yml --dag voice-assistant --profiles asr.json   # plan with the result

What it does: deploys a copy `<function>-profile` (same process, environment and secrets, outside any
DAG), pins it to each grid hardware (annotation com.smiless.hardware), measures cold starts (scale to 0,
invoke, minus the warm call after it) and warm calls of each batch (header X-Smiless-Batch and a JSON
array of B inputs), fits t(B,r) = a*B/r + b*B + c with a,b,c >= 0, holds one grid cell out to check the
fit's predictions, and removes the copy. Times are profile seconds: wall time / the time scale
(SMILESS_TIME_SCALE of the function, or --time-scale). See docs/profiling.md.")]
pub struct Args {
    /// The deployed function to profile.
    pub function: String,
    /// The provider's URL.
    #[arg(long, env = "SMILESS_PROVIDER", conflicts_with = "gateway")]
    pub provider: Option<String>,
    /// The OpenFaaS gateway's URL (same routes; use --auth for its basic auth).
    #[arg(long, env = "OPENFAAS_URL")]
    pub gateway: Option<String>,
    /// Basic auth as USER:PASSWORD.
    #[arg(long, env = "SMILESS_AUTH", hide_env_values = true)]
    pub auth: Option<String>,
    /// The function's namespace (default: the provider's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// CPU core counts of the grid (comma-separated). Default 1,2,4, skipping counts the host lacks.
    #[arg(long, value_delimiter = ',')]
    pub cores: Option<Vec<u32>>,
    /// GPU shares (percent of one GPU through MPS) of the grid, e.g. 10,30,50,100.
    #[arg(long, value_delimiter = ',')]
    pub gpu_shares: Vec<u32>,
    /// Batch sizes of the grid.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub batches: Vec<u32>,
    /// Measurements per grid cell, and cold starts per device kind.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Target probability that an initialisation exceeds mean + n·std (sets n; normal assumption).
    #[arg(long, default_value_t = 0.05)]
    pub exceed_prob: f64,
    /// Divide measured times by this (default: the function's SMILESS_TIME_SCALE, else 1).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Memory limits (MiB, comma-separated) for the knee sweep; `none` to skip.
    #[arg(long, default_value = "1024,256,64,16")]
    pub memory: String,
    /// The held-out cell as HARDWARE/BATCH (e.g. cpu:2/4); default: the middle batch on the middle
    /// hardware.
    #[arg(long)]
    pub heldout: Option<String>,
    /// Request body of one item (a file); default `{"input":"profile"}`.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write (or update) this profile file in the smiless profile format (a new file starts from the
    /// paper's profiles, so the planner can use it as is).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Save under this profile name (default: the function's com.smiless.profile, else its name).
    #[arg(long)]
    pub profile_name: Option<String>,
    /// Write an SVG plot of measured vs fitted times.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Per-request timeout, e.g. 60s.
    #[arg(long, default_value = "120s")]
    pub timeout: humantime::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An indicatif bar on a terminal, plain lines on stderr otherwise.
struct CliProgress {
    bar: Option<ProgressBar>,
    last: String,
}

impl Progress for CliProgress {
    fn set_total(&mut self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }
    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.set_message(text.to_owned()),
            None if text != self.last => eprintln!("smiless profile: {text}"),
            None => {}
        }
        text.clone_into(&mut self.last);
    }
    fn step(&mut self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
}

fn parse_heldout(s: &str) -> anyhow::Result<(Hardware, u32)> {
    let (hw, b) = s
        .split_once('/')
        .with_context(|| format!("--heldout {s:?}: expected HARDWARE/BATCH, e.g. cpu:2/4"))?;
    let hw: Hardware = hw.parse().with_context(|| format!("--heldout {s:?}"))?;
    let b: u32 = b
        .trim()
        .parse()
        .with_context(|| format!("--heldout {s:?}: the batch is not a number"))?;
    Ok((hw, b))
}

fn parse_memory(s: &str) -> anyhow::Result<Vec<u64>> {
    if s.trim().eq_ignore_ascii_case("none") || s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut v = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=1 << 20).contains(m))
                .with_context(|| format!("--memory {x:?}: a limit is 1..=1048576 MiB, or `none`"))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    Ok(v)
}

/// The configuration from the flags.
pub fn config(args: &Args) -> anyhow::Result<Config> {
    let input = match &args.input {
        Some(p) => std::fs::read(p).with_context(|| format!("reading --input {}", p.display()))?,
        None => br#"{"input":"profile"}"#.to_vec(),
    };
    Ok(Config {
        function: args.function.clone(),
        namespace: args.namespace.clone(),
        cpu_cores: args.cores.clone().unwrap_or_else(|| vec![1, 2, 4]),
        gpu_shares: args.gpu_shares.clone(),
        default_grid: args.cores.is_none(),
        batches: args.batches.clone(),
        repeat: args.repeat,
        exceed_prob: args.exceed_prob,
        time_scale: args.time_scale,
        memory_mib: parse_memory(&args.memory)?,
        input: bytes::Bytes::from(input),
        heldout: args.heldout.as_deref().map(parse_heldout).transpose()?,
        ready_timeout: Duration::from(args.timeout),
        base: None,
        profile_name: args.profile_name.clone(),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    cfg.validate()?;
    let url = args
        .provider
        .clone()
        .or_else(|| args.gateway.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8081".to_owned());
    let api = Api::new(&url, args.auth.as_deref(), Duration::from(args.timeout))?;
    let existing = match &args.out {
        Some(p) if p.exists() => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(ProfileSet::from_json(&text).with_context(|| {
                format!(
                    "{} exists and is not a smiless profile file; choose another --out",
                    p.display()
                )
            })?)
        }
        // A new file starts from the paper's set, so that a planner given it finds every other function too.
        _ => Some(ProfileSet::paper()),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("profile [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        {
            b.set_style(style);
        }
        b
    });
    let mut progress = CliProgress {
        bar,
        last: String::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(profiler::run(&api, &cfg, &mut progress));
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let report = report?;
    if let Some(p) = &args.out {
        let set = report.into_set(existing);
        let text = serde_json::to_string_pretty(&set)?;
        std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.plot {
        let svg = profiler::plot::svg(&report, (900, 560))?;
        std::fs::write(p, svg).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    if report.fit.values().any(|f| !f.mape.is_finite()) {
        bail!("the fit's error is not finite");
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "profile of {} (saved as {:?}; time scale {}: times below are profile seconds)",
        r.function, r.profile_name, r.time_scale
    );
    for (hw, i) in &r.init {
        println!(
            "  init on {hw}: mean {:.4} s, std {:.4} s over {} cold starts; n = {:.3} for P(exceed) = {} → estimate {:.4} s",
            i.mean_s,
            i.std_s,
            i.samples_s.len(),
            i.n,
            r.exceed_prob,
            i.estimate_s
        );
    }
    println!(
        "  {:<8} {:>6} {:>12} {:>12} {:>8}",
        "hardware", "batch", "measured s", "fitted s", "error"
    );
    for c in &r.cells {
        println!(
            "  {:<8} {:>6} {:>12.5} {:>12.5} {:>7.2}%",
            c.hardware,
            c.batch,
            c.median_s,
            c.fitted_s,
            (c.fitted_s - c.median_s).abs() / c.median_s * 100.0
        );
    }
    for (kind, f) in &r.fit {
        println!(
            "  fit {kind}: t(B,r) = {:.5}·B/r + {:.5}·B + {:.5}   MAPE {:.2} % over {} cells",
            f.a,
            f.b,
            f.c,
            f.mape * 100.0,
            f.points
        );
    }
    println!(
        "  held out {}/{}: measured {:.5} s, predicted {:.5} s from the other cells, error {:.2} %",
        r.heldout.hardware,
        r.heldout.batch,
        r.heldout.measured_s,
        r.heldout.predicted_s,
        r.heldout_error * 100.0
    );
    match r.memory.knee_mib {
        Some(k) => println!("  memory knee: {k} MiB ({})", r.memory.method),
        None => println!("  memory knee: none found ({})", r.memory.method),
    }
    for p in &r.memory.sweep {
        println!(
            "    limit {:>7} MiB: {}",
            p.limit_mib,
            match (p.ok, p.median_s, &p.error) {
                (true, Some(m), _) => format!("served, median {m:.5} s (real)"),
                (_, _, Some(e)) => format!("failed: {e}"),
                _ => "failed".to_owned(),
            }
        );
    }
    for s in &r.skipped {
        println!("  skipped {s}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_readable() {
        assert_eq!(
            parse_heldout("cpu:2/4").unwrap(),
            (Hardware::Cpu { cores: 2 }, 4)
        );
        assert!(
            parse_heldout("cpu:2")
                .unwrap_err()
                .to_string()
                .contains("HARDWARE/BATCH")
        );
        assert!(parse_heldout("cpu:2/x").is_err());
        assert_eq!(parse_memory("16, 1024,256").unwrap(), vec![1024, 256, 16]);
        assert!(parse_memory("none").unwrap().is_empty());
        assert!(
            parse_memory("0")
                .unwrap_err()
                .to_string()
                .contains("--memory")
        );
    }
}
