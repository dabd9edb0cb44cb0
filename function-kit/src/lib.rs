//! What runs beside a function's code, in its container or process group: the watchdog (`smiless
//! watchdog`, the of-watchdog's contract), the model emulator behind `smiless-fn`, and the GPU helpers
//! (discovery through cudarc, NVIDIA MPS shares, the emulator's calibrated kernel).
//!
//! This is the one crate of the workspace with `unsafe` code, in exactly one module
//! (`gpu::cuda`: the CUDA driver calls through cudarc); the workspace lint `unsafe_code = "deny"`
//! rejects it anywhere else, and that module says why it allows it.
pub mod batch;
pub mod emulator;
pub mod gpu;
pub mod watchdog;
