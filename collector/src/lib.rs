//! driftwatch collector. Its binary in `src/bin` is a thin layer over this
//! library; the admin CLI is its own crate (`cli/`) and speaks only the wire.

pub mod auth;
pub mod config;
pub mod conn_limits;
pub mod drift;
pub mod error;
pub mod evaluator;
pub mod fleet_bus;
pub mod keyindex;
pub mod metrics;
pub mod notify;
pub mod query;
pub mod ratelimit;
pub mod serve_cli;
pub mod server;
pub mod service;
pub mod store;
pub mod streams;
pub mod tls_incoming;
pub mod tokens;
