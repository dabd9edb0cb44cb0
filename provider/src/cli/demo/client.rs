//! The demo's HTTP client of the provider: deploy, invoke a DAG, read `/system/plan`.
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The outcome of one DAG request as the client saw it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub ok: bool,
    pub latency_s: f64,
}

#[derive(Clone)]
pub struct Client {
    /// The provider (`/system/*`).
    base: String,
    /// Where DAG requests go (the provider, or a gateway in front of it).
    invoke: String,
    /// `Basic …` header value.
    auth: Option<String>,
    http: Hyper<HttpConnector, Full<Bytes>>,
}

fn url(u: &str) -> Result<String> {
    let u = u.trim().trim_end_matches('/');
    if !u.starts_with("http://") {
        bail!("{u:?} is not an http:// URL");
    }
    Ok(u.to_owned())
}

impl Client {
    /// `provider`: the provider's URL; `invoke`: where DAG requests go (default: the provider);
    /// `auth`: `user:password` for basic auth.
    pub fn new(provider: &str, invoke: Option<&str>, auth: Option<&str>) -> Result<Client> {
        use base64::Engine as _;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let base = url(provider)?;
        Ok(Client {
            invoke: invoke.map_or_else(|| Ok(base.clone()), url)?,
            base,
            auth: auth.map(|a| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(a)
                )
            }),
            http: Hyper::builder(TokioExecutor::new()).build(conn),
        })
    }

    async fn send(&self, method: hyper::Method, path: &str, body: Bytes) -> Result<(u16, Bytes)> {
        self.send_to(&self.base, method, path, body).await
    }

    async fn send_to(
        &self,
        base: &str,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes)> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("content-type", "application/json");
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        let req = b.body(Full::new(body)).context("building a request")?;
        let resp = tokio::time::timeout(Duration::from_secs(120), self.http.request(req))
            .await
            .context("the provider did not answer within 120 s")?
            .with_context(|| format!("calling {base}{path}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the provider's answer")?
            .to_bytes();
        Ok((status, body))
    }

    pub async fn deploy(&self, d: &Value) -> Result<()> {
        let (s, b) = self
            .send(
                hyper::Method::POST,
                "/system/functions",
                Bytes::from(serde_json::to_vec(d)?),
            )
            .await?;
        if !(200..300).contains(&s) {
            bail!(
                "deploying {}: HTTP {s}: {}",
                d["service"],
                String::from_utf8_lossy(&b)
            );
        }
        Ok(())
    }

    pub async fn plan(&self) -> Result<Value> {
        let (s, b) = self
            .send(hyper::Method::GET, "/system/plan", Bytes::new())
            .await?;
        if s != 200 {
            bail!("GET /system/plan: HTTP {s}");
        }
        serde_json::from_slice(&b).context("parsing /system/plan")
    }

    pub async fn invoke(&self, dag: &str) -> Outcome {
        let t = Instant::now();
        let r = self
            .send_to(
                &self.invoke,
                hyper::Method::POST,
                &format!("/function/{dag}"),
                Bytes::from_static(b"{\"demo\":true}"),
            )
            .await;
        Outcome {
            ok: matches!(r, Ok((200..=299, _))),
            latency_s: t.elapsed().as_secs_f64(),
        }
    }
}
