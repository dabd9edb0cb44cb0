//! `smiless gpus`: the GPUs this host has (cudarc, dynamic loading: zero without a driver) and the MPS
//! daemon's state; `smiless gpus report`: the GPU check's fit and report (see `e2e/gpu-check.sh`).
use std::path::PathBuf;

use anyhow::Context as _;

use function_kit::gpu::{self, mps, report};

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  smiless gpus                 # a table; 'no GPU found: …' with the reason on a host without one
  smiless gpus --json          # {\"gpus\": [{\"index\", \"name\", \"memory_bytes\", \"sm_count\", …}], \"mps\": {…}}
  smiless gpus --require       # exit status 2 when there is no GPU (for scripts)
  smiless gpus report --input m.jsonl --doc docs/gpu.md --json-out out.json --gpu 'NVIDIA H200'"
)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 2 (after printing) when no GPU is found.
    #[arg(long)]
    pub require: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Fit `t = a/share + c` to `smiless-fn --bench` measurements and write the markdown block and JSON.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  smiless gpus report --input /tmp/m.jsonl --doc docs/gpu.md --json-out $OUT/gpu-check.json \\
      --gpu 'NVIDIA H200' --mps 'started by the script' --command 'e2e/gpu-check.sh'")]
pub struct ReportArgs {
    /// `smiless-fn --bench` JSON lines.
    #[arg(long)]
    pub input: PathBuf,
    /// Markdown file whose generated block is replaced (created when missing).
    #[arg(long)]
    pub doc: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// The GPU's name as reported.
    #[arg(long, default_value = "unknown")]
    pub gpu: String,
    /// How MPS was set up.
    #[arg(long, default_value = "unknown")]
    pub mps: String,
    /// The command that produced the measurements.
    #[arg(long, default_value = "e2e/gpu-check.sh")]
    pub command: String,
}

/// The MPS state as `smiless gpus` reports it.
#[derive(Debug, serde::Serialize)]
struct MpsState {
    control_program: Option<PathBuf>,
    /// Where a daemon answers, if one does.
    running_at: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Report(r)) = args.command {
        return run_report(r);
    }
    let d = gpu::discover();
    let pipe = std::env::var(mps::ENV_PIPE).ok();
    let state = MpsState {
        control_program: mps::control_program(std::env::var("PATH").ok().as_deref()),
        running_at: mps::candidate_pipe_dirs(
            pipe.as_deref(),
            std::path::Path::new(mps::DEFAULT_PIPE_DIR),
        )
        .into_iter()
        .find(|p| mps::daemon_answers(p)),
    };
    if args.json {
        let v = serde_json::json!({
            "gpus": d.gpus,
            "driver_version": d.driver_version,
            "reason": d.reason,
            "mps": state,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_table(&d, &state);
    }
    if args.require && d.gpus.is_empty() {
        eprintln!(
            "smiless gpus: no GPU found ({})",
            d.reason.as_deref().unwrap_or("no reason given")
        );
        std::process::exit(2);
    }
    Ok(())
}

fn print_table(d: &gpu::Discovery, state: &MpsState) {
    if d.gpus.is_empty() {
        println!(
            "no GPU found: {}",
            d.reason.as_deref().unwrap_or("the driver lists no device")
        );
    } else {
        println!(
            "{:>3}  {:<28} {:>10} {:>5} {:>8}",
            "GPU", "name", "memory", "SMs", "compute"
        );
        for g in &d.gpus {
            println!(
                "{:>3}  {:<28} {:>6.1} GiB {:>5} {:>8}",
                g.index,
                g.name,
                g.memory_bytes as f64 / f64::from(1u32 << 30),
                g.sm_count,
                g.compute_capability
            );
        }
        if let Some(v) = &d.driver_version {
            println!("CUDA driver {v}");
        }
    }
    match (&state.running_at, &state.control_program) {
        (Some(p), _) => println!("MPS: a control daemon answers at {}", p.display()),
        (None, Some(p)) => println!("MPS: {} is installed; no daemon running", p.display()),
        (None, None) => println!("MPS: {} is not installed", mps::CONTROL),
    }
}

fn run_report(a: ReportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading the measurements {}", a.input.display()))?;
    let runs = report::parse_lines(&text)?;
    let profile = runs.first().map(|r| r.profile.clone()).unwrap_or_default();
    let engine = runs.first().map(|r| r.engine.clone()).unwrap_or_default();
    let ctx = report::Context {
        date: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
        command: a.command,
        gpu: a.gpu,
        mps: a.mps,
        engine,
        profile,
    };
    let rep = report::build(ctx, &runs)?;
    let doc = std::fs::read_to_string(&a.doc).unwrap_or_default();
    std::fs::write(&a.doc, report::splice(&doc, &report::markdown(&rep)))
        .with_context(|| format!("writing {}", a.doc.display()))?;
    if let Some(out) = &a.json_out {
        std::fs::write(out, serde_json::to_string_pretty(&rep)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    println!("{}", report::markdown(&rep));
    Ok(())
}
