//! The drift engine: pure functions from hosts, their latest snapshots,
//! baselines and policy (and a clock reading passed in) to findings. The
//! service runs it and stores the result; nothing here does IO.

mod access_items;
pub mod baseline;
pub mod diff;
pub mod items;
pub mod peers;
pub mod policy;
mod policy_netsec;

use driftwatch_common::proto::{Baseline, Finding, HostSummary, Snapshot};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use sha2::{Digest, Sha256};

pub use driftwatch_common::severity::{SEVERITIES, severity_rank};

/// A finding before it has an identity in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub kind: &'static str,
    /// None for a finding about the host as a whole (stale, gone).
    pub section: Option<SectionKind>,
    pub item: String,
    pub severity: Severity,
    pub rule: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub group_label: String,
    /// Outlier when held by fewer than this share of the group; None = a minority.
    pub outlier_below: Option<f64>,
    /// Missing when held by at least this share; None = a majority.
    pub missing_at_least: Option<f64>,
    /// Smaller groups are not compared: two hosts cannot outvote each other.
    pub min_group: usize,
    /// Stale after this many report intervals without a report...
    pub stale_intervals: u64,
    /// ...or after this long when set (config `stale_after`), whatever the
    /// interval.
    pub stale_after_ms: Option<i64>,
    /// Gone (and out of peer statistics) after this long.
    pub gone_after_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group_label: "group".into(),
            outlier_below: None,
            missing_at_least: None,
            min_group: 3,
            stale_intervals: 3,
            stale_after_ms: None,
            gone_after_ms: 24 * 3_600_000,
        }
    }
}

pub struct HostView<'a> {
    pub summary: &'a HostSummary,
    pub snapshot: Option<&'a Snapshot>,
}

/// fresh | stale | gone | revoked
pub fn host_state(h: &HostSummary, s: &Settings, now_ms: i64) -> &'static str {
    if h.revoked_ms > 0 {
        return "revoked";
    }
    // A host that enrolled but never reported is judged from its enrollment.
    let seen = h.last_seen_ms.max(h.enrolled_ms).max(h.first_seen_ms);
    let age = now_ms - seen;
    let interval_ms = (h.interval_s.max(1) * 1000) as i64;
    let stale_after = s
        .stale_after_ms
        .unwrap_or((s.stale_intervals as i64 * interval_ms).max(30_000));
    if age >= s.gone_after_ms {
        "gone"
    } else if age > stale_after {
        "stale"
    } else {
        "fresh"
    }
}

/// A finding's section as stored: empty for the host as a whole.
fn section_name(s: Option<SectionKind>) -> &'static str {
    s.map_or("", SectionKind::name)
}

fn finding_id(host: &str, d: &Draft) -> String {
    let mut h = Sha256::new();
    for part in [d.kind, host, section_name(d.section), &d.item, &d.rule] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..10])
}

/// Every finding that holds now, as complete Findings stamped `now_ms`.
pub fn evaluate(
    hosts: &[HostView<'_>],
    baselines: &[Baseline],
    policy: &policy::Policy,
    s: &Settings,
    now_ms: i64,
) -> Vec<Finding> {
    let mut interner = peers::Interner::default();
    let derived: Vec<Option<Derived>> = hosts
        .iter()
        .map(|h| {
            needs_snapshot(h.summary, s, now_ms)
                .then(|| Derived::of(h.summary, h.snapshot, baselines, policy, &mut interner))
        })
        .collect();
    let mut e = Evaluation::new(&interner, s, now_ms);
    for (h, d) in hosts.iter().zip(&derived) {
        e.add(h.summary.clone(), d.as_ref());
    }
    e.finish()
}

/// Whether anything is derived from this host's snapshot: only hosts still
/// in peer statistics (fresh or stale) are compared and held to policy.
pub fn needs_snapshot(h: &HostSummary, s: &Settings, now_ms: i64) -> bool {
    matches!(host_state(h, s, now_ms), "fresh" | "stale")
}

/// What drift takes from one host's latest snapshot: its interned peer
/// items and its policy and baseline drafts. It depends only on that
/// snapshot, the host's labels and image id (which baseline applies), the
/// policy and the baselines, so the evaluator keeps it between evaluations
/// and decodes a snapshot again only when one of those changed.
pub struct Derived {
    pub peer_items: peers::PeerItems,
    pub drafts: Vec<Draft>,
}

impl Derived {
    pub fn of(
        summary: &HostSummary,
        snapshot: Option<&Snapshot>,
        baselines: &[Baseline],
        policy: &policy::Policy,
        interner: &mut peers::Interner,
    ) -> Derived {
        let peer_items = peers::PeerItems::of(snapshot, interner);
        let mut drafts = Vec::new();
        if let Some(snap) = snapshot {
            drafts.extend(policy::evaluate(policy, snap));
            if let Some(b) = baseline::for_host(&summary.labels, &summary.image_id, baselines) {
                drafts.extend(baseline::evaluate(b, snap));
            }
        }
        Derived { peer_items, drafts }
    }
}

/// One evaluation, fed one host at a time with what was derived from its
/// snapshot: staleness is decided as a host is added, and a fleet's
/// snapshots never have to be in memory at once (nor, with the
/// evaluator's cache, decoded again while unchanged).
pub struct Evaluation<'a> {
    s: &'a Settings,
    now_ms: i64,
    hosts: Vec<HostSummary>,
    /// Hosts in peer statistics (fresh or stale; gone and revoked hosts
    /// leave them), with their items at the same position.
    in_stats: Vec<usize>,
    peer_items: Vec<&'a peers::PeerItems>,
    interner: &'a peers::Interner,
    host_drafts: Vec<(usize, Draft)>,
}

static NO_ITEMS: peers::PeerItems = peers::PeerItems::EMPTY;

impl<'a> Evaluation<'a> {
    pub fn new(interner: &'a peers::Interner, s: &'a Settings, now_ms: i64) -> Self {
        Evaluation {
            s,
            now_ms,
            hosts: Vec::new(),
            in_stats: Vec::new(),
            peer_items: Vec::new(),
            interner,
            host_drafts: Vec::new(),
        }
    }

    /// `derived` is what [`Derived::of`] made of the host's latest snapshot
    /// (with this evaluation's interner) when [`needs_snapshot`] holds.
    pub fn add(&mut self, summary: HostSummary, derived: Option<&'a Derived>) {
        let i = self.hosts.len();
        let state = host_state(&summary, self.s, self.now_ms);
        if matches!(state, "fresh" | "stale") {
            self.in_stats.push(i);
            self.peer_items
                .push(derived.map_or(&NO_ITEMS, |d| &d.peer_items));
            if let Some(d) = derived {
                self.host_drafts
                    .extend(d.drafts.iter().map(|d| (i, d.clone())));
            }
        }
        match state {
            "stale" | "gone" => self.host_drafts.push((
                i,
                Draft {
                    kind: if state == "stale" { "stale" } else { "gone" },
                    section: None,
                    item: String::new(),
                    severity: if state == "stale" {
                        Severity::Medium
                    } else {
                        Severity::Info
                    },
                    rule: String::new(),
                    message: format!(
                        "no report since {} ({})",
                        driftwatch_common::time::format_ms(summary.last_seen_ms),
                        driftwatch_common::time::format_age(summary.last_seen_ms, self.now_ms)
                    ),
                },
            )),
            _ => {}
        }
        self.hosts.push(summary);
    }

    /// A finding on the host added last, if it is in peer statistics.
    pub fn add_draft(&mut self, draft: Draft) {
        let i = self.hosts.len().saturating_sub(1);
        if self.in_stats.last() == Some(&i) {
            self.host_drafts.push((i, draft));
        }
    }

    pub fn finish(self) -> Vec<Finding> {
        let summaries: Vec<&HostSummary> = self.in_stats.iter().map(|&i| &self.hosts[i]).collect();
        let mut drafts: Vec<(usize, Draft)> = Vec::new();
        for (pi, ds) in peers::evaluate(&summaries, &self.peer_items, self.interner, self.s) {
            drafts.extend(ds.into_iter().map(|d| (self.in_stats[pi], d)));
        }
        drafts.extend(self.host_drafts);
        let now_ms = self.now_ms;
        drafts
            .into_iter()
            .map(|(i, d)| {
                let h = &self.hosts[i];
                Finding {
                    id: finding_id(&h.host_id, &d),
                    kind: d.kind.to_string(),
                    severity: d.severity.as_str().to_string(),
                    host_id: h.host_id.clone(),
                    hostname: h.hostname.clone(),
                    section: section_name(d.section).to_string(),
                    item: d.item,
                    message: d.message,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    resolved_ms: 0,
                    rule: d.rule,
                }
            })
            .collect()
    }
}

/// Merges what holds now into what is stored: new findings open, ongoing
/// ones are seen again, stored open ones that no longer hold resolve (and
/// stay in the record). Returns the findings to write.
pub fn reconcile(stored: &[Finding], current: Vec<Finding>, now_ms: i64) -> Vec<Finding> {
    use std::collections::HashMap;
    let by_id: HashMap<&str, &Finding> = stored.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for mut f in current {
        if !seen.insert(f.id.clone()) {
            continue;
        }
        if let Some(old) = by_id.get(f.id.as_str())
            && old.resolved_ms == 0
        {
            f.first_seen_ms = old.first_seen_ms;
        }
        out.push(f);
    }
    for f in stored {
        if f.resolved_ms == 0 && !seen.contains(&f.id) {
            let mut r = f.clone();
            r.resolved_ms = now_ms;
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
