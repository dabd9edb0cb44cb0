//! The emulator's side of the batch format ([`crate::batch`], docs/batching.md): a framed call of B
//! requests is served as one call of the profile's `t(B, r)` (not B calls of `t(1, r)`), so batching in
//! emulation saves time per item exactly as the planner's profile says; each of the B answers is the
//! call's output (JSON, status 200), with its own input's size.
use bytes::Bytes;

use super::Output;
use crate::batch::{self, BatchError, Part};

/// A framed batch call's items, when the call is one: `Some(Err)` when it claims the format but its
/// header or body is wrong (the caller answers 400), `None` when it is an ordinary call (including the
/// profiler's older "header + one opaque body" batch).
pub fn items(
    content_type: Option<&str>,
    header: Option<&str>,
    body: &Bytes,
) -> Option<Result<Vec<Part>, BatchError>> {
    if !batch::is_batch_type(content_type) {
        return None;
    }
    Some(batch::count_from(header.unwrap_or("")).and_then(|n| batch::decode(body, n, false)))
}

/// The framed answer to `items`, all served by one call whose output is `out`.
pub fn answer(out: &Output, items: &[Part]) -> Result<Bytes, BatchError> {
    let parts: Vec<Part> = items
        .iter()
        .map(|item| {
            let mut one = out.clone();
            one.input_bytes = item.body.len();
            Part {
                status: 200,
                content_type: Some("application/json".into()),
                body: Bytes::from(serde_json::to_vec(&one).unwrap_or_default()),
            }
        })
        .collect();
    batch::encode(&parts)
}

/// The total input size of a batch (what the call's output reports before each item's own size).
pub fn input_bytes(items: &[Part]) -> usize {
    items.iter().map(|p| p.body.len()).sum()
}
