//! `smiless-fn`: an EMULATOR of a profiled ML model (DESIGN §5), so the paper's DAGs run on any machine.
//!
//! It does not run a model. It reproduces a profile's timing: an initialisation delay drawn from the
//! profile's `init` (mean, std) on its hardware, and per request real CPU work (a busy loop, so CPU
//! accounting and contention are real) for the profiled inference time `t(B, r)` with `B = 1` (the
//! watchdog hands over one request at a time), or the `B` a call claims in [`BATCH_HEADER`] (how
//! `smiless profile` measures the batch dimension), or the B items of a framed batch call
//! ([`crate::batch`], [`batched`]: one call of `t(B, r)`, B answers). A GPU share runs real GPU work when a GPU is
//! visible ([`gpu`]: a calibrated kernel through cudarc, so the MPS share really changes its latency);
//! without one it is emulated by its *timing* only: the busy loop runs on the CPU for the time the GPU
//! profile predicts, and the process says so on stderr.
//!
//! Classic mode initialises on a replica's first call; the local runtime sends every new replica a warm-up
//! call (header [`WARMUP_HEADER`]) and routes requests to it only once that call has answered, as a model
//! server is ready only once its model is loaded. A replica started ahead of a request (a pre-warm, or a
//! second replica for a burst) therefore initialises then, never on the request that reaches it.
//!
//! Hardware comes from what the runtime sets: `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` (a GPU share) wins,
//! else `OMP_NUM_THREADS`, else the size of the CPU affinity mask. Every duration is multiplied by the
//! time scale (`SMILESS_TIME_SCALE`, e.g. 0.1), which the provider's control loop shares, so an e2e run
//! can be shortened without changing the plan's shape.
use std::path::Path;
use std::time::{Duration, Instant};

use optimizer::{Hardware, Profile, ProfileSet};
use serde::Serialize;

pub mod batched;
pub mod bench;
pub mod gpu;
pub mod http;

/// Environment variable naming the profile (`--profile` overrides it).
pub const ENV_PROFILE: &str = "SMILESS_PROFILE";
/// Environment variable naming a profile file in the optimizer's JSON format (default: the paper's set).
pub const ENV_PROFILES: &str = "SMILESS_PROFILES";
/// Environment variable with the time-scale factor shared by the emulator and the control loop.
pub const ENV_TIME_SCALE: &str = "SMILESS_TIME_SCALE";
/// Request header of a warm-up call (classic mode sees it as `Http_X_Smiless_Warmup`): initialise only.
pub const WARMUP_HEADER: &str = "X-Smiless-Warmup";
/// The classic watchdog's environment name of [`WARMUP_HEADER`].
pub const WARMUP_ENV: &str = "Http_X_Smiless_Warmup";
/// Request header of a batched call: how many requests this one call serves (default 1). `smiless profile`
/// sends it to measure `t(B, r)` over batches; classic mode sees it as [`BATCH_ENV`].
pub const BATCH_HEADER: &str = "X-Smiless-Batch";
/// The classic watchdog's environment name of [`BATCH_HEADER`].
pub const BATCH_ENV: &str = "Http_X_Smiless_Batch";
/// The largest batch one call may claim (a bound, so a bad header cannot ask for hours of work).
pub const MAX_BATCH: u32 = 1024;

/// The batch of a call from its header value: 1 when absent or not a number in 1..=[`MAX_BATCH`].
pub fn batch_from(value: Option<&str>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|b| (1..=MAX_BATCH).contains(b))
        .unwrap_or(1)
}

/// Environment variable that, when set, replaces the port of `--listen` (http mode): the local runtime
/// gives each emulator replica a loopback port of its own, as each pod has its own network namespace.
pub const ENV_LISTEN_PORT: &str = "SMILESS_LISTEN_PORT";

/// Whether `fprocess` runs the `smiless-fn` emulator. Only it takes warm-up calls (another function would
/// run a warm-up as a real request, with its side effects) and a per-replica upstream port
/// ([`ENV_LISTEN_PORT`]).
pub fn is_emulator(fprocess: &str) -> bool {
    fprocess
        .split_whitespace()
        .next()
        .and_then(|p| p.rsplit('/').next())
        .is_some_and(|p| p == "smiless-fn")
}

/// File (in the replica's own `TMPDIR`) that marks a classic-mode replica as initialised.
pub const READY_MARKER: &str = "smiless-fn.initialised";

/// Why the emulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("no profile: pass --profile NAME or set {ENV_PROFILE}")]
    NoProfile,
    #[error(transparent)]
    Profile(#[from] optimizer::ProfileError),
    #[error("cannot read the profile file {path}: {source}")]
    ProfileFile {
        path: String,
        source: std::io::Error,
    },
    #[error("time scale {0} must be a positive finite number")]
    TimeScale(f64),
    #[error("{0}")]
    Engine(String),
    #[error("GPU mode: {0}")]
    Gpu(#[from] crate::gpu::GpuError),
    #[error("{ENV_LISTEN_PORT}={0:?} is not a port number")]
    ListenPort(String),
}

/// The http-mode listen address: `--listen`'s, with the port from [`ENV_LISTEN_PORT`] when that is set.
pub fn listen_addr(
    listen: std::net::SocketAddr,
    port: Option<&str>,
) -> Result<std::net::SocketAddr, EmulatorError> {
    match port.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(listen),
        Some(p) => p
            .parse::<u16>()
            .map(|port| std::net::SocketAddr::new(listen.ip(), port))
            .map_err(|_| EmulatorError::ListenPort(p.to_owned())),
    }
}

/// The time scale from its textual form (`None`/empty: 1.0).
pub fn parse_time_scale(text: Option<&str>) -> Result<f64, EmulatorError> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(1.0);
    };
    let v: f64 = t.parse().map_err(|_| EmulatorError::TimeScale(f64::NAN))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(EmulatorError::TimeScale(v))
    }
}

/// Loads the profile set: a file when given, else the paper's shipped set.
pub fn load_profiles(path: Option<&Path>) -> Result<ProfileSet, EmulatorError> {
    match path {
        None => Ok(ProfileSet::paper()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| EmulatorError::ProfileFile {
                path: p.display().to_string(),
                source,
            })?;
            Ok(ProfileSet::from_json(&text)?)
        }
    }
}

/// The hardware this process runs on, from the runtime's environment (`get`) and the affinity mask size.
pub fn hardware_from_env(get: impl Fn(&str) -> Option<String>, affinity_cores: usize) -> Hardware {
    let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u32>().ok());
    if let Some(pct) = num("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE").filter(|p| (1..=100).contains(p)) {
        return Hardware::Gpu { share_pct: pct };
    }
    let cores = num("OMP_NUM_THREADS")
        .filter(|c| *c >= 1)
        .unwrap_or_else(|| u32::try_from(affinity_cores.max(1)).unwrap_or(1));
    Hardware::Cpu { cores }
}

/// How many CPUs this process may run on.
pub fn affinity_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// One emulated model.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub profile_name: String,
    pub profile: Profile,
    pub hardware: Hardware,
    pub time_scale: f64,
}

/// What one request returns (the function's output, JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// Always `"smiless-fn"`: this output comes from an emulator, not a model.
    pub emulator: &'static str,
    pub profile: String,
    pub hardware: String,
    pub time_scale: f64,
    /// Emulated inference time (after scaling), milliseconds.
    pub compute_ms: f64,
    /// Initialisation paid by this request (classic mode's first request on a replica), milliseconds.
    pub init_ms: f64,
    pub input_bytes: usize,
    /// Requests served by this call ([`BATCH_HEADER`], or the parts of a framed batch).
    pub batch: u32,
    /// Calls this process has served, this one included (http mode; 0 in classic mode, one process
    /// per call): a test can count the calls that reached a replica.
    pub call: u64,
    /// A warm-up call: initialised, no inference.
    pub warmup: bool,
    /// `gpu` (a real kernel, `compute_ms` measured) or `cpu` (the emulated time; for a GPU share, the
    /// fallback without a GPU); `none` for a warm-up call.
    pub engine: &'static str,
}

impl Emulator {
    /// Resolves `profile_name` in `set`.
    pub fn new(
        set: &ProfileSet,
        profile_name: &str,
        hardware: Hardware,
        time_scale: f64,
    ) -> Result<Emulator, EmulatorError> {
        Ok(Emulator {
            profile_name: profile_name.to_owned(),
            profile: set.get(profile_name)?.clone(),
            hardware,
            time_scale,
        })
    }

    /// The initialisation delay: a normal draw (mean, std) of the profile on this hardware, never
    /// negative, scaled. `u1`, `u2` are uniform in (0, 1] (Box–Muller), passed in so tests are exact.
    pub fn init_delay(&self, u1: f64, u2: f64) -> Duration {
        let s = self.profile.init(self.hardware);
        let z = (-2.0 * u1.max(f64::MIN_POSITIVE).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        secs(((s.mean_s + s.std_s * z).max(0.0)) * self.time_scale)
    }

    /// A random initialisation delay.
    pub fn draw_init_delay(&self) -> Duration {
        // `random::<f64>()` is in [0, 1); 1 − u is in (0, 1], as Box–Muller's logarithm needs.
        self.init_delay(1.0 - rand::random::<f64>(), rand::random::<f64>())
    }

    /// The scaled inference time of one request.
    pub fn compute_time(&self) -> Duration {
        secs(self.profile.infer_time(self.hardware, 1) * self.time_scale)
    }

    /// The scaled time of one call serving `batch` requests: `t(B, r)` of the profile.
    pub fn batch_time(&self, batch: u32) -> Duration {
        secs(self.profile.infer_time(self.hardware, batch.max(1)) * self.time_scale)
    }

    /// Serves one request: busy CPU work for [`Self::compute_time`]; returns the output.
    pub fn serve(&self, input_bytes: usize, init: Duration) -> Output {
        self.serve_batch(input_bytes, init, 1)
    }

    /// Serves one call of `batch` requests: busy CPU work for [`Self::batch_time`].
    pub fn serve_batch(&self, input_bytes: usize, init: Duration, batch: u32) -> Output {
        let batch = batch.max(1);
        let d = self.batch_time(batch);
        busy(d);
        Output {
            emulator: "smiless-fn",
            profile: self.profile_name.clone(),
            hardware: self.hardware.to_string(),
            time_scale: self.time_scale,
            compute_ms: d.as_secs_f64() * 1e3,
            init_ms: init.as_secs_f64() * 1e3,
            input_bytes,
            batch,
            call: 0,
            warmup: false,
            engine: "cpu",
        }
    }

    /// The output of a call of `batch` requests whose inference took `compute` (measured by the GPU
    /// engine, [`gpu::Engine`]).
    pub fn served(
        &self,
        compute: Duration,
        input_bytes: usize,
        init: Duration,
        batch: u32,
    ) -> Output {
        let mut out = self.warmed(init);
        out.compute_ms = compute.as_secs_f64() * 1e3;
        out.input_bytes = input_bytes;
        out.batch = batch;
        out.warmup = false;
        out.engine = "gpu";
        out
    }

    /// The answer to a warm-up call (no inference).
    pub fn warmed(&self, init: Duration) -> Output {
        Output {
            emulator: "smiless-fn",
            profile: self.profile_name.clone(),
            hardware: self.hardware.to_string(),
            time_scale: self.time_scale,
            compute_ms: 0.0,
            init_ms: init.as_secs_f64() * 1e3,
            input_bytes: 0,
            batch: 0,
            call: 0,
            warmup: true,
            engine: "none",
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// Spins on the CPU for `d` (real work, so the OS sees a busy core, as with a model's inference).
pub fn busy(d: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while start.elapsed() < d {
        for _ in 0..1000 {
            x = std::hint::black_box(x.rotate_left(7) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
    }
    std::hint::black_box(x);
}

/// File (in the replica's `TMPDIR`) held while one call initialises the replica.
pub const INIT_MARKER: &str = "smiless-fn.initialising";

/// How a classic-mode call found its replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Already initialised.
    Warm,
    /// This call initialised the replica, for this long.
    Paid(Duration),
    /// Another call was initialising it; this one waited this long for it (as a request to a model that
    /// is still loading does).
    Waited(Duration),
}

impl Init {
    /// The time this call spent on initialisation.
    pub fn delay(self) -> Duration {
        match self {
            Init::Warm => Duration::ZERO,
            Init::Paid(d) | Init::Waited(d) => d,
        }
    }
}

/// Classic mode: initialise once per replica. The first call on a replica (its `TMPDIR` is private to it)
/// takes the initialising marker (created exclusively), pays the initialisation delay and leaves the ready
/// marker; a call that arrives meanwhile (e.g. the request right after a pre-warm's warm-up) waits for that
/// marker instead of initialising again, up to the profile's mean + 6 std (then it initialises itself: the
/// first call died).
pub fn classic_init(emu: &Emulator, replica_tmp: &Path) -> Init {
    let marker = replica_tmp.join(READY_MARKER);
    if marker.exists() {
        return Init::Warm;
    }
    let busy = replica_tmp.join(INIT_MARKER);
    let paid = |emu: &Emulator| {
        let d = emu.draw_init_delay();
        std::thread::sleep(d);
        // A failed write only means the next call initialises again: slower, never wrong.
        let _ = std::fs::write(&marker, b"");
        d
    };
    let mine = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&busy)
        .is_ok();
    if mine {
        let d = paid(emu);
        let _ = std::fs::remove_file(&busy);
        return Init::Paid(d);
    }
    let start = Instant::now();
    let s = emu.profile.init(emu.hardware);
    let limit = secs((s.mean_s + 6.0 * s.std_s) * emu.time_scale) + Duration::from_secs(1);
    while !marker.exists() {
        if start.elapsed() > limit {
            return Init::Paid(paid(emu));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Init::Waited(start.elapsed())
}

#[cfg(test)]
mod tests;
