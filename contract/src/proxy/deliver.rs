//! Delivering one request to one of a function's replicas, for the proxy and the DAG runner alike.
//!
//! The rule (docs/local-backend.md, "Retries"): a request that no replica saw — the connection was
//! refused, or a pooled keep-alive connection was found closed or reset before any byte of the request
//! was written — goes to another ready replica, or waits for a replacement, until the caller's deadline
//! (the read timeout). A request of which any byte was written is never sent again: functions take
//! non-idempotent POSTs, and a replica that died mid-request may have run it. The request comes back
//! untouched from [`Pool::send`] only in the first case (hyper returns the message when it never started
//! writing it), so a streamed body is retried only while unread, and a buffered one always can be.
//!
//! A replica found unreachable is reported to the backend ([`Backend::unreachable`]), which takes it
//! out of rotation until its health check passes again, so the next pick is another replica.
use std::net::SocketAddr;
use std::rc::Rc;

use hyper::header::{HOST, HeaderValue};
use tokio::time::Instant;

use super::pool::{Pool, PooledBody, SendError, UpstreamBody, UpstreamError};
use crate::backend::{self, Backend};

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Every replica tried was unreachable and no other became ready before the deadline; the request
    /// reached none of them.
    #[error("no ready replica could be reached (last: {0})")]
    Unreachable(UpstreamError),
    /// The request was sent and then failed (reset, closed, bad response): not retried.
    #[error("{0}")]
    Failed(UpstreamError),
    /// No response head before the deadline.
    #[error("timed out")]
    TimedOut,
}

/// The function a request is for.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub backend: &'a dyn Backend,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// A response from a replica of `to`: the request goes to `first`, then, only while it was never
/// sent, to the replicas the backend names next, until `deadline`. `keep_waiting` is asked while no
/// replica is ready (as in [`backend::wait_endpoint`]). Every try names its replica in `Host`.
pub async fn deliver(
    pool: &Rc<Pool>,
    to: Target<'_>,
    first: SocketAddr,
    mut req: hyper::Request<UpstreamBody>,
    deadline: Instant,
    mut keep_waiting: impl FnMut() -> bool,
) -> Result<(hyper::http::response::Parts, PooledBody), DeliverError> {
    let mut addr = first;
    loop {
        // HTTP/1.1 requires Host; like Go's client, name the replica's address.
        if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
            req.headers_mut().insert(HOST, host);
        }
        let cause = match tokio::time::timeout_at(deadline, pool.send(addr, req)).await {
            Err(_) => return Err(DeliverError::TimedOut),
            Ok(Ok(resp)) => return Ok(resp),
            Ok(Err(SendError::Sent(e))) => return Err(DeliverError::Failed(e)),
            Ok(Err(SendError::NotSent { req: back, cause })) => {
                req = *back;
                cause
            }
        };
        tracing::debug!(
            "{}.{}: replica {addr} unreachable before the request was sent ({cause}); trying again",
            to.name,
            to.namespace
        );
        to.backend.unreachable(to.namespace, to.name, addr);
        let Some(next) = backend::wait_endpoint(
            to.backend,
            to.namespace,
            to.name,
            deadline,
            &mut keep_waiting,
        )
        .await
        else {
            return Err(DeliverError::Unreachable(cause));
        };
        if next == addr {
            // The same address again (a Service address, or a replica the backend has not yet seen
            // die): pause so the retries do not spin.
            if Instant::now() + backend::ENDPOINT_POLL >= deadline {
                return Err(DeliverError::Unreachable(cause));
            }
            tokio::time::sleep(backend::ENDPOINT_POLL).await;
        }
        addr = next;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
