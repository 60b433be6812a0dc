//! Human-readable views of snapshot sections for `driftwatch host show`.
//! One module per section; `--json` bypasses all of this.

pub mod containers;
pub mod host;
pub mod log_config;
pub mod packages;
pub mod processes;
pub mod raid;
pub mod ssh_keys;
pub mod table;

use driftwatch_common::proto::{Section, section::Body};

/// How to sort process tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    #[default]
    Pid,
    Mem,
    Cpu,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub sort: SortBy,
    /// 0 means no limit.
    pub limit: usize,
}

/// One section as text: a heading line, then its table or its error.
pub fn section(s: &Section, opts: &Options) -> String {
    let mut out = format!("== {} ({})", s.name, s.status);
    if !s.error.is_empty() {
        out.push_str(&format!(": {}", s.error));
    }
    out.push('\n');
    let body = match &s.body {
        Some(Body::Host(h)) => host::render(h),
        Some(Body::Processes(p)) => processes::render(p, opts),
        Some(Body::SshKeys(k)) => ssh_keys::render(k),
        Some(Body::Raid(r)) => raid::render(r),
        Some(Body::Packages(p)) => packages::render(p, opts),
        Some(Body::LogConfig(l)) => log_config::render(l),
        Some(Body::Containers(c)) => containers::render(c),
        None => String::new(),
    };
    out.push_str(&body);
    out
}
