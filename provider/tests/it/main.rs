//! Integration tests of `smiless serve` as a real process with real replica processes (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod client;
mod dag;
mod gpu_check;
mod kube_backend;
mod load;
mod profile;
mod provider;
mod replica_crash;
mod restart;
mod runtime;
mod runtime_env;
mod serve;
mod watchdog;
mod watchdog_batch;
mod watchdog_http;
