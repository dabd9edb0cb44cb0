//! `smiless emulate` (hidden): the `smiless-fn` model emulator's classic mode run from the `smiless`
//! binary itself, so `smiless demo` works from `cargo run --bin smiless` alone (which does not build the
//! `smiless-fn` binary). The demo puts a `smiless-fn` shim on the replicas' `PATH` that execs this,
//! which keeps the program name the provider recognises for warm-up calls. Same flags and environment
//! as `smiless-fn` without `--listen`.
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::emulator::{self, Emulator};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  echo hi | SMILESS_TIME_SCALE=0.1 smiless emulate --profile speechrecognition")]
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = args.profile.ok_or(emulator::EmulatorError::NoProfile)?;
    let set = emulator::load_profiles(args.profiles.as_deref())?;
    let scale = emulator::parse_time_scale(args.time_scale.as_deref())?;
    let hw = emulator::hardware_from_env(|k| std::env::var(k).ok(), emulator::affinity_cores());
    let emu = Emulator::new(&set, &name, hw, scale)?;
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
