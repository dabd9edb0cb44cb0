//! What a DAG's forecaster reports about itself: written by the control loop each tick, read by
//! `/system/plan` and `/metrics` (through [`super::account::Accounts`]) and persisted with the forecaster.
use serde::{Deserialize, Serialize};

/// Forecast-vs-actual bookkeeping of one DAG (exported as metrics, persisted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Windows scored.
    pub windows: u64,
    /// Windows whose actual count exceeded the forecast count (under-provisioned).
    pub under: u64,
    /// Sum of |forecast − actual| over the scored windows.
    pub abs_error_sum: f64,
    /// The last closed window: its forecast and actual count.
    pub last_forecast: u32,
    pub last_actual: u32,
}

/// What a forecaster reports about itself (for `/metrics`, `/system/plan` and persistence).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastView {
    /// `lstm` once a model is trained, `hybrid-histogram` before.
    pub forecaster: String,
    pub window_s: u32,
    /// Forecast count of the open window (the upper edge of the predicted class).
    pub count: u32,
    /// Forecast next inter-arrival time, profile seconds.
    pub interarrival_s: f64,
    /// Closed windows observed.
    pub history_windows: usize,
    /// Trainings finished (0: the fallback is in use).
    pub trainings: u32,
    pub training: bool,
    /// Seconds of history restored from the state directory at start (0: started fresh).
    pub restored_s: u64,
    pub score: Score,
}
