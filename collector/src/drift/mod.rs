//! The drift engine: pure functions from hosts, their latest snapshots,
//! baselines and policy (and a clock reading passed in) to findings. The
//! service runs it and stores the result; nothing here does IO.

pub mod baseline;
pub mod diff;
pub mod items;
pub mod peers;
pub mod policy;
pub mod version;

use driftwatch_common::proto::{Baseline, Finding, HostSummary, Snapshot};
use sha2::{Digest, Sha256};

pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];

pub fn severity_rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|x| *x == s)
}

/// A finding before it has an identity in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub kind: &'static str,
    pub section: String,
    pub item: String,
    pub severity: String,
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

fn finding_id(host: &str, d: &Draft) -> String {
    let mut h = Sha256::new();
    for part in [d.kind, host, &d.section, &d.item, &d.rule] {
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
    let mut e = Evaluation::new(baselines, policy, s, now_ms);
    for h in hosts {
        e.add(h.summary.clone(), h.snapshot);
    }
    e.finish()
}

/// One evaluation, fed one host at a time: what concerns a host alone
/// (policy, baseline, staleness) is decided as it is added, and only its
/// interned peer items are kept, so a fleet's snapshots never have to be
/// in memory at once.
pub struct Evaluation<'a> {
    baselines: &'a [Baseline],
    policy: &'a policy::Policy,
    s: &'a Settings,
    now_ms: i64,
    hosts: Vec<HostSummary>,
    /// Hosts in peer statistics (fresh or stale; gone and revoked hosts
    /// leave them), with their items at the same position.
    in_stats: Vec<usize>,
    peer_items: Vec<peers::PeerItems>,
    interner: peers::Interner,
    host_drafts: Vec<(usize, Draft)>,
}

impl<'a> Evaluation<'a> {
    pub fn new(
        baselines: &'a [Baseline],
        policy: &'a policy::Policy,
        s: &'a Settings,
        now_ms: i64,
    ) -> Self {
        Evaluation {
            baselines,
            policy,
            s,
            now_ms,
            hosts: Vec::new(),
            in_stats: Vec::new(),
            peer_items: Vec::new(),
            interner: peers::Interner::default(),
            host_drafts: Vec::new(),
        }
    }

    pub fn add(&mut self, summary: HostSummary, snapshot: Option<&Snapshot>) {
        let i = self.hosts.len();
        let state = host_state(&summary, self.s, self.now_ms);
        if matches!(state, "fresh" | "stale") {
            self.in_stats.push(i);
            self.peer_items
                .push(peers::PeerItems::of(snapshot, &mut self.interner));
        }
        match state {
            "stale" | "gone" => self.host_drafts.push((
                i,
                Draft {
                    kind: if state == "stale" { "stale" } else { "gone" },
                    section: String::new(),
                    item: String::new(),
                    severity: if state == "stale" {
                        "medium".into()
                    } else {
                        "info".into()
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
        if !matches!(state, "gone" | "revoked")
            && let Some(snap) = snapshot
        {
            self.host_drafts.extend(
                policy::evaluate(self.policy, snap)
                    .into_iter()
                    .map(|d| (i, d)),
            );
            if let Some(b) = baseline::for_host(&summary.labels, &summary.image_id, self.baselines)
            {
                self.host_drafts
                    .extend(baseline::evaluate(b, snap).into_iter().map(|d| (i, d)));
            }
        }
        self.hosts.push(summary);
    }

    pub fn finish(self) -> Vec<Finding> {
        let summaries: Vec<&HostSummary> = self.in_stats.iter().map(|&i| &self.hosts[i]).collect();
        let mut drafts: Vec<(usize, Draft)> = Vec::new();
        for (pi, ds) in peers::evaluate(&summaries, &self.peer_items, &self.interner, self.s) {
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
                    severity: d.severity,
                    host_id: h.host_id.clone(),
                    hostname: h.hostname.clone(),
                    section: d.section,
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
mod tests;
