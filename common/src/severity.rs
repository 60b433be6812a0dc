//! Finding severities, least to most severe. Shared by the collector, which
//! assigns them, and the CLI, which filters by them (`--fail-on`).

pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];

/// A severity's place in [`SEVERITIES`]; `None` for a name that is not one.
pub fn severity_rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|x| *x == s)
}
