//! The `smiless` command line: `serve` (the provider: the contract's HTTP API, the control loop and a
//! backend, wired together), `watchdog`, `plan`, `sim`, `forecast`, `profile`, `gpus`, `bench`, `demo`.
//! The logic lives in the workspace's other crates (DESIGN §2, docs/architecture.md); this crate only
//! parses flags, builds the pieces and reports.
#![forbid(unsafe_code)]
pub mod cli;
