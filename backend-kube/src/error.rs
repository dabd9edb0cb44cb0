//! API-server failures as backend errors: the caller's mistakes (400, 422) stay the caller's, an unreachable
//! or overloaded API server is [`BackendError::Unavailable`] (HTTP 503, retry later), the rest is ours (500).
use contract::backend::BackendError;

/// Maps a kube client error; `what` says which call failed.
pub fn map(what: &str, e: kube::Error) -> BackendError {
    match e {
        kube::Error::Api(s) => {
            let msg = format!(
                "{what}: the Kubernetes API answered {} {}: {}",
                s.code, s.reason, s.message
            );
            match s.code {
                400 | 422 => BackendError::Invalid(msg),
                // 429: throttled; 5xx: the API server (or etcd behind it) is failing or restarting.
                429 | 500..=599 => BackendError::Unavailable(msg),
                _ => BackendError::Failed(msg),
            }
        }
        // Connection refused, TLS or timeouts: the API server cannot be reached.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            BackendError::Unavailable(format!(
                "{what}: the Kubernetes API server is unreachable: {e}"
            ))
        }
        other => BackendError::Failed(format!("{what}: {other}")),
    }
}

/// Whether a kube error is a 404 (an object already gone counts as deleted).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "m".into(),
            reason: "R".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn codes_map_to_clear_classes() {
        assert!(matches!(map("x", api(422)), BackendError::Invalid(_)));
        assert!(matches!(map("x", api(400)), BackendError::Invalid(_)));
        assert!(matches!(map("x", api(503)), BackendError::Unavailable(_)));
        assert!(matches!(map("x", api(429)), BackendError::Unavailable(_)));
        assert!(matches!(map("x", api(403)), BackendError::Failed(_)));
        assert!(matches!(
            map("x", kube::Error::Service("connection refused".into())),
            BackendError::Unavailable(_)
        ));
        assert!(is_not_found(&api(404)));
        assert!(!is_not_found(&api(409)));
    }
}
