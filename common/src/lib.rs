//! Pieces shared by the driftwatch agent, collector and CLI: the identity
//! model, PKI issuance, TLS configuration, config-file loading, logging and
//! snapshot helpers, Prometheus metrics. Nothing here does network IO of its
//! own except `metrics::http`, the scrape endpoint both daemons serve.

pub mod admin_method;
pub mod caps;
pub mod client;
pub mod config;
pub mod debversion;
pub mod fd_limit;
pub mod identity;
pub mod keysel;
pub mod lineage;
pub mod logging;
pub mod metrics;
pub mod pki;
pub mod private_files;
pub mod section;
pub mod severity;
pub mod signal;
pub mod snapshot;
pub mod stable;
#[cfg(any(test, feature = "testgen"))]
pub mod testgen;
pub mod time;
pub mod tls;
pub mod vocab;

pub use driftwatch_proto as proto;
