//! Collectors: one small unit per section, run in turn by [`Collectors`].
//!
//! A collector keeps its handles across ticks (the process table, a Docker
//! client) and reads files only through [`HostFs`]. Whatever goes wrong in
//! one becomes that section's status, a log line and a counter; it never
//! aborts the snapshot.

pub mod containers;
pub mod host;
pub mod log_config;
pub mod packages;
pub mod passwd;
pub mod processes;
pub mod raid;
pub mod ssh_keys;

use std::time::Instant;

use driftwatch_common::proto::{Section, section::Body};
use driftwatch_common::snapshot::{STATUS_ERROR, STATUS_UNSUPPORTED, failed_section, ok_section};
use thiserror::Error;
use tracing::{info_span, warn};

use crate::hostfs::HostFs;

/// Why a section has no body.
#[derive(Debug, Error)]
pub enum SectionError {
    /// The host does not have the thing (no Docker, no RAID tool).
    #[error("{0}")]
    Unsupported(String),
    /// It has it, but collecting failed.
    #[error("{0}")]
    Failed(String),
}

/// What every collector gets on each tick.
#[derive(Debug, Clone)]
pub struct Context {
    pub fs: HostFs,
}

pub trait Collector: Send {
    /// The section name, as in the proto (`ssh_keys`).
    fn name(&self) -> &'static str;
    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError>;
    /// Takes the baseline a rate needs (CPU times) so that the first
    /// report's rates are measured, not zero. Most sections have none.
    fn prime(&mut self, _ctx: &Context) {}
}

/// Every section this agent knows, in report order.
pub fn all() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(host::HostCollector),
        Box::new(processes::ProcessCollector::default()),
        Box::new(ssh_keys::SshKeysCollector),
        Box::new(log_config::LogConfigCollector),
        Box::new(raid::RaidCollector::default()),
        Box::new(packages::PackagesCollector::default()),
        Box::new(containers::ContainersCollector::from_env()),
    ]
}

/// The scheduler: runs the selected collectors, turning failures into
/// section statuses.
pub struct Collectors {
    collectors: Vec<Box<dyn Collector>>,
}

impl Collectors {
    /// `only` selects sections by name; empty means all. Unknown names are
    /// an error that lists the known ones.
    pub fn new(only: &[String]) -> Result<Self, String> {
        let all = all();
        let known: Vec<&str> = all.iter().map(|c| c.name()).collect();
        if let Some(bad) = only.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(format!(
                "unknown section {bad:?}: known sections are {}",
                known.join(", ")
            ));
        }
        let collectors = all
            .into_iter()
            .filter(|c| only.is_empty() || only.iter().any(|n| n == c.name()))
            .collect();
        Ok(Collectors { collectors })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Primes every collector that keeps rates. Blocking, like
    /// [`Collectors::collect_all`]; a panic here is the next collection's
    /// to report.
    pub fn prime_all(&mut self, ctx: &Context) {
        for c in &mut self.collectors {
            let _span = info_span!("prime", section = c.name()).entered();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.prime(ctx)));
        }
    }

    /// Runs every collector once. Blocking: call from a blocking thread.
    pub fn collect_all(&mut self, ctx: &Context) -> Vec<Section> {
        self.collectors
            .iter_mut()
            .map(|c| run_one(c.as_mut(), ctx))
            .collect()
    }
}

fn run_one(c: &mut dyn Collector, ctx: &Context) -> Section {
    let name = c.name();
    let _span = info_span!("collect", section = name).entered();
    let start = Instant::now();
    // A panic in one parser must not take the snapshot down with it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.collect(ctx)));
    let us = start.elapsed().as_micros() as u64;
    match result {
        Ok(Ok(body)) => ok_section(name, body, us),
        Ok(Err(SectionError::Unsupported(why))) => {
            failed_section(name, STATUS_UNSUPPORTED, why, us)
        }
        Ok(Err(SectionError::Failed(why))) => {
            warn!(section = name, error = %why, "collection failed");
            failed_section(name, STATUS_ERROR, why, us)
        }
        Err(_) => {
            warn!(section = name, "collector panicked");
            failed_section(
                name,
                STATUS_ERROR,
                format!("{name} collector panicked (a bug: please report it)"),
                us,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Boom;
    impl Collector for Boom {
        fn name(&self) -> &'static str {
            "boom"
        }
        fn collect(&mut self, _: &Context) -> Result<Body, SectionError> {
            panic!("parser bug")
        }
    }

    #[test]
    fn a_panicking_collector_becomes_an_error_section() {
        let ctx = Context {
            fs: HostFs::default(),
        };
        let s = run_one(&mut Boom, &ctx);
        assert_eq!(s.status, "error");
        assert!(s.error.contains("panicked"));
    }

    #[test]
    fn unknown_sections_are_named() {
        let err = Collectors::new(&["procs".into()]).err().unwrap();
        assert!(err.contains("processes"), "{err}");
        assert_eq!(
            Collectors::new(&["host".into()]).unwrap().names(),
            vec!["host"]
        );
    }
}
