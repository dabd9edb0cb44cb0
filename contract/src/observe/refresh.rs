//! Online profile refresh (DESIGN §6; issue 8): the DAG runner's observed call times update the profiles
//! the planner uses, and a profile that drifted triggers re-planning.
//!
//! **What is observed.** Each call the runner makes to a DAG member **that ran alone on the host** (no
//! other member call overlapped it; [`super::contention`] says why). Its POST to a replica that was
//! initialised before it took the call is an inference sample (one request: batch 1 on the member's current
//! hardware): a warm replica's, or any emulator replica's, since the local runtime warms those up before it
//! routes to them; a call to another function's replica that a pre-warm or the call itself started may pay
//! or wait for the initialisation, so it is not. A *cold* call (the runner scaled the member from zero) is
//! also timed from the scale-up to the answer, and its initialisation sample is that minus the warm
//! estimate. Where the backend sees replicas start (the local runtime), every replica's start-to-ready
//! time is an initialisation sample too, which matters for members that are pre-warmed and so never
//! called cold; with enough cold calls, those are used (they include the scale call). Times are divided
//! by the time scale (profile seconds).
//!
//! **Estimator.** The last [`RefreshConfig::window`] samples per member and kind; their median and MAD
//! (scaled by 1.4826, the normal-consistent factor) reject outliers beyond `k·σ_MAD` (a call that waited
//! for a pre-warm still initialising, a stall), and the kept samples give the estimate. Nothing is
//! judged before [`RefreshConfig::min_samples`] samples.
//!
//! **Drift and update** ([`assess`], pure). Inference drifted when the robust median differs from the
//! profile's `t(1, r)` on the member's hardware by more than the threshold (relative). The update keeps the
//! model's shape: slower than predicted, the per-call constant `c` absorbs the difference (per-call
//! overhead the profile missed, such as the watchdog forking the process); faster, all three coefficients
//! scale down by the ratio (coefficients stay non-negative either way). Initialisation drifted when the
//! robust mean differs from the profile's mean by more than the threshold; the update is the robust mean
//! and standard deviation. A member's inference window is cleared when its hardware changes (its samples
//! were of other hardware).
//!
//! The control loop calls `control::refresh::on_tick`; a drift replaces the profile in its set, drops the DAG's
//! controller so the next decision plans with the new profile, and counts
//! `smiless_profile_drift_total{namespace,function,kind}`.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use optimizer::profile::{InitStats, LatencyModel};
use optimizer::{Hardware, Profile};

/// Normal-consistent scale of the median absolute deviation.
const MAD_SCALE: f64 = 1.4826;

/// Tuning of the estimator and the drift test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshConfig {
    /// Samples kept per member and kind.
    pub window: usize,
    /// Samples needed before a drift is judged.
    pub min_samples: usize,
    /// Relative difference that counts as drift.
    pub threshold: f64,
    /// Samples farther than this many robust sigmas from the median are outliers.
    pub outlier_k: f64,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            window: 32,
            min_samples: 8,
            threshold: 0.25,
            outlier_k: 3.0,
        }
    }
}

/// The last `cap` samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    samples: VecDeque<f64>,
}

/// A window's robust summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Robust {
    pub median: f64,
    /// 1.4826 · MAD.
    pub sigma: f64,
    /// Mean and sample std of the samples within `k·sigma` of the median.
    pub mean: f64,
    pub std: f64,
    pub kept: usize,
    pub total: usize,
}

fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl Window {
    /// Adds a sample (non-finite or negative ones are ignored), dropping the oldest beyond `cap`.
    pub fn push(&mut self, x: f64, cap: usize) {
        if !(x.is_finite() && x >= 0.0) {
            return;
        }
        self.samples.push_back(x);
        while self.samples.len() > cap.max(1) {
            self.samples.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// Median, MAD and the outlier-free mean/std; `None` when empty.
    pub fn robust(&self, outlier_k: f64) -> Option<Robust> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.samples.iter().copied().collect();
        let median = median_of(&mut v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
        let sigma = MAD_SCALE * median_of(&mut dev);
        // With sigma 0 (most samples equal) only exact ties are kept; a tiny floor keeps round-off.
        let band = (outlier_k * sigma).max(median.abs() * 1e-9);
        let kept: Vec<f64> = v
            .iter()
            .copied()
            .filter(|x| (x - median).abs() <= band)
            .collect();
        let n = kept.len() as f64;
        let mean = kept.iter().sum::<f64>() / n;
        let std = if kept.len() > 1 {
            (kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Robust {
            median,
            sigma,
            mean,
            std,
            kept: kept.len(),
            total: v.len(),
        })
    }
}

/// What drifted.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    Infer {
        hardware: Hardware,
        predicted_s: f64,
        observed_s: f64,
    },
    Init {
        hardware: Hardware,
        predicted_mean_s: f64,
        observed_mean_s: f64,
    },
}

impl Drift {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::Infer { .. } => "infer",
            Drift::Init { .. } => "init",
        }
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Infer {
                hardware,
                predicted_s,
                observed_s,
            } => write!(
                f,
                "inference on {hardware}: observed {observed_s:.4} s, profile {predicted_s:.4} s"
            ),
            Drift::Init {
                hardware,
                predicted_mean_s,
                observed_mean_s,
            } => write!(
                f,
                "initialisation on {hardware}: observed mean {observed_mean_s:.4} s, profile {predicted_mean_s:.4} s"
            ),
        }
    }
}

/// The inference model corrected to predict `observed` at batch 1 on `r` (see the module doc).
pub fn corrected_model(m: &LatencyModel, r: f64, observed: f64) -> LatencyModel {
    let predicted = m.time(1, r);
    if observed >= predicted || predicted <= 0.0 {
        LatencyModel {
            c: m.c + (observed - predicted).max(0.0),
            ..*m
        }
    } else {
        let k = observed / predicted;
        LatencyModel {
            a: m.a * k,
            b: m.b * k,
            c: m.c * k,
        }
    }
}

/// Pure: judges `infer` and `init` windows (profile seconds) of a member on `hw` against `profile`;
/// returns the drifts and, when any, the updated profile.
pub fn assess(
    profile: &Profile,
    hw: Hardware,
    infer: &Window,
    init: &Window,
    cfg: &RefreshConfig,
) -> (Vec<Drift>, Option<Profile>) {
    let rel = |obs: f64, pred: f64| (obs - pred).abs() / pred.max(1e-9);
    let mut drifts = Vec::new();
    let mut updated = profile.clone();
    if infer.len() >= cfg.min_samples
        && let Some(r) = infer.robust(cfg.outlier_k)
    {
        let predicted = profile.infer_time(hw, 1);
        if rel(r.median, predicted) > cfg.threshold {
            let model = corrected_model(profile.infer.get(hw.kind()), hw.speed(), r.median);
            match hw.kind() {
                optimizer::DeviceKind::Cpu => updated.infer.cpu = model,
                optimizer::DeviceKind::Gpu => updated.infer.gpu = model,
            }
            drifts.push(Drift::Infer {
                hardware: hw,
                predicted_s: predicted,
                observed_s: r.median,
            });
        }
    }
    if init.len() >= cfg.min_samples
        && let Some(r) = init.robust(cfg.outlier_k)
    {
        let current = profile.init(hw);
        if rel(r.mean, current.mean_s) > cfg.threshold {
            let stats = InitStats {
                mean_s: r.mean,
                std_s: r.std,
            };
            match hw.kind() {
                optimizer::DeviceKind::Cpu => updated.init.cpu = stats,
                optimizer::DeviceKind::Gpu => updated.init.gpu = stats,
            }
            drifts.push(Drift::Init {
                hardware: hw,
                predicted_mean_s: current.mean_s,
                observed_mean_s: r.mean,
            });
        }
    }
    let changed = !drifts.is_empty();
    (drifts, changed.then_some(updated))
}

/// Which window a sample goes to.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Infer,
    Cold,
    Start,
}

/// One member's observations.
#[derive(Debug, Clone, Default)]
struct Member {
    /// Warm call times, profile seconds.
    infer: Window,
    /// Cold call times (scale-up to answer), profile seconds.
    cold: Window,
    /// Replica start to readiness, profile seconds: initialisation samples of every replica, pre-warmed
    /// ones included, where the backend sees replicas start (the local runtime).
    start: Window,
    /// The hardware the infer window was observed on.
    hardware: Option<Hardware>,
}

/// The live state: observations per `(namespace, function)` and the drift counters.
#[derive(Debug, Default)]
pub struct Refresher {
    pub config: RefreshConfig,
    members: Mutex<HashMap<(String, String), Member>>,
    /// `(namespace, function, kind)` → drifts counted.
    drifts: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// Which calls ran alone: only their times are observed (see [`super::contention`]).
    pub calls: super::contention::CallTracker,
    /// Calls observed so far.
    observations: std::sync::atomic::AtomicU64,
}

impl Refresher {
    /// Records one call the runner made: `wall_s` real seconds; `cold` when the runner scaled the member
    /// from zero for it (then the time runs from the scale-up).
    pub fn observe(&self, ns: &str, f: &str, wall_s: f64, cold: bool, time_scale: f64) {
        let kind = if cold { Sample::Cold } else { Sample::Infer };
        self.record(ns, f, kind, wall_s / time_scale.max(1e-12));
    }

    /// Records that a replica of the member became ready `wall_s` real seconds after it started.
    pub fn observe_start(&self, ns: &str, f: &str, wall_s: f64, time_scale: f64) {
        self.record(ns, f, Sample::Start, wall_s / time_scale.max(1e-12));
    }

    fn record(&self, ns: &str, f: &str, kind: Sample, secs: f64) {
        self.observations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cap = self.config.window;
        let mut m = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry((ns.to_owned(), f.to_owned())).or_default();
        match kind {
            Sample::Infer => e.infer.push(secs, cap),
            Sample::Cold => e.cold.push(secs, cap),
            Sample::Start => e.start.push(secs, cap),
        }
    }

    /// Judges one member on `hw` against `profile`; on drift, counts it and clears the windows that
    /// drove it (the next judgement is of samples taken under the new plan).
    pub fn check(
        &self,
        ns: &str,
        f: &str,
        hw: Hardware,
        profile: &Profile,
    ) -> (Vec<Drift>, Option<Profile>) {
        let mut members = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(m) = members.get_mut(&(ns.to_owned(), f.to_owned())) else {
            return (Vec::new(), None);
        };
        if m.hardware.is_some_and(|h| h != hw) {
            m.infer.clear();
            m.cold.clear();
            m.start.clear();
        }
        m.hardware = Some(hw);
        let init = self.init_samples(m, hw, profile);
        let (drifts, updated) = assess(profile, hw, &m.infer, &init, &self.config);
        for d in &drifts {
            match d {
                Drift::Infer { .. } => m.infer.clear(),
                Drift::Init { .. } => {
                    m.cold.clear();
                    m.start.clear();
                }
            }
        }
        drop(members);
        if !drifts.is_empty() {
            let mut counts = self
                .drifts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for d in &drifts {
                *counts
                    .entry((ns.to_owned(), f.to_owned(), d.kind()))
                    .or_default() += 1;
            }
        }
        (drifts, updated)
    }

    /// Initialisation samples: cold calls minus the warm estimate (robust median, else the profile) when
    /// there are enough of them, as a request sees a scale-up (the scale call included); else the
    /// replicas' start-to-ready times where the backend gives them (pre-warmed members have no cold calls).
    fn init_samples(&self, m: &Member, hw: Hardware, profile: &Profile) -> Window {
        if m.cold.len() < self.config.min_samples && !m.start.is_empty() {
            return m.start.clone();
        }
        let warm = m
            .infer
            .robust(self.config.outlier_k)
            .map_or_else(|| profile.infer_time(hw, 1), |r| r.median);
        let mut init = Window::default();
        for &c in &m.cold.samples {
            init.push((c - warm).max(0.0), self.config.window);
        }
        init
    }

    /// `profile` with what was measured of one member on `hw` (every estimate with enough samples, however
    /// small its difference: no drift threshold), or `None` when nothing was measured yet. This is what
    /// the host really takes, for a simulation of it (`control/observed.json`); the planner changes its
    /// profiles only on drift ([`Refresher::check`]).
    pub fn observed(&self, ns: &str, f: &str, hw: Hardware, profile: &Profile) -> Option<Profile> {
        let members = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let m = members.get(&(ns.to_owned(), f.to_owned()))?;
        if m.hardware.is_some_and(|h| h != hw) {
            return None;
        }
        let init = self.init_samples(m, hw, profile);
        let every_difference = RefreshConfig {
            threshold: 0.0,
            ..self.config
        };
        assess(profile, hw, &m.infer, &init, &every_difference).1
    }

    /// Calls observed so far (any member): tells whether [`Refresher::observed`] may have changed.
    pub fn observations(&self) -> u64 {
        self.observations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets members that left (`keep` says which stay).
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(ns, f), _| keep(ns, f));
    }

    /// Total drifts counted (all members).
    pub fn drift_total(&self) -> u64 {
        self.drifts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }

    /// Prometheus exposition of the drift counter ([`crate::prom`], without the end marker).
    pub fn render(&self) -> String {
        let counts = self
            .drifts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = crate::prom::Snapshot::default();
        let family = out.counter(
            "smiless_profile_drift_total",
            "Profiles that drifted from the observed call times (each triggered a re-plan).",
        );
        for ((ns, f, kind), n) in counts.iter() {
            family.sample(
                crate::prom::labels([("namespace", ns), ("function", f), ("kind", kind)]),
                *n,
            );
        }
        drop(counts);
        out.render()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
