//! Replays the corpus of interesting inputs in `tests/fuzz-seeds/` (inputs that found bugs, and
//! hand-written edge cases) through the real routes, with the same rules as the fuzz targets.
//!
//! A seed file is one request: the first line is `METHOD URI`, then optional `Name: value` header lines,
//! a blank line, and the body (the rest of the file, byte for byte). Each seed runs after the fuzz targets'
//! setup (a ready DAG `d` = `f` → `g`), with every replica answering at an echo upstream.
mod fuzz_common;

use std::path::Path;

use actix_web::http::Method;

use fuzz_common::{Req, echo_upstream, run_and_check, setup};

/// Parses one seed file.
fn parse_seed(bytes: &[u8]) -> Result<Req, String> {
    let line_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| from + i)
    };
    let first_end = line_end(0).ok_or("no request line")?;
    let first = std::str::from_utf8(&bytes[..first_end]).map_err(|e| e.to_string())?;
    let (method, uri) = first
        .trim_end_matches('\r')
        .split_once(' ')
        .ok_or("request line is not `METHOD URI`")?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = Req::new(method, uri, Vec::new());
    let mut at = first_end + 1;
    loop {
        let end = line_end(at).unwrap_or(bytes.len());
        let line = std::str::from_utf8(&bytes[at..end]).map_err(|e| e.to_string())?;
        let line = line.trim_end_matches('\r');
        at = (end + 1).min(bytes.len());
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or("header line without `:`")?;
        req.headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    req.body = bytes[at..].to_vec();
    Ok(req)
}

#[test]
fn corpus_replays_cleanly() {
    // Relative to the package root, where `cargo test` runs integration tests: a path baked in at
    // compile time would name wherever the (shared, cached) test binary was first built.
    let dir = Path::new("tests/fuzz-seeds");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/fuzz-seeds exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "http"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 10, "the corpus is in the tree");
    let mut failures = Vec::new();
    for path in &entries {
        let bytes = std::fs::read(path).expect("a readable seed");
        let req = match parse_seed(&bytes) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let mut reqs = setup();
        reqs.push(req);
        if let Err(e) = run_and_check(Some(echo_upstream()), &reqs) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
