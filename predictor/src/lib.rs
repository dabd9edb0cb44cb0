//! Invocation forecasting for smiless (DESIGN §8–§9): series in, `Forecast` out; no network or
//! process I/O besides reading the files handed to it (and writing model files where asked).
//!
//! - [`workload`]: invocation series from the OrcBench models, a calibrated synthetic generator, or the
//!   Azure Functions 2019 CSV format, named by a spec string ([`Workload`]).
//! - [`background`]: training off the caller's thread, one job at a time, collected by polling.
//! - [`series`]: [`Series`] and the incremental [`History`] forecasters read.
//! - [`forecast`]: the [`Forecaster`] trait, [`Forecast`] and the [`CountClasses`].
//! - [`lstm`]: the LSTM count classifier and dual-input inter-arrival model (candle-nn, CPU).
//! - [`baselines`]: hybrid histogram, EWMA, Fourier, last value.
//! - [`eval`]: the comparison (under-prediction, over-provisioning, inter-arrival MAE, timings).
//! - [`plot`]: an SVG of forecast vs actual.
#![forbid(unsafe_code)]
pub mod background;
pub mod baselines;
pub mod error;
pub mod eval;
pub mod forecast;
pub mod lstm;
pub mod plot;
pub mod progress;
pub mod series;
pub mod workload;

pub use error::{Error, Result};
pub use forecast::{CountClasses, Forecast, Forecaster};
pub use lstm::{LstmForecaster, TrainConfig};
pub use series::{History, Series};
pub use workload::Workload;
