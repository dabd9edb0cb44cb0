//! The smiless provider: the OpenFaaS contract, the invocation proxy, the control loop and the backends.
pub mod cli;
pub mod runtime;
pub mod watchdog;
