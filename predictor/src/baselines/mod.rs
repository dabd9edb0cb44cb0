//! Baseline forecasters the LSTM is compared with: the hybrid histogram policy of Shahrad et al.
//! (ATC'20), EWMA, an IceBreaker-style Fourier extrapolation and last value. All implement
//! [`crate::Forecaster`] and provision the upper edge of the class holding their point estimate.
mod ewma;
mod fourier;
mod histogram;
mod last;

pub use ewma::Ewma;
pub use fourier::{Fourier, fourier_extrapolate};
pub use histogram::{HybridHistogram, KeepAlivePolicy, PolicyKind};
pub use last::LastValue;
