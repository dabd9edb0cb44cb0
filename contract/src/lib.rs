//! The OpenFaaS provider contract as smiless serves it: the API's types and the function catalog, the
//! HTTP API (actix-web), the invocation proxy and the DAG runner (the request path), the [`backend::Backend`]
//! trait every backend implements, the live observations the request path records, and the state they
//! share ([`state::AppState`]).
//!
//! The request path reports to the control loop only through [`events`] (a one-way channel); nothing here
//! depends on the control loop or on a particular backend.
#![forbid(unsafe_code)]
pub mod api;
pub mod backend;
pub mod catalog;
pub mod config;
pub mod dag;
pub mod events;
pub mod fsutil;
pub mod observe;
pub mod prom;
pub mod proxy;
pub mod state;
pub mod types;
