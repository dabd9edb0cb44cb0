//! The local backend: every function a set of supervised child processes on this host (each replica a
//! watchdog in front of the function's process), placed on the host's cores and GPU shares as planned.
//!
//! - [`runtime`]: the supervisor (launch, readiness, logs, drain, restart with backoff).
//! - [`local`]: [`LocalBackend`], the [`contract::backend::Backend`] on top of it.
#![forbid(unsafe_code)]
pub mod local;
pub mod runtime;

pub use local::LocalBackend;
