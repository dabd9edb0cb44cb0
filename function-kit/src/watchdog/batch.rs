//! The watchdog's side of the batch format ([`crate::batch`], docs/batching.md). A framed call of B items
//! reaches a function that does not declare native batching (`batch_native`, default false) as B
//! ordinary requests, one after the other: in classic mode one fork per item, in http mode one upstream
//! request per item. Their answers are framed back in order, each with its own status, so one failing
//! item does not fail the others. With `batch_native=true` the call goes through unchanged (classic: the
//! framed body on stdin, `Http_X_Smiless_Batch` set; stdout must be the framed answer).
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{StatusCode, http::request};

use super::{Body, State, classic, text};
use crate::batch::{self, Part};

/// Whether a request is a framed batch call that the watchdog must split (the function is not native).
pub fn must_split(state: &State, headers: &HeaderMap) -> bool {
    !state.cfg.batch_native
        && batch::is_batch_type(headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()))
}

/// The items of a framed call, or why there are none (see [`bad`]).
pub fn items(headers: &HeaderMap, body: &Bytes) -> Result<Vec<Part>, batch::BatchError> {
    let count = headers
        .get(batch::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    batch::count_from(count).and_then(|n| batch::decode(body, n, false))
}

/// The 400 answer to a framed call that is not one.
pub fn bad(e: &batch::BatchError) -> hyper::Response<Body> {
    text(StatusCode::BAD_REQUEST, format!("bad batch: {e}"))
}

/// The headers one item is sent with: the call's, with the item's content type and without the batch
/// header (the item is an ordinary request).
pub fn item_headers(call: &HeaderMap, item: &Part) -> HeaderMap {
    let mut h = call.clone();
    h.remove(batch::HEADER);
    h.remove(hyper::header::CONTENT_LENGTH);
    match item
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
    {
        Some(ct) => h.insert(CONTENT_TYPE, ct),
        None => h.remove(CONTENT_TYPE),
    };
    h
}

/// Classic mode: forks `fprocess` once per item.
pub async fn classic(state: &State, parts: &request::Parts, body: Bytes) -> hyper::Response<Body> {
    let items = match items(&parts.headers, &body) {
        Ok(items) => items,
        Err(e) => return bad(&e),
    };
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let headers = item_headers(&parts.headers, &item);
        let meta = classic::RequestMeta {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &headers,
        };
        let out = classic::invoke(state, &meta, item.body).await;
        answers.push(Part {
            status: out.status.as_u16(),
            content_type: out
                .content_type
                .and_then(|v| v.to_str().ok().map(str::to_owned)),
            body: out.body,
        });
    }
    framed(&answers)
}

/// A framed answer of `answers`.
pub fn framed(answers: &[Part]) -> hyper::Response<Body> {
    match batch::encode(answers) {
        Ok(body) => {
            let mut resp = text(StatusCode::OK, body);
            mark(resp.headers_mut(), answers.len());
            resp
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Sets the batch content type and count on a response.
pub fn mark(headers: &mut HeaderMap, count: usize) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(batch::CONTENT_TYPE));
    headers.insert(batch::HEADER, HeaderValue::from(count));
}
