//! GPUs on the local host (DESIGN §5): discovery through cudarc, NVIDIA MPS for GPU shares, the
//! emulator's calibrated GPU kernel, and the report of `e2e/gpu-check.sh`.
//!
//! cudarc is built with `dynamic-loading`: nothing of CUDA is needed to build, `libcuda` is opened at
//! run time, and a host without it simply has zero GPUs. Discovery checks for the library before any
//! other driver call (cudarc panics otherwise) and, as a second guard against a broken or stub driver,
//! turns a panic inside the driver bindings into "no GPU" with the reason.
//!
//! - [`cuda`]: the only module with `unsafe` code (the driver probe, device attributes, the launch).
//! - [`calibrate`]: how many kernel iterations take a given time at 100 % of the GPU.
//! - [`mps`]: the MPS control daemon (start when installed and not running, stop if we started it) and
//!   the environment of a replica's GPU share.
//! - [`local`]: what the local backend gives a replica with a GPU share.
//! - [`report`]: the fit and the markdown/JSON report of the GPU check.
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub mod calibrate;
pub mod cuda;
pub mod local;
pub mod mps;
pub mod report;

/// One CUDA device as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// Index among the visible devices (what `CUDA_VISIBLE_DEVICES` numbering gives this process).
    pub index: u32,
    pub name: String,
    pub memory_bytes: u64,
    /// Streaming multiprocessors: what an MPS active-thread percentage divides.
    pub sm_count: u32,
    pub max_threads_per_sm: u32,
    /// `major.minor`, e.g. "9.0" for Hopper.
    pub compute_capability: String,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub gpus: Vec<GpuInfo>,
    /// The driver's CUDA version, when the driver is there.
    pub driver_version: Option<String>,
    /// Why there is no GPU, when there is none.
    pub reason: Option<String>,
}

/// GPU failures.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("the CUDA driver library (libcuda) cannot be loaded on this host")]
    NoDriver,
    #[error("no GPU is visible to this process")]
    NoDevice,
    #[error("CUDA driver error while {what}: {source}")]
    Driver {
        what: &'static str,
        source: cudarc::driver::DriverError,
    },
    #[error("the CUDA driver bindings panicked while {0} (a stub or incompatible libcuda?)")]
    Panicked(&'static str),
    #[error("GPU calibration: {0}")]
    Calibration(String),
}

impl GpuError {
    /// Maps a driver error, naming what was being done.
    pub fn driver(what: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> GpuError {
        move |source| GpuError::Driver { what, source }
    }
}

/// Runs `f`, turning a panic inside the driver bindings into an error (cudarc panics, rather than
/// failing, when a symbol it expects is missing from the loaded library).
pub fn guarded<T>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, GpuError>,
) -> Result<T, GpuError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or(Err(GpuError::Panicked(what)))
}

/// Lists the GPUs this process can see. Never panics: no driver, no device or a driver error all give
/// zero GPUs with the reason.
pub fn discover() -> Discovery {
    if !cuda::driver_present() {
        return Discovery {
            gpus: Vec::new(),
            driver_version: None,
            reason: Some(format!("{}", GpuError::NoDriver)),
        };
    }
    let driver_version = guarded("reading the driver version", || Ok(cuda::driver_version()))
        .ok()
        .flatten();
    match guarded("listing devices", cuda::list_devices) {
        Ok(gpus) if gpus.is_empty() => Discovery {
            gpus,
            driver_version,
            reason: Some(format!(
                "the driver sees no device (CUDA_VISIBLE_DEVICES={:?})",
                std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default()
            )),
        },
        Ok(gpus) => Discovery {
            gpus,
            driver_version,
            reason: None,
        },
        Err(e) => Discovery {
            gpus: Vec::new(),
            driver_version,
            reason: Some(e.to_string()),
        },
    }
}

/// How many GPUs this process can see, discovered once per process.
pub fn visible_count() -> u32 {
    static COUNT: OnceLock<u32> = OnceLock::new();
    *COUNT.get_or_init(|| u32::try_from(discover().gpus.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs on hosts with and without a GPU. Without the driver (this build machine, CI) the answer is
    /// zero GPUs and the reason names the missing library; with it, devices with SMs, or the reason.
    #[test]
    fn discovery_never_panics_and_explains_an_empty_list() {
        let d = discover();
        if cuda::driver_present() {
            assert!(!d.gpus.is_empty() || d.reason.is_some(), "{d:?}");
            assert!(d.gpus.iter().all(|g| g.sm_count > 0 && !g.name.is_empty()));
        } else {
            assert!(d.gpus.is_empty());
            assert!(d.reason.as_deref().unwrap().contains("libcuda"), "{d:?}");
            assert_eq!(d.driver_version, None);
        }
        assert_eq!(visible_count() as usize, d.gpus.len());
    }

    #[test]
    fn a_panic_in_the_bindings_becomes_an_error() {
        let r: Result<(), GpuError> = guarded("testing", || panic!("symbol not found"));
        assert!(matches!(r, Err(GpuError::Panicked("testing"))));
    }
}
