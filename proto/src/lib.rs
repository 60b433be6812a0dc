//! The driftwatch wire schema. Generated code lives here and only here; the
//! section payload messages double as the snapshot model (see ARCHITECTURE.md).

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("driftwatch.v1");
}

pub use v1::*;

/// The encoded `FileDescriptorSet` protoc made of the schema: the proto's
/// own names, for tests that check tables against them.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

include!(concat!(env!("OUT_DIR"), "/methods.rs"));
