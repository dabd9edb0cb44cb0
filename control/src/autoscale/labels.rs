//! The OpenFaaS scaling labels the standalone autoscaler reads, and which functions it manages.
//!
//! | label | meaning | default |
//! |---|---|---|
//! | `com.openfaas.scale.min` | replicas while the function is in use | 1 (0 counts as unset, as in faas-netes) |
//! | `com.openfaas.scale.max` | the most replicas | [`DEFAULT_MAX`], capped by the provider's max replicas |
//! | `com.openfaas.scale.type` | `rps` (requests per second per replica) or `capacity` (requests in flight per replica) | `rps` |
//! | `com.openfaas.scale.target` | the load one replica is sized for, in the type's unit | [`DEFAULT_TARGET`] |
//! | `com.openfaas.scale.target-proportion` | the share of the target a replica is planned to (headroom) | [`DEFAULT_PROPORTION`] |
//! | `com.openfaas.scale.zero` | `true`: scale to 0 after `zero-duration` with no request | `false` |
//! | `com.openfaas.scale.zero-duration` | a Go duration (`30s`, `15m`) | [`DEFAULT_ZERO_DURATION_S`] |
//!
//! **Managed** ([`managed`]): a function carrying `scale.type`, `scale.target` or `scale.zero`, the labels
//! only an autoscaler reads. `scale.min` and `scale.max` alone keep OpenFaaS CE's meaning: the function
//! keeps the replicas it was deployed or scaled to, and the gateway's `/system/alert` path (AlertManager)
//! scales it between them, without a second autoscaler racing it.
use std::collections::BTreeMap;

/// Replicas while in use.
pub const LABEL_MIN: &str = "com.openfaas.scale.min";
/// The most replicas.
pub const LABEL_MAX: &str = "com.openfaas.scale.max";
/// `rps` or `capacity`.
pub const LABEL_TYPE: &str = "com.openfaas.scale.type";
/// Load per replica.
pub const LABEL_TARGET: &str = "com.openfaas.scale.target";
/// Share of the target a replica is planned to.
pub const LABEL_PROPORTION: &str = "com.openfaas.scale.target-proportion";
/// `true`: scale to zero when idle.
pub const LABEL_ZERO: &str = "com.openfaas.scale.zero";
/// How long idle before scaling to zero.
pub const LABEL_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";

/// `scale.max` when the label is absent (OpenFaaS' default maximum), before the provider's cap.
pub const DEFAULT_MAX: u32 = 20;
/// `scale.target` when absent: 5 per replica, the 5 req/s of OpenFaaS CE's AlertManager rule.
pub const DEFAULT_TARGET: f64 = 5.0;
/// `scale.target-proportion` when absent (as OpenFaaS Pro): 5 req/s at target 5 wants 2 replicas.
pub const DEFAULT_PROPORTION: f64 = 0.9;
/// `scale.zero-duration` when absent: 15 minutes, as OpenFaaS documents.
pub const DEFAULT_ZERO_DURATION_S: f64 = 15.0 * 60.0;

/// What a replica is sized by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Requests started per second, per replica.
    Rps,
    /// Requests in flight, per replica.
    Capacity,
}

/// A managed function's scaling rule, from its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub min: u32,
    pub max: u32,
    pub kind: Kind,
    /// Load per replica, in `kind`'s unit (> 0).
    pub target: f64,
    /// In (0, 1].
    pub proportion: f64,
    /// Idle seconds before scaling to zero; `None` = never.
    pub zero_after_s: Option<f64>,
}

/// A label the autoscaler cannot use; the function is then left unmanaged (and the reason logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label {label}={value:?}: {why}")]
    Bad {
        label: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("labels {LABEL_MIN}={min} and {LABEL_MAX}={max}: the minimum is above the maximum")]
    MinAboveMax { min: u32, max: u32 },
}

/// Whether the standalone autoscaler manages a function with these labels (see the module comment).
pub fn managed(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|l| {
        [LABEL_TYPE, LABEL_TARGET, LABEL_ZERO]
            .iter()
            .any(|k| l.contains_key(*k))
    })
}

/// The rule of a function with these labels; `max_replicas` is the provider's cap.
pub fn parse(
    labels: Option<&BTreeMap<String, String>>,
    max_replicas: u32,
) -> Result<Spec, LabelError> {
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(|v| v.trim());
    let bad = |label: &'static str, value: &str, why: &'static str| LabelError::Bad {
        label,
        value: value.to_owned(),
        why,
    };
    let int = |label: &'static str| -> Result<Option<u32>, LabelError> {
        get(label)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| bad(label, v, "not a non-negative integer"))
            })
            .transpose()
    };
    let min = int(LABEL_MIN)?.filter(|n| *n > 0).unwrap_or(1);
    let max = match int(LABEL_MAX)? {
        Some(0) => return Err(bad(LABEL_MAX, "0", "must be at least 1")),
        Some(n) => n,
        None => DEFAULT_MAX,
    }
    .min(max_replicas.max(1));
    if min > max {
        return Err(LabelError::MinAboveMax { min, max });
    }
    let kind = match get(LABEL_TYPE) {
        None => Kind::Rps,
        Some(v) if v.eq_ignore_ascii_case("rps") => Kind::Rps,
        Some(v) if v.eq_ignore_ascii_case("capacity") => Kind::Capacity,
        Some(v) => return Err(bad(LABEL_TYPE, v, "supported types are rps and capacity")),
    };
    let positive = |label: &'static str, default: f64| -> Result<f64, LabelError> {
        match get(label) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| bad(label, v, "not a positive number")),
        }
    };
    let target = positive(LABEL_TARGET, DEFAULT_TARGET)?;
    let proportion = positive(LABEL_PROPORTION, DEFAULT_PROPORTION)?;
    if proportion > 1.0 {
        return Err(bad(
            LABEL_PROPORTION,
            get(LABEL_PROPORTION).unwrap_or_default(),
            "must be in (0, 1]",
        ));
    }
    let zero = match get(LABEL_ZERO) {
        None => false,
        Some(v) => {
            contract::config::parse_go_bool(v).ok_or_else(|| bad(LABEL_ZERO, v, "not a boolean"))?
        }
    };
    let zero_after_s = if zero {
        Some(match get(LABEL_ZERO_DURATION) {
            None => DEFAULT_ZERO_DURATION_S,
            Some(v) => contract::config::parse_go_duration(v)
                .ok()
                .map(|d| d.as_secs_f64())
                .filter(|s| *s > 0.0)
                .ok_or_else(|| bad(LABEL_ZERO_DURATION, v, "not a positive Go duration"))?,
        })
    } else {
        None
    };
    Ok(Spec {
        min,
        max,
        kind,
        target,
        proportion,
        zero_after_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn which_functions_are_managed() {
        assert!(!managed(None));
        for (pairs, want) in [
            (&[][..], false),
            (&[(LABEL_MIN, "2"), (LABEL_MAX, "4")][..], false),
            (&[(LABEL_TYPE, "rps")][..], true),
            (&[(LABEL_TARGET, "10")][..], true),
            (&[(LABEL_ZERO, "true")][..], true),
            (&[(LABEL_MAX, "2"), (LABEL_ZERO, "false")][..], true),
        ] {
            assert_eq!(managed(Some(&labels(pairs))), want, "{pairs:?}");
        }
    }

    #[test]
    fn defaults() {
        let s = parse(Some(&labels(&[(LABEL_TYPE, "rps")])), 100);
        assert_eq!(
            s,
            Ok(Spec {
                min: 1,
                max: DEFAULT_MAX,
                kind: Kind::Rps,
                target: 5.0,
                proportion: 0.9,
                zero_after_s: None,
            })
        );
        // The provider's cap wins over the default and over the label.
        assert_eq!(parse(None, 5).map(|s| s.max), Ok(5));
        assert_eq!(
            parse(Some(&labels(&[(LABEL_MAX, "50")])), 10).map(|s| s.max),
            Ok(10)
        );
        // scale.min=0 is unset, as in faas-netes.
        assert_eq!(
            parse(Some(&labels(&[(LABEL_MIN, "0")])), 10).map(|s| s.min),
            Ok(1)
        );
    }

    #[test]
    fn labels_parse() {
        let s = parse(
            Some(&labels(&[
                (LABEL_MIN, "2"),
                (LABEL_MAX, "6"),
                (LABEL_TYPE, "Capacity"),
                (LABEL_TARGET, "2.5"),
                (LABEL_PROPORTION, "1"),
                (LABEL_ZERO, "true"),
                (LABEL_ZERO_DURATION, "1m30s"),
            ])),
            10,
        );
        assert_eq!(
            s,
            Ok(Spec {
                min: 2,
                max: 6,
                kind: Kind::Capacity,
                target: 2.5,
                proportion: 1.0,
                zero_after_s: Some(90.0),
            })
        );
        let z = parse(Some(&labels(&[(LABEL_ZERO, "true")])), 10);
        assert_eq!(z.map(|s| s.zero_after_s), Ok(Some(900.0)));
        let z = parse(
            Some(&labels(&[
                (LABEL_ZERO, "false"),
                (LABEL_ZERO_DURATION, "5s"),
            ])),
            10,
        );
        assert_eq!(z.map(|s| s.zero_after_s), Ok(None));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_label() {
        for (pairs, label) in [
            (&[(LABEL_MIN, "-1")][..], LABEL_MIN),
            (&[(LABEL_MAX, "two")][..], LABEL_MAX),
            (&[(LABEL_MAX, "0")][..], LABEL_MAX),
            (&[(LABEL_TYPE, "cpu")][..], LABEL_TYPE),
            (&[(LABEL_TARGET, "0")][..], LABEL_TARGET),
            (&[(LABEL_TARGET, "NaN")][..], LABEL_TARGET),
            (&[(LABEL_PROPORTION, "1.5")][..], LABEL_PROPORTION),
            (&[(LABEL_ZERO, "yes")][..], LABEL_ZERO),
            (
                &[(LABEL_ZERO, "true"), (LABEL_ZERO_DURATION, "soon")][..],
                LABEL_ZERO_DURATION,
            ),
            (
                &[(LABEL_ZERO, "true"), (LABEL_ZERO_DURATION, "0s")][..],
                LABEL_ZERO_DURATION,
            ),
        ] {
            let e = parse(Some(&labels(pairs)), 10).err();
            assert!(
                matches!(&e, Some(LabelError::Bad { label: l, .. }) if *l == label),
                "{pairs:?}: {e:?}"
            );
            assert!(e.is_some_and(|e| e.to_string().contains(label)));
        }
        assert_eq!(
            parse(Some(&labels(&[(LABEL_MIN, "3"), (LABEL_MAX, "2")])), 10),
            Err(LabelError::MinAboveMax { min: 3, max: 2 })
        );
    }
}
