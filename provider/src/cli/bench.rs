//! `smiless bench`: side-by-side benchmarks that print a table and ratios, and `bench load`, the load
//! client of the load and fault rig ([`load`]).
//!
//! `bench proxy` starts an upstream — a trivially cheap in-process actix server answering 200 "ok", and/or
//! a real function replica (watchdog + `smiless-fn`, [`replica`]) — and the provider's full HTTP stack
//! (metrics middleware, routing, catalog look-up, proxy) in front of it on the fixed backend, then drives
//! the same load at both in one run: latency at one connection (added p50/p99
//! = via provider − direct) and throughput at `--connections`. The load comes from `wrk` when it is
//! installed, otherwise from a built-in single-threaded hyper client. When nginx is installed, a tuned
//! nginx reverse proxy (one worker, upstream keep-alive) in front of the same upstream is measured in the
//! same run, as the reference the proxy's target is set against (DESIGN §11).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use serde::Serialize;

use contract::api::{self, AppState};
use contract::backend::Backend;
use contract::backend::fixed::FixedBackend;
use contract::catalog::Catalog;
use contract::config::Config;
use contract::types::FunctionDeployment;

mod load;
mod nginx;
mod replica;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The invocation proxy's throughput and added latency against the upstream direct.
    #[command(after_help = "Examples:
  smiless bench proxy                              # wrk if installed, 3 s per row, both upstreams
  smiless bench proxy --upstream replica           # only against a real function replica
  smiless bench proxy --duration 10s --connections 16 --driver builtin
  smiless bench proxy --json")]
    Proxy(ProxyArgs),
    /// Closed-loop HTTP load that survives faults: requests, req/s, p50/p99, errors by kind, outage.
    #[command(
        after_help = "Every failure is counted by kind and the connection re-opened, so a server killed and
restarted mid-run shows as errors and an outage window (first failure -> first success after the
last failure), not as an aborted run. Used by e2e/load.sh.

Examples:
  smiless bench load http://127.0.0.1:8080/function/echo --duration 60s --connections 32
  SMILESS_LOAD_AUTH=admin:secret smiless bench load http://127.0.0.1:8080/system/functions --requests 1000
  smiless bench load http://127.0.0.1:8080/function/image-query --method POST --body hello --json"
    )]
    Load(load::LoadArgs),
}

/// What the proxy forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// An in-process actix server answering 200 "ok": the harshest case, where the proxy's own work is
    /// everything.
    Trivial,
    /// A real function replica as the local backend runs it (watchdog in http mode + `smiless-fn`, its
    /// emulated work scaled to well under a microsecond).
    Replica,
    /// Both, one after the other, in one run.
    Both,
}

/// Who generates the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// `wrk` when it is on PATH, else the built-in client.
    Auto,
    /// `wrk -t1` (must be installed).
    Wrk,
    /// An in-process single-threaded hyper client with keep-alive connections.
    Builtin,
}

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Measuring time per row.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Connections of the throughput rows.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Load generator.
    #[arg(long, value_enum, default_value = "auto")]
    pub driver: Driver,
    /// HTTP workers of the provider.
    #[arg(long, default_value_t = 1)]
    pub proxy_workers: usize,
    /// What "direct" is: a trivial in-process server, a real function replica, or both.
    #[arg(long, value_enum, default_value = "both")]
    pub upstream: Upstream,
    /// Skip the nginx rows even when nginx is installed.
    #[arg(long)]
    pub no_nginx: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Proxy(a) => proxy(&a),
        Command::Load(a) => load::run(&a),
    }
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: &'static str,
    pub connections: usize,
    pub requests_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    driver: Driver,
    sections: Vec<Section>,
}

/// The rows and ratios against one upstream.
#[derive(Debug, Serialize)]
struct Section {
    upstream: &'static str,
    rows: Vec<Row>,
    added_p50_us: f64,
    added_p99_us: f64,
    throughput_ratio: f64,
    nginx_added_p50_us: Option<f64>,
    nginx_throughput_ratio: Option<f64>,
    provider_vs_nginx_throughput: Option<f64>,
}

fn proxy(a: &ProxyArgs) -> anyhow::Result<()> {
    let driver = match a.driver {
        Driver::Auto if which("wrk").is_some() => Driver::Wrk,
        Driver::Auto => Driver::Builtin,
        Driver::Wrk if which("wrk").is_none() => {
            bail!("--driver wrk: wrk is not on PATH (apt-get install wrk)")
        }
        d => d,
    };
    if a.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let scratch = std::env::temp_dir().join(format!("smiless-bench-{}", std::process::id()));
    let result = measure(a, driver, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let report = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(a, &report);
    }
    Ok(())
}

fn measure(a: &ProxyArgs, driver: Driver, scratch: &std::path::Path) -> anyhow::Result<Report> {
    let mut sections = Vec::new();
    if matches!(a.upstream, Upstream::Trivial | Upstream::Both) {
        let (upstream, _up) = start_upstream()?;
        let dir = scratch.join("trivial");
        sections.push(measure_against(a, driver, upstream, "trivial", &dir)?);
    }
    if matches!(a.upstream, Upstream::Replica | Upstream::Both) {
        let dir = scratch.join("replica");
        let replica = replica::Replica::start(&dir)?;
        sections.push(measure_against(a, driver, replica.addr, "replica", &dir)?);
    }
    Ok(Report { driver, sections })
}

fn measure_against(
    a: &ProxyArgs,
    driver: Driver,
    upstream: SocketAddr,
    label: &'static str,
    scratch: &std::path::Path,
) -> anyhow::Result<Section> {
    let (provider, _pv) = start_provider(upstream, &scratch.join("state"), a.proxy_workers)?;
    let nginx = if a.no_nginx {
        None
    } else {
        nginx::Nginx::start(upstream, &scratch.join("nginx"))?
    };
    let direct = format!("http://{upstream}/");
    let via = format!("http://{provider}/function/bench");
    let via_nginx = nginx.as_ref().map(|n| format!("http://{}/", n.addr));
    let mut rows = Vec::new();
    for conns in [1, a.connections] {
        let mut targets = vec![("direct", &direct)];
        if let Some(u) = &via_nginx {
            targets.push(("nginx", u));
        }
        targets.push(("via provider", &via));
        for (target, url) in targets {
            let (rps, p50, p99) = match driver {
                Driver::Wrk => wrk(url, conns, a.duration)?,
                _ => builtin(url, conns, a.duration)?,
            };
            rows.push(Row {
                target,
                connections: conns,
                requests_per_sec: rps,
                p50_us: p50,
                p99_us: p99,
            });
        }
    }
    let find = |t: &str, c: usize| rows.iter().find(|r| r.target == t && r.connections == c);
    let (c1, cn) = (1, a.connections);
    let added = |t: &str, f: fn(&Row) -> f64| Some(f(find(t, c1)?) - f(find("direct", c1)?));
    let ratio = |t: &str, base: &str| {
        Some(
            find(t, cn)?.requests_per_sec / find(base, cn)?.requests_per_sec.max(f64::MIN_POSITIVE),
        )
    };
    Ok(Section {
        upstream: label,
        added_p50_us: added("via provider", |r| r.p50_us).unwrap_or(f64::NAN),
        added_p99_us: added("via provider", |r| r.p99_us).unwrap_or(f64::NAN),
        throughput_ratio: ratio("via provider", "direct").unwrap_or(f64::NAN),
        nginx_added_p50_us: added("nginx", |r| r.p50_us),
        nginx_throughput_ratio: ratio("nginx", "direct"),
        provider_vs_nginx_throughput: ratio("via provider", "nginx"),
        rows,
    })
}

fn print_table(a: &ProxyArgs, report: &Report) {
    println!(
        "proxy benchmark (driver: {:?}, {} per row)",
        report.driver,
        humantime::format_duration(a.duration)
    );
    for section in &report.sections {
        print_section(a, section);
    }
}

fn print_section(a: &ProxyArgs, report: &Section) {
    let what = match report.upstream {
        "trivial" => "in-process actix answering 200 \"ok\"",
        _ => "a function replica (watchdog http mode + smiless-fn)",
    };
    println!("\nupstream: {what}");
    println!(
        "{:<14} {:>6} {:>12} {:>10} {:>10}",
        "target", "conns", "req/s", "p50 µs", "p99 µs"
    );
    for r in &report.rows {
        println!(
            "{:<14} {:>6} {:>12.0} {:>10.1} {:>10.1}",
            r.target, r.connections, r.requests_per_sec, r.p50_us, r.p99_us
        );
    }
    println!(
        "added latency at c=1 (via provider − direct): p50 {:+.1} µs, p99 {:+.1} µs",
        report.added_p50_us, report.added_p99_us
    );
    println!(
        "throughput at c={}: via provider / direct = {:.2}",
        a.connections, report.throughput_ratio
    );
    let met = report.throughput_ratio >= 0.8 && report.added_p50_us <= 200.0;
    println!(
        "target (>= 0.80x direct throughput, <= 200 µs added p50): {}",
        if met { "met" } else { "not met" }
    );
    if let (Some(np50), Some(nr), Some(pn)) = (
        report.nginx_added_p50_us,
        report.nginx_throughput_ratio,
        report.provider_vs_nginx_throughput,
    ) {
        println!(
            "nginx: added p50 {np50:+.1} µs, throughput / direct = {nr:.2}; via provider / nginx = {pn:.2}"
        );
    } else {
        println!(
            "nginx: not measured (--no-nginx, or nginx not installed: apt-get install nginx-light)"
        );
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

/// Runs an actix server on its own thread and system; returns its handle.
fn spawn_server<F>(name: &str, build: F) -> anyhow::Result<ServerHandle>
where
    F: FnOnce() -> std::io::Result<actix_web::dev::Server> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match build() {
                    Ok(server) => {
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })?;
    Ok(rx.recv().context("server thread died")??)
}

fn start_upstream() -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = spawn_server("bench-upstream", move || {
        let s = HttpServer::new(|| {
            App::new().default_service(web::to(|| async { HttpResponse::Ok().body("ok") }))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))?;
        let _ = tx.send(s.addrs()[0]);
        Ok(s.run())
    })?;
    Ok((rx.recv()?, handle))
}

fn start_provider(
    upstream: SocketAddr,
    dir: &std::path::Path,
    workers: usize,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let config = Config::for_tests(dir.to_owned());
    let catalog = Arc::new(Catalog::open(
        dir,
        &config.default_namespace,
        &[],
        config.max_replicas,
    )?);
    let backend = Arc::new(FixedBackend::new(Some(upstream)));
    let rec = catalog.deploy(FunctionDeployment {
        service: "bench".into(),
        image: "bench".into(),
        env_process: "cat".into(),
        ..Default::default()
    })?;
    futures::executor::block_on(backend.deploy(&rec))?;
    let state = web::Data::new(AppState::new(catalog, backend, &config));
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = spawn_server("bench-provider", move || {
        let s = HttpServer::new(move || api::app(state.clone()))
            .workers(workers.max(1))
            .bind(("127.0.0.1", 0))?;
        let _ = tx.send(s.addrs()[0]);
        Ok(s.run())
    })?;
    Ok((rx.recv()?, handle))
}

/// `wrk -t1 -cN -dD --latency URL` → (req/s, p50 µs, p99 µs).
fn wrk(url: &str, conns: usize, d: Duration) -> anyhow::Result<(f64, f64, f64)> {
    let secs = d.as_secs().max(1);
    let out = std::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("cannot parse wrk output:\n{text}"))
}

/// Parses wrk's `Requests/sec:` and the `50%`/`99%` latency lines.
pub fn parse_wrk(text: &str) -> Option<(f64, f64, f64)> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines().map(str::trim) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some("Requests/sec:"), Some(v)) => rps = v.parse().ok(),
            (Some("50%"), Some(v)) => p50 = micros(v),
            (Some("99%"), Some(v)) => p99 = micros(v),
            _ => {}
        }
    }
    if text.contains("Non-2xx or 3xx responses") {
        return None;
    }
    Some((rps?, p50?, p99?))
}

fn micros(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = v[..split].parse().ok()?;
    match &v[split..] {
        "us" => Some(n),
        "ms" => Some(n * 1e3),
        "s" => Some(n * 1e6),
        "m" => Some(n * 60e6),
        _ => None,
    }
}

/// The built-in driver: `conns` keep-alive HTTP/1.1 connections on one thread → (req/s, p50 µs, p99 µs).
fn builtin(url: &str, conns: usize, d: Duration) -> anyhow::Result<(f64, f64, f64)> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("url without host")?.to_string();
    let addr: SocketAddr = authority.parse()?;
    let path = uri.path().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // A short warm-up fills the pools, then the measured window.
        drive(addr, &authority, &path, conns, Duration::from_millis(300)).await?;
        let start = Instant::now();
        let mut lat = drive(addr, &authority, &path, conns, d).await?;
        let secs = start.elapsed().as_secs_f64();
        if lat.is_empty() {
            bail!("no request completed");
        }
        lat.sort_unstable();
        let pct = |p: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((lat.len() - 1) as f64 * p).round() as usize;
            #[allow(clippy::cast_precision_loss)]
            let v = lat[i] as f64 / 1e3;
            v
        };
        #[allow(clippy::cast_precision_loss)]
        let rps = lat.len() as f64 / secs;
        Ok((rps, pct(0.5), pct(0.99)))
    })
}

async fn drive(
    addr: SocketAddr,
    host: &str,
    path: &str,
    conns: usize,
    d: Duration,
) -> anyhow::Result<Vec<u64>> {
    use http_body_util::{BodyExt, Empty};
    let deadline = Instant::now() + d;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (host, path) = (host.to_owned(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut tx, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let req = hyper::Request::get(path.as_str())
                    .header(hyper::header::HOST, host.as_str())
                    .body(Empty::<bytes::Bytes>::new())?;
                let t = Instant::now();
                let res = tx.send_request(req).await?;
                if !res.status().is_success() {
                    bail!("status {}", res.status());
                }
                res.into_body().collect().await?;
                lat.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 3s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  Latency Distribution\n     50%   95.00us\n     75%  120.00us\n     90%  200.00us\n     99%    1.20ms\n  123 requests in 3.00s, 1KB read\nRequests/sec:  41152.45\nTransfer/sec:      2.00MB\n";
        let (rps, p50, p99) = parse_wrk(text).unwrap();
        assert!((rps - 41152.45).abs() < 1e-6);
        assert!((p50 - 95.0).abs() < 1e-9);
        assert!((p99 - 1200.0).abs() < 1e-9);
        assert!(parse_wrk("Requests/sec: 5\n").is_none());
    }
}
