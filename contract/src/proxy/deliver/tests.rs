//! Delivery against raw TCP upstreams that refuse, hang up after reading, or answer.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use http_body_util::{Either, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::backend::{BackendError, LogRequest, ReplicaCounts};
use crate::catalog::FunctionRecord;
use crate::types::LogMessage;

/// Replicas in pick order; one reported unreachable leaves the list.
#[derive(Default)]
struct Replicas {
    ready: Mutex<Vec<SocketAddr>>,
    reported: Mutex<Vec<SocketAddr>>,
}

impl Backend for Replicas {
    fn orchestration(&self) -> &'static str {
        "test"
    }
    fn deploy<'a>(&'a self, _: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
    fn update<'a>(&'a self, _: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
    fn scale<'a>(&'a self, _: &'a Arc<FunctionRecord>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
    fn status(&self, _: &str, _: &str) -> ReplicaCounts {
        ReplicaCounts::default()
    }
    fn endpoint<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, Option<SocketAddr>> {
        let first = self.ready.lock().unwrap().first().copied();
        Box::pin(async move { first })
    }
    fn unreachable(&self, _: &str, _: &str, addr: SocketAddr) {
        self.ready.lock().unwrap().retain(|a| *a != addr);
        self.reported.lock().unwrap().push(addr);
    }
    fn logs(&self, _: LogRequest) -> BoxStream<'static, LogMessage> {
        Box::pin(futures::stream::empty())
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A port nothing listens on (bound, then released).
async fn refused() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// What an upstream does with a request it has read.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Closes the connection without a byte of response.
    HangUp,
    /// Answers `200 ok` on a keep-alive connection.
    Answer,
    /// Answers `200 ok` (keep-alive, as far as the client knows), then closes the connection.
    AnswerAndClose,
}

/// An upstream that reads each request whole (head and `Content-Length` body), counts it, then does
/// `then`.
async fn upstream(then: Then) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    count.fetch_add(1, Ordering::SeqCst);
                    if then == Then::HangUp {
                        return; // drops the socket: closed without a response
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(ok).await.is_err() || then == Then::AnswerAndClose {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn post(body: &'static str) -> hyper::Request<UpstreamBody> {
    hyper::Request::post("/")
        .header("content-length", body.len())
        .body(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))))
        .unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn target(b: &Replicas) -> Target<'_> {
    Target {
        backend: b,
        namespace: "ns",
        name: "f",
    }
}

#[actix_web::test]
async fn a_request_sent_then_cut_off_is_not_replayed() {
    let (hangs_up, seen) = upstream(Then::HangUp).await;
    let (healthy, healthy_seen) = upstream(Then::Answer).await;
    // The healthy replica is next in line: a retry would find it.
    let b = Replicas {
        ready: Mutex::new(vec![hangs_up, healthy]),
        ..Replicas::default()
    };
    let pool = Pool::new(4);
    let got = deliver(&pool, target(&b), hangs_up, post("charge"), soon(), || true).await;
    assert!(matches!(got, Err(DeliverError::Failed(_))), "{got:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the upstream saw it once");
    assert_eq!(
        healthy_seen.load(Ordering::SeqCst),
        0,
        "never replayed elsewhere"
    );
    assert!(b.reported.lock().unwrap().is_empty());
}

#[actix_web::test]
async fn a_refused_request_goes_to_the_next_ready_replica() {
    let dead = refused().await;
    let (healthy, seen) = upstream(Then::Answer).await;
    let b = Replicas {
        ready: Mutex::new(vec![dead, healthy]),
        ..Replicas::default()
    };
    let pool = Pool::new(4);
    let (parts, _) = deliver(&pool, target(&b), dead, post("x"), soon(), || true)
        .await
        .unwrap();
    assert_eq!(parts.status, 200);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(*b.reported.lock().unwrap(), [dead], "the dead one reported");
}

#[actix_web::test]
async fn a_pooled_connection_closed_by_its_replica_is_not_a_failure() {
    // Answers once per connection, then closes it: the pooled connection is found closed next time.
    let (healthy, seen) = upstream(Then::AnswerAndClose).await;
    let b = Replicas {
        ready: Mutex::new(vec![healthy]),
        ..Replicas::default()
    };
    let pool = Pool::new(4);
    for _ in 0..3 {
        let (parts, body) = deliver(&pool, target(&b), healthy, post("x"), soon(), || true)
            .await
            .unwrap();
        assert_eq!(parts.status, 200);
        // Read to the end, so the connection goes back to the pool.
        let chunks: Vec<Bytes> = body.map(Result::unwrap).collect().await;
        assert_eq!(chunks.concat(), b"ok");
        // Let the close reach the pooled connection's task.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[actix_web::test]
async fn with_every_replica_gone_it_gives_up_at_the_deadline() {
    let dead = refused().await;
    let b = Replicas {
        ready: Mutex::new(vec![dead]),
        ..Replicas::default()
    };
    let pool = Pool::new(4);
    let start = Instant::now();
    let deadline = start + Duration::from_millis(300);
    let got = deliver(&pool, target(&b), dead, post("x"), deadline, || true).await;
    assert!(matches!(got, Err(DeliverError::Unreachable(_))), "{got:?}");
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(2), "bounded: {waited:?}");
}
