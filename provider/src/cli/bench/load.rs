//! `smiless bench load`: a closed-loop HTTP/1.1 load client for the load and fault rig (`e2e/load.sh`).
//!
//! N keep-alive connections each send one request after another until a duration or a total request
//! count is reached. Unlike the proxy benchmark's driver it never gives up on an error: every failure is
//! classified (connect refused or failed, connection closed or reset before a response, timeout, HTTP
//! status), the connection is dropped and re-opened, and the run goes on, so a kill -9 of a replica or of
//! the provider in the middle of a run shows up as counted errors and an outage window instead of an
//! aborted benchmark. The outage is measured from the first failed request to the first success after
//! the last failure, and the longest stretch without any successful response is reported beside it.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

mod stats;
use stats::{Outcome, Summary, Tally};

/// After a failed connect, wait this long before the next try, so a dead server costs a few hundred
/// attempts per second per connection rather than a hot loop (and the error counts stay meaningful).
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The URL to load (http only), e.g. http://127.0.0.1:8080/function/echo.
    pub url: String,
    /// How long to send requests (the run also stops at --requests).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests in all (0: no limit, only --duration).
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request body (sent with every request).
    #[arg(long)]
    pub body: Option<String>,
    /// Extra request header as NAME:VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Basic auth as USER:PASSWORD (from the environment, so it stays out of the process list).
    #[arg(long, env = "SMILESS_LOAD_AUTH", hide_env_values = true)]
    pub auth: Option<String>,
    /// A request with no complete response within this time counts as a timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// What every connection sends.
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
    method: hyper::Method,
    body: Bytes,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    timeout: Duration,
}

pub fn run(a: &LoadArgs) -> anyhow::Result<()> {
    if a.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let target = Arc::new(target(a)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summary = rt.block_on(drive(target, a.connections, a.duration, a.requests));
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.text(&a.method, &a.url, a.connections));
    }
    Ok(())
}

fn target(a: &LoadArgs) -> anyhow::Result<Target> {
    let uri: hyper::Uri = a.url.parse().context("parsing the URL")?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// URLs are supported: {}", a.url);
    }
    let authority = uri.authority().context("the URL has no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let mut headers = Vec::new();
    for h in &a.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header {h}: expected NAME:VALUE"))?;
        headers.push((name.trim().parse()?, value.trim().parse()?));
    }
    if let Some(auth) = &a.auth {
        let token = base64::engine::general_purpose::STANDARD.encode(auth);
        headers.push((
            hyper::header::AUTHORIZATION,
            format!("Basic {token}").parse()?,
        ));
    }
    Ok(Target {
        addr,
        host: authority.to_string(),
        path,
        method: a.method.parse().context("--method")?,
        body: Bytes::from(a.body.clone().unwrap_or_default()),
        headers,
        timeout: a.timeout,
    })
}

/// Runs `conns` connections until `d` has passed or `limit` requests were sent (0: no limit).
async fn drive(target: Arc<Target>, conns: usize, d: Duration, limit: u64) -> Summary {
    let start = Instant::now();
    let deadline = start + d;
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let (target, sent) = (target.clone(), sent.clone());
        tasks.spawn(connection(target, sent, start, deadline, limit));
    }
    let mut tally = Tally::default();
    while let Some(t) = tasks.join_next().await {
        if let Ok(t) = t {
            tally.merge(t);
        }
    }
    tally.summary(start.elapsed())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(t: &Target) -> Result<Sender, Outcome> {
    let stream = tokio::time::timeout(t.timeout, tokio::net::TcpStream::connect(t.addr))
        .await
        .map_err(|_| Outcome::ConnectTimeout)?
        .map_err(|_| Outcome::Connect)?;
    let _ = stream.set_nodelay(true);
    let (tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|_| Outcome::Connect)?;
    tokio::spawn(conn);
    Ok(tx)
}

/// One request on `tx`: the status once the whole body is read, or how it failed.
async fn request(t: &Target, tx: &mut Sender) -> Outcome {
    let mut b = hyper::Request::builder()
        .method(t.method.clone())
        .uri(t.path.as_str())
        .header(hyper::header::HOST, t.host.as_str());
    for (k, v) in &t.headers {
        b = b.header(k, v);
    }
    let Ok(req) = b.body(Full::new(t.body.clone())) else {
        return Outcome::Io;
    };
    let exchange = async {
        tx.ready().await.map_err(|_| Outcome::Io)?;
        let res = tx.send_request(req).await.map_err(|_| Outcome::Io)?;
        let status = res.status().as_u16();
        res.into_body().collect().await.map_err(|_| Outcome::Io)?;
        Ok::<u16, Outcome>(status)
    };
    match tokio::time::timeout(t.timeout, exchange).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(o)) => o,
        Ok(Ok(s)) => Outcome::Status(s),
    }
}

async fn connection(
    t: Arc<Target>,
    sent: Arc<AtomicU64>,
    start: Instant,
    deadline: Instant,
    limit: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut tx: Option<Sender> = None;
    while Instant::now() < deadline {
        if limit > 0 && sent.fetch_add(1, Ordering::Relaxed) >= limit {
            break;
        }
        let t0 = Instant::now();
        let outcome = match tx.as_mut() {
            Some(s) => request(&t, s).await,
            None => match connect(&t).await {
                Ok(mut s) => {
                    let o = request(&t, &mut s).await;
                    tx = Some(s);
                    o
                }
                Err(o) => o,
            },
        };
        let now = Instant::now();
        tally.record(&outcome, now - start, now - t0);
        match outcome {
            Outcome::Status(s) if s < 500 => {}
            Outcome::Connect | Outcome::ConnectTimeout => {
                tokio::time::sleep(RECONNECT_PAUSE.min(deadline.saturating_duration_since(now)))
                    .await;
            }
            // After a failure the connection may be half-dead (or the server closes it after a 5xx):
            // start the next request on a fresh one.
            _ => tx = None,
        }
    }
    tally
}
