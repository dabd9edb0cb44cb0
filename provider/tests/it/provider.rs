//! Starting and killing the built `smiless serve` binary, and process bookkeeping via /proc.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::get;

/// A running provider process.
pub struct Provider {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Provider {
    /// Starts `smiless serve` on an ephemeral port with its state in `state_dir`; returns once it prints
    /// its address, plus the time until `/healthz` answered 200.
    pub async fn start(state_dir: &Path) -> (Provider, Duration) {
        Self::start_with(state_dir, &[("basic_auth", "false")]).await
    }

    /// The `smiless serve` command (ephemeral port, state in `state_dir`) with extra environment.
    pub fn command(state_dir: &Path, env: &[(&str, &str)]) -> Command {
        // Another build's binary (e.g. main's, for a before/after count) when SMILESS_IT_SMILESS names one.
        let exe = std::env::var_os("SMILESS_IT_SMILESS")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_smiless").into());
        let mut cmd = Command::new(exe);
        cmd.args([
            "serve",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--read-timeout",
            "20s",
        ])
        .arg("--state-dir")
        .arg(state_dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
        cmd
    }

    /// Like [`Provider::start`] with extra environment.
    pub async fn start_with(state_dir: &Path, env: &[(&str, &str)]) -> (Provider, Duration) {
        let t0 = Instant::now();
        let mut child = Self::command(state_dir, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn smiless serve");
        let addr = listening_addr(child.stdout.take().unwrap()).await;
        loop {
            if get(addr, "/healthz").await.status == 200 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "healthz never answered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (Provider { child, addr }, t0.elapsed())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The first line a child process writes to `out` (read on a blocking thread).
pub async fn first_line(out: impl std::io::Read + Send + 'static) -> String {
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap()
}

/// The address in the first stdout line of `smiless serve` (`smiless: listening on ADDR`).
pub async fn listening_addr(stdout: std::process::ChildStdout) -> SocketAddr {
    let line = first_line(stdout).await;
    line.trim()
        .strip_prefix("smiless: listening on ")
        .expect(&line)
        .parse()
        .unwrap()
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (pid, ppid, state) of every process.
fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// Every live descendant of `root`.
pub fn descendants(root: u32) -> Vec<u32> {
    let procs = processes();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            procs
                .iter()
                .filter(|(_, pp, s)| *pp == parent && *s != 'Z')
                .map(|(p, _, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is alive (a zombie counts as dead: it runs nothing).
pub fn alive(pid: u32) -> bool {
    processes().iter().any(|(p, _, s)| *p == pid && *s != 'Z')
}

/// Writes a profiles file (for `SMILESS_PROFILES`) of one emulated model, `model`, that initialises in
/// `init_s` and answers each request in `infer_s` (on CPU and GPU alike).
pub fn model_profiles(path: &Path, init_s: f64, infer_s: f64) {
    let i = serde_json::json!({"mean_s": init_s, "std_s": 0.0});
    let m = serde_json::json!({"a": 0.0, "b": 0.0, "c": infer_s});
    std::fs::write(
        path,
        serde_json::json!({"source": "test", "profiles": {"model": {"init": {"cpu": i, "gpu": i}, "infer": {"cpu": m, "gpu": m}, "memory_mb": 64}}})
            .to_string(),
    )
    .unwrap();
}
