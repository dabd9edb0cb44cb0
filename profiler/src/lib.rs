//! `smiless profile`: measure a deployed function through the provider's API and fit its profile
//! (DESIGN §6) — initialisation time per hardware (mean, std, and the `n` of `mean + n·std` from a target
//! probability of exceeding it), warm inference time over a grid of hardware × batch, the non-negative
//! fit of `t(B, r) = a·B/r + b·B + c` ([`fit`]) with its MAPE and the error on a held-out grid point, and
//! the memory knee ([`memory`]).
//!
//! The function itself is never disturbed: a copy (`<name>-profile`, same process, environment and
//! secrets, out of any DAG) is deployed, pinned to each grid hardware with the `com.smiless.hardware`
//! annotation ([`placement`]), measured and removed.
//!
//! Times are *profile seconds*: measured wall time divided by the time scale (`SMILESS_TIME_SCALE` in the
//! function's environment, or `--time-scale`), the unit the planner and the `smiless-fn` emulator use.
//! Wall time is what a caller of `/function/<name>` sees, so it includes the provider's proxy and, in the
//! watchdog's classic mode, forking the process; the fit's `c` absorbs that per-call overhead.
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use optimizer::profile::{InitStats, LatencyModel, PerDevice};
use optimizer::{DeviceKind, Hardware, Profile, ProfileSet};
use serde::Serialize;

mod assemble;
pub mod client;
pub mod fit;
pub mod measure;
pub mod memory;
pub use contract::backend::placement;
pub mod plot;
pub mod stats;

use assemble::assemble;
use client::Api;
use measure::Target;

/// Why profiling failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfilerError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Http(String),
    #[error("{what}: HTTP {status}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
    #[error("the provider cannot place {hw}: {message}")]
    Unplaceable { hw: Hardware, message: String },
    #[error(transparent)]
    Fit(#[from] fit::FitError),
    #[error("{0}")]
    Output(String),
}

/// Progress of the measurements (a bar on a terminal, lines otherwise, nothing in tests).
pub trait Progress {
    fn set_total(&mut self, _total: u64) {}
    fn message(&mut self, _text: &str) {}
    fn step(&mut self) {}
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    pub function: String,
    pub namespace: Option<String>,
    pub cpu_cores: Vec<u32>,
    pub gpu_shares: Vec<u32>,
    /// The grid is the default one: hardware the provider refuses is skipped with a note instead of
    /// failing (an explicit grid fails).
    pub default_grid: bool,
    pub batches: Vec<u32>,
    /// Measurements per cell and cold starts per device kind.
    pub repeat: usize,
    /// Target P(init > mean + n·std).
    pub exceed_prob: f64,
    /// `None`: from the function's `SMILESS_TIME_SCALE`, else 1.
    pub time_scale: Option<f64>,
    /// Address-space limits to sweep, MiB, largest first; empty: no sweep.
    pub memory_mib: Vec<u64>,
    /// The request body of one item.
    pub input: Bytes,
    /// The held-out cell; `None`: the middle batch on the middle hardware of the first device kind.
    pub heldout: Option<(Hardware, u32)>,
    /// Longest wait for a replica to go away.
    pub ready_timeout: Duration,
    /// The profile GPU/CPU figures come from when a device kind is not measured; `None`: the paper's
    /// profile named by the function's `com.smiless.profile` annotation, when there is one.
    pub base: Option<Profile>,
    /// The name to save the profile under; `None`: the function's `com.smiless.profile`, else its name.
    pub profile_name: Option<String>,
}

impl Config {
    /// The grid in measuring order.
    pub fn hardware(&self) -> Vec<Hardware> {
        self.cpu_cores
            .iter()
            .map(|&cores| Hardware::Cpu { cores })
            .chain(
                self.gpu_shares
                    .iter()
                    .map(|&share_pct| Hardware::Gpu { share_pct }),
            )
            .collect()
    }

    /// Rejects a grid that cannot give a fit.
    pub fn validate(&self) -> Result<(), ProfilerError> {
        let bad = |m: String| Err(ProfilerError::Input(m));
        if self.function.trim().is_empty() {
            return bad("the function name is empty".into());
        }
        if self.cpu_cores.is_empty() && self.gpu_shares.is_empty() {
            return bad("nothing to measure: give --cores and/or --gpu-shares".into());
        }
        if let Some(c) = self.cpu_cores.iter().find(|c| !(1..=256).contains(*c)) {
            return bad(format!("--cores {c}: a core count is 1..=256"));
        }
        if let Some(g) = self.gpu_shares.iter().find(|g| !(1..=100).contains(*g)) {
            return bad(format!("--gpu-shares {g}: a share is 1..=100 percent"));
        }
        if self.batches.is_empty() {
            return bad("--batches is empty".into());
        }
        if let Some(b) = self
            .batches
            .iter()
            .find(|b| !(1..=function_kit::emulator::MAX_BATCH).contains(*b))
        {
            return bad(format!(
                "--batches {b}: a batch is 1..={}",
                function_kit::emulator::MAX_BATCH
            ));
        }
        if !(2..=1000).contains(&self.repeat) {
            return bad(format!(
                "--repeat {}: at least 2 (a standard deviation needs two samples), at most 1000",
                self.repeat
            ));
        }
        stats::n_for_exceed_prob(self.exceed_prob)
            .map_err(|e| ProfilerError::Input(format!("--exceed-prob: {e}")))?;
        if let Some(s) = self.time_scale
            && !(s.is_finite() && s > 0.0)
        {
            return bad(format!("--time-scale {s} must be positive"));
        }
        for kind_count in [self.cpu_cores.len(), self.gpu_shares.len()] {
            if kind_count > 0 && kind_count * self.batches.len() < 4 {
                return bad(format!(
                    "a grid of {kind_count} hardware × {} batches has fewer than 4 cells per device kind: \
                     3 coefficients and a held-out point need at least 4",
                    self.batches.len()
                ));
            }
        }
        if let Some((hw, b)) = self.heldout
            && !(self.hardware().contains(&hw) && self.batches.contains(&b))
        {
            return bad(format!("--heldout {hw}/{b} is not a grid cell"));
        }
        Ok(())
    }
}

/// One measured grid cell (profile seconds).
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub hardware: String,
    /// The model's `r`: cores, or the GPU fraction.
    pub r: f64,
    pub batch: u32,
    pub samples_s: Vec<f64>,
    /// The cell's value for the fit: the median of its samples (robust to a stray slow call).
    pub median_s: f64,
    /// The fitted model's value here.
    pub fitted_s: f64,
}

/// Initialisation on one hardware (profile seconds).
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub mean_s: f64,
    pub std_s: f64,
    /// `mean + n·std` is exceeded with the target probability (normal assumption).
    pub n: f64,
    pub estimate_s: f64,
    pub samples_s: Vec<f64>,
}

/// The fit of one device kind.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    /// Fraction (0.05 = 5 %).
    pub mape: f64,
    pub points: usize,
}

/// The held-out cell.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub hardware: String,
    pub batch: u32,
    pub measured_s: f64,
    pub predicted_s: f64,
}

/// Everything measured and fitted. `--json` prints this; its first four keys are the summary
/// `{function, init: {hardware: {mean_s, std_s, n}}, fit: {device: {a, b, c, mape}}, heldout_error}`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub function: String,
    /// Keyed by the hardware the cold starts were measured on (`cpu:1`).
    pub init: BTreeMap<String, InitReport>,
    /// Keyed by device kind (`cpu`, `gpu`): one model spans the kind's hardware through `r`.
    pub fit: BTreeMap<String, FitReport>,
    /// Relative error of the held-out prediction (fraction).
    pub heldout_error: f64,
    pub heldout: HeldOut,
    pub exceed_prob: f64,
    pub time_scale: f64,
    pub cells: Vec<Cell>,
    pub memory: memory::MemoryReport,
    /// Grid hardware the provider could not place (default grid only).
    pub skipped: Vec<String>,
    /// The profile in the project's format, under `profile_name`.
    pub profile_name: String,
    pub profile: Profile,
}

impl Report {
    /// The fitted model for a hardware's device kind.
    pub fn model_for(&self, hardware: &str) -> Option<LatencyModel> {
        let hw: Hardware = hardware.parse().ok()?;
        let f = self.fit.get(kind_name(hw.kind()))?;
        Some(LatencyModel {
            a: f.a,
            b: f.b,
            c: f.c,
        })
    }

    /// The profile set to save: `existing` (when given) with this profile added or replaced.
    pub fn into_set(&self, existing: Option<ProfileSet>) -> ProfileSet {
        let mut set = existing.unwrap_or_else(|| ProfileSet {
            source: String::new(),
            profiles: BTreeMap::new(),
        });
        let note = format!(
            "{}: measured by `smiless profile` (time scale {}, init n for P(exceed) = {})",
            self.profile_name, self.time_scale, self.exceed_prob
        );
        set.source = if set.source.is_empty() {
            note
        } else if set.source.contains(&note) {
            set.source.clone()
        } else {
            format!("{}; {note}", set.source)
        };
        set.profiles
            .insert(self.profile_name.clone(), self.profile.clone());
        set
    }
}

fn kind_name(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Cpu => "cpu",
        DeviceKind::Gpu => "gpu",
    }
}

/// The time scale of a function: its `SMILESS_TIME_SCALE`, else 1.
fn scale_of(env: &BTreeMap<String, String>) -> Result<f64, ProfilerError> {
    function_kit::emulator::parse_time_scale(
        env.get(function_kit::emulator::ENV_TIME_SCALE)
            .map(String::as_str),
    )
    .map_err(|e| ProfilerError::Input(format!("the function's environment: {e}")))
}

/// Measures and fits. The copy of the function is removed whether or not this succeeds.
pub async fn run(
    api: &Api,
    cfg: &Config,
    progress: &mut dyn Progress,
) -> Result<Report, ProfilerError> {
    cfg.validate()?;
    let ns = cfg.namespace.as_deref();
    let original = api.function(&cfg.function, ns).await?.ok_or_else(|| {
        ProfilerError::Input(format!(
            "function {:?} is not deployed{}",
            cfg.function,
            ns.map_or_else(String::new, |n| format!(" in namespace {n}"))
        ))
    })?;
    let time_scale = match cfg.time_scale {
        Some(s) => s,
        None => scale_of(&original.env_vars)?,
    };
    let info = api
        .send(hyper::Method::GET, "/system/info", &[], Bytes::new())
        .await?;
    let local = serde_json::from_slice::<serde_json::Value>(&info.body)
        .ok()
        .and_then(|v| v["orchestration"].as_str().map(str::to_owned))
        .is_none_or(|o| o == "local");
    let copy = format!("{}-profile", cfg.function);
    let mut target = Target {
        api,
        name: copy.clone(),
        namespace: cfg.namespace.clone(),
        deployment: measure::copy_of(&original, &copy),
    };
    let result = measure_all(&mut target, cfg, time_scale, local, progress).await;
    target.remove().await;
    let (cells, init, skipped, memory) = result?;
    let base = cfg.base.clone().or_else(|| {
        original
            .annotations
            .get(optimizer::dag::ANN_PROFILE)
            .and_then(|p| ProfileSet::paper().get(p).ok().cloned())
    });
    assemble(
        cfg, time_scale, cells, init, skipped, memory, base, &original,
    )
}

type Measured = (
    Vec<Cell>,
    BTreeMap<String, InitReport>,
    Vec<String>,
    memory::MemoryReport,
);

async fn measure_all(
    target: &mut Target<'_>,
    cfg: &Config,
    time_scale: f64,
    local: bool,
    progress: &mut dyn Progress,
) -> Result<Measured, ProfilerError> {
    let grid = cfg.hardware();
    let kinds = usize::from(!cfg.cpu_cores.is_empty()) + usize::from(!cfg.gpu_shares.is_empty());
    // The memory sweep measures an unlimited reference first, then each limit.
    let sweep = cfg.memory_mib.len() + usize::from(!cfg.memory_mib.is_empty());
    let total = kinds * cfg.repeat + grid.len() * (cfg.batches.len() * cfg.repeat) + sweep;
    progress.set_total(total as u64);
    let n = stats::n_for_exceed_prob(cfg.exceed_prob)
        .map_err(|e| ProfilerError::Input(e.to_string()))?;
    let mut cells = Vec::new();
    let mut init = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut first = true;
    let mut kinds_done: Vec<DeviceKind> = Vec::new();
    for hw in grid {
        progress.message(&format!("{hw}: placing"));
        match target.place(hw, None, first).await {
            Ok(()) => first = false,
            Err(ProfilerError::Unplaceable { hw, message }) if cfg.default_grid => {
                tracing::info!("skipping {hw}: {message}");
                skipped.push(format!("{hw}: {message}"));
                continue;
            }
            Err(e) => return Err(e),
        }
        if kinds_done.contains(&hw.kind()) {
            target.fresh_warm(cfg).await?;
        } else {
            kinds_done.push(hw.kind());
            progress.message(&format!("{hw}: {} cold starts", cfg.repeat));
            let samples: Vec<f64> = target
                .init_samples(cfg, progress)
                .await?
                .into_iter()
                .map(|s| s / time_scale)
                .collect();
            let (mean_s, std_s) = stats::mean_std(&samples).unwrap_or((0.0, 0.0));
            init.insert(
                hw.to_string(),
                InitReport {
                    mean_s,
                    std_s,
                    n,
                    estimate_s: mean_s + n * std_s,
                    samples_s: samples,
                },
            );
        }
        for &batch in &cfg.batches {
            progress.message(&format!("{hw}: batch {batch}"));
            let samples: Vec<f64> = target
                .warm_samples(cfg, batch, progress)
                .await?
                .into_iter()
                .map(|s| s / time_scale)
                .collect();
            let median_s = stats::median(&samples).unwrap_or(0.0);
            cells.push(Cell {
                hardware: hw.to_string(),
                r: hw.speed(),
                batch,
                samples_s: samples,
                median_s,
                fitted_s: 0.0,
            });
        }
    }
    if cells.is_empty() {
        return Err(ProfilerError::Input(format!(
            "the provider could place none of the grid's hardware: {}",
            skipped.join("; ")
        )));
    }
    let memory = match (cfg.memory_mib.is_empty(), cfg.cpu_cores.first()) {
        (true, _) => memory::skipped("not measured (no --memory limits)"),
        (false, None) => memory::skipped("not measured (the sweep runs on a CPU; no --cores)"),
        (false, Some(&cores)) => {
            progress.message("memory sweep");
            memory::sweep(target, cfg, Hardware::Cpu { cores }, local, progress).await
        }
    };
    Ok((cells, init, skipped, memory))
}
