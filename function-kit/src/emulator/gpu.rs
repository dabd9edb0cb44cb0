//! `smiless-fn`'s compute engines: real GPU work through cudarc when its hardware is a GPU share and a
//! GPU is visible, the CPU emulation otherwise.
//!
//! GPU mode runs the profile's GPU latency model `t(B, r) = a·B/r + b·B + c` as real work:
//! - `a·B`: the wide `fma_loop` kernel sized (from a calibration at 100 % of the GPU) to take `a·B`
//!   seconds on the whole GPU; under an MPS share `r` the driver lets the context use only part of the
//!   SMs, so the same work takes longer — by however much the hardware really slows it, which is what the
//!   GPU check measures against `a/r`;
//! - `b·B`: the one-block kernel sized to `b·B` seconds (serial work: one SM at any share);
//! - `c`: per-call host work (pre/post-processing, launch overhead), a busy CPU loop as in CPU mode.
//!
//! Every duration is multiplied by the time scale, as in CPU mode.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use optimizer::Hardware;
use optimizer::profile::LatencyModel;

use super::{Emulator, EmulatorError};
use crate::gpu::GpuError;
use crate::gpu::calibrate::{Calibration, measure_line};
use crate::gpu::cuda::{FmaKernel, Grid};

/// Environment variable: `auto` (default), `gpu` or `cpu`.
pub const ENV_ENGINE: &str = "SMILESS_FN_ENGINE";
pub use crate::gpu::calibrate::ENV_CALIBRATION;

/// Which engine the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EngineMode {
    /// The GPU when the hardware is a GPU share and a GPU is visible; else the CPU emulation.
    #[default]
    Auto,
    /// The GPU, or an error.
    Gpu,
    /// The CPU emulation (a GPU share's timing from its profile).
    Cpu,
}

/// The engine chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Cpu,
    /// A GPU share without a GPU: emulated on the CPU, with the reason to print.
    CpuFallback(String),
    Gpu,
}

/// Chooses the engine from the mode, the hardware and the GPUs visible (`Err(reason)` when none).
pub fn choose(
    mode: EngineMode,
    hw: Hardware,
    gpus: Result<usize, String>,
) -> Result<Choice, EmulatorError> {
    let gpu_share = matches!(hw, Hardware::Gpu { .. });
    match mode {
        EngineMode::Cpu => Ok(Choice::Cpu),
        EngineMode::Auto if !gpu_share => Ok(Choice::Cpu),
        EngineMode::Gpu if !gpu_share => Err(EmulatorError::Engine(
            "--engine gpu needs a GPU share: set CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (1-100)".into(),
        )),
        EngineMode::Auto => match gpus {
            Ok(n) if n > 0 => Ok(Choice::Gpu),
            Ok(_) => Ok(Choice::CpuFallback("no GPU found".into())),
            Err(reason) => Ok(Choice::CpuFallback(format!("no GPU found: {reason}"))),
        },
        EngineMode::Gpu => match gpus {
            Ok(n) if n > 0 => Ok(Choice::Gpu),
            Ok(_) => Err(EmulatorError::Engine("--engine gpu: no GPU found".into())),
            Err(reason) => Err(EmulatorError::Engine(format!(
                "--engine gpu: no GPU found: {reason}"
            ))),
        },
    }
}

/// The calibrated kernel on the first visible GPU.
#[derive(Debug)]
pub struct GpuEngine {
    kernel: Mutex<FmaKernel>,
    pub calibration: Calibration,
}

impl GpuEngine {
    /// Opens the first visible GPU and gets a calibration: from `file` when it matches the device; else
    /// measured here when this process may use the whole GPU (`share_pct` 100), or in a child process
    /// started at 100 % (measuring under a smaller share would cancel the share's effect). A fresh
    /// calibration is written to `file` when one is given.
    pub fn open(file: Option<&Path>, share_pct: u32) -> Result<GpuEngine, GpuError> {
        let mut kernel = crate::gpu::guarded("opening the GPU", || FmaKernel::open(0))?;
        let known = file
            .and_then(Calibration::load)
            .filter(|c| c.fits(&kernel.device, kernel.sms));
        let calibration = match known {
            Some(c) => c,
            None => {
                let c = if share_pct >= 100 {
                    calibrate(&mut kernel, share_pct)?
                } else {
                    calibrate_in_child()?
                };
                if let Some(f) = file {
                    c.save(f)?;
                }
                c
            }
        };
        Ok(GpuEngine {
            kernel: Mutex::new(kernel),
            calibration,
        })
    }

    /// Runs one call of `batch` requests of `model`, scaled; returns its wall time.
    pub fn run(&self, model: &LatencyModel, batch: u32, scale: f64) -> Result<Duration, GpuError> {
        let b = f64::from(batch);
        let start = Instant::now();
        {
            let mut k = self
                .kernel
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for iters in self.calibration.wide.plan(secs(model.a * b * scale)) {
                k.run(Grid::Wide, iters)?;
            }
            for iters in self.calibration.single.plan(secs(model.b * b * scale)) {
                k.run(Grid::Single, iters)?;
            }
        }
        super::busy(secs(model.c * scale));
        Ok(start.elapsed())
    }

    pub fn device(&self) -> &str {
        &self.calibration.device
    }
}

/// Measures both launch shapes on `kernel` (which should have the whole GPU to itself).
pub fn calibrate(kernel: &mut FmaKernel, share_pct: u32) -> Result<Calibration, GpuError> {
    // One launch first: the driver's JIT and the first launch's setup are not part of any request.
    kernel.run(Grid::Wide, 1)?;
    let wide = measure_line(|i| kernel.run(Grid::Wide, i))?;
    let single = measure_line(|i| kernel.run(Grid::Single, i))?;
    Ok(Calibration {
        device: kernel.device.clone(),
        sms: kernel.sms,
        wide,
        single,
        share_pct,
    })
}

/// Calibration in a child process of this binary (`--gpu-calibrate`) at 100 % of the GPU.
fn calibrate_in_child() -> Result<Calibration, GpuError> {
    let exe = std::env::current_exe()
        .map_err(|e| GpuError::Calibration(format!("locating smiless-fn: {e}")))?;
    let out = std::process::Command::new(exe)
        .arg("--gpu-calibrate")
        .env(crate::gpu::mps::ENV_PERCENT, "100")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| GpuError::Calibration(format!("running the calibration: {e}")))?;
    if !out.status.success() {
        return Err(GpuError::Calibration(format!(
            "the calibration process failed ({})",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| GpuError::Calibration(format!("reading the calibration's output: {e}")))
}

/// The compute engine of one `smiless-fn` process.
#[derive(Debug)]
pub enum Engine {
    Cpu,
    Gpu(GpuEngine),
}

impl Engine {
    /// Opens the chosen engine (the GPU's context, kernel and calibration belong to initialisation).
    /// `announce`: say on stderr which engine runs (not in classic mode, where the watchdog's
    /// `combine_output` would put it into the response; there the output's `engine` field says it).
    pub fn open(
        choice: &Choice,
        hw: Hardware,
        calibration: Option<PathBuf>,
        announce: bool,
    ) -> Result<Engine, EmulatorError> {
        match choice {
            Choice::Cpu => Ok(Engine::Cpu),
            Choice::CpuFallback(reason) => {
                if announce {
                    eprintln!("smiless-fn: {reason}; emulating the GPU share's timing on the CPU");
                }
                Ok(Engine::Cpu)
            }
            Choice::Gpu => {
                let share = match hw {
                    Hardware::Gpu { share_pct } => share_pct,
                    Hardware::Cpu { .. } => 100,
                };
                let g = GpuEngine::open(calibration.as_deref(), share)?;
                if announce {
                    eprintln!(
                        "smiless-fn: GPU mode on {} at {share} % (calibrated at {} %)",
                        g.device(),
                        g.calibration.share_pct
                    );
                }
                Ok(Engine::Gpu(g))
            }
        }
    }

    /// `"gpu"` or `"cpu"`.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Cpu => "cpu",
            Engine::Gpu(_) => "gpu",
        }
    }

    /// Runs one request of `emu`; returns the time it took (GPU: measured; CPU: the emulated time).
    pub fn compute(&self, emu: &Emulator) -> Result<Duration, EmulatorError> {
        match self {
            Engine::Cpu => {
                let d = emu.compute_time();
                super::busy(d);
                Ok(d)
            }
            Engine::Gpu(g) => Ok(g.run(&emu.profile.infer.gpu, 1, emu.time_scale)?),
        }
    }

    /// Serves one call of `batch` requests (the watchdog modes).
    pub fn serve(
        &self,
        emu: &Emulator,
        input_bytes: usize,
        init: Duration,
        batch: u32,
    ) -> Result<super::Output, EmulatorError> {
        match self {
            Engine::Cpu => Ok(emu.serve_batch(input_bytes, init, batch)),
            Engine::Gpu(g) => {
                let batch = batch.max(1);
                let d = g.run(&emu.profile.infer.gpu, batch, emu.time_scale)?;
                Ok(emu.served(d, input_bytes, init, batch))
            }
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHARE: Hardware = Hardware::Gpu { share_pct: 30 };
    const CORES: Hardware = Hardware::Cpu { cores: 2 };

    #[test]
    fn engine_choice() {
        let none = || Err::<usize, _>("libcuda missing".to_owned());
        assert_eq!(choose(EngineMode::Auto, SHARE, Ok(1)).unwrap(), Choice::Gpu);
        assert_eq!(
            choose(EngineMode::Auto, SHARE, none()).unwrap(),
            Choice::CpuFallback("no GPU found: libcuda missing".into())
        );
        assert_eq!(
            choose(EngineMode::Auto, SHARE, Ok(0)).unwrap(),
            Choice::CpuFallback("no GPU found".into())
        );
        // CPU hardware never touches the GPU in auto mode.
        assert_eq!(choose(EngineMode::Auto, CORES, Ok(4)).unwrap(), Choice::Cpu);
        assert_eq!(choose(EngineMode::Cpu, SHARE, Ok(4)).unwrap(), Choice::Cpu);
        // Asking for the GPU is an error without one, or without a share.
        let e = choose(EngineMode::Gpu, SHARE, none())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no GPU found") && e.contains("libcuda"), "{e}");
        let e = choose(EngineMode::Gpu, CORES, Ok(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"), "{e}");
        assert_eq!(choose(EngineMode::Gpu, SHARE, Ok(1)).unwrap(), Choice::Gpu);
    }

    #[test]
    fn the_cpu_engine_emulates_the_profiles_time() {
        let set = optimizer::ProfileSet::paper();
        let emu = Emulator::new(&set, "translation", SHARE, 0.01).unwrap();
        let d = Engine::Cpu.compute(&emu).unwrap();
        assert_eq!(d, emu.compute_time());
        assert_eq!(Engine::Cpu.name(), "cpu");
        // A GPU share served without a GPU says so in its output (classic mode prints nothing).
        let out = Engine::Cpu.serve(&emu, 3, Duration::ZERO, 2).unwrap();
        assert_eq!(
            (out.engine, out.hardware.as_str(), out.batch),
            ("cpu", "gpu:30", 2)
        );
        assert!((out.compute_ms - emu.batch_time(2).as_secs_f64() * 1e3).abs() < 1e-9);
        assert_eq!(emu.warmed(Duration::ZERO).engine, "none");
        let gpu_out = emu.served(Duration::from_millis(7), 3, Duration::ZERO, 1);
        assert_eq!(
            (gpu_out.engine, gpu_out.compute_ms, gpu_out.warmup),
            ("gpu", 7.0, false)
        );
    }

    /// Asking for the GPU engine never panics: without the driver (this machine, CI) it fails with the
    /// reason; with one it opens and calibrates the GPU (or says why it cannot).
    #[test]
    fn opening_the_gpu_engine_never_panics() {
        let got = Engine::open(&Choice::Gpu, SHARE, None, false);
        if crate::gpu::cuda::driver_present() {
            if let Ok(e) = got {
                assert_eq!(e.name(), "gpu");
            }
        } else {
            let e = got.unwrap_err().to_string();
            assert!(e.contains("libcuda"), "{e}");
        }
    }
}
