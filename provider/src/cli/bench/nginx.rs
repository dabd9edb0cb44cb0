//! A tuned nginx reverse proxy for `bench proxy`'s reference rows: one worker, no master, no access log,
//! HTTP/1.1 keep-alive to the upstream. Killed when dropped.
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running nginx.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
}

fn binary() -> Option<PathBuf> {
    super::which("nginx").or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
}

impl Nginx {
    /// Starts nginx in front of `upstream` with its files under `dir`; `None` when nginx is not installed.
    pub fn start(upstream: SocketAddr, dir: &Path) -> anyhow::Result<Option<Nginx>> {
        let Some(bin) = binary() else { return Ok(None) };
        std::fs::create_dir_all(dir)?;
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log crit;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream up {{ server {upstream}; keepalive 256; }}\n\
               server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://up;\n\
                   proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut n = Nginx { addr, child };
        let t0 = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = n.child.try_wait()? {
                bail!(
                    "nginx exited at start-up ({status}); see {}",
                    dir.join("error.log").display()
                );
            }
            if t0.elapsed() > Duration::from_secs(5) {
                bail!("nginx did not listen on {addr} within 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Some(n))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
