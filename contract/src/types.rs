//! Wire types of the OpenFaaS provider contract (reference: openfaas-contract.md §2).
//!
//! The Go clients (gateway, faas-cli, certifier) decode with `encoding/json`, so the Rust side mirrors
//! its conventions: camelCase keys, unknown keys ignored, `null` accepted wherever Go has a pointer or a
//! map, `omitempty` fields left out when empty, and times as RFC 3339 with optional nanoseconds.
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string map as Go's `map[string]string`: `null` decodes as "absent".
pub type StringMap = BTreeMap<String, String>;

/// Label the provider adds to every function (the certifier checks it).
pub const LABEL_FAAS_FUNCTION: &str = "faas_function";
/// Minimum / initial replicas (read at deploy and update).
pub const LABEL_SCALE_MIN: &str = "com.openfaas.scale.min";

/// Decodes `null` or an absent key as `T::default()`; Go leaves the zero value in both cases.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `FunctionResources` (§2.2). Every field is optional; Go omits empty strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionResources {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub memory: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub cpu: String,
    #[serde(
        rename = "nvidia.com/gpu",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub nvidia_gpu: String,
    #[serde(
        rename = "amd.com/gpu",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub amd_gpu: String,
    #[serde(
        rename = "intel.com/gpu",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub intel_gpu: String,
}

impl FunctionResources {
    /// faas-netes omits a resources block when nothing in it is set; the certifier relies on that.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
            && self.cpu.is_empty()
            && self.nvidia_gpu.is_empty()
            && self.amd_gpu.is_empty()
            && self.intel_gpu.is_empty()
    }
}

fn resources_unset(r: &Option<FunctionResources>) -> bool {
    r.as_ref().is_none_or(FunctionResources::is_empty)
}

/// `FunctionDeployment` (§2.1): the body of `POST`/`PUT /system/functions`. Stored verbatim so that
/// status can echo exactly what was deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FunctionDeployment {
    #[serde(deserialize_with = "null_as_default")]
    pub service: String,
    #[serde(deserialize_with = "null_as_default")]
    pub image: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub namespace: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub env_process: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub env_vars: StringMap,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub constraints: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub secrets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    #[serde(
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub read_only_root_filesystem: bool,
}

/// `FunctionUsage` (§2.3); only a Pro provider fills it, kept for shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FunctionUsage {
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub cpu: f64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub total_memory_bytes: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// `FunctionStatus` (§2.3): one element of `GET /system/functions`, the body of `GET /system/function/{name}`.
///
/// `namespace`, `labels` and `annotations` are always emitted (the gateway and the certifier dereference
/// them); `replicas` and `availableReplicas` are always emitted too (0 decodes the same as absent in Go).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    pub name: String,
    pub image: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub env_process: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub labels: StringMap,
    #[serde(default)]
    pub annotations: StringMap,
    #[serde(default, skip_serializing_if = "resources_unset")]
    pub limits: Option<FunctionResources>,
    #[serde(default, skip_serializing_if = "resources_unset")]
    pub requests: Option<FunctionResources>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_filesystem: bool,
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub invocation_count: f64,
    #[serde(default)]
    pub replicas: u64,
    #[serde(default)]
    pub available_replicas: u64,
    #[serde(with = "rfc3339")]
    pub created_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
}

/// `ScaleServiceRequest` (§2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScaleServiceRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub service_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub replicas: u64,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub namespace: String,
}

/// `DeleteFunctionRequest` (§2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeleteFunctionRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub function_name: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub namespace: String,
}

/// `VersionInfo` (§2.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub commit_message: String,
    pub sha: String,
    pub release: String,
}

/// `ProviderInfo` (§2.6): the body of `GET /system/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderInfo {
    pub provider: String,
    pub version: Option<VersionInfo>,
    pub orchestration: String,
}

/// `Secret` (§2.7). `rawValue` is standard base64 with padding (Go's `[]byte`) and wins over `value`.
/// Its `Debug` shows the value's length, never the value (a debug log line must not leak it).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Secret {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub namespace: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub value: String,
    #[serde(skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub raw_value: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field(
                "value",
                &format_args!("<{} bytes redacted>", self.bytes().len()),
            )
            .finish()
    }
}

impl Secret {
    /// The bytes to store: `rawValue` when non-empty, else `value`.
    pub fn bytes(&self) -> &[u8] {
        if self.raw_value.is_empty() {
            self.value.as_bytes()
        } else {
            &self.raw_value
        }
    }
}

/// `FunctionNamespace` (§2.7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionNamespace {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: StringMap,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: StringMap,
}

/// One ndjson line of `GET /system/logs` (§2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    pub name: String,
    pub namespace: String,
    pub instance: String,
    #[serde(with = "rfc3339")]
    pub timestamp: jiff::Timestamp,
    pub text: String,
}

/// Go `time.Time` JSON: RFC 3339 with optional, trailing-zero-trimmed fractional seconds, in UTC.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<jiff::Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// Go `[]byte` JSON: standard base64 with padding; `null` is empty.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::de::Error;

    use super::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => STANDARD.decode(s.as_bytes()).map_err(D::Error::custom),
        }
    }
}

/// Serialises to a JSON string; the wire types contain only strings, numbers and maps, so this cannot fail.
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_debug_never_shows_its_value() {
        let s = Secret {
            name: "db".into(),
            value: "hunter2".into(),
            ..Secret::default()
        };
        let raw = Secret {
            raw_value: b"s3cr3t-bytes".to_vec(),
            ..s.clone()
        };
        for (secret, len) in [(&s, 7), (&raw, 12)] {
            let text = format!("{secret:?}");
            assert!(
                !text.contains("hunter2") && !text.contains("s3cr3t"),
                "{text}"
            );
            assert!(text.contains(&format!("<{len} bytes redacted>")), "{text}");
            assert!(text.contains("db"), "{text}");
        }
    }

    #[test]
    fn deployment_accepts_null_maps_and_ignores_unknown_keys() {
        let d: FunctionDeployment = serde_json::from_str(
            r#"{"service":"env","image":"alpine","labels":null,"annotations":null,"network":"func_functions","envVars":null,"limits":null}"#,
        )
        .unwrap();
        assert_eq!(d.service, "env");
        assert_eq!(d.labels, None);
        assert!(d.env_vars.is_empty());
        assert_eq!(d.limits, None);
    }

    #[test]
    fn status_always_has_namespace_labels_annotations_and_omits_empty() {
        let s = FunctionStatus {
            name: "env".into(),
            image: "alpine".into(),
            namespace: "openfaas-fn".into(),
            env_process: String::new(),
            env_vars: StringMap::new(),
            constraints: vec![],
            secrets: vec![],
            labels: StringMap::new(),
            annotations: StringMap::new(),
            limits: Some(FunctionResources::default()),
            requests: None,
            read_only_root_filesystem: false,
            invocation_count: 0.0,
            replicas: 1,
            available_replicas: 0,
            created_at: "2026-05-13T13:56:39.5Z".parse().unwrap(),
            usage: None,
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o["namespace"], "openfaas-fn");
        assert_eq!(o["labels"], serde_json::json!({}));
        assert_eq!(o["annotations"], serde_json::json!({}));
        assert_eq!(o["createdAt"], "2026-05-13T13:56:39.5Z");
        for k in [
            "envVars",
            "limits",
            "requests",
            "envProcess",
            "constraints",
            "secrets",
            "usage",
        ] {
            assert!(!o.contains_key(k), "{k} must be omitted");
        }
    }

    #[test]
    fn secret_raw_value_is_base64_and_wins() {
        let s: Secret =
            serde_json::from_str(r#"{"name":"a","value":"x","rawValue":"AAEC"}"#).unwrap();
        assert_eq!(s.bytes(), &[0, 1, 2]);
        let s: Secret =
            serde_json::from_str(r#"{"name":"a","value":"x","rawValue":null}"#).unwrap();
        assert_eq!(s.bytes(), b"x");
        assert!(serde_json::from_str::<Secret>(r#"{"name":"a","rawValue":"!!"}"#).is_err());
    }

    #[test]
    fn replicas_reject_negative_and_fractional() {
        assert!(
            serde_json::from_str::<ScaleServiceRequest>(r#"{"serviceName":"a","replicas":-1}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<ScaleServiceRequest>(r#"{"serviceName":"a","replicas":1.5}"#)
                .is_err()
        );
    }
}
