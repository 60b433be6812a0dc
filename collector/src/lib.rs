//! driftwatch collector and admin CLI. The binaries in `src/bin` are thin
//! layers over this library.

pub mod auth;
pub mod cli;
pub mod config;
pub mod conn_limits;
pub mod drift;
pub mod error;
pub mod evaluator;
pub mod keyindex;
pub mod metrics;
pub mod ratelimit;
pub mod render;
pub mod serve_cli;
pub mod server;
pub mod service;
pub mod store;
pub mod streams;
pub mod tls_incoming;
pub mod tokens;
