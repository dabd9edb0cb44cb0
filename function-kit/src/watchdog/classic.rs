//! Classic mode: fork `fprocess` for every request, the body on stdin, the request as `Http_*` environment
//! variables; stdout is the response.

use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, TRANSFER_ENCODING};
use hyper::{Method, StatusCode};
use rustix::process::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{State, log_line, process};

/// What the function sees of the request.
#[derive(Debug)]
pub struct RequestMeta<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// Writes a header name the way Go's `net/http` canonicalises it (`x-call-id` → `X-Call-Id`), since
/// functions written for the OpenFaaS watchdogs look for those spellings.
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The `Http_*` variables of the classic watchdog: one per header (`-` → `_`, first value), then the
/// method, content length, query, path and transfer encoding.
pub fn cgi_env(req: &RequestMeta<'_>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::with_capacity(req.headers.keys_len() + 6);
    for name in req.headers.keys() {
        // Go keeps these two out of the header map; the watchdog reports them separately.
        if name == TRANSFER_ENCODING {
            continue;
        }
        let Some(value) = req.headers.get(name) else {
            continue;
        };
        let key = format!("Http_{}", canonical_header(name.as_str()).replace('-', "_"));
        env.push((key, String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    env.push(("Http_Method".into(), req.method.as_str().to_string()));
    let length = match req
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
    {
        Some(len) => len.trim().to_string(),
        None if req.headers.contains_key(TRANSFER_ENCODING) => "-1".into(),
        None => "0".into(),
    };
    env.push(("Http_ContentLength".into(), length.clone()));
    env.push(("Http_Content_Length".into(), length));
    if let Some(q) = req.query.filter(|q| !q.is_empty()) {
        env.push(("Http_Query".into(), q.to_string()));
    }
    if !req.path.is_empty() {
        env.push(("Http_Path".into(), req.path.to_string()));
    }
    if let Some(te) = req.headers.get(TRANSFER_ENCODING) {
        env.push((
            "Http_Transfer_Encoding".into(),
            String::from_utf8_lossy(te.as_bytes()).into_owned(),
        ));
    }
    env
}

/// The result of one fork.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
}

impl Outcome {
    fn error(status: StatusCode, msg: String) -> Self {
        Self {
            status,
            body: Bytes::from(msg),
            content_type: Some(HeaderValue::from_static("text/plain")),
        }
    }
}

/// Kills a process group when dropped, unless disarmed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            process::kill_group(pid, Signal::KILL);
        }
    }
}

/// Runs `fprocess` for one request.
pub async fn invoke(state: &State, meta: &RequestMeta<'_>, body: Bytes) -> Outcome {
    let cfg = &state.cfg;
    let started = Instant::now();
    log_line("Forking fprocess.");
    if cfg.write_debug {
        log_line(&format!("Query {}", meta.query.unwrap_or("")));
        log_line(&format!("Path {}", meta.path));
    }
    let mut cmd = process::command(&state.exe, &cfg.process);
    cmd.env_clear()
        .envs(state.base_env.iter().map(|(k, v)| (k, v)));
    if cfg.cgi_headers {
        cmd.envs(cgi_env(meta));
    }
    cmd.stdin(Stdio::piped()).kill_on_drop(true);

    // combine_output: stdout and stderr share one pipe, so the response keeps their interleaving.
    let (reader, err_reader) = if cfg.combine_output {
        match std::io::pipe() {
            Ok((r, w)) => {
                let w2 = match w.try_clone() {
                    Ok(w2) => w2,
                    Err(e) => {
                        return Outcome::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("pipe: {e}"),
                        );
                    }
                };
                cmd.stdout(Stdio::from(OwnedFd::from(w)))
                    .stderr(Stdio::from(OwnedFd::from(w2)));
                (Some(r), false)
            }
            Err(e) => {
                return Outcome::error(StatusCode::INTERNAL_SERVER_ERROR, format!("pipe: {e}"));
            }
        }
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        (None, true)
    };
    let spawned = cmd.spawn();
    // The command holds the parent's copies of the pipe's write end; drop them so EOF can arrive.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            log_line(&format!("Cannot start fprocess {}: {e}", cfg.fprocess));
            return Outcome::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start fprocess: {e}"),
            );
        }
    };
    let pid = child.id();
    // Until the function has exited, leaving this function early (write_timeout, the client went away)
    // kills the whole process group; the child is not reaped yet, so its group id cannot be reused.
    let mut guard = GroupGuard(pid);

    let mut stdin = child.stdin.take();
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let feed = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A function that does not read its input (e.g. `env`) closes the pipe early: not an error.
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
    };
    let out_task = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(r) = reader {
            let fd = OwnedFd::from(r);
            match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(mut rx) => {
                    let _ = rx.read_to_end(&mut out).await;
                }
                Err(e) => log_line(&format!("pipe: {e}")),
            }
        } else if err_reader {
            let a = async {
                if let Some(s) = so.as_mut() {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let b = async {
                if let Some(s) = se.as_mut() {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(a, b);
        }
        (out, err)
    };
    let run = async {
        let ((), (out, err)) = tokio::join!(feed, out_task);
        let status = child.wait().await;
        (out, err, status)
    };
    let limited = if cfg.exec_timeout.is_zero() {
        Ok(run.await)
    } else {
        tokio::time::timeout(cfg.exec_timeout, run).await
    };
    let (out, err, status) = match limited {
        Ok(r) => {
            guard.0 = None;
            r
        }
        Err(_) => {
            if let Some(pid) = pid {
                process::kill_group(pid, Signal::KILL);
            }
            log_line(&format!(
                "Killing process: {} (exec_timeout {:?})",
                cfg.fprocess, cfg.exec_timeout
            ));
            return Outcome::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "exec_timeout of {} exceeded",
                    humantime::format_duration(cfg.exec_timeout)
                ),
            );
        }
    };
    if !err.is_empty() {
        // Without combine_output the function's stderr belongs in the replica's log.
        log_line(&format!(
            "stderr: {}",
            String::from_utf8_lossy(&err).trim_end()
        ));
    }
    finish(state, meta, started.elapsed(), out, err, status)
}

fn finish(
    state: &State,
    meta: &RequestMeta<'_>,
    took: Duration,
    out: Vec<u8>,
    err: Vec<u8>,
    status: std::io::Result<ExitStatus>,
) -> Outcome {
    let cfg = &state.cfg;
    let failure = match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(match s.code() {
            Some(code) => format!("exit status {code}"),
            None => format!("{s}"),
        }),
        Err(e) => Some(format!("wait: {e}")),
    };
    if let Some(reason) = failure {
        if cfg.write_debug {
            log_line(&format!("Success=false, Error={reason}"));
            log_line(&format!("Out={}", String::from_utf8_lossy(&out)));
        } else {
            log_line(&format!("fprocess failed: {reason}"));
        }
        // The function's own error text is more useful to the caller than the exit code alone.
        let mut body = if err.is_empty() { out } else { err };
        if body.is_empty() {
            body = reason.into_bytes();
        }
        return Outcome {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from(body),
            content_type: Some(HeaderValue::from_static("text/plain")),
        };
    }
    if cfg.write_debug {
        log_line(&format!("Out={}", String::from_utf8_lossy(&out)));
    }
    log_line(&format!(
        "Wrote {} Bytes - Duration: {:.6} seconds",
        out.len(),
        took.as_secs_f64()
    ));
    let content_type = match &cfg.content_type {
        Some(ct) => HeaderValue::from_str(ct).ok(),
        None => meta.headers.get(CONTENT_TYPE).cloned(),
    };
    Outcome {
        status: StatusCode::OK,
        body: Bytes::from(out),
        content_type,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_like_go() {
        assert_eq!(canonical_header("x-call-id"), "X-Call-Id");
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("ACCEPT"), "Accept");
    }

    #[test]
    fn maps_request_to_http_env() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("x-call-id", HeaderValue::from_static("abc"));
        headers.append("x-multi", HeaderValue::from_static("first"));
        headers.append("x-multi", HeaderValue::from_static("second"));
        headers.insert("content-length", HeaderValue::from_static("5"));
        let meta = RequestMeta {
            method: &Method::PATCH,
            path: "/a/b",
            query: Some("testing=1"),
            headers: &headers,
        };
        let env: std::collections::BTreeMap<_, _> = cgi_env(&meta).into_iter().collect();
        assert_eq!(env["Http_Method"], "PATCH");
        assert_eq!(env["Http_Query"], "testing=1");
        assert_eq!(env["Http_Path"], "/a/b");
        assert_eq!(env["Http_Content_Type"], "text/plain");
        assert_eq!(env["Http_X_Call_Id"], "abc");
        assert_eq!(env["Http_X_Multi"], "first");
        assert_eq!(env["Http_Content_Length"], "5");
        assert_eq!(env["Http_ContentLength"], "5");
    }

    #[test]
    fn omits_empty_query_and_reports_chunked_length() {
        let mut headers = HeaderMap::new();
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        let meta = RequestMeta {
            method: &Method::POST,
            path: "/",
            query: Some(""),
            headers: &headers,
        };
        let env: std::collections::BTreeMap<_, _> = cgi_env(&meta).into_iter().collect();
        assert!(!env.contains_key("Http_Query"));
        assert_eq!(env["Http_Content_Length"], "-1");
        assert_eq!(env["Http_Transfer_Encoding"], "chunked");
        assert!(!env.contains_key("Http_Transfer-Encoding"));
    }
}
