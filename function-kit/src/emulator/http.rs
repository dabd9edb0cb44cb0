//! `smiless-fn --listen`: the emulator as an http-mode upstream (the watchdog's `mode=http`). It sleeps
//! the initialisation before it binds, so the watchdog (and a pod's readiness probe) sees the replica
//! healthy only once initialised, as a model server that loads its model at start; then it serves each
//! request with the profiled compute, off the async worker.
use std::net::SocketAddr;
use std::sync::Arc;

use super::gpu::Engine;
use super::{Emulator, EmulatorError};

/// Initialises, then serves `emu` on `addr` until the process ends. `open` opens the compute engine
/// (a GPU context belongs to initialisation, so it is opened before binding).
pub fn serve(
    emu: Emulator,
    addr: SocketAddr,
    open: impl FnOnce() -> Result<Engine, EmulatorError>,
) -> std::io::Result<()> {
    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let init = emu.draw_init_delay();
    std::thread::sleep(init);
    // The GPU context, kernel and calibration are part of initialisation, before accepting connections.
    let engine = Arc::new(open().map_err(std::io::Error::other)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let emu = Arc::new(emu);
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        // The bound address (port 0 picks one), so a caller can find it.
        let bound = listener.local_addr()?;
        eprintln!(
            "smiless-fn: {} initialised in {init:?}, listening on {bound}",
            emu.profile_name
        );
        loop {
            let (conn, _) = listener.accept().await?;
            let emu = Arc::clone(&emu);
            let engine = Arc::clone(&engine);
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let emu = Arc::clone(&emu);
                    let engine = Arc::clone(&engine);
                    let calls = Arc::clone(&calls);
                    async move {
                        // Already initialised at start: a warm-up call has nothing to do.
                        let warmup = req.headers().contains_key(super::WARMUP_HEADER);
                        let batch = super::batch_from(
                            req.headers()
                                .get(super::BATCH_HEADER)
                                .and_then(|v| v.to_str().ok()),
                        );
                        let content_type = header(&req, "content-type");
                        let count = header(&req, crate::batch::HEADER);
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        // A framed batch: one call of t(B, r), B answers.
                        let items = match super::batched::items(
                            content_type.as_deref(),
                            count.as_deref(),
                            &body,
                        ) {
                            Some(Err(e)) => {
                                return respond(400, "text/plain", e.to_string().into());
                            }
                            Some(Ok(items)) => Some(items),
                            None => None,
                        };
                        let (n, batch) = match &items {
                            Some(items) => (
                                super::batched::input_bytes(items),
                                u32::try_from(items.len()).unwrap_or(1),
                            ),
                            None => (body.len(), batch),
                        };
                        // The busy loop blocks: keep it off the async worker.
                        let mut out = tokio::task::spawn_blocking(move || {
                            if warmup {
                                Ok(emu.warmed(std::time::Duration::ZERO))
                            } else {
                                engine.serve(&emu, n, std::time::Duration::ZERO, batch)
                            }
                        })
                        .await
                        .map_err(std::io::Error::other)?
                        .map_err(std::io::Error::other)?;
                        if !out.warmup {
                            out.call = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        }
                        match items {
                            Some(items) => {
                                let body = super::batched::answer(&out, &items)
                                    .map_err(std::io::Error::other)?;
                                let mut resp = respond(200, crate::batch::CONTENT_TYPE, body)?;
                                resp.headers_mut().insert(
                                    crate::batch::HEADER,
                                    hyper::header::HeaderValue::from(items.len()),
                                );
                                Ok(resp)
                            }
                            None => {
                                let body =
                                    serde_json::to_vec(&out).map_err(std::io::Error::other)?;
                                respond(200, "application/json", body.into())
                            }
                        }
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    })
}

/// A request header as text.
fn header(req: &hyper::Request<hyper::body::Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A whole-body response.
fn respond(
    status: u16,
    content_type: &str,
    body: bytes::Bytes,
) -> std::io::Result<hyper::Response<http_body_util::Full<bytes::Bytes>>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(http_body_util::Full::new(body))
        .map_err(std::io::Error::other)
}
