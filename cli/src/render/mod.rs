//! Human-readable views of snapshot sections for `driftwatch host show`.
//! One module per section, and the tables of other answers
//! (`audit`); `--json` bypasses all of this.

pub mod accounts;
pub mod audit;
pub mod containers;
pub mod escape;
pub mod host;
pub mod listening;
pub mod log_config;
pub mod packages;
pub mod processes;
pub mod raid;
pub mod ssh_keys;
pub mod sudoers;
pub mod table;
pub mod updates;

use driftwatch_common::proto::{Section, section::Body};
use driftwatch_common::section::SectionKind;
use driftwatch_common::time::{format_age, format_ms};

/// "1 host", "3 hosts": a count with its noun in the right number (nouns
/// that add -s; [`count_of`] for the others).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Like [`count`] with the plural spelled out ("1 entry", "2 entries").
pub fn count_of(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A section whose stable content did not change is reported as a hash and
/// keeps the body of an earlier report, volatile values (RSS, CPU%, uptime,
/// container state) included: say how old they are when older than the
/// snapshot, so nobody reads a 14-minute-old CPU% as live.
pub fn values_age(s: &Section, snapshot_ms: i64, now_ms: i64) -> Option<String> {
    let at = s.body_collected_at_ms;
    let volatile = s
        .body
        .as_ref()
        .is_some_and(|b| SectionKind::of_body(b).has_volatile_values());
    (volatile && at > 0 && snapshot_ms - at >= 1_000).then(|| {
        format!(
            "values as of {} ({}; not re-sent while unchanged)",
            format_ms(at),
            format_age(at, now_ms)
        )
    })
}

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

/// One section as text: a heading line (with `note`, if any), then its
/// table or its error.
pub fn section(s: &Section, opts: &Options, note: Option<&str>) -> String {
    let mut out = if s.items_truncated > 0 || !s.truncated.is_empty() {
        format!("== {} ({}, TRUNCATED)", s.name, s.status)
    } else {
        format!("== {} ({})", s.name, s.status)
    };
    if !s.error.is_empty() {
        // One line: a newline in a host's error text could fake a heading.
        out.push_str(&format!(": {}", escape::escape_cell(&s.error)));
    }
    if let Some(note) = note {
        out.push_str(&format!(" · {note}"));
    }
    out.push('\n');
    if s.items_truncated > 0 || !s.truncated.is_empty() {
        // Cut at the caps (common/src/caps.rs): what follows is partial.
        let what = match s.truncated.as_str() {
            "" => format!("{} items left out", s.items_truncated),
            t => escape::escape_cell(t).to_string(),
        };
        out.push_str(&format!("! {what}: the lists below are partial\n"));
    }
    let body = s.body.as_ref().map(|b| body(b, opts)).unwrap_or_default();
    out.push_str(&body);
    out
}

/// The renderer of each section kind: one arm per oneof field, so a new
/// section does not compile without one.
fn body(b: &Body, opts: &Options) -> String {
    match b {
        Body::Host(h) => host::render(h),
        Body::Processes(p) => processes::render(p, opts),
        Body::SshKeys(k) => ssh_keys::render(k),
        Body::Raid(r) => raid::render(r),
        Body::Packages(p) => packages::render(p, opts),
        Body::LogConfig(l) => log_config::render(l),
        Body::Containers(c) => containers::render(c),
        Body::Accounts(a) => accounts::render(a),
        Body::Sudoers(s) => sudoers::render(s),
        Body::Listening(l) => listening::render(l),
        Body::Updates(u) => updates::render(u, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::HostSection;

    /// Every section kind renders under its own heading with a body of its
    /// own (the dispatch is exhaustive; this checks it is not empty).
    #[test]
    fn every_section_kind_renders() {
        let mut g = driftwatch_common::testgen::Gen::new(3);
        for &kind in SectionKind::ALL {
            let s = driftwatch_common::testgen::section(&mut g, kind);
            let text = section(&s, &Options::default(), None);
            let (heading, rest) = text.split_once('\n').unwrap();
            assert_eq!(heading, format!("== {kind} (ok)"));
            assert!(!rest.trim().is_empty(), "{kind}: {text}");
        }
    }

    #[test]
    fn a_truncated_section_says_so_under_its_heading() {
        let s = Section {
            name: "packages".into(),
            status: "ok".into(),
            body: Some(Body::Packages(Default::default())),
            items_truncated: 40,
            truncated: "truncated: 40 packages beyond the cap of 100000\u{1b}[2J".into(),
            ..Default::default()
        };
        let text = section(&s, &Options::default(), None);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("== packages (ok, TRUNCATED)"));
        assert_eq!(
            lines.next(),
            Some(
                "! truncated: 40 packages beyond the cap of 100000\\e[2J: the lists below are partial"
            )
        );
        let whole = Section {
            items_truncated: 0,
            truncated: String::new(),
            ..s
        };
        assert!(!section(&whole, &Options::default(), None).contains("TRUNCATED"));
    }

    #[test]
    fn old_values_are_dated_in_the_heading() {
        let mut s = Section {
            name: "host".into(),
            status: "ok".into(),
            body: Some(Body::Host(HostSection::default())),
            body_collected_at_ms: 1_764_000_000_000,
            ..Default::default()
        };
        let snap = s.body_collected_at_ms + 14 * 60_000;
        let note = values_age(&s, snap, snap + 5_000).unwrap();
        assert_eq!(
            note,
            "values as of 2025-11-24T16:00:00Z (14m ago; not re-sent while unchanged)"
        );
        let text = section(&s, &Options::default(), Some(&note));
        assert!(
            text.starts_with(&format!("== host (ok) · {note}\n")),
            "{text}"
        );
        // Values as new as the snapshot, unknown (0), or no body: no note.
        assert_eq!(values_age(&s, s.body_collected_at_ms, snap), None);
        s.body_collected_at_ms = 0;
        assert_eq!(values_age(&s, snap, snap), None);
        s.body_collected_at_ms = 1;
        s.body = None;
        assert_eq!(values_age(&s, snap, snap), None);
        assert_eq!(section(&s, &Options::default(), None), "== host (ok)\n");
        // Nothing volatile in the section: nothing to date.
        s.body = Some(Body::Packages(Default::default()));
        assert_eq!(values_age(&s, snap, snap), None);
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1u32, "host"), "1 host");
        assert_eq!(count(0u32, "host"), "0 hosts");
        assert_eq!(count(2u64, "line"), "2 lines");
        assert_eq!(count_of(1u32, "entry", "entries"), "1 entry");
        assert_eq!(count_of(3u32, "entry", "entries"), "3 entries");
    }
}
