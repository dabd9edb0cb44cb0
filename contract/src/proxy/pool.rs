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
use rustix::io::Errno;
use rustix::net::RecvFlags;
use std::os::fd::{AsFd, OwnedFd};

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

/// A failed upstream call, split by the one thing a retry depends on: did any byte of the request leave?
pub enum SendError {
    /// Nothing was written (connection refused, or closed before the request went out): the request,
    /// body untouched, comes back and may go to another replica.
    NotSent {
        /// Boxed: the error stays small on the path that does not retry.
        req: Box<hyper::Request<UpstreamBody>>,
        cause: UpstreamError,
    },
    /// The request (or part of it) was written: the function may have run it, so it is never replayed.
    Sent(UpstreamError),
}

impl std::fmt::Debug for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotSent { cause, .. } => write!(f, "not sent: {cause}"),
            SendError::Sent(e) => write!(f, "sent: {e}"),
        }
    }
}

/// One upstream connection: hyper's handle, and a second descriptor of its socket to look at it before
/// reusing it.
#[derive(Debug)]
struct Conn {
    tx: Sender,
    sock: OwnedFd,
}

impl Conn {
    /// Whether the upstream closed or reset the idle socket, as the kernel knows it now (a peek that
    /// neither waits nor consumes). hyper learns it only once the connection's task runs, which on this
    /// thread may be after the request was written to a replica that is already gone: the request would
    /// then count as sent and could not be retried. Stray bytes on an idle connection make it unusable
    /// too.
    fn peer_gone(&self) -> bool {
        let mut byte = [0u8; 1];
        match rustix::net::recv(
            &self.sock,
            &mut byte[..],
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Err(e) => e != Errno::AGAIN && e != Errno::WOULDBLOCK && e != Errno::INTR,
            Ok(_) => true,
        }
    }
}

/// A per-worker pool of idle upstream connections.
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<HashMap<SocketAddr, Vec<Conn>>>,
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
    async fn checkout(&self, addr: SocketAddr) -> Option<Conn> {
        loop {
            let mut c = self.idle.borrow_mut().get_mut(&addr)?.pop()?;
            if c.tx.is_closed() {
                continue;
            }
            // Checked in at end of body, the connection turns idle as soon as its task runs: this
            // resolves at once for a live connection and errs for one the upstream closed meanwhile.
            if c.tx.ready().await.is_ok() && !c.peer_gone() {
                return Some(c);
            }
        }
    }

    fn checkin(&self, addr: SocketAddr, c: Conn) {
        if c.tx.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() > PRUNE_ABOVE {
            // Replicas come and go on fresh ports; forget addresses whose connections have all closed.
            idle.retain(|_, v| {
                v.retain(|c| !c.tx.is_closed());
                !v.is_empty()
            });
        }
        let v = idle.entry(addr).or_default();
        // Closed ones go now: their sockets stay open while the pool holds them.
        v.retain(|c| !c.tx.is_closed());
        if v.len() < self.max_idle_per_host {
            v.push(c);
        }
    }

    async fn connect(addr: SocketAddr) -> Result<Conn, UpstreamError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let sock = stream.as_fd().try_clone_to_owned()?;
        let (tx, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        actix_web::rt::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection to {addr}: {e}");
            }
        });
        Ok(Conn { tx, sock })
    }

    /// Sends `req` to `addr` on a pooled connection, or on a fresh one when none is idle or the pooled
    /// one turned out closed before the request went out. Returns the response with its body tied to
    /// the connection; on failure, says whether the request was sent ([`SendError`]).
    pub async fn send(
        self: &Rc<Self>,
        addr: SocketAddr,
        mut req: hyper::Request<UpstreamBody>,
    ) -> Result<(hyper::http::response::Parts, PooledBody), SendError> {
        if let Some(mut c) = self.checkout(addr).await {
            match c.tx.try_send_request(req).await {
                Ok(res) => return Ok(self.wrap(addr, c, res)),
                // hyper hands the request back only when no byte of it was written: the idle
                // connection was closed or reset under us. A fresh connection may still work.
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(SendError::Sent(e.into_error().into())),
                },
            }
        }
        let mut c = match Self::connect(addr).await {
            Ok(c) => c,
            Err(cause) => {
                return Err(SendError::NotSent {
                    req: Box::new(req),
                    cause,
                });
            }
        };
        match c.tx.try_send_request(req).await {
            Ok(res) => Ok(self.wrap(addr, c, res)),
            Err(mut e) => match e.take_message() {
                Some(req) => Err(SendError::NotSent {
                    req: Box::new(req),
                    cause: e.into_error().into(),
                }),
                None => Err(SendError::Sent(e.into_error().into())),
            },
        }
    }

    fn wrap(
        self: &Rc<Self>,
        addr: SocketAddr,
        c: Conn,
        res: hyper::Response<Incoming>,
    ) -> (hyper::http::response::Parts, PooledBody) {
        let (parts, body) = res.into_parts();
        let mut pooled = PooledBody {
            body,
            conn: Some((Rc::clone(self), addr, c)),
        };
        if pooled.body.is_end_stream() {
            pooled.release();
        }
        (parts, pooled)
    }
}

/// A response body that returns its connection to the pool once read to the end.
#[derive(Debug)]
pub struct PooledBody {
    body: Incoming,
    conn: Option<(Rc<Pool>, SocketAddr, Conn)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, addr, c)) = self.conn.take() {
            pool.checkin(addr, c);
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
