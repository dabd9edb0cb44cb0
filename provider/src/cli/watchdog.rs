//! `smiless watchdog`: the runtime of one function replica on the local backend. It is configured by the
//! OpenFaaS watchdogs' environment variables; see [`function_kit::watchdog`](function_kit::watchdog).

use std::ffi::OsString;

/// Serve one function replica over HTTP, configured by environment variables like the OpenFaaS watchdogs.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Environment (the OpenFaaS watchdogs' names):
  fprocess        the function's command (required), e.g. `sha512sum` or `python3 index.py`
  mode            unset/streaming/serializing: fork fprocess per request (classic); http: run it once
  upstream_url    http mode: where fprocess listens, e.g. http://127.0.0.1:5000
  port            listen port (default 8080)
  exec_timeout, read_timeout, write_timeout   e.g. 10s, 500ms or 10 (seconds); 0 = none; default 10s
  write_debug, combine_output (default true), content_type, max_inflight, suppress_lock, ready_path
  batch_native    the function answers framed batch calls itself (default false: the watchdog splits a
                  batch into one request per item; docs/batching.md)

Examples:
  fprocess=sha512sum port=8080 smiless watchdog
  curl -s --data-binary @file http://127.0.0.1:8080/
  mode=http upstream_url=http://127.0.0.1:5000 fprocess='python3 server.py' smiless watchdog")]
pub struct Args {
    /// Internal: arm the parent-death signal for PARENT_PID, then exec the command after `--`.
    #[arg(long, hide = true, value_name = "PARENT_PID")]
    exec_child: Option<u32>,
    /// Internal: the command for --exec-child.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(parent) = args.exec_child {
        return Err(function_kit::watchdog::exec_child(parent, &args.command).into());
    }
    if !args.command.is_empty() {
        anyhow::bail!("`smiless watchdog` takes no arguments; set fprocess in the environment");
    }
    let code = function_kit::watchdog::main()?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
