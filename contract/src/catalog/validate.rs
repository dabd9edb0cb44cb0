//! Name and label validation, in the Kubernetes forms that faas-netes enforces (contract §5.1).

use super::CatalogError;
use crate::types::{FunctionDeployment, LABEL_SCALE_MIN};

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters: function and namespace names.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(inner)
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
}

/// DNS-1123 subdomain (dot-separated labels, at most 253 characters): secret names. Rules out `/`, `.`
/// and `..`, so a name is always a plain file name.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns1123_label)
}

/// Validates a deployment body before it reaches the catalog; messages follow faas-netes'
/// "validation failed: …" wording so users see the same text.
pub fn deployment(d: &FunctionDeployment, max_replicas: u32) -> Result<(), CatalogError> {
    if d.service.is_empty() {
        return Err(CatalogError::Invalid(
            "validation failed: service is required".into(),
        ));
    }
    if !is_dns1123_label(&d.service) {
        return Err(CatalogError::Invalid(format!(
            "validation failed: service: ({}) must be a valid DNS entry for service name",
            d.service
        )));
    }
    if d.image.trim().is_empty() {
        return Err(CatalogError::Invalid(
            "validation failed: image is required".into(),
        ));
    }
    if !d.namespace.is_empty() && !is_dns1123_label(&d.namespace) {
        return Err(CatalogError::Invalid(format!(
            "validation failed: namespace {:?} is not a valid DNS-1123 label",
            d.namespace
        )));
    }
    for s in &d.secrets {
        if !is_dns1123_subdomain(s) {
            return Err(CatalogError::Invalid(format!(
                "validation failed: secret name {s:?} is invalid"
            )));
        }
    }
    scale_min(d, max_replicas)?;
    if let Some(f) = label(d, "com.openfaas.scale.factor").and_then(|v| v.parse::<i64>().ok())
        && !(1..=100).contains(&f)
    {
        // The stock gateway refuses every invocation of such a function (404), so refuse it up front.
        return Err(CatalogError::Invalid(
            "validation failed: com.openfaas.scale.factor must be between 1 and 100".into(),
        ));
    }
    Ok(())
}

fn label<'a>(d: &'a FunctionDeployment, key: &str) -> Option<&'a str> {
    d.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The `com.openfaas.scale.min` label: `Some(n)` for an integer n > 0 (0 is ignored, as in faas-netes).
pub fn scale_min(d: &FunctionDeployment, max_replicas: u32) -> Result<Option<u32>, CatalogError> {
    let Some(raw) = label(d, LABEL_SCALE_MIN) else {
        return Ok(None);
    };
    let n: u64 = raw.trim().parse().map_err(|_| {
        CatalogError::Invalid(format!(
            "validation failed: label {LABEL_SCALE_MIN} must be a non-negative integer, got {raw:?}"
        ))
    })?;
    if n > u64::from(max_replicas) {
        return Err(CatalogError::Invalid(format!(
            "validation failed: label {LABEL_SCALE_MIN}={n} exceeds the maximum of {max_replicas} replicas"
        )));
    }
    // Bounded by max_replicas (a u32) just above.
    Ok(u32::try_from(n).ok().filter(|n| *n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        for ok in ["a", "env-test", "a1", "0x"] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_dns1123_subdomain("secret-string"));
        assert!(is_dns1123_subdomain("a.b"));
        for bad in [".", "..", "a/b", "a..b", ".a", ""] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn deployment_rules() {
        let mut d = FunctionDeployment {
            service: "f".into(),
            image: "img".into(),
            ..Default::default()
        };
        assert!(deployment(&d, 10).is_ok());
        d.labels = Some([(LABEL_SCALE_MIN.to_owned(), "11".to_owned())].into());
        assert!(deployment(&d, 10).is_err());
        d.labels = Some([(LABEL_SCALE_MIN.to_owned(), "2".to_owned())].into());
        assert_eq!(scale_min(&d, 10).ok().flatten(), Some(2));
        d.labels = Some([(LABEL_SCALE_MIN.to_owned(), "0".to_owned())].into());
        assert_eq!(scale_min(&d, 10).ok().flatten(), None);
        d.image.clear();
        assert!(deployment(&d, 10).is_err());
    }
}
