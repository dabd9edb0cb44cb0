//! `smiless bench load` as a process: it keeps going through failures and counts them by kind, and it
//! reports the outage of a server that goes away and comes back (what e2e/load.sh relies on).
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

fn bench_load(url: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_smiless"))
        .args(["bench", "load", url, "--json", "--connections", "2"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A keep-alive HTTP/1.1 server answering `status` to every request, on its own threads.
fn serve(listener: TcpListener, status: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let res = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
                            if w.write_all(res.as_bytes()).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn counts_refused_connections_and_http_errors_by_kind() {
    let nobody = free_addr();
    let v = bench_load(&format!("http://{nobody}/"), &["--duration", "500ms"]);
    assert!(v["requests"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["ok"], 0, "{v}");
    assert_eq!(v["errors"]["connect"], v["requests"], "{v}");
    assert!(v["outage_ms"].is_null(), "never recovered: {v}");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve(l, "503 Service Unavailable");
    let v = bench_load(&format!("http://{addr}/"), &["--requests", "50"]);
    assert_eq!(v["requests"], 50, "{v}");
    assert_eq!(v["errors"]["status"]["503"], 50, "{v}");
}

#[test]
fn measures_the_outage_of_a_server_that_comes_back() {
    let addr = free_addr();
    // Nothing listens for the first ~600 ms, then a server answers 200.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        serve(TcpListener::bind(addr).unwrap(), "200 OK");
    });
    let v = bench_load(&format!("http://{addr}/x?y=1"), &["--duration", "1500ms"]);
    assert!(v["ok"].as_u64().unwrap() > 0, "{v}");
    assert!(v["errors"]["connect"].as_u64().unwrap() > 0, "{v}");
    let outage = v["outage_ms"].as_f64().unwrap();
    assert!((300.0..1500.0).contains(&outage), "outage {outage} ms: {v}");
    assert_eq!(v["first_failure_s"], 0.0, "{v}");
}
