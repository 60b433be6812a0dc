//! rsyslog configuration: legacy selector lines (`*.* @@host:514`,
//! `-/var/log/syslog`), `$` directives, and RainerScript (`action(…)`,
//! `if … then …`, `module(…)`, `include(…)`), mixed as real files mix them.
//!
//! The parser is pure: includes are returned as patterns for the collector to
//! expand and follow. Forwards found in commented-out lines are reported with
//! `commented = true` (someone meant to forward; nothing is sent).

mod legacy;
mod statements;
mod text;

use driftwatch_common::proto::{LogConfigIssue, LogForward, LogOutput};

/// `$IncludeConfig PATTERN` or `include(file="PATTERN")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub pattern: String,
    pub line: u32,
    /// `include(mode="optional")`: a missing file is not an error.
    pub optional: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// `daemon` is "rsyslog"; `file` is left for the caller to fill in.
    pub forwards: Vec<LogForward>,
    pub outputs: Vec<LogOutput>,
    pub includes: Vec<Include>,
    /// Modules loaded, in order of appearance.
    pub modules: Vec<String>,
    pub issues: Vec<LogConfigIssue>,
}

pub fn parse(text: &str) -> Parsed {
    let prepared = text::prepare(text);
    let mut out = Parsed::default();
    statements::run(&prepared.active, 1, false, &mut out);
    for run in &prepared.comments {
        statements::run(&run.lines, run.first_line, true, &mut out);
    }
    out.forwards.sort_by_key(|f| f.line);
    out
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
