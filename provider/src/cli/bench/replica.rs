//! A real function replica for `bench proxy --upstream replica`: the built-in watchdog (`smiless watchdog`,
//! http mode) in front of `smiless-fn` serving HTTP with a time scale so small that its emulated inference
//! is well under a microsecond. This is what the local backend runs for a function of `stack.yml`, at its
//! cheapest, so "direct" means calling the same replica the provider proxies to. Killed when dropped.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Emulated work is multiplied by this: a 100 ms profile becomes 0.1 µs.
const TIME_SCALE: &str = "0.000001";
/// A profile of the paper's set (its initialisation is scaled away too).
const PROFILE: &str = "textgeneration";

/// A running replica (watchdog + smiless-fn).
pub struct Replica {
    /// The watchdog's address: what the provider proxies to.
    pub addr: SocketAddr,
    child: Child,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `smiless-fn` next to this executable (both are built by `cargo build -p provider`).
fn smiless_fn(exe: &Path) -> anyhow::Result<PathBuf> {
    let path = exe.with_file_name("smiless-fn");
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{} not found: build it with `cargo build --release -p provider --bin smiless-fn`",
            path.display()
        )
    }
}

impl Replica {
    /// Starts the replica and waits until its health check passes.
    pub fn start(scratch: &Path) -> anyhow::Result<Replica> {
        let exe = std::env::current_exe().context("locating the smiless binary")?;
        let function = smiless_fn(&exe)?;
        let (fn_port, wd_port) = (free_port()?, free_port()?);
        let tmp = scratch.join("replica");
        std::fs::create_dir_all(&tmp)?;
        let child = Command::new(&exe)
            .arg("watchdog")
            .env("mode", "http")
            .env(
                "fprocess",
                format!(
                    "{} --profile {PROFILE} --listen 127.0.0.1:{fn_port} --time-scale {TIME_SCALE}",
                    function.display()
                ),
            )
            .env("upstream_url", format!("http://127.0.0.1:{fn_port}"))
            .env("port", wd_port.to_string())
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the watchdog")?;
        let mut r = Replica {
            addr: SocketAddr::from(([127, 0, 0, 1], wd_port)),
            child,
        };
        let t0 = Instant::now();
        while !healthy(r.addr) {
            if let Some(status) = r.child.try_wait()? {
                bail!("the replica's watchdog exited at start-up ({status})");
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("the replica at {} was not healthy within 10 s", r.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }
}

/// One blocking `GET /_/health` → 200?
fn healthy(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /_/health HTTP/1.1\r\nHost: replica\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

impl Drop for Replica {
    fn drop(&mut self) {
        // SIGTERM lets the watchdog stop its fprocess; fall back to SIGKILL.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
