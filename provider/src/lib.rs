//! The smiless provider: the OpenFaaS contract, the invocation proxy, the control loop and the backends.
pub mod api;
pub mod backend;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod dag;
pub mod emulator;
pub mod events;
pub mod fsutil;
pub mod gpu;
pub mod profiler;
pub mod prom;
pub mod proxy;
pub mod runtime;
pub mod types;
pub mod watchdog;
