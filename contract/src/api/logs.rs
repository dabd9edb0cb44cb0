//! `GET /system/logs` (contract §1.10, §2.8): an ndjson stream of `Message`s. With `follow=false` it
//! ends after the history; with `follow=true` it stays open until the client leaves or `write_timeout`.
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;

use super::{ApiError, AppState, Authorized, query_pairs};
use crate::backend::LogRequest;

/// Parses the query; the last value of a repeated key wins.
pub fn parse_request(query: &[(String, String)], default_ns: &str) -> Result<LogRequest, ApiError> {
    let last = |k: &str| {
        query
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let name = last("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::Unprocessable(
            "could not parse the log request: name is required".into(),
        ));
    }
    let tail = match last("tail").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| {
                ApiError::Unprocessable(format!("could not parse the log request: tail {t:?}"))
            })?;
            // ≤ 0 means unlimited (faas-cli sends tail=-1 by default).
            usize::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    let since = match last("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| {
            ApiError::Unprocessable(format!("could not parse the log request: since {s:?}: {e}"))
        })?),
    };
    let namespace = last("namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or(default_ns);
    Ok(LogRequest {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        instance: last("instance")
            .filter(|i| !i.is_empty())
            .map(str::to_owned),
        since,
        tail,
        // Anything unparseable is false: faas-provider ignores the error.
        follow: last("follow").and_then(crate::config::parse_go_bool) == Some(true),
    })
}

/// The handler.
pub async fn logs(
    _: Authorized,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = parse_request(&query_pairs(&req), state.catalog.default_namespace())?;
    if state.catalog.function(&q.namespace, &q.name).is_none() {
        return Err(ApiError::NotFound(format!(
            "function {} not found in namespace {}",
            q.name, q.namespace
        )));
    }
    let follow = q.follow;
    let lines = state.backend.logs(q).map(|m| {
        let mut line = serde_json::to_vec(&m).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(web::Bytes::from(line))
    });
    let bounded = if follow && !state.write_timeout.is_zero() {
        lines
            .take_until(tokio::time::sleep(state.write_timeout))
            .boxed_local()
    } else {
        lines.boxed_local()
    };
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(bounded))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_like_faas_provider() {
        let r = parse_request(
            &q(&[("name", "f"), ("tail", "-1"), ("follow", "true")]),
            "openfaas-fn",
        )
        .unwrap();
        assert_eq!(
            (r.tail, r.follow, r.namespace.as_str()),
            (None, true, "openfaas-fn")
        );
        let r = parse_request(
            &q(&[
                ("name", "f"),
                ("tail", "5"),
                ("tail", "7"),
                ("follow", "yes"),
                ("since", "2026-05-13T13:56:40Z"),
            ]),
            "d",
        )
        .unwrap();
        assert_eq!((r.tail, r.follow), (Some(7), false));
        assert!(r.since.is_some());
        assert!(matches!(
            parse_request(&q(&[("name", "f"), ("tail", "x")]), "d"),
            Err(ApiError::Unprocessable(_))
        ));
        assert!(matches!(
            parse_request(&q(&[("name", "f"), ("since", "yesterday")]), "d"),
            Err(ApiError::Unprocessable(_))
        ));
        assert!(parse_request(&q(&[]), "d").is_err());
    }
}
