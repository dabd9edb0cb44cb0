//! `smiless demo`: the whole product on one machine. It starts `smiless serve` on the local backend as a
//! child process (a temporary state directory, a free port), deploys `stack.yml` through the provider's
//! API (the stack file parsed here; no faas-cli needed), replays a short Azure-derived trace against the
//! DAGs (time-compressed with the time scale the emulated functions and the control loop share), shows
//! progress, and ends with a report: per DAG requests, SLA attainment, cost and cold starts; per
//! function the hardware and cold-start policy chosen, and why (from `/system/plan`); and beside it,
//! always-on and smiless simulated on the same trace ([`beside`]).
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use control::LivePolicy;

mod beside;
mod client;
mod fit;
mod report;
mod sla;
mod stack;

/// The repository's `stack.yml`, used when `--stack` is not given and there is none in the current
/// directory.
const EMBEDDED_STACK: &str = include_str!("../../../stack.yml");

/// The trace replayed by default: DAG k replays series k.
pub const DEFAULT_WORKLOAD: &str = "orcbench:seed=3,model=0,hours=1,functions=3";

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  smiless demo                                     # stack.yml, orcbench trace, 20 min compressed 10x (~2 min)
  smiless demo --policy keepalive:5m --duration 10m
  smiless demo --dags image-query,amber-alert --workload synthetic:seed=2,rate=0.05,cv=3 --json
  smiless demo --provider-url http://127.0.0.1:8081 --invoke-url http://127.0.0.1:8080 --auth admin:PASS --no-deploy

Durations (--duration, --start, keepalive:<d>) are in profile time: the run takes duration × time scale.
Cost is dollars of provisioned replica-time (init, busy and idle) at the paper's AWS prices, in profile
time, like `smiless sim` bills. The report ends with always-on and smiless SIMULATED on the same trace,
SLAs and this host's hardware, beside the measured run. The functions are the smiless-fn model EMULATOR (docs/live.md).")]
pub struct Args {
    /// faas-cli stack file (default: ./stack.yml, else the one built into the binary).
    #[arg(long)]
    pub stack: Option<PathBuf>,
    /// Which DAGs of the stack get traffic: comma-separated names, or `all`.
    #[arg(long, default_value = "all")]
    pub dags: String,
    /// Workload spec (as `smiless sim`): DAG k replays series k of it.
    #[arg(long, default_value = DEFAULT_WORKLOAD)]
    pub workload: String,
    /// Profile time replayed, e.g. 20m.
    #[arg(long, default_value = "20m")]
    pub duration: String,
    /// Where in the trace to start (profile time).
    #[arg(long, default_value = "0s")]
    pub start: String,
    /// Real seconds per profile second (shared by the provider and the emulated functions).
    #[arg(long, default_value_t = 0.1)]
    pub time_scale: f64,
    /// SLAs: `auto` (the stack's, raised to twice the fastest plan's latency, rounded up to a second,
    /// where this host cannot meet it), one duration for every DAG, or DAG=DURATION pairs.
    #[arg(long, default_value = "auto")]
    pub sla: String,
    /// CPU overcommit of the capacity the provider plans every DAG against: `auto` (the smallest of
    /// 1, 2, 4, 8, 16, 32 at which every DAG fits at its SLA on this host) or a factor ≥ 1.
    #[arg(long, default_value = "auto")]
    pub overcommit: String,
    /// Live policy: smiless, always-on or keepalive:<duration>.
    #[arg(long, default_value = "smiless")]
    pub policy: String,
    /// Keep the provider's state here (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Use this running provider instead of starting one (its policy and time scale apply).
    #[arg(long, value_name = "URL")]
    pub provider_url: Option<String>,
    /// Send the DAG requests here (e.g. the OpenFaaS gateway) instead of to the provider.
    #[arg(long, value_name = "URL")]
    pub invoke_url: Option<String>,
    /// Basic-auth `user:password` for the provider's and the gateway's /system routes.
    #[arg(long, env = "SMILESS_DEMO_AUTH", hide_env_values = true)]
    pub auth: Option<String>,
    /// Do not deploy the stack (it is deployed already, e.g. with faas-cli).
    #[arg(long)]
    pub no_deploy: bool,
    /// Print the trace's statistics per DAG and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// A DAG of the stack with its share of the trace (seconds from the trace start, profile time).
struct Traffic {
    dag: String,
    arrivals: Vec<f64>,
}

fn duration_s(text: &str) -> Result<f64> {
    let t = text.trim();
    if t == "0" {
        return Ok(0.0);
    }
    humantime::parse_duration(t)
        .map(|d| d.as_secs_f64())
        .or_else(|_| optimizer::parse_duration_s(t).map_err(anyhow::Error::from))
        .with_context(|| format!("invalid duration {text:?} (e.g. 20m, 90s)"))
}

/// The trace per selected DAG.
fn traffic(args: &Args, dags: &[String], start: f64, duration: f64) -> Result<Vec<Traffic>> {
    let w: predictor::Workload = args
        .workload
        .parse()
        .with_context(|| format!("workload {:?}", args.workload))?;
    let series = w
        .load()
        .with_context(|| format!("loading workload {:?}", args.workload))?;
    if series.is_empty() {
        bail!("workload {:?} has no series", args.workload);
    }
    Ok(dags
        .iter()
        .enumerate()
        .map(|(k, d)| Traffic {
            dag: d.clone(),
            arrivals: series[k % series.len()]
                .arrival_times_s()
                .into_iter()
                .filter(|&t| t >= start && t < start + duration)
                .map(|t| t - start)
                .collect(),
        })
        .collect())
}

/// The provider child and its scratch space.
struct Provider {
    child: Child,
    addr: String,
    dir: PathBuf,
    remove_dir: bool,
}

impl Provider {
    /// Starts `smiless serve` with the demo's settings and waits for its address.
    fn start(args: &Args, policy: LivePolicy, overcommit: f64) -> Result<Provider> {
        let exe = std::env::current_exe().context("locating the smiless binary")?;
        let (dir, remove_dir) = match &args.state_dir {
            Some(d) => (d.clone(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                (
                    std::env::temp_dir()
                        .join(format!("smiless-demo-{}-{nanos}", std::process::id())),
                    true,
                )
            }
        };
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        shim(&exe, &bin)?;
        let path = match std::env::var_os("PATH") {
            Some(p) => {
                let mut v = vec![bin.clone()];
                v.extend(std::env::split_paths(&p));
                std::env::join_paths(v).context("building PATH")?
            }
            None => bin.clone().into_os_string(),
        };
        let log = std::fs::File::create(dir.join("provider.log"))
            .with_context(|| format!("creating {}", dir.join("provider.log").display()))?;
        let mut child = Command::new(&exe)
            .arg("serve")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("PATH", path)
            .env(
                function_kit::emulator::ENV_TIME_SCALE,
                args.time_scale.to_string(),
            )
            .env(control::policy::ENV_POLICY, policy.to_string())
            .env(control::ENV_OVERCOMMIT, overcommit.to_string())
            .env("read_timeout", "60s")
            .env("write_timeout", "60s")
            .env("basic_auth", "false")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let out = child.stdout.take().context("the provider's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let mut p = Provider {
            child,
            addr: String::new(),
            dir,
            remove_dir,
        };
        match line.trim().strip_prefix("smiless: listening on ") {
            Some(a) => p.addr = a.to_owned(),
            None => bail!(
                "the provider did not start (see {}): {line:?}",
                p.dir.join("provider.log").display()
            ),
        }
        Ok(p)
    }

    /// SIGTERM, then SIGKILL after 10 s; removes the temporary directory.
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Puts a `smiless-fn` on the replicas' PATH: the real emulator binary when it sits beside this one,
/// otherwise a shim that runs `smiless emulate` (same program name, so warm-up calls still apply).
fn shim(exe: &Path, bin: &Path) -> Result<()> {
    let target = bin.join("smiless-fn");
    let _ = std::fs::remove_file(&target);
    let real = exe.with_file_name("smiless-fn");
    if real.is_file() {
        std::os::unix::fs::symlink(&real, &target)
            .with_context(|| format!("linking {}", target.display()))?;
        return Ok(());
    }
    let quoted = exe.display().to_string().replace('\'', r"'\''");
    std::fs::write(
        &target,
        format!("#!/bin/sh\nexec '{quoted}' emulate \"$@\"\n"),
    )
    .with_context(|| format!("writing {}", target.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", target.display()))
}

/// The DAG names to drive.
fn selected(all: &[String], wanted: &str) -> Result<Vec<String>> {
    if wanted.trim() == "all" {
        return Ok(all.to_vec());
    }
    wanted
        .split(',')
        .map(|d| {
            let d = d.trim();
            all.iter().find(|a| *a == d).cloned().ok_or_else(|| {
                anyhow!(
                    "no DAG named {d:?} in the stack; it has: {}",
                    all.join(", ")
                )
            })
        })
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    let policy: LivePolicy = args.policy.parse()?;
    if !(args.time_scale > 0.0 && args.time_scale <= 1.0) {
        bail!("--time-scale must be in (0, 1], got {}", args.time_scale);
    }
    let (start, duration) = (duration_s(&args.start)?, duration_s(&args.duration)?);
    if duration <= 0.0 {
        bail!("--duration must be positive");
    }
    let text = match &args.stack {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => std::fs::read_to_string("stack.yml").unwrap_or_else(|_| EMBEDDED_STACK.to_owned()),
    };
    let mut deployments = stack::deployments(&text, args.time_scale)?;
    // Discovered once: GPU discovery may initialise a driver.
    let host = contract::backend::host::host();
    let dags = selected(&stack::dag_names(&deployments), &args.dags)?;
    if !args.no_deploy {
        let given = sla::parse(&args.sla)?;
        for c in sla::apply(&mut deployments, &given, host)? {
            if let Some(note) = c.note().filter(|_| dags.contains(&c.dag)) {
                eprintln!("smiless demo: {note}");
            }
        }
    }
    if dags.is_empty() {
        bail!("the stack declares no DAG (com.smiless.dag annotations)");
    }
    let traffic = traffic(&args, &dags, start, duration)?;
    let overcommit = match fit::parse(&args.overcommit)? {
        Some(f) => f,
        None if args.provider_url.is_some() => 1.0,
        None => {
            let loads = traffic
                .iter()
                .map(|t| Ok((t.dag.clone(), fit::peak_load(&t.arrivals)?)))
                .collect::<Result<_>>()?;
            let f = fit::choose(&deployments, host, &loads)?;
            eprintln!("smiless demo: {}", f.note(host.cpus));
            f.factor
        }
    };
    let total: usize = traffic.iter().map(|t| t.arrivals.len()).sum();
    eprintln!(
        "smiless demo: {} functions, DAGs {}; {total} requests over {} of {} ({:.0} s real at time scale {}); policy {policy}",
        deployments.len(),
        dags.join(", "),
        humantime::format_duration(Duration::from_secs_f64(duration)),
        args.workload,
        duration * args.time_scale,
        args.time_scale
    );
    if args.dry_run {
        for t in &traffic {
            let gaps: Vec<f64> = t.arrivals.windows(2).map(|w| w[1] - w[0]).collect();
            let max = gaps.iter().copied().fold(0.0f64, f64::max);
            let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
            let long = gaps.iter().filter(|&&g| g > 60.0).count();
            println!(
                "{}: {} requests, mean gap {mean:.1} s, max gap {max:.1} s, {long} gaps over 60 s (profile time)",
                t.dag,
                t.arrivals.len()
            );
        }
        return Ok(());
    }
    let beside = beside::simulate(&deployments, &traffic, host, duration)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let auth = args.auth.as_deref();
    let (plan, client) = match &args.provider_url {
        Some(url) => {
            let c = client::Client::new(url, args.invoke_url.as_deref(), auth)?;
            rt.block_on(drive(&args, c, &deployments, &dags, traffic))?
        }
        None => {
            let provider = Provider::start(&args, policy, overcommit)?;
            eprintln!(
                "smiless demo: provider on {} (state and log in {})",
                provider.addr,
                provider.dir.display()
            );
            let url = format!("http://{}", provider.addr);
            let result = client::Client::new(&url, args.invoke_url.as_deref(), auth)
                .and_then(|c| rt.block_on(drive(&args, c, &deployments, &dags, traffic)));
            let log = provider.dir.join("provider.log");
            provider.stop();
            result.with_context(|| format!("provider log: {}", log.display()))?
        }
    };
    let mut rep = report::build(&plan, &dags, &client, &args, duration)?;
    rep.beside = report::Beside {
        what: format!(
            "this host ({} cores, {} GPUs), the paper's profiles, the same trace and SLAs",
            host.cpus, host.gpus
        ),
        rows: beside,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{}", report::render(&rep));
    }
    Ok(())
}

/// Deploys, waits for the plans, replays the trace, and returns `/system/plan` and the client's view.
async fn drive(
    args: &Args,
    c: client::Client,
    deployments: &[Value],
    dags: &[String],
    traffic: Vec<Traffic>,
) -> Result<(Value, report::ClientStats)> {
    if !args.no_deploy {
        for d in deployments {
            c.deploy(d).await?;
        }
    }
    // Ready and planned: every selected DAG has a plan from the control loop.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let plan = c.plan().await?;
        let planned = dags.iter().all(|d| {
            plan["dags"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["name"] == d.as_str() && !x["control"]["plan"].is_null())
            })
        });
        if planned {
            break;
        }
        if Instant::now() > deadline {
            bail!("the DAGs were not planned within 60 s: {plan}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The provider's time scale rules (an attached provider may run another one than --time-scale).
    let scale = c.plan().await?["time_scale"]
        .as_f64()
        .unwrap_or(args.time_scale);
    // Let the first replicas initialise (the control loop warms them up) before traffic starts.
    tokio::time::sleep(Duration::from_secs_f64((30.0 * scale).clamp(1.0, 5.0))).await;
    let total: usize = traffic.iter().map(|t| t.arrivals.len()).sum();
    let span = traffic
        .iter()
        .filter_map(|t| t.arrivals.last())
        .fold(0.0f64, |a, &b| a.max(b))
        * scale;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total as u64);
        if let Ok(s) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} requests {msg}",
        ) {
            b.set_style(s);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let stats = Arc::new(std::sync::Mutex::new(report::ClientStats::default()));
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for t in traffic {
        for a in t.arrivals {
            let (c, dag, stats, bar) = (c.clone(), t.dag.clone(), Arc::clone(&stats), bar.clone());
            let at = t0 + Duration::from_secs_f64(a * scale);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let r = c.invoke(&dag).await;
                stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .record(&dag, r);
                bar.inc(1);
            }));
        }
    }
    let mut last_print = Instant::now();
    let plain = !std::io::stderr().is_terminal() && !args.json;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(plan) = c.plan().await {
            let msg = report::progress_line(&plan, dags);
            bar.set_message(msg.clone());
            if plain && last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                eprintln!("[{:>5.1}/{:.0} s] {msg}", t0.elapsed().as_secs_f64(), span);
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    // One more tick so the last requests are billed and scored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let plan = c.plan().await?;
    let stats = stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok((plan, stats))
}
