//! The watchdog and the batch format (docs/batching.md): a function that does not declare native
//! batching gets a framed call as one fork per item, answered in order with each item's own status; with
//! `batch_native=true` the framed body reaches the function once, unchanged.
use bytes::Bytes;
use function_kit::batch::{self as format, Part};

use crate::watchdog::{Watchdog, call};

fn batch(bodies: &[&[u8]]) -> Bytes {
    let parts: Vec<Part> = bodies
        .iter()
        .map(|b| Part::request(Some("text/plain".into()), Bytes::copy_from_slice(b)))
        .collect();
    format::encode(&parts).unwrap()
}

const HEADERS: [(&str, &str); 2] = [
    ("X-Smiless-Batch", "3"),
    ("content-type", "application/x-smiless-batch"),
];

#[tokio::test]
async fn a_classic_function_gets_one_fork_per_item() {
    // grep exits 1 (an error answer) when its input has no "x".
    let wd = Watchdog::start(&[("fprocess", "grep -a x")]).await;
    let body = batch(&[b"x1\n", b"no match\n", b"\x00x\xff\n"]);
    let r = call(wd.addr, "POST", "/", &HEADERS, &body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["x-smiless-batch"], "3");
    assert_eq!(r.headers["content-type"], format::CONTENT_TYPE);
    let parts = format::decode(&Bytes::from(r.body), 3, true).unwrap();
    assert_eq!((parts[0].status, &parts[0].body[..]), (200, &b"x1\n"[..]));
    assert_ne!(parts[1].status, 200, "{parts:?}");
    // Arbitrary bytes go through the framing unchanged.
    assert_eq!(
        (parts[2].status, &parts[2].body[..]),
        (200, &b"\x00x\xff\n"[..])
    );
    // A header that does not match the body is the caller's error.
    let short = batch(&[b"x", b"x"]);
    let r = call(wd.addr, "POST", "/", &HEADERS, &short).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn a_native_function_gets_the_framed_call_once() {
    let wd = Watchdog::start(&[("fprocess", "cat"), ("batch_native", "true")]).await;
    let body = batch(&[b"a", b"b", b"c"]);
    let r = call(wd.addr, "POST", "/", &HEADERS, &body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // cat echoes the framed body: one process saw all three items.
    assert_eq!(r.body, body.to_vec());
    assert_eq!(r.headers["x-smiless-batch"], "3");
    assert_eq!(r.headers["content-type"], format::CONTENT_TYPE);
}

/// http mode in front of a `smiless-fn --listen` upstream (which numbers its calls): split into one
/// upstream call per item unless `batch_native`, then one call of the whole batch.
#[tokio::test]
async fn http_mode_splits_unless_native() {
    for native in [false, true] {
        let up = crate::watchdog::free_port();
        let fprocess = format!(
            "{} --profile texttospeech --listen 127.0.0.1:{up}",
            env!("CARGO_BIN_EXE_smiless-fn")
        );
        let url = format!("http://127.0.0.1:{up}");
        let wd = Watchdog::start(&[
            ("mode", "http"),
            ("upstream_url", &url),
            ("fprocess", &fprocess),
            ("SMILESS_TIME_SCALE", "0.01"),
            ("batch_native", if native { "true" } else { "false" }),
        ])
        .await;
        let body = batch(&[b"a", b"bb", b"ccc"]);
        let r = call(wd.addr, "POST", "/", &HEADERS, &body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-smiless-batch"], "3");
        let parts = format::decode(&Bytes::from(r.body), 3, true).unwrap();
        let outs: Vec<serde_json::Value> = parts
            .iter()
            .map(|p| serde_json::from_slice(&p.body).unwrap())
            .collect();
        for (k, o) in outs.iter().enumerate() {
            assert_eq!(o["input_bytes"].as_u64(), Some(k as u64 + 1), "{o}");
            let (batch, call) = if native { (3, 1) } else { (1, k as u64 + 1) };
            assert_eq!(
                (o["batch"].as_u64(), o["call"].as_u64()),
                (Some(batch), Some(call)),
                "native {native}: {o}"
            );
        }
    }
}
