//! The memory knee: the smallest memory limit under which the function still serves at its unlimited
//! speed (within [`KNEE_SLACK`]), from a sweep of limits from large to small.
//!
//! **How a limit is applied.** On the local backend a replica is a process, so the limit is an address-
//! space rlimit (`RLIMIT_AS`), set by running the function under util-linux `prlimit --as=BYTES` (the copy's
//! `fprocess` is wrapped; the watchdog itself is not limited). cgroup v2 `memory.max` would limit resident
//! memory instead, but needs a writable cgroup v2 tree, which a provider in a container usually lacks.
//! On other backends the copy gets `limits.memory`, which a Kubernetes backend turns into the container's
//! limit. What an address-space limit measures: the virtual memory a process may map, which is larger
//! than what it touches (thread stacks, allocator arenas); the knee is an upper bound on the resident need.
use optimizer::Hardware;
use serde::Serialize;

use super::measure::Target;
use super::{Config, Progress, stats};

/// A limit still counts as "full speed" when the median call is at most this much slower than unlimited
/// (generous: call times of a few tens of milliseconds vary by 10–20 % on a busy 2-core host, and the
/// limits of a sweep are far apart, so a real knee shows as a failure or a large slowdown).
pub const KNEE_SLACK: f64 = 0.25;

/// One limit of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPoint {
    pub limit_mib: u64,
    /// Every call succeeded.
    pub ok: bool,
    /// Median call time at batch 1 (seconds, real), when it served.
    pub median_s: Option<f64>,
    /// The first failure, when one happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The sweep and its knee.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// How limits were applied (or why they were not).
    pub method: String,
    /// Batch-1 median without a limit (the reference, measured at the start of the sweep), seconds.
    pub reference_s: Option<f64>,
    pub sweep: Vec<MemoryPoint>,
    /// The smallest limit at full speed; `None` when no limit served at full speed (or no sweep ran).
    pub knee_mib: Option<u64>,
}

/// The smallest limit that served within [`KNEE_SLACK`] of `reference_s`, considering limits from the
/// largest down and stopping at the first that does not (a smaller limit that works again after one
/// that failed is noise, not a knee).
pub fn knee(reference_s: f64, sweep: &[MemoryPoint]) -> Option<u64> {
    let mut sorted: Vec<&MemoryPoint> = sweep.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.limit_mib));
    let mut best = None;
    for p in sorted {
        match p.median_s {
            Some(m) if p.ok && m <= reference_s * (1.0 + KNEE_SLACK) => best = Some(p.limit_mib),
            _ => break,
        }
    }
    best
}

/// Runs the sweep on `hw` (the first CPU of the grid): first without a limit (the reference, measured
/// the same way right before, so host load affects both alike), then each limit.
pub async fn sweep(
    target: &mut Target<'_>,
    cfg: &Config,
    hw: Hardware,
    local: bool,
    progress: &mut dyn Progress,
) -> MemoryReport {
    let method = if local {
        "RLIMIT_AS through `prlimit --as` around fprocess (local backend)".to_owned()
    } else {
        "limits.memory on the deployment (backend-enforced)".to_owned()
    };
    let mut points = Vec::new();
    let original = target.deployment.clone();
    let reference = async {
        target.place(hw, None, false).await?;
        target.fresh_warm(cfg).await?;
        target.warm_samples(cfg, 1, &mut super::NoProgress).await
    }
    .await;
    progress.step();
    let reference_s = match reference.map(|s| stats::median(&s)) {
        Ok(Some(r)) => r,
        Ok(None) => return skipped("not measured (no reference sample)"),
        Err(e) => {
            return skipped(&format!(
                "not measured: the unlimited reference failed: {e}"
            ));
        }
    };
    for &mib in &cfg.memory_mib {
        let bytes = mib.saturating_mul(1024 * 1024);
        let wrap = format!("prlimit --as={bytes} --");
        if !local {
            let lim = target
                .deployment
                .limits
                .get_or_insert_with(Default::default);
            lim.memory = format!("{mib}Mi");
        }
        let result = async {
            target
                .place(hw, local.then_some(wrap.as_str()), false)
                .await?;
            target.fresh_warm(cfg).await?;
            let mut quiet = super::NoProgress;
            target.warm_samples(cfg, 1, &mut quiet).await
        }
        .await;
        progress.step();
        points.push(match result {
            Ok(s) => MemoryPoint {
                limit_mib: mib,
                ok: true,
                median_s: stats::median(&s),
                error: None,
            },
            Err(e) => MemoryPoint {
                limit_mib: mib,
                ok: false,
                median_s: None,
                error: Some(e.to_string()),
            },
        });
    }
    target.deployment = original;
    let knee_mib = knee(reference_s, &points);
    MemoryReport {
        method,
        reference_s: Some(reference_s),
        sweep: points,
        knee_mib,
    }
}

/// The report when no sweep ran.
pub fn skipped(why: &str) -> MemoryReport {
    MemoryReport {
        method: why.to_owned(),
        reference_s: None,
        sweep: Vec::new(),
        knee_mib: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(limit_mib: u64, ok: bool, median_s: Option<f64>) -> MemoryPoint {
        MemoryPoint {
            limit_mib,
            ok,
            median_s,
            error: None,
        }
    }

    #[test]
    fn knee_is_the_smallest_full_speed_limit_before_the_first_failure() {
        let sweep = [
            p(512, true, Some(0.100)),
            p(128, true, Some(0.105)),
            p(32, true, Some(0.150)), // 50 % slower: past the knee
            p(8, false, None),
        ];
        assert_eq!(knee(0.1, &sweep), Some(128));
        // A failure ends the sweep even if a smaller limit happens to work.
        let sweep = [p(64, false, None), p(16, true, Some(0.1))];
        assert_eq!(knee(0.1, &sweep), None);
        assert_eq!(knee(0.1, &[]), None);
    }
}
