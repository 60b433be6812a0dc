//! The driftwatch wire schema. Generated code lives here and only here; the
//! section payload messages double as the snapshot model (see ARCHITECTURE.md).

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("driftwatch.v1");
}

pub use v1::*;

/// The names of every section, in report order.
pub const SECTION_NAMES: &[&str] = &[
    "host",
    "processes",
    "ssh_keys",
    "log_config",
    "raid",
    "packages",
    "containers",
];
