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
    let mut drafts: Vec<(usize, Draft)> = Vec::new();
    // Gone and revoked hosts leave peer statistics.
    let in_stats: Vec<usize> = (0..hosts.len())
        .filter(|&i| matches!(host_state(hosts[i].summary, s, now_ms), "fresh" | "stale"))
        .collect();
    let peer_views: Vec<HostView<'_>> = in_stats
        .iter()
        .map(|&i| HostView {
            summary: hosts[i].summary,
            snapshot: hosts[i].snapshot,
        })
        .collect();
    for (pi, ds) in peers::evaluate(&peer_views, s) {
        drafts.extend(ds.into_iter().map(|d| (in_stats[pi], d)));
    }
    for (i, h) in hosts.iter().enumerate() {
        let state = host_state(h.summary, s, now_ms);
        match state {
            "revoked" => continue,
            "stale" | "gone" => drafts.push((
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
                        driftwatch_common::time::format_ms(h.summary.last_seen_ms),
                        driftwatch_common::time::format_age(h.summary.last_seen_ms, now_ms)
                    ),
                },
            )),
            _ => {}
        }
        if state == "gone" {
            continue;
        }
        let Some(snap) = h.snapshot else { continue };
        drafts.extend(policy::evaluate(policy, snap).into_iter().map(|d| (i, d)));
        if let Some(b) = baseline::for_host(&h.summary.labels, &h.summary.image_id, baselines) {
            drafts.extend(baseline::evaluate(b, snap).into_iter().map(|d| (i, d)));
        }
    }
    drafts
        .into_iter()
        .map(|(i, d)| {
            let h = hosts[i].summary;
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
