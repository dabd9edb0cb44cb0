//! Command-line entry points. Each subcommand owns one module here: its clap `Args` and a `run`
//! function that calls into the library. `main.rs` only parses and dispatches.
use clap::{Parser, Subcommand};

pub mod bench;
pub mod demo;
pub mod emulate;
pub mod forecast;
pub mod gpus;
pub mod plan;
pub mod profile;
pub mod serve;
pub mod sim;
pub mod watchdog;

/// smiless: an OpenFaaS provider that serves DAGs of ML inference functions on CPU and GPU at the
/// lowest cost that meets their end-to-end latency SLA.
#[derive(Debug, Parser)]
#[command(name = "smiless", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the OpenFaaS provider (the faas-netes replacement) on the local or Kubernetes backend.
    Serve(serve::Args),
    /// A function replica's runtime on the local backend (classic or http mode, like the OpenFaaS watchdogs).
    Watchdog(watchdog::Args),
    /// Plan a DAG from a stack file: hardware, batch, cold-start policy and replicas per function.
    Plan(plan::Args),
    /// Simulate planning policies on a workload (trace-driven, deterministic for a seed).
    Sim(sim::Args),
    /// Train and evaluate invocation forecasters.
    #[command(subcommand)]
    Forecast(forecast::Command),
    /// Measure a deployed function and fit its profile (init time, t(B,r) = a·B/r + b·B + c, memory knee).
    Profile(profile::Args),
    /// The GPUs of this host (zero without a CUDA driver), MPS, and the GPU check's report.
    Gpus(gpus::Args),
    /// Side-by-side benchmarks (proxy, plan, sim) that print a table and ratios.
    #[command(subcommand)]
    Bench(bench::Command),
    /// The whole product on this machine: serve, deploy stack.yml, replay a trace, report.
    Demo(demo::Args),
    /// The smiless-fn model emulator's classic mode (used by `demo` when smiless-fn is not installed).
    #[command(hide = true)]
    Emulate(emulate::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Watchdog(args) => watchdog::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Forecast(cmd) => forecast::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Emulate(args) => emulate::run(args),
        Command::Gpus(args) => gpus::run(args),
        Command::Profile(args) => profile::run(args),
    }
}
