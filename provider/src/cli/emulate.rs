//! `smiless emulate` (hidden): the `smiless-fn` model emulator (CPU emulation, classic or http mode) run
//! from the `smiless` binary itself, so `smiless demo` works from `cargo run --bin smiless` alone (which does not build the
//! `smiless-fn` binary). The demo puts a `smiless-fn` shim on the replicas' `PATH` that execs this,
//! which keeps the program name the provider recognises as the emulator. Same flags and environment
//! as `smiless-fn`'s CPU emulation, `--listen` (http mode) included.
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;

use function_kit::emulator::{self, Emulator};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  echo hi | SMILESS_TIME_SCALE=0.1 smiless emulate --profile speechrecognition
  smiless emulate --profile textgeneration --listen 127.0.0.1:5000   # http mode")]
pub struct Args {
    /// Profile name (as in the profile file; the paper's set by default).
    #[arg(long, env = emulator::ENV_PROFILE)]
    profile: Option<String>,
    /// A profile file in the optimizer's JSON format.
    #[arg(long, env = emulator::ENV_PROFILES)]
    profiles: Option<PathBuf>,
    /// Multiplies every emulated duration (shared with the provider's control loop).
    #[arg(long, env = emulator::ENV_TIME_SCALE)]
    time_scale: Option<String>,
    /// Serve HTTP on this address instead of one request on stdin (the watchdog's http mode);
    /// `SMILESS_LISTEN_PORT`, when set, replaces its port.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = args.profile.ok_or(emulator::EmulatorError::NoProfile)?;
    let set = emulator::load_profiles(args.profiles.as_deref())?;
    let scale = emulator::parse_time_scale(args.time_scale.as_deref())?;
    let hw = emulator::hardware_from_env(|k| std::env::var(k).ok(), emulator::affinity_cores());
    let emu = Emulator::new(&set, &name, hw, scale)?;
    if let Some(addr) = args.listen {
        let port = std::env::var(emulator::ENV_LISTEN_PORT).ok();
        let addr = emulator::listen_addr(addr, port.as_deref())?;
        let choice = emulator::gpu::choose(emulator::gpu::EngineMode::Cpu, hw, Ok(0))?;
        let open = || emulator::gpu::Engine::open(&choice, hw, None, true);
        return Ok(emulator::http::serve(emu, addr, open)?);
    }
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let init = emulator::classic_init(&emu, &std::env::temp_dir()).delay();
    let out = if std::env::var_os(emulator::WARMUP_ENV).is_some() {
        emu.warmed(init)
    } else {
        emu.serve(input.len(), init)
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}
