//! Value parsers for the CLI's flags: a bad value is bad usage, refused by
//! clap (exit 2, the flag named in the message) before anything connects.
//! Word vocabularies are case-insensitive (`HIGH` is `high`).

use std::time::{Duration, UNIX_EPOCH};

use clap::ValueEnum;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use driftwatch_common::time::now_ms;

/// `--min-severity`, `--fail-on`: the collector's severities, any case.
pub fn severity() -> impl TypedValueParser<Value = Severity> {
    PossibleValuesParser::new(Severity::WORDS)
        .map(|w| Severity::of(&w.to_ascii_lowercase()).expect("clap let through only a severity"))
}

/// `--section`: a section name, any case, given back as the agent names it.
pub fn section() -> impl TypedValueParser<Value = String> {
    PossibleValuesParser::new(SectionKind::WORDS).map(|w| w.to_ascii_lowercase())
}

/// A host's state as `hosts` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostState {
    Fresh,
    Stale,
    Gone,
    Revoked,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Fresh => "fresh",
            HostState::Stale => "stale",
            HostState::Gone => "gone",
            HostState::Revoked => "revoked",
        }
    }
}

/// `--sort`: pid, mem (also rss, memory) or cpu, any case.
pub fn sort(s: &str) -> Result<crate::render::SortBy, String> {
    use crate::render::SortBy;
    match s.to_ascii_lowercase().as_str() {
        "pid" => Ok(SortBy::Pid),
        "mem" | "rss" | "memory" => Ok(SortBy::Mem),
        "cpu" => Ok(SortBy::Cpu),
        _ => Err(format!(
            "unknown sort {s:?}: use pid, mem (rss, memory) or cpu"
        )),
    }
}

/// A duration like 30s, 5m, 1h30m, 7d.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}): use e.g. 30s, 5m, 2h or 7d"))
}

/// A token lifetime: a duration from 1s to 366 days.
pub fn ttl(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(366 * 86_400) {
        return Err(format!("{s:?}: a token lives from 1s to 366d"));
    }
    Ok(d)
}

/// An RFC 3339 time or a duration ago ("2h", "7d"), as Unix milliseconds.
pub fn time(s: &str) -> Result<i64, String> {
    time_at(s, now_ms())
}

pub fn time_at(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0));
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(now_ms - d.as_millis() as i64),
        Err(_) => Err(format!(
            "{s:?}: use a time like 2026-11-26T04:00:00Z or a duration ago like 2h or 7d"
        )),
    }
}

/// A point in a host's history for `diff --from/--to`: a sequence number,
/// an RFC 3339 time, or a duration ago. Sent to the collector as the seq,
/// or the time in RFC 3339 with milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point(pub String);

pub fn point(s: &str) -> Result<Point, String> {
    let s = s.trim();
    if let Ok(seq) = s.parse::<u64>() {
        return Ok(Point(seq.to_string()));
    }
    let ms = time(s).map_err(|_| {
        format!(
            "{s:?}: use a sequence number (as `history` shows), a time like 2026-11-26T04:00:00Z or a duration ago like 2h"
        )
    })?;
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    Ok(Point(humantime::format_rfc3339_millis(t).to_string()))
}

/// A label filter `key=value`.
pub fn label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().into(), v.trim().into())),
        _ => Err(format!("{s:?}: give a label as key=value (group=web)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_case_insensitive_and_synonyms_accepted() {
        assert!(matches!(sort("Memory"), Ok(crate::render::SortBy::Mem)));
        assert!(matches!(sort("RSS"), Ok(crate::render::SortBy::Mem)));
        assert!(sort("size").unwrap_err().contains("pid, mem"));
    }

    #[test]
    fn times_and_points() {
        let now = 1_000_000_000_000;
        assert_eq!(time_at("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(
            time_at("2001-09-09T01:46:40Z", 0).unwrap(),
            1_000_000_000_000
        );
        assert!(time_at("yesterday", now).is_err());
        assert_eq!(point("17").unwrap(), Point("17".into()));
        assert_eq!(
            point("2001-09-09T01:46:40Z").unwrap(),
            Point("2001-09-09T01:46:40.000Z".into())
        );
        assert!(point("-3").is_err());
        assert!(ttl("0s").is_err() && ttl("367d").is_err() && ttl("30d").is_ok());
        assert_eq!(label("group=web").unwrap(), ("group".into(), "web".into()));
        assert!(label("web").is_err());
    }
}
