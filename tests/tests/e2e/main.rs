//! The end-to-end suite as one test binary: each module starts the real
//! binaries for one concern. One binary links once instead of once per
//! file, and `cargo test -p driftwatch-tests --test e2e MODULE::` runs one
//! concern alone.

mod answers;
mod caps;
mod collectors;
mod corrupt;
mod demo;
mod drift;
mod exhaustion;
mod failover;
mod foundation;
mod hostile;
mod identity;
mod image;
mod loadgen;
mod metrics;
mod netsec;
mod notify;
mod offboard;
mod packaging;
mod pgstore;
mod prometheus;
mod reliability;
mod report;
mod roles;
mod sweep;
mod sweep_proof;
mod terminal;
mod trust;
