//! The proxy's upstream connections: one pool per HTTP worker thread, keep-alive HTTP/1.1 over hyper's
//! low-level client connection.
//!
//! Why not hyper-util's pooled client: everything here runs on one actix worker thread, so the pool needs
//! no locks, connection tasks need not be `Send`, and the request body can be actix's own payload stream
//! (no pump task). A connection goes back to the pool when its response body has been read to the end;
//! one dropped early (client gone) is closed instead.
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web;
use bytes::Bytes;
use futures::Stream;
use futures::stream::Map;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// The request payload as body frames.
pub type PayloadFrames =
    Map<web::Payload, fn(Result<Bytes, PayloadError>) -> Result<Frame<Bytes>, PayloadError>>;
/// What goes upstream: a body in memory (often empty) or the client's payload, streamed.
pub type UpstreamBody = Either<Full<Bytes>, StreamBody<PayloadFrames>>;

type Sender = SendRequest<UpstreamBody>;

/// Past this many upstream addresses, a check-in first drops the dead ones.
const PRUNE_ABOVE: usize = 64;

/// One payload chunk as a body frame.
pub fn to_frame(chunk: Result<Bytes, PayloadError>) -> Result<Frame<Bytes>, PayloadError> {
    chunk.map(Frame::data)
}

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// A per-worker pool of idle upstream connections.
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<HashMap<SocketAddr, Vec<Sender>>>,
    max_idle_per_host: usize,
}

impl Pool {
    pub fn new(max_idle_per_host: usize) -> Rc<Self> {
        Rc::new(Pool {
            idle: RefCell::new(HashMap::new()),
            max_idle_per_host,
        })
    }

    /// An idle connection to `addr` that is ready for a request, if any.
    async fn checkout(&self, addr: SocketAddr) -> Option<Sender> {
        loop {
            let mut s = self.idle.borrow_mut().get_mut(&addr)?.pop()?;
            if s.is_closed() {
                continue;
            }
            // Checked in at end of body, the connection turns idle as soon as its task runs: this
            // resolves at once for a live connection and errs for one the upstream closed meanwhile.
            if s.ready().await.is_ok() {
                return Some(s);
            }
        }
    }

    fn checkin(&self, addr: SocketAddr, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() > PRUNE_ABOVE {
            // Replicas come and go on fresh ports; forget addresses whose connections have all closed.
            idle.retain(|_, v| {
                v.retain(|s| !s.is_closed());
                !v.is_empty()
            });
        }
        let v = idle.entry(addr).or_default();
        if v.len() < self.max_idle_per_host {
            v.push(s);
        }
    }

    async fn connect(addr: SocketAddr) -> Result<Sender, UpstreamError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        actix_web::rt::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection to {addr}: {e}");
            }
        });
        Ok(tx)
    }

    /// Sends `req` to `addr` on a pooled connection (retrying once on a fresh one if the pooled one was
    /// closed before the request went out) and returns the response with its body tied to the connection.
    pub async fn send(
        self: &Rc<Self>,
        addr: SocketAddr,
        mut req: hyper::Request<UpstreamBody>,
    ) -> Result<(hyper::http::response::Parts, PooledBody), UpstreamError> {
        if let Some(mut s) = self.checkout(addr).await {
            match s.try_send_request(req).await {
                Ok(res) => return Ok(self.wrap(addr, s, res)),
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut s = Self::connect(addr).await?;
        let res = s.send_request(req).await?;
        Ok(self.wrap(addr, s, res))
    }

    fn wrap(
        self: &Rc<Self>,
        addr: SocketAddr,
        s: Sender,
        res: hyper::Response<Incoming>,
    ) -> (hyper::http::response::Parts, PooledBody) {
        let (parts, body) = res.into_parts();
        let mut pooled = PooledBody {
            body,
            conn: Some((Rc::clone(self), addr, s)),
        };
        if pooled.body.is_end_stream() {
            pooled.release();
        }
        (parts, pooled)
    }
}

/// A response body that returns its connection to the pool once read to the end.
pub struct PooledBody {
    body: Incoming,
    conn: Option<(Rc<Pool>, SocketAddr, Sender)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, addr, s)) = self.conn.take() {
            pool.checkin(addr, s);
        }
    }
}

impl Stream for PooledBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            return match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    this.conn = None;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(None) => {
                    this.release();
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
