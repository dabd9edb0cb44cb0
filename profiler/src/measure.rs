//! The measurements, against a running provider's API: a private copy of the function, placed on each
//! grid hardware with the `com.smiless.hardware` annotation; cold starts (scale to zero, invoke, minus a
//! warm call right after: the paper's definition); warm calls over the batch grid.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use optimizer::Hardware;

use super::client::Api;
use super::placement::ANN_HARDWARE;
use super::{Config, ProfilerError, Progress};
use contract::types::{FunctionDeployment, FunctionStatus};

/// Annotations of the original that must not follow it onto the copy: its DAG membership (the copy is
/// measured alone, not planned) and its placement.
const DROPPED_ANNOTATIONS: [&str; 4] = [
    optimizer::dag::ANN_DAG,
    optimizer::dag::ANN_NEXT,
    optimizer::dag::ANN_SLA,
    ANN_HARDWARE,
];

/// The function being measured: a copy of the user's deployment under another name.
#[derive(Debug)]
pub struct Target<'a> {
    pub api: &'a Api,
    pub name: String,
    pub namespace: Option<String>,
    pub deployment: FunctionDeployment,
}

/// The copy's deployment: the original's process, environment and resources, `annotations` adjusted.
pub fn copy_of(original: &FunctionStatus, copy_name: &str) -> FunctionDeployment {
    let mut annotations = original.annotations.clone();
    for k in DROPPED_ANNOTATIONS {
        annotations.remove(k);
    }
    FunctionDeployment {
        service: copy_name.to_owned(),
        image: original.image.clone(),
        namespace: original.namespace.clone(),
        env_process: original.env_process.clone(),
        env_vars: original.env_vars.clone(),
        constraints: original.constraints.clone(),
        secrets: original.secrets.clone(),
        labels: Some(original.labels.clone()),
        annotations: Some(annotations),
        limits: original.limits.clone(),
        requests: original.requests.clone(),
        read_only_root_filesystem: original.read_only_root_filesystem,
    }
}

impl Target<'_> {
    fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Deploys (or re-deploys) the copy with `hw` and, when given, an address-space limit.
    pub async fn place(
        &mut self,
        hw: Hardware,
        wrap: Option<&str>,
        first: bool,
    ) -> Result<(), ProfilerError> {
        let mut d = self.deployment.clone();
        d.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_HARDWARE.to_owned(), hw.to_string());
        if let Some(w) = wrap {
            d.env_process = format!("{w} {}", d.env_process);
        }
        if first {
            // A copy left over by an interrupted run is replaced, not reused.
            self.api.delete(&self.name, self.ns()).await?;
        }
        match self.api.deploy(&d, !first).await {
            Err(ProfilerError::Api {
                status: 400,
                message,
                ..
            }) => Err(ProfilerError::Unplaceable { hw, message }),
            other => other,
        }
    }

    /// Scales the copy to zero and waits until no replica is left.
    pub async fn to_zero(&self, limit: Duration) -> Result<(), ProfilerError> {
        self.api.scale(&self.name, self.ns(), 0).await?;
        let start = Instant::now();
        loop {
            let s = self
                .api
                .function(&self.name, self.ns())
                .await?
                .ok_or_else(|| {
                    ProfilerError::Http(format!("{} disappeared while profiling", self.name))
                })?;
            if s.replicas == 0 && s.available_replicas == 0 {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(ProfilerError::Http(format!(
                    "{} still has {} replicas {limit:?} after scaling to zero",
                    self.name, s.available_replicas
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One call of `batch` requests; its wall time.
    pub async fn call(&self, batch: u32, input: &Bytes) -> Result<Duration, ProfilerError> {
        let body = batch_body(input, batch);
        let headers = [
            (function_kit::emulator::BATCH_HEADER, batch.to_string()),
            ("content-type", "application/json".to_owned()),
        ];
        let r = self
            .api
            .invoke(&self.name, self.ns(), &headers, body)
            .await?;
        Ok(r.elapsed)
    }

    /// Cold starts: `repeat` times scale to zero, invoke (cold), invoke again (warm); the samples are
    /// cold − warm, in seconds.
    pub async fn init_samples(
        &self,
        cfg: &Config,
        progress: &mut dyn Progress,
    ) -> Result<Vec<f64>, ProfilerError> {
        let mut out = Vec::with_capacity(cfg.repeat);
        for _ in 0..cfg.repeat {
            self.to_zero(cfg.ready_timeout).await?;
            let cold = self.call(1, &cfg.input).await?;
            let warm = self.call(1, &cfg.input).await?;
            out.push((cold.saturating_sub(warm)).as_secs_f64());
            progress.step();
        }
        Ok(out)
    }

    /// Starts a fresh replica on the placed spec and warms it up (two calls, not measured).
    pub async fn fresh_warm(&self, cfg: &Config) -> Result<(), ProfilerError> {
        self.to_zero(cfg.ready_timeout).await?;
        self.call(1, &cfg.input).await?;
        self.call(1, &cfg.input).await?;
        Ok(())
    }

    /// `repeat` warm calls of `batch`; their times in seconds.
    pub async fn warm_samples(
        &self,
        cfg: &Config,
        batch: u32,
        progress: &mut dyn Progress,
    ) -> Result<Vec<f64>, ProfilerError> {
        let mut out = Vec::with_capacity(cfg.repeat);
        for _ in 0..cfg.repeat {
            out.push(self.call(batch, &cfg.input).await?.as_secs_f64());
            progress.step();
        }
        Ok(out)
    }

    /// Removes the copy (best effort: the profile is already measured).
    pub async fn remove(&self) {
        if let Err(e) = self.api.delete(&self.name, self.ns()).await {
            tracing::warn!("removing the profiling copy {}: {e}", self.name);
        }
    }
}

/// The body of a call of `batch` requests: a JSON array of `batch` copies of the input (as a string when
/// it is not JSON), the natural form of a batch for a model server.
pub fn batch_body(input: &Bytes, batch: u32) -> Bytes {
    let item = serde_json::from_slice::<serde_json::Value>(input)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(input).into_owned()));
    let items = vec![item; usize::try_from(batch).unwrap_or(1)];
    Bytes::from(serde_json::Value::Array(items).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_leaves_the_dag_and_keeps_the_process() {
        let original: FunctionStatus = serde_json::from_value(serde_json::json!({
            "name": "asr", "image": "img", "namespace": "openfaas-fn",
            "envProcess": "smiless-fn --profile speechrecognition",
            "envVars": {"SMILESS_TIME_SCALE": "0.1"},
            "labels": {"l": "v"},
            "annotations": {"com.smiless.dag": "voice", "com.smiless.next": "tts",
                            "com.smiless.sla": "2s", "com.smiless.profile": "speechrecognition",
                            "com.smiless.hardware": "cpu:8"},
            "replicas": 1, "availableReplicas": 1, "createdAt": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let d = copy_of(&original, "asr-profile");
        assert_eq!(d.service, "asr-profile");
        assert_eq!(d.env_process, original.env_process);
        assert_eq!(d.env_vars["SMILESS_TIME_SCALE"], "0.1");
        let ann = d.annotations.unwrap();
        assert_eq!(ann.len(), 1, "{ann:?}");
        assert_eq!(ann["com.smiless.profile"], "speechrecognition");
    }

    #[test]
    fn a_batch_is_an_array_of_the_input() {
        let b = batch_body(&Bytes::from_static(b"{\"x\":1}"), 3);
        assert_eq!(&b[..], br#"[{"x":1},{"x":1},{"x":1}]"#);
        let b = batch_body(&Bytes::from_static(b"audio"), 2);
        assert_eq!(&b[..], br#"["audio","audio"]"#);
    }
}
