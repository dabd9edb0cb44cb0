//! What the request path observes and the control loop decides, shared by both and read by `/metrics`
//! and `/system/plan`: the neutral ground below them, so the DAG runner writes its observations without
//! importing the control loop and the control loop reads them without importing the HTTP layer.
//!
//! [`refresh`] holds the observed call times of DAG members (the online profile refresh's samples, with
//! [`contention`] telling which calls ran alone); [`account`] the control loop's measurements (cost per
//! function, forecast vs actual per DAG, with [`forecast`] the forecaster's report); [`replica_time`]
//! every function's desired replicas over time, set on every scale, for the bill; [`requests`] the
//! proxy's per-function request counters, which the standalone autoscaler samples.
pub mod account;
pub mod contention;
pub mod forecast;
pub mod refresh;
pub mod replica_time;
pub mod requests;
