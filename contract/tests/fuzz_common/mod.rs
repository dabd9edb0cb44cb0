//! Shared harness of the contract's fuzz targets (`fuzz_api`, `fuzz_proxy`, `fuzz_seeds`): a fresh provider
//! per case (the real actix routes over the fixed backend, in process), an echo upstream so proxied and DAG
//! requests get real answers, the checks every response must pass, and the structure-aware generators.
//!
//! Each integration-test binary uses a different part of this module, so unused items are expected.
#![allow(dead_code)]

pub mod inputs;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use contract::api::{AppState, app};
use contract::backend::fixed::FixedBackend;
use contract::catalog::Catalog;
use contract::config::Config;

/// One in-process provider with its own state directory.
pub struct Env {
    /// Keeps the state directory alive for the case.
    _dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
}

/// Where the state directory goes: memory when the machine has a tmpfs, since the catalog fsyncs every write
/// and the fuzzers deploy hundreds of thousands of functions in a long run.
fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// A fresh provider. `upstream`: every ready replica answers there (the echo server), or nowhere.
pub fn env(upstream: Option<SocketAddr>) -> Env {
    let dir = temp_dir();
    let mut config = Config::for_tests(dir.path().to_owned());
    config.max_body_bytes = 64 * 1024;
    // A function without a ready replica answers 503 at once instead of after the usual wait.
    config.read_timeout = Duration::from_millis(200);
    let catalog = Arc::new(
        Catalog::open(dir.path(), "openfaas-fn", &["other".to_owned()], 10).expect("a catalog"),
    );
    let backend = Arc::new(FixedBackend::new(upstream));
    Env {
        state: web::Data::new(AppState::new(catalog, backend, &config)),
        _dir: dir,
    }
}

/// One request a case sends.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub uri: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn new(method: Method, uri: impl Into<String>, body: impl Into<Vec<u8>>) -> Req {
        Req {
            method,
            uri: uri.into(),
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

/// What every case starts from: a ready two-member DAG `d` (`f` → `g`, SLA 2 s) and a secret.
pub fn setup() -> Vec<Req> {
    let f = serde_json::json!({"service":"f","image":"i","envProcess":"cat",
        "annotations":{"com.smiless.dag":"d","com.smiless.next":"g","com.smiless.sla":"2s"}});
    let g = serde_json::json!({"service":"g","image":"i","envProcess":"cat",
        "annotations":{"com.smiless.dag":"d"},
        "labels":{"com.openfaas.scale.type":"rps","com.openfaas.scale.zero":"true"}});
    vec![
        Req::new(Method::POST, "/system/functions", f.to_string()),
        Req::new(Method::POST, "/system/functions", g.to_string()),
        Req::new(
            Method::POST,
            "/system/secrets",
            serde_json::json!({"name":"s","value":"v"}).to_string(),
        ),
    ]
}

/// A response: status and body.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Runs `reqs` in order against one fresh provider, then reads back every listing (so what the requests
/// left in the catalog is rendered too: DAG statuses, the plan report, metrics). Returns every response,
/// the read-backs last.
pub fn run_case(upstream: Option<SocketAddr>, reqs: &[Req]) -> Vec<(Req, Resp)> {
    let sys = actix_web::rt::System::new();
    sys.block_on(async {
        let e = env(upstream);
        let svc = test::init_service(app(e.state.clone())).await;
        let mut out = Vec::new();
        let readback = [
            "/system/functions",
            "/system/functions?namespace=other",
            "/system/function/d",
            "/system/function/f",
            "/system/plan",
            "/system/secrets",
            "/system/namespaces",
            "/metrics",
        ]
        .map(|u| Req::new(Method::GET, u, Vec::new()));
        for r in reqs.iter().chain(readback.iter()) {
            let mut tr = TestRequest::default()
                .method(r.method.clone())
                .uri(&r.uri)
                .set_payload(r.body.clone());
            for (k, v) in &r.headers {
                tr = tr.insert_header((k.as_str(), v.as_str()));
            }
            let res = test::call_service(&svc, tr.to_request()).await;
            let status = res.status();
            let body = test::read_body(res).await.to_vec();
            out.push((r.clone(), Resp { status, body }));
        }
        out
    })
}

/// What every management-API response must satisfy: never a 5xx (bad client input is the client's
/// fault), and a 4xx carries a message saying what was wrong (except 405, actix's bare wrong-method reply).
pub fn check_api(req: &Req, resp: &Resp) -> Result<(), String> {
    let shown = || {
        format!(
            "{} {} {:?} -> {} {:?}",
            req.method,
            req.uri,
            String::from_utf8_lossy(&req.body),
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    };
    if resp.status.is_server_error() {
        return Err(format!("server error on client input: {}", shown()));
    }
    if resp.status.is_client_error()
        && resp.status != StatusCode::METHOD_NOT_ALLOWED
        && resp.body.iter().all(u8::is_ascii_whitespace)
    {
        return Err(format!("4xx without a message: {}", shown()));
    }
    Ok(())
}

/// The proxy's and DAG runner's rule: 5xx only for what the provider itself could not do (no ready
/// replica, an unreachable or failing member), each with a message; a 4xx also has a message.
pub fn check_proxy(req: &Req, resp: &Resp) -> Result<(), String> {
    let shown = || {
        format!(
            "{} {} -> {} {:?}",
            req.method,
            req.uri,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    };
    let s = resp.status;
    if (s.is_client_error() && s != StatusCode::METHOD_NOT_ALLOWED || s.is_server_error())
        && resp.body.iter().all(u8::is_ascii_whitespace)
    {
        return Err(format!("error without a message: {}", shown()));
    }
    if s.is_server_error()
        && ![
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ]
        .contains(&s)
    {
        return Err(format!("unexpected server status: {}", shown()));
    }
    Ok(())
}

/// Whether `uri` goes to the invocation proxy rather than the management API.
pub fn is_proxy(uri: &str) -> bool {
    uri.starts_with("/function/")
}

/// Runs a case and checks every response with the rule for its route.
pub fn run_and_check(upstream: Option<SocketAddr>, reqs: &[Req]) -> Result<(), String> {
    for (req, resp) in run_case(upstream, reqs) {
        if is_proxy(&req.uri) {
            check_proxy(&req, &resp)?;
        } else {
            check_api(&req, &resp)?;
        }
    }
    Ok(())
}

/// An upstream every function replica resolves to: answers 200 with the request's body and content type,
/// so DAG members' outputs are whatever the fuzzer sent. Started once per test binary, on its own thread.
pub fn echo_upstream() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo upstream");
        let addr = listener.local_addr().expect("its address");
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || echo(conn));
            }
        });
        addr
    })
}

/// Serves one connection: one request, then close.
fn echo(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let length: usize = header("content-length:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..head_end + length];
    let ct = header("content-type:").unwrap_or_else(|| "text/plain".to_owned());
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes());
    let _ = conn.write_all(body);
}

/// proptest's configuration for a target: `default` cases unless `SMILESS_FUZZ_CASES` says otherwise.
pub fn config(default: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: optimizer::testkit::fuzz_cases(default),
        ..proptest::test_runner::Config::default()
    }
}
