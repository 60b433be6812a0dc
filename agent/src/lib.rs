//! driftwatch agent: collects what a Linux server runs and reports it to the
//! collector. The binary in `src/bin` is a thin layer over this library.

pub mod collect;
pub mod hostfs;
