//! The batch format (docs/batching.md): how B requests travel to a function as one call and how its B
//! answers come back. Both directions use the same framing, so one decoder serves the DAG runner (reading
//! a function's answer), the watchdog and the `smiless-fn` emulator (reading a batch they were sent).
//!
//! A batched call carries the header [`HEADER`]` = B` and `Content-Type: `[`CONTENT_TYPE`]; its body is
//! exactly B parts, each
//!
//! ```text
//! status: u16 BE | type_len: u16 BE | content type (type_len bytes, ASCII) | len: u32 BE | body (len bytes)
//! ```
//!
//! `status` is 0 in a request and the item's HTTP status (100–599) in a response; an empty content type
//! means none. Nothing may follow the last part. Lengths make the framing carry arbitrary bytes (no
//! boundary to escape, unlike multipart). The header [`HEADER`] without this content type keeps its older
//! meaning, which `smiless profile` uses: one opaque body that stands for B requests.
use bytes::{BufMut, Bytes, BytesMut};

/// Request and response header: the number of parts.
pub const HEADER: &str = "X-Smiless-Batch";
/// The content type of a framed batch body.
pub const CONTENT_TYPE: &str = "application/x-smiless-batch";
/// The largest batch a call may carry (a bound, so a bad header cannot ask for unbounded work).
pub const MAX_PARTS: usize = 1024;

/// One request or answer of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// 0 in a request; the item's HTTP status in a response.
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Part {
    /// A request item.
    pub fn request(content_type: Option<String>, body: Bytes) -> Part {
        Part {
            status: 0,
            content_type,
            body,
        }
    }
}

/// Why a batch body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch header {HEADER} is {0:?}, not a count from 1 to {MAX_PARTS}")]
    BadCount(String),
    #[error("the body ends inside part {part} of {expected}")]
    Truncated { part: usize, expected: usize },
    #[error("{extra} bytes follow the last of {expected} parts")]
    Trailing { extra: usize, expected: usize },
    #[error("part {part}'s content type is not ASCII text")]
    BadType { part: usize },
    #[error("part {part} has status {status}, which is not an HTTP status (100-599)")]
    BadStatus { part: usize, status: u16 },
    #[error("a content type or body of {0} bytes is too long to frame")]
    TooLong(usize),
}

/// The count in a [`HEADER`] value.
pub fn count_from(value: &str) -> Result<usize, BatchError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| BatchError::BadCount(value.to_string()))
}

/// Whether a content-type header value names the batch format (parameters ignored).
pub fn is_batch_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE))
    })
}

/// Frames `parts` into one body.
pub fn encode(parts: &[Part]) -> Result<Bytes, BatchError> {
    let size: usize = parts
        .iter()
        .map(|p| 8 + p.content_type.as_ref().map_or(0, String::len) + p.body.len())
        .sum();
    let mut out = BytesMut::with_capacity(size);
    for p in parts {
        let ct = p.content_type.as_deref().unwrap_or("");
        let type_len = u16::try_from(ct.len()).map_err(|_| BatchError::TooLong(ct.len()))?;
        let len = u32::try_from(p.body.len()).map_err(|_| BatchError::TooLong(p.body.len()))?;
        out.put_u16(p.status);
        out.put_u16(type_len);
        out.put_slice(ct.as_bytes());
        out.put_u32(len);
        out.put_slice(&p.body);
    }
    Ok(out.freeze())
}

/// Reads exactly `expected` parts from `body` (the count of its [`HEADER`]). `response`: statuses must be
/// HTTP statuses (in a request they are ignored). The parts' bodies share `body`'s buffer.
pub fn decode(body: &Bytes, expected: usize, response: bool) -> Result<Vec<Part>, BatchError> {
    if !(1..=MAX_PARTS).contains(&expected) {
        return Err(BatchError::BadCount(expected.to_string()));
    }
    let mut parts = Vec::with_capacity(expected);
    let mut at = 0usize;
    let truncated = |part| BatchError::Truncated { part, expected };
    for i in 1..=expected {
        let head = body.get(at..at + 4).ok_or_else(|| truncated(i))?;
        let status = u16::from_be_bytes([head[0], head[1]]);
        let type_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        at += 4;
        let ct = body.get(at..at + type_len).ok_or_else(|| truncated(i))?;
        let ct = std::str::from_utf8(ct)
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or(BatchError::BadType { part: i })?;
        at += type_len;
        let len = body.get(at..at + 4).ok_or_else(|| truncated(i))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 4;
        if body.len() - at < len {
            return Err(truncated(i));
        }
        if response && !(100..=599).contains(&status) {
            return Err(BatchError::BadStatus { part: i, status });
        }
        parts.push(Part {
            status,
            content_type: (!ct.is_empty()).then(|| ct.to_string()),
            body: body.slice(at..at + len),
        });
        at += len;
    }
    if at != body.len() {
        return Err(BatchError::Trailing {
            extra: body.len() - at,
            expected,
        });
    }
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts() -> Vec<Part> {
        vec![
            Part::request(
                Some("application/json".into()),
                Bytes::from_static(b"{\"a\":1}"),
            ),
            Part::request(None, Bytes::new()),
            // Arbitrary bytes, including what would be a boundary or a length in another framing.
            Part::request(
                Some("application/octet-stream".into()),
                Bytes::from(vec![0, 255, 0, 0, 0, 7, 10]),
            ),
        ]
    }

    #[test]
    fn a_batch_round_trips() {
        let p = parts();
        let body = encode(&p).unwrap();
        assert_eq!(decode(&body, 3, false).unwrap(), p);
        let answers: Vec<Part> = p
            .iter()
            .zip([200, 500, 204])
            .map(|(x, s)| Part {
                status: s,
                ..x.clone()
            })
            .collect();
        assert_eq!(
            decode(&encode(&answers).unwrap(), 3, true).unwrap(),
            answers
        );
    }

    #[test]
    fn a_wrong_count_or_bad_framing_is_an_error() {
        let body = encode(&parts()).unwrap();
        assert_eq!(
            decode(&body, 4, false),
            Err(BatchError::Truncated {
                part: 4,
                expected: 4
            })
        );
        assert!(matches!(
            decode(&body, 2, false),
            Err(BatchError::Trailing { expected: 2, .. })
        ));
        assert!(matches!(
            decode(&body.slice(..body.len() - 1), 3, false),
            Err(BatchError::Truncated { part: 3, .. })
        ));
        // A request's status 0 is not an answer.
        assert_eq!(
            decode(&body, 3, true),
            Err(BatchError::BadStatus { part: 1, status: 0 })
        );
        assert!(decode(&body, 0, false).is_err());
        assert!(decode(&Bytes::new(), 1, false).is_err());
        let bad_type = Bytes::from(vec![0, 0, 0, 1, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            decode(&bad_type, 1, false),
            Err(BatchError::BadType { part: 1 })
        );
    }

    #[test]
    fn the_header_and_content_type_are_read_strictly() {
        assert_eq!(count_from(" 16 "), Ok(16));
        for bad in ["0", "-1", "x", "1025", ""] {
            assert!(count_from(bad).is_err(), "{bad:?}");
        }
        assert!(is_batch_type(Some("Application/X-Smiless-Batch; v=1")));
        assert!(!is_batch_type(Some("application/json")));
        assert!(!is_batch_type(None));
    }
}
