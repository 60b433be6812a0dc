//! Collectors: one small unit per section, run in turn by [`Collectors`].
//!
//! A collector keeps its handles across ticks (the process table, a Docker
//! client) and reads files only through [`HostFs`]. Whatever goes wrong in
//! one becomes that section's status, a log line and a counter; it never
//! aborts the snapshot.

pub mod accounts;
pub mod containers;
pub mod host;
pub mod listening;
pub mod log_config;
pub mod packages;
pub mod passwd;
pub mod processes;
pub mod raid;
pub mod ssh_keys;
pub mod sudoers;
pub mod updates;

use std::time::Instant;

use driftwatch_common::caps;
use driftwatch_common::proto::{Section, section::Body};
use driftwatch_common::section::SectionKind;
use driftwatch_common::snapshot::{failed_section, ok_section};
use driftwatch_common::vocab::CollectionStatus;
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
    /// The section this collects.
    fn kind(&self) -> SectionKind;
    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError>;
    /// Takes the baseline a rate needs (CPU times) so that the first
    /// report's rates are measured, not zero. Most sections have none.
    fn prime(&mut self, _ctx: &Context) {}
    /// What the last `collect` stopped reading at a cap of
    /// [`driftwatch_common::caps`] (processes stops walking /proc there, so
    /// a host with 500,000 processes costs the agent the cap, not all of
    /// them). The scheduler cuts every other list itself.
    fn take_truncation(&mut self) -> caps::Truncation {
        caps::Truncation::default()
    }
}

/// The collector of a section kind: one arm per kind, so a kind cannot be
/// declared without the agent collecting it.
pub fn collector(kind: SectionKind) -> Box<dyn Collector> {
    match kind {
        SectionKind::Host => Box::new(host::HostCollector),
        SectionKind::Processes => Box::new(processes::ProcessCollector::default()),
        SectionKind::SshKeys => Box::new(ssh_keys::SshKeysCollector),
        SectionKind::LogConfig => Box::new(log_config::LogConfigCollector),
        SectionKind::Raid => Box::new(raid::RaidCollector::default()),
        SectionKind::Packages => Box::new(packages::PackagesCollector::default()),
        SectionKind::Containers => Box::new(containers::ContainersCollector::from_env()),
        SectionKind::Accounts => Box::new(accounts::AccountsCollector),
        SectionKind::Sudoers => Box::new(sudoers::SudoersCollector),
        SectionKind::Listening => Box::new(listening::ListeningCollector::default()),
        SectionKind::Updates => Box::new(updates::UpdatesCollector::default()),
    }
}

/// Every section this agent knows, in report order.
pub fn all() -> Vec<Box<dyn Collector>> {
    SectionKind::ALL.iter().map(|&k| collector(k)).collect()
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
        SectionKind::check_names(only).map_err(|e| e.to_string())?;
        let collectors = SectionKind::ALL
            .iter()
            .filter(|k| only.is_empty() || only.iter().any(|n| n == k.name()))
            .map(|&k| collector(k))
            .collect();
        Ok(Collectors { collectors })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.kind().name()).collect()
    }

    /// Primes every collector that keeps rates. Blocking, like
    /// [`Collectors::collect_all`]; a panic here is the next collection's
    /// to report.
    pub fn prime_all(&mut self, ctx: &Context) {
        for c in &mut self.collectors {
            let _span = info_span!("prime", section = c.kind().name()).entered();
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
    let kind = c.kind();
    let name = kind.name();
    let _span = info_span!("collect", section = name).entered();
    let start = Instant::now();
    // A panic in one parser must not take the snapshot down with it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.collect(ctx)));
    let us = start.elapsed().as_micros() as u64;
    match result {
        Ok(Ok(mut body)) => {
            let mut cut = c.take_truncation();
            caps::apply(&mut body, &mut cut);
            let mut s = ok_section(body, us);
            if !cut.is_empty() {
                warn!(section = name, truncated = %cut.message(), "section over its caps: items left out");
                cut.mark(&mut s, None);
                s.hash = driftwatch_common::stable::section_hash(&s);
            }
            s
        }
        Ok(Err(SectionError::Unsupported(why))) => {
            failed_section(kind, CollectionStatus::Unsupported, why, us)
        }
        Ok(Err(SectionError::Failed(why))) => {
            warn!(section = name, error = %why, "collection failed");
            failed_section(kind, CollectionStatus::Error, why, us)
        }
        Err(_) => {
            warn!(section = name, "collector panicked");
            failed_section(
                kind,
                CollectionStatus::Error,
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
        fn kind(&self) -> SectionKind {
            SectionKind::Raid
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

    /// Every kind has its collector, in report order, and each collects
    /// the kind it is listed for.
    #[test]
    fn every_section_kind_has_its_collector() {
        let kinds: Vec<SectionKind> = all().iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, SectionKind::ALL);
    }

    /// Generated input over the cap: a collector that returns more packages
    /// than the cap allows is cut, counted and marked, and the hash is that
    /// of what is sent.
    struct Many(usize);
    impl Collector for Many {
        fn kind(&self) -> SectionKind {
            SectionKind::Packages
        }
        fn collect(&mut self, _: &Context) -> Result<Body, SectionError> {
            let packages = (0..self.0)
                .map(|i| driftwatch_common::proto::Package {
                    name: format!("p{i:06}"),
                    ..Default::default()
                })
                .collect();
            Ok(Body::Packages(driftwatch_common::proto::PackagesSection {
                packages,
                ..Default::default()
            }))
        }
    }

    #[test]
    fn a_section_over_its_cap_is_cut_and_says_so() {
        let ctx = Context {
            fs: HostFs::default(),
        };
        let s = run_one(&mut Many(caps::PACKAGES + 25), &ctx);
        assert_eq!(s.status, "ok");
        assert_eq!(s.items_truncated, 25);
        assert_eq!(
            s.truncated,
            format!(
                "truncated: 25 packages beyond the cap of {}",
                caps::PACKAGES
            )
        );
        let Some(Body::Packages(p)) = &s.body else {
            panic!("{s:?}")
        };
        assert_eq!(p.packages.len(), caps::PACKAGES);
        assert_eq!(s.hash, driftwatch_common::stable::section_hash(&s));
        let whole = run_one(&mut Many(3), &ctx);
        assert_eq!((whole.items_truncated, whole.truncated.as_str()), (0, ""));
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
