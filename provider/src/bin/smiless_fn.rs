//! `smiless-fn`: an EMULATOR of a profiled ML model (see `function_kit::emulator`). It runs as a watchdog
//! `fprocess`, in classic mode (body on stdin, JSON on stdout) or, with `--listen`, as an http-mode
//! upstream that initialises once at start and then serves requests.
#![forbid(unsafe_code)]
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use function_kit::emulator::gpu::{self, Engine, EngineMode};
use function_kit::emulator::{self, Emulator};

/// An emulator of a profiled ML model: sleeps the profile's initialisation time, then per request busies
/// a CPU for the profiled inference time. It does not run a model.
#[derive(Debug, Parser)]
#[command(
    name = "smiless-fn",
    version,
    after_help = "Examples:
  echo hi | SMILESS_TIME_SCALE=0.1 smiless-fn --profile speechrecognition
  smiless-fn --profile textgeneration --listen 127.0.0.1:3000     # http mode (watchdog upstream_url)
  OMP_NUM_THREADS=4 smiless-fn --profile objectdetection --profiles my-profiles.json < input.json
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30 smiless-fn --profile translation --engine gpu --bench 20
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100 smiless-fn --gpu-calibrate > calibration.json

GPU mode (a GPU share, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, and a visible GPU) runs a real kernel sized
from a calibration at 100 % of the GPU, so the MPS share changes its latency; without a GPU the share's
timing is emulated on the CPU and stderr says so. See docs/gpu.md.

Classic mode pays the initialisation on a replica's first request (a marker in its private TMPDIR);
http mode pays it once at start, before it accepts connections. In http mode SMILESS_LISTEN_PORT, when
set, replaces the port of --listen: the local backend sets it (and the watchdog's upstream_url) so that
every replica has a port of its own, as every pod has its own network namespace."
)]
struct Args {
    /// Profile name (as in the profile file; the paper's set by default).
    #[arg(long, env = emulator::ENV_PROFILE)]
    profile: Option<String>,
    /// A profile file in the optimizer's JSON format.
    #[arg(long, env = emulator::ENV_PROFILES)]
    profiles: Option<PathBuf>,
    /// Multiplies every emulated duration (shared with the provider's control loop).
    #[arg(long, env = emulator::ENV_TIME_SCALE)]
    time_scale: Option<String>,
    /// Serve HTTP on this address instead of one request on stdin (the watchdog's http mode).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Compute engine: `auto` uses the GPU for a GPU share when one is visible, else the CPU emulation.
    #[arg(long, value_enum, env = gpu::ENV_ENGINE, default_value = "auto")]
    engine: EngineMode,
    /// GPU calibration file: read when it matches the device, written after calibrating.
    #[arg(long, env = gpu::ENV_CALIBRATION)]
    gpu_calibration: Option<PathBuf>,
    /// Calibrate the GPU kernel on the whole GPU, print the calibration (JSON) and exit.
    #[arg(long)]
    gpu_calibrate: bool,
    /// Run N measured requests without a server (after 2 unmeasured ones), print one JSON line, exit.
    #[arg(long, value_name = "N")]
    bench: Option<usize>,
    /// The label of a --bench run (in its JSON).
    #[arg(long, default_value = "bench")]
    label: String,
    /// Run requests back to back for SECS (a co-running client), then exit.
    #[arg(long, value_name = "SECS")]
    hammer: Option<f64>,
    /// With --hammer: create this file once the load is running.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.gpu_calibrate {
        return calibrate();
    }
    let name = args.profile.ok_or(emulator::EmulatorError::NoProfile)?;
    let set = emulator::load_profiles(args.profiles.as_deref())?;
    let scale = emulator::parse_time_scale(args.time_scale.as_deref())?;
    let hw = emulator::hardware_from_env(|k| std::env::var(k).ok(), emulator::affinity_cores());
    let emu = Emulator::new(&set, &name, hw, scale)?;
    let choice = gpu::choose(args.engine, hw, gpus_for(args.engine, hw))?;
    // Classic mode stays quiet on stderr (the watchdog's combine_output puts it into the response).
    let announce = args.listen.is_some() || args.bench.is_some() || args.hammer.is_some();
    let open = || Engine::open(&choice, hw, args.gpu_calibration.clone(), announce);
    if let Some(n) = args.bench {
        let report = emulator::bench::bench(&emu, &open()?, n, &args.label)?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    if let Some(secs) = args.hammer {
        let d = std::time::Duration::try_from_secs_f64(secs)
            .with_context(|| format!("--hammer {secs}: not a duration in seconds"))?;
        let n = emulator::bench::hammer(&emu, &open()?, d, args.ready_file.as_deref())?;
        eprintln!("smiless-fn: hammered {n} requests in {secs} s");
        return Ok(());
    }
    match args.listen {
        None => classic(&emu, open),
        Some(addr) => {
            let port = std::env::var(emulator::ENV_LISTEN_PORT).ok();
            Ok(emulator::http::serve(
                emu,
                emulator::listen_addr(addr, port.as_deref())?,
                open,
            )?)
        }
    }
}

/// GPUs visible to this process, discovered only when the engine could use one.
fn gpus_for(mode: EngineMode, hw: optimizer::Hardware) -> Result<usize, String> {
    if mode == EngineMode::Cpu || !matches!(hw, optimizer::Hardware::Gpu { .. }) {
        return Ok(0);
    }
    let d = function_kit::gpu::discover();
    match d.reason {
        Some(r) if d.gpus.is_empty() => Err(r),
        _ => Ok(d.gpus.len()),
    }
}

/// `--gpu-calibrate`: measure the kernel on the whole GPU (run with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100).
fn calibrate() -> anyhow::Result<()> {
    let share = emulator::hardware_from_env(|k| std::env::var(k).ok(), 1);
    let share = match share {
        optimizer::Hardware::Gpu { share_pct } => share_pct,
        optimizer::Hardware::Cpu { .. } => 100,
    };
    let c = function_kit::gpu::guarded("calibrating", || {
        let mut k = function_kit::gpu::cuda::FmaKernel::open(0)?;
        gpu::calibrate(&mut k, share)
    })
    .map_err(emulator::EmulatorError::from)?;
    println!("{}", serde_json::to_string(&c)?);
    Ok(())
}

fn classic(
    emu: &Emulator,
    open: impl FnOnce() -> Result<Engine, emulator::EmulatorError>,
) -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let init = emulator::classic_init(emu, &std::env::temp_dir()).delay();
    let header = std::env::var(emulator::BATCH_ENV).ok();
    // A framed batch reaches the process only from a watchdog with batch_native=true (docs/batching.md).
    let items = emulator::batched::items(
        std::env::var("Http_Content_Type").ok().as_deref(),
        header.as_deref(),
        &bytes::Bytes::from(input.clone()),
    )
    .transpose()?;
    let out = if std::env::var_os(emulator::WARMUP_ENV).is_some() {
        emu.warmed(init)
    } else if let Some(items) = &items {
        let n = u32::try_from(items.len()).unwrap_or(1);
        open()?.serve(emu, emulator::batched::input_bytes(items), init, n)?
    } else {
        let batch = emulator::batch_from(header.as_deref());
        // A classic process lives for one request: the GPU context is opened for it (not on warm-up).
        open()?.serve(emu, input.len(), init, batch)?
    };
    let mut stdout = std::io::stdout().lock();
    if let Some(items) = items.filter(|_| !out.warmup) {
        stdout.write_all(&emulator::batched::answer(&out, &items)?)?;
        return Ok(());
    }
    serde_json::to_writer(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}
