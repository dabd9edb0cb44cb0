//! `smiless`: one binary for the provider, the watchdog and the planning tools.
#![forbid(unsafe_code)]
use clap::Parser;

fn main() -> anyhow::Result<()> {
    provider::cli::run(provider::cli::Cli::parse())
}
