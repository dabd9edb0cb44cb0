//! `smiless-fn`: an EMULATOR of a profiled ML model (see `provider::emulator`). It runs as a watchdog
//! `fprocess`, in classic mode (body on stdin, JSON on stdout) or, with `--listen`, as an http-mode
//! upstream that initialises once at start and then serves requests.
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use provider::emulator::{self, Emulator};

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

Classic mode pays the initialisation on a replica's first request (a marker in its private TMPDIR);
http mode pays it once at start, before it accepts connections."
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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = args.profile.ok_or(emulator::EmulatorError::NoProfile)?;
    let set = emulator::load_profiles(args.profiles.as_deref())?;
    let scale = emulator::parse_time_scale(args.time_scale.as_deref())?;
    let hw = emulator::hardware_from_env(|k| std::env::var(k).ok(), emulator::affinity_cores());
    let emu = Emulator::new(&set, &name, hw, scale)?;
    match args.listen {
        None => classic(&emu),
        Some(addr) => http(emu, addr),
    }
}

fn classic(emu: &Emulator) -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let init = emulator::classic_init(emu, &std::env::temp_dir()).delay();
    let out = if std::env::var_os(emulator::WARMUP_ENV).is_some() {
        emu.warmed(init)
    } else {
        let batch = emulator::batch_from(std::env::var(emulator::BATCH_ENV).ok().as_deref());
        emu.serve_batch(input.len(), init, batch)
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}

fn http(emu: Emulator, addr: SocketAddr) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let init = emu.draw_init_delay();
    std::thread::sleep(init);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let emu = Arc::new(emu);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        // The bound address (port 0 picks one), so a caller can find it.
        let bound = listener.local_addr()?;
        eprintln!(
            "smiless-fn: {} initialised in {init:?}, listening on {bound}",
            emu.profile_name
        );
        loop {
            let (conn, _) = listener.accept().await?;
            let emu = Arc::clone(&emu);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let emu = Arc::clone(&emu);
                    async move {
                        // Already initialised at start: a warm-up call has nothing to do.
                        let warmup = req.headers().contains_key(emulator::WARMUP_HEADER);
                        let batch = emulator::batch_from(
                            req.headers()
                                .get(emulator::BATCH_HEADER)
                                .and_then(|v| v.to_str().ok()),
                        );
                        let n = req
                            .into_body()
                            .collect()
                            .await
                            .map_or(0, |b| b.to_bytes().len());
                        // The busy loop blocks: keep it off the async worker.
                        let out = tokio::task::spawn_blocking(move || {
                            if warmup {
                                emu.warmed(std::time::Duration::ZERO)
                            } else {
                                emu.serve_batch(n, std::time::Duration::ZERO, batch)
                            }
                        })
                        .await
                        .map_err(std::io::Error::other)?;
                        let body = serde_json::to_vec(&out).map_err(std::io::Error::other)?;
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(bytes::Bytes::from(body)))
                            .map_err(std::io::Error::other)?;
                        Ok::<_, std::io::Error>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    })
}
