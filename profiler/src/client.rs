//! The profiler's HTTP client for the OpenFaaS API of the provider (or of the stock gateway in front of
//! it: the routes are the same, the gateway adds basic auth). One pooled hyper client, so warm calls are
//! timed on a kept-alive connection and a measurement does not include a TCP handshake.
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::ProfilerError;
use contract::types::{FunctionDeployment, FunctionStatus, ScaleServiceRequest};

/// A connection to one provider or gateway.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://host:port`, no trailing slash.
    base: String,
    auth: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Per-request limit.
    pub timeout: Duration,
}

/// A response, read whole, with the time from sending to the last body byte.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            .trim()
            .to_owned()
    }
}

impl Api {
    /// `url` is `http://host:port` (https is not supported: the provider and gateway are plain HTTP on
    /// their network); `auth` is `user:password` for basic auth.
    pub fn new(url: &str, auth: Option<&str>, timeout: Duration) -> Result<Api, ProfilerError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let uri: hyper::Uri = base
            .parse()
            .map_err(|e| ProfilerError::Input(format!("URL {url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ProfilerError::Input(format!(
                "URL {url:?} must be http://HOST:PORT"
            )));
        }
        let auth = match auth {
            None => None,
            Some(a) if a.contains(':') => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(a)
            )),
            Some(_) => {
                return Err(ProfilerError::Input(
                    "basic auth must be USER:PASSWORD".into(),
                ));
            }
        };
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Ok(Api {
            base,
            auth,
            client,
            timeout,
        })
    }

    /// One request.
    pub async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, ProfilerError> {
        let mut b = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            b = b.header(hyper::header::AUTHORIZATION, a);
        }
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let req = b
            .body(Full::new(body))
            .map_err(|e| ProfilerError::Input(format!("request {method} {path}: {e}")))?;
        let what = || format!("{method} {}{path}", self.base);
        let start = Instant::now();
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ProfilerError::Http(format!("{}: {e}", what())))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ProfilerError::Http(format!("{}: reading the body: {e}", what())))?
                .to_bytes();
            Ok::<_, ProfilerError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| {
                ProfilerError::Http(format!("{}: no answer in {:?}", what(), self.timeout))
            })??;
        Ok(Reply {
            status,
            body,
            elapsed: start.elapsed(),
        })
    }

    fn ns_query(namespace: Option<&str>) -> String {
        namespace.map_or_else(String::new, |n| format!("?namespace={n}"))
    }

    fn expect_ok(reply: Reply, what: &str) -> Result<Reply, ProfilerError> {
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(ProfilerError::Api {
                what: what.to_owned(),
                status: reply.status,
                message: reply.text(),
            })
        }
    }

    /// `GET /system/function/<name>`; `Ok(None)` on 404.
    pub async fn function(
        &self,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<Option<FunctionStatus>, ProfilerError> {
        let path = format!("/system/function/{name}{}", Self::ns_query(namespace));
        let r = self
            .send(hyper::Method::GET, &path, &[], Bytes::new())
            .await?;
        if r.status == 404 {
            return Ok(None);
        }
        let r = Self::expect_ok(r, &format!("reading function {name}"))?;
        serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| ProfilerError::Http(format!("function {name}: not a FunctionStatus: {e}")))
    }

    /// `POST` (new) or `PUT` (update) `/system/functions`.
    pub async fn deploy(&self, d: &FunctionDeployment, update: bool) -> Result<(), ProfilerError> {
        let body = serde_json::to_vec(d)
            .map_err(|e| ProfilerError::Input(format!("deployment of {}: {e}", d.service)))?;
        let method = if update {
            hyper::Method::PUT
        } else {
            hyper::Method::POST
        };
        let r = self
            .send(
                method,
                "/system/functions",
                &[("content-type", "application/json".into())],
                Bytes::from(body),
            )
            .await?;
        Self::expect_ok(r, &format!("deploying {}", d.service)).map(|_| ())
    }

    /// `DELETE /system/functions`.
    pub async fn delete(&self, name: &str, namespace: Option<&str>) -> Result<(), ProfilerError> {
        let mut body = serde_json::json!({ "functionName": name });
        if let Some(ns) = namespace {
            body["namespace"] = ns.into();
        }
        let r = self
            .send(
                hyper::Method::DELETE,
                "/system/functions",
                &[("content-type", "application/json".into())],
                Bytes::from(body.to_string()),
            )
            .await?;
        if r.status == 404 {
            return Ok(());
        }
        Self::expect_ok(r, &format!("deleting {name}")).map(|_| ())
    }

    /// `POST /system/scale-function/<name>`.
    pub async fn scale(
        &self,
        name: &str,
        namespace: Option<&str>,
        replicas: u64,
    ) -> Result<(), ProfilerError> {
        let req = ScaleServiceRequest {
            service_name: name.to_owned(),
            replicas,
            namespace: namespace.unwrap_or_default().to_owned(),
        };
        let body = serde_json::to_vec(&req)
            .map_err(|e| ProfilerError::Input(format!("scale request: {e}")))?;
        let path = format!("/system/scale-function/{name}{}", Self::ns_query(namespace));
        let r = self
            .send(
                hyper::Method::POST,
                &path,
                &[("content-type", "application/json".into())],
                Bytes::from(body),
            )
            .await?;
        Self::expect_ok(r, &format!("scaling {name} to {replicas}")).map(|_| ())
    }

    /// `POST /function/<name>[.<namespace>]`, timed; a non-2xx answer is an error.
    pub async fn invoke(
        &self,
        name: &str,
        namespace: Option<&str>,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, ProfilerError> {
        let path = match namespace {
            Some(ns) => format!("/function/{name}.{ns}"),
            None => format!("/function/{name}"),
        };
        let r = self.send(hyper::Method::POST, &path, headers, body).await?;
        Self::expect_ok(r, &format!("invoking {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_auth_are_readable_errors() {
        let t = Duration::from_secs(1);
        for bad in ["", "localhost:8080", "https://x:1", "ftp://x"] {
            let e = Api::new(bad, None, t).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|m| m.contains("URL")),
                "{bad}: {e:?}"
            );
        }
        assert!(Api::new("http://127.0.0.1:8080", Some("nocolon"), t).is_err());
        assert!(Api::new("http://127.0.0.1:8080/", Some("admin:pw"), t).is_ok());
    }
}
