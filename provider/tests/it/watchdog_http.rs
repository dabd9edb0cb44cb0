//! `smiless watchdog` in http mode (forwarding, streaming, readiness, exit with fprocess), its SIGTERM drain
//! and its parent-death protection.
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::watchdog::{SMILESS, Watchdog, call, children, free_port, is_dead, wait_dead};

/// http mode: the upstream is itself a classic watchdog (`cat`) started as `fprocess`.
fn http_mode_env(upstream_port: u16) -> Vec<(String, String)> {
    let fprocess =
        format!("env -u mode -u upstream_url port={upstream_port} fprocess=cat {SMILESS} watchdog");
    vec![
        ("mode".into(), "http".into()),
        (
            "upstream_url".into(),
            format!("http://127.0.0.1:{upstream_port}"),
        ),
        ("fprocess".into(), fprocess),
    ]
}

#[tokio::test]
async fn http_mode_forwards_and_exits_when_fprocess_dies() {
    let up = free_port();
    let env = http_mode_env(up);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let wd = Watchdog::start(&env).await;
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = call(wd.addr, "POST", "/any/path?x=1", &[], &data)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "forwarded body must round-trip ({} bytes back)",
        r.body.len()
    );

    let kids = children(wd.child.id());
    assert_eq!(kids.len(), 1, "one long-running fprocess: {kids:?}");
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(kids[0].to_string())
        .status();
    let mut wd = wd;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = wd.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the watchdog must exit when fprocess dies"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn http_mode_is_not_ready_until_the_upstream_answers() {
    // The upstream (a classic watchdog) only starts listening after a 1 s delay.
    let up = free_port();
    let fprocess = format!(
        "sleep 1; exec env -u mode -u upstream_url port={up} fprocess=cat {SMILESS} watchdog"
    );
    let port = free_port();
    let mut child = Command::new(SMILESS)
        .arg("watchdog")
        .env("port", port.to_string())
        .env("SMILESS_BIND", "127.0.0.1")
        .env("mode", "http")
        .env("upstream_url", format!("http://127.0.0.1:{up}"))
        .env("fprocess", fprocess)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let t0 = Instant::now();
    let mut saw_unhealthy = false;
    loop {
        match call(addr, "GET", "/_/health", &[], b"").await {
            Ok(r) if r.status == 200 => break,
            Ok(r) => {
                assert_eq!(r.status, 503);
                saw_unhealthy = true;
            }
            Err(_) => {}
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        saw_unhealthy,
        "health must be 503 while the upstream is not up"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "ready too early: {:?}",
        t0.elapsed()
    );
    let r = call(addr, "POST", "/", &[], b"late").await.unwrap();
    assert_eq!(r.text(), "late");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn watchdog_and_fprocess_die_with_their_parent() {
    // `sh` plays the provider: it starts the watchdog (http mode, a long-running fprocess) and is then
    // SIGKILLed. The watchdog's parent-death signal must take it down, and the fprocess with it.
    let port = free_port();
    let mut sh = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" watchdog >/dev/null 2>&1 & echo $!; wait")
        .arg(SMILESS)
        .env("port", port.to_string())
        .env("SMILESS_BIND", "127.0.0.1")
        .env("mode", "http")
        .env("upstream_url", "http://127.0.0.1:9")
        .env("fprocess", "sleep 300")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sh.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let watchdog: u32 = line.trim().parse().unwrap();
    let t0 = Instant::now();
    let fprocess = loop {
        if let Some(&c) = children(watchdog).first() {
            // The shim execs into `sleep`; wait until it has.
            if std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|c| c.trim() == "sleep")
            {
                break c;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "fprocess did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!is_dead(watchdog) && !is_dead(fprocess));
    sh.kill().unwrap();
    sh.wait().unwrap();
    assert!(
        wait_dead(watchdog, Duration::from_secs(5)).await,
        "watchdog {watchdog} outlived its parent"
    );
    assert!(
        wait_dead(fprocess, Duration::from_secs(5)).await,
        "fprocess {fprocess} outlived the watchdog"
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let wd = Watchdog::start(&[("fprocess", "sleep 2; echo finished")]).await;
    let addr = wd.addr;
    let slow = tokio::spawn(async move { call(addr, "POST", "/", &[], b"").await });
    let pid = wd.child.id();
    // In flight once the watchdog has forked the function.
    let t0 = Instant::now();
    while children(pid).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the request never reached the function"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        call(addr, "GET", "/_/health", &[], b"").await.is_err(),
        "no new connections while draining"
    );
    let r = slow.await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.text().trim()),
        (200, "finished"),
        "the in-flight request completes"
    );
    let mut wd = wd;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = wd.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the watchdog must exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// An upstream in this test process that sends one chunk, waits a second, then sends another.
async fn slow_streaming_upstream() -> u16 {
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = hyper::service::service_fn(|_req| async {
                let chunks = futures::stream::unfold(0u8, |i| async move {
                    if i == 2 {
                        return None;
                    }
                    if i == 1 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let frame = Frame::data(Bytes::from(format!("chunk{i}\n")));
                    Some((Ok::<_, std::convert::Infallible>(frame), i + 1))
                });
                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                    http_body_util::StreamBody::new(chunks),
                ))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    port
}

#[tokio::test]
async fn http_mode_streams_the_response_as_it_comes() {
    let up = slow_streaming_upstream().await;
    // fprocess is a stand-in process; the upstream is the server above.
    let url = format!("http://127.0.0.1:{up}");
    let wd = Watchdog::start(&[
        ("mode", "http"),
        ("upstream_url", &url),
        ("fprocess", "sleep 300"),
    ])
    .await;
    let stream = tokio::net::TcpStream::connect(wd.addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/stream")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = tx.send_request(req).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let t_first = Instant::now();
    assert_eq!(&first[..], b"chunk0\n");
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"chunk1\n");
    assert!(
        t_first.elapsed() >= Duration::from_millis(700),
        "the first chunk must arrive before the upstream finished (streamed, not buffered)"
    );
}

#[tokio::test]
async fn http_mode_reuses_upstream_connections() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let up = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                    Bytes::from_static(b"ok"),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    let url = format!("http://127.0.0.1:{up}");
    let wd = Watchdog::start(&[
        ("mode", "http"),
        ("upstream_url", &url),
        ("fprocess", "sleep 300"),
    ])
    .await;
    let before = accepted.load(Ordering::SeqCst); // readiness probes connect too
    // Back to back on one keep-alive connection, as a load generator or the provider's pool sends them.
    let stream = tokio::net::TcpStream::connect(wd.addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..50 {
        let req = hyper::Request::get("/")
            .header("host", "x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let body = tx
            .send_request(req)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    let opened = accepted.load(Ordering::SeqCst) - before;
    assert!(
        opened <= 2,
        "50 sequential requests opened {opened} upstream connections"
    );
}
