//! What the fleet report shows, computed from Admin answers alone (hosts,
//! open findings, each host's ssh_keys and raid sections): pure, so the
//! page and `report --json` say the same and tests need no collector.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{Finding, HostSummary, RaidSection, Section};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use serde::Serialize;

/// The grid's column for findings tied to no section (stale, gone, an
/// unconfirmed image baseline): they are about the host as a whole.
pub const HOST_WIDE: &str = "host-wide";

/// A key is "on many hosts" from this many on: one key on two machines is
/// already a shared credential worth seeing.
pub const SHARED_KEY_MIN_HOSTS: usize = 2;

/// RAID verdicts, best first (agent/src/parse/verdict.rs's order).
const VERDICTS: &[&str] = &["healthy", "warning", "rebuilding", "degraded", "failed"];

/// One host's latest snapshot, as far as the report reads it.
#[derive(Debug, Default, Clone)]
pub struct HostData {
    pub summary: HostSummary,
    /// Its ssh_keys and raid sections (others are not asked for).
    pub sections: Vec<Section>,
}

#[derive(Debug, Serialize)]
pub struct FleetReport {
    pub generated_ms: i64,
    /// The grid's columns: every section kind, then [`HOST_WIDE`].
    pub columns: Vec<String>,
    pub hosts: u64,
    /// Open findings, worst first, then by host and kind.
    pub findings: Vec<Finding>,
    /// Open findings per severity word, lowest first (every severity
    /// listed, zeros included, so a script can read them by name).
    pub by_severity: Vec<SeverityCount>,
    /// Sorted by group name; hosts without a group label last.
    pub groups: Vec<Group>,
    /// Keys on at least [`SHARED_KEY_MIN_HOSTS`] hosts, most hosts first.
    pub shared_keys: Vec<SharedKey>,
    /// Hosts that report RAID, worst verdict first.
    pub raid: Vec<RaidHost>,
}

#[derive(Debug, Serialize)]
pub struct SeverityCount {
    pub severity: String,
    pub open: u64,
}

#[derive(Debug, Serialize)]
pub struct Group {
    /// The `group` label's value; empty for hosts without one.
    pub name: String,
    pub hosts: Vec<HostRow>,
}

#[derive(Debug, Serialize)]
pub struct HostRow {
    pub host_id: String,
    pub hostname: String,
    pub os: String,
    pub state: String,
    pub last_seen_ms: i64,
    pub labels: Vec<(String, String)>,
    /// One per column, in [`FleetReport::columns`] order.
    pub cells: Vec<Cell>,
    pub open_findings: u64,
    /// Key lines in its authorized_keys files.
    pub keys: u64,
    /// Its RAID section's verdict; empty without one.
    pub raid_verdict: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Cell {
    /// The section's status in the latest snapshot (ok, error,
    /// unsupported, …); empty when it sent none (and for [`HOST_WIDE`]).
    pub status: String,
    /// The worst open finding's severity; empty when none is open.
    pub worst: String,
    pub open: u64,
}

#[derive(Debug, Serialize)]
pub struct SharedKey {
    pub fingerprint: String,
    /// ssh-keygen's short name (ED25519, RSA, …).
    pub label: String,
    /// Every comment it is written with (they may differ per host).
    pub comments: Vec<String>,
    pub users: Vec<String>,
    /// (host id, hostname), sorted by host id.
    pub hosts: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct RaidHost {
    pub host_id: String,
    pub hostname: String,
    pub verdict: String,
    /// md arrays, then controllers with their virtual drives.
    pub units: Vec<RaidUnit>,
    /// What could not be read, in words.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RaidUnit {
    /// "md0", "controller 0", "controller 0 VD 0/0".
    pub name: String,
    /// "raid1 active [UU_]", "LSI 9361-8i Optimal", "RAID6 Dgrd".
    pub state: String,
    pub verdict: String,
    pub reasons: Vec<String>,
}

/// How bad a RAID verdict is; a word this build does not know counts as
/// the worst, so it is looked at rather than hidden.
pub fn verdict_rank(v: &str) -> usize {
    VERDICTS
        .iter()
        .position(|w| *w == v)
        .unwrap_or(VERDICTS.len())
}

fn severity_of(f: &Finding) -> Option<Severity> {
    Severity::of(&f.severity)
}

/// Builds the report from what the collector answered. `findings` may
/// hold resolved ones; only open ones count.
pub fn build(hosts: Vec<HostData>, findings: Vec<Finding>, now_ms: i64) -> FleetReport {
    let columns: Vec<String> = SectionKind::WORDS
        .iter()
        .map(|w| w.to_string())
        .chain([HOST_WIDE.to_string()])
        .collect();
    let mut findings: Vec<Finding> = findings
        .into_iter()
        .filter(|f| f.resolved_ms == 0)
        .collect();
    // Worst first; an unknown word (a newer collector's) sorts as lowest,
    // as `drift --fail-on` treats it.
    findings.sort_by(|a, b| {
        let (sa, sb) = (severity_of(a), severity_of(b));
        sb.cmp(&sa)
            .then_with(|| a.host_id.cmp(&b.host_id))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.id.cmp(&b.id))
    });
    let by_severity = Severity::ALL
        .iter()
        .map(|s| SeverityCount {
            severity: s.as_str().to_string(),
            open: findings
                .iter()
                .filter(|f| severity_of(f) == Some(*s))
                .count() as u64,
        })
        .collect();

    // (host, column) → (worst, count)
    let mut cell_findings: HashMap<(&str, &str), (Option<Severity>, u64)> = HashMap::new();
    for f in &findings {
        let col = if f.section.is_empty() {
            HOST_WIDE
        } else {
            f.section.as_str()
        };
        let e = cell_findings
            .entry((f.host_id.as_str(), col))
            .or_insert((None, 0));
        e.0 = e.0.max(severity_of(f));
        e.1 += 1;
    }

    let mut groups: BTreeMap<(bool, String), Vec<HostRow>> = BTreeMap::new();
    let mut keys: BTreeMap<String, KeyAcc> = BTreeMap::new();
    let mut raid = Vec::new();
    for h in &hosts {
        let s = &h.summary;
        let cells = columns
            .iter()
            .map(|col| {
                let status = s
                    .sections
                    .iter()
                    .find(|x| &x.name == col)
                    .map(|x| x.status.clone())
                    .unwrap_or_default();
                let (worst, open) = cell_findings
                    .get(&(s.host_id.as_str(), col.as_str()))
                    .copied()
                    .unwrap_or((None, 0));
                // Findings of a word this build does not know still count
                // and still colour the cell, as the lowest severity.
                let worst = match (worst, open) {
                    (Some(w), _) => w.as_str().to_string(),
                    (None, 0) => String::new(),
                    (None, _) => Severity::Info.as_str().to_string(),
                };
                Cell {
                    status,
                    worst,
                    open,
                }
            })
            .collect::<Vec<_>>();
        let open_findings = cells.iter().map(|c| c.open).sum();
        let mut key_lines = 0;
        let mut raid_verdict = String::new();
        for sec in &h.sections {
            match &sec.body {
                Some(Body::SshKeys(k)) => {
                    for file in &k.files {
                        for key in &file.keys {
                            key_lines += 1;
                            let acc = keys.entry(key.fingerprint.clone()).or_default();
                            acc.label.clone_from(&key.label);
                            if !key.comment.is_empty() {
                                acc.comments.insert(key.comment.clone());
                            }
                            acc.users.insert(file.user.clone());
                            acc.hosts.insert((s.host_id.clone(), s.hostname.clone()));
                        }
                    }
                }
                Some(Body::Raid(r)) => {
                    raid_verdict.clone_from(&r.verdict);
                    raid.push(raid_host(s, r));
                }
                _ => {}
            }
        }
        let group = s
            .labels
            .iter()
            .find(|l| l.key == "group")
            .map(|l| l.value.clone())
            .unwrap_or_default();
        groups
            .entry((group.is_empty(), group))
            .or_default()
            .push(HostRow {
                host_id: s.host_id.clone(),
                hostname: s.hostname.clone(),
                os: s.os.clone(),
                state: s.state.clone(),
                last_seen_ms: s.last_seen_ms,
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect(),
                cells,
                open_findings,
                keys: key_lines,
                raid_verdict,
            });
    }
    let groups = groups
        .into_iter()
        .map(|((_, name), mut hosts)| {
            hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.host_id.cmp(&b.host_id)));
            Group { name, hosts }
        })
        .collect();

    let mut shared_keys: Vec<SharedKey> = keys
        .into_iter()
        .filter(|(_, a)| a.hosts.len() >= SHARED_KEY_MIN_HOSTS)
        .map(|(fingerprint, a)| SharedKey {
            fingerprint,
            label: a.label,
            comments: a.comments.into_iter().collect(),
            users: a.users.into_iter().collect(),
            hosts: a.hosts.into_iter().collect(),
        })
        .collect();
    // Stable: most hosts first, then by fingerprint (BTreeMap order).
    shared_keys.sort_by_key(|k| std::cmp::Reverse(k.hosts.len()));
    raid.sort_by(|a, b| {
        verdict_rank(&b.verdict)
            .cmp(&verdict_rank(&a.verdict))
            .then_with(|| a.hostname.cmp(&b.hostname))
    });

    FleetReport {
        generated_ms: now_ms,
        columns,
        hosts: hosts.len() as u64,
        findings,
        by_severity,
        groups,
        shared_keys,
        raid,
    }
}

#[derive(Default)]
struct KeyAcc {
    label: String,
    comments: BTreeSet<String>,
    users: BTreeSet<String>,
    hosts: BTreeSet<(String, String)>,
}

fn raid_host(s: &HostSummary, r: &RaidSection) -> RaidHost {
    let mut units = Vec::new();
    for a in &r.md_arrays {
        let mut state = [a.level.as_str(), a.state.as_str()]
            .iter()
            .filter(|w| !w.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if !a.slot_map.is_empty() {
            state.push_str(&format!(" [{}]", a.slot_map));
        }
        if let Some(sync) = &a.sync {
            state.push_str(&format!(" {} {:.1}%", sync.action, sync.percent));
        }
        units.push(RaidUnit {
            name: a.name.clone(),
            state,
            verdict: a.verdict.clone(),
            reasons: a.reasons.clone(),
        });
    }
    for c in &r.controllers {
        units.push(RaidUnit {
            name: format!("controller {}", c.id),
            state: format!("{} {}", c.model, c.status).trim().to_string(),
            verdict: c.verdict.clone(),
            reasons: c.reasons.clone(),
        });
        for v in &c.virtual_drives {
            units.push(RaidUnit {
                name: format!("controller {} VD {}", c.id, v.id),
                state: format!("{} {}", v.raid_level, v.state).trim().to_string(),
                verdict: v.verdict.clone(),
                reasons: v.reasons.clone(),
            });
        }
    }
    RaidHost {
        host_id: s.host_id.clone(),
        hostname: s.hostname.clone(),
        verdict: r.verdict.clone(),
        units,
        problems: r
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.source, p.message))
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use driftwatch_common::proto::{
        AuthorizedKey, AuthorizedKeysFile, Label, MdArray, SectionStatus, SshKeysSection,
    };

    pub(crate) fn host(id: &str, name: &str, group: &str) -> HostData {
        HostData {
            summary: HostSummary {
                host_id: id.into(),
                hostname: name.into(),
                os: "Debian GNU/Linux 12".into(),
                state: "fresh".into(),
                labels: if group.is_empty() {
                    vec![]
                } else {
                    vec![Label {
                        key: "group".into(),
                        value: group.into(),
                    }]
                },
                sections: ["host", "ssh_keys", "raid", "packages"]
                    .iter()
                    .map(|n| SectionStatus {
                        name: n.to_string(),
                        status: "ok".into(),
                        error: String::new(),
                    })
                    .collect(),
                ..Default::default()
            },
            sections: vec![],
        }
    }

    pub(crate) fn finding(host: &str, section: &str, severity: &str) -> Finding {
        Finding {
            id: format!("{host}-{section}-{severity}"),
            kind: "policy".into(),
            severity: severity.into(),
            host_id: host.into(),
            hostname: host.into(),
            section: section.into(),
            message: format!("{section} is off"),
            first_seen_ms: 1,
            last_seen_ms: 2,
            ..Default::default()
        }
    }

    pub(crate) fn with_key(mut h: HostData, fp: &str, comment: &str) -> HostData {
        h.sections.push(Section {
            name: "ssh_keys".into(),
            status: "ok".into(),
            body: Some(Body::SshKeys(SshKeysSection {
                files: vec![AuthorizedKeysFile {
                    user: "root".into(),
                    path: "/root/.ssh/authorized_keys".into(),
                    keys: vec![AuthorizedKey {
                        line: 1,
                        label: "ED25519".into(),
                        fingerprint: fp.into(),
                        comment: comment.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        h
    }

    pub(crate) fn with_md(mut h: HostData, verdict: &str) -> HostData {
        h.sections.push(Section {
            name: "raid".into(),
            status: "ok".into(),
            body: Some(Body::Raid(RaidSection {
                verdict: verdict.into(),
                md_arrays: vec![MdArray {
                    name: "md0".into(),
                    level: "raid1".into(),
                    state: "active".into(),
                    slot_map: if verdict == "healthy" { "UU" } else { "U_" }.into(),
                    verdict: verdict.into(),
                    reasons: if verdict == "healthy" {
                        vec![]
                    } else {
                        vec!["1 of 2 slots missing".into()]
                    },
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        h
    }

    #[test]
    fn cells_take_the_worst_open_finding_and_count_every_one() {
        let mut resolved = finding("w1", "packages", "critical");
        resolved.resolved_ms = 5;
        let r = build(
            vec![host("w1", "web-1", "web"), host("w2", "web-2", "web")],
            vec![
                finding("w1", "packages", "low"),
                finding("w1", "packages", "high"),
                finding("w1", "", "medium"),
                resolved,
            ],
            0,
        );
        assert_eq!(r.findings.len(), 3, "resolved ones are left out");
        assert_eq!(r.findings[0].severity, "high", "worst first");
        let w1 = &r.groups[0].hosts[0];
        let col = |name: &str| r.columns.iter().position(|c| c == name).unwrap();
        assert_eq!(
            w1.cells[col("packages")],
            Cell {
                status: "ok".into(),
                worst: "high".into(),
                open: 2
            }
        );
        assert_eq!(w1.cells[col(HOST_WIDE)].worst, "medium");
        assert_eq!(w1.cells[col("containers")].status, "", "not sent");
        assert_eq!(w1.open_findings, 3);
        assert_eq!(r.groups[0].hosts[1].open_findings, 0);
        let sev: Vec<(&str, u64)> = r
            .by_severity
            .iter()
            .map(|s| (s.severity.as_str(), s.open))
            .collect();
        assert_eq!(
            sev,
            [
                ("info", 0),
                ("low", 1),
                ("medium", 1),
                ("high", 1),
                ("critical", 0)
            ]
        );
    }

    #[test]
    fn an_unknown_severity_still_counts_and_colours_as_the_lowest() {
        let r = build(
            vec![host("w1", "web-1", "web")],
            vec![finding("w1", "packages", "urgent")],
            0,
        );
        let w1 = &r.groups[0].hosts[0];
        assert_eq!(w1.open_findings, 1);
        assert!(w1.cells.iter().any(|c| c.worst == "info" && c.open == 1));
    }

    #[test]
    fn groups_are_sorted_and_hosts_without_one_come_last() {
        let r = build(
            vec![
                host("x", "loner", ""),
                host("d1", "db-1", "db"),
                host("w2", "web-2", "web"),
                host("w1", "web-1", "web"),
            ],
            vec![],
            0,
        );
        let names: Vec<(&str, Vec<&str>)> = r
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.hosts.iter().map(|h| h.hostname.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("db", vec!["db-1"]),
                ("web", vec!["web-1", "web-2"]),
                ("", vec!["loner"])
            ]
        );
    }

    #[test]
    fn keys_on_several_hosts_are_listed_most_hosts_first() {
        let r = build(
            vec![
                with_key(host("a", "a", "g"), "SHA256:two", "ops@x"),
                with_key(host("b", "b", "g"), "SHA256:two", "ops@y"),
                with_key(host("c", "c", "g"), "SHA256:three", "bob"),
                with_key(host("d", "d", "g"), "SHA256:three", "bob"),
                with_key(host("e", "e", "g"), "SHA256:three", "bob"),
                with_key(host("f", "f", "g"), "SHA256:alone", "me"),
            ],
            vec![],
            0,
        );
        let keys: Vec<(&str, usize, Vec<String>)> = r
            .shared_keys
            .iter()
            .map(|k| (k.fingerprint.as_str(), k.hosts.len(), k.comments.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                ("SHA256:three", 3, vec!["bob".to_string()]),
                ("SHA256:two", 2, vec!["ops@x".into(), "ops@y".into()]),
            ]
        );
    }

    #[test]
    fn raid_lists_worst_first_with_each_array() {
        let r = build(
            vec![
                with_md(host("a", "a", "g"), "healthy"),
                with_md(host("b", "b", "g"), "degraded"),
                host("c", "c", "g"),
            ],
            vec![],
            0,
        );
        assert_eq!(r.raid.len(), 2, "c reports no RAID");
        assert_eq!(r.raid[0].verdict, "degraded");
        assert_eq!(r.raid[0].units[0].state, "raid1 active [U_]");
        assert_eq!(r.groups[0].hosts[1].raid_verdict, "degraded");
        assert!(verdict_rank("something new") > verdict_rank("failed"));
    }
}
