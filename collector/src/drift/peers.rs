//! Peer drift: within a group of hosts, items only a minority hold
//! (outliers) and items a majority hold that a host lacks (missing).

use std::collections::{BTreeMap, BTreeSet};

use super::items::items;
use super::{Draft, HostView, Settings};

/// How serious a peer difference is, per section: (outlier, missing).
/// A key only one web host has is suspicious; a package version spread is
/// routine.
fn severities(section: &str) -> Option<(&'static str, &'static str)> {
    match section {
        "ssh_keys" => Some(("high", "low")),
        "processes" => Some(("low", "medium")),
        "containers" => Some(("medium", "medium")),
        "log_config" => Some(("medium", "medium")),
        "packages" => Some(("low", "low")),
        "host" => Some(("low", "info")),
        _ => None,
    }
}

fn is_outlier(count: usize, n: usize, s: &Settings) -> bool {
    match s.outlier_below {
        Some(x) => (count as f64) < x * n as f64,
        None => count * 2 < n,
    }
}

fn is_missing(count: usize, n: usize, s: &Settings) -> bool {
    match s.missing_at_least {
        Some(y) => count as f64 >= y * n as f64,
        None => count * 2 > n,
    }
}

/// Findings for every peer group (hosts sharing the group label, and hosts
/// sharing an image id). `hosts` are those still in peer statistics.
pub fn evaluate(hosts: &[HostView<'_>], s: &Settings) -> BTreeMap<usize, Vec<Draft>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        if let Some(l) = h.summary.labels.iter().find(|l| l.key == s.group_label) {
            groups
                .entry(format!("{}={}", s.group_label, l.value))
                .or_default()
                .push(i);
        }
        if !h.summary.image_id.is_empty() {
            groups
                .entry(format!("image={}", h.summary.image_id))
                .or_default()
                .push(i);
        }
    }
    let mut out: BTreeMap<usize, Vec<Draft>> = BTreeMap::new();
    for (rule, members) in groups {
        let n = members.len();
        if n < s.min_group {
            continue;
        }
        // Per member: section → peer ids, only for sections it collected.
        let mut held: Vec<BTreeMap<&'static str, BTreeSet<(String, String)>>> = Vec::new();
        let mut counts: BTreeMap<(&'static str, String), (usize, String)> = BTreeMap::new();
        for &i in &members {
            let mut mine: BTreeMap<&'static str, BTreeSet<(String, String)>> = BTreeMap::new();
            if let Some(snap) = hosts[i].snapshot {
                for sec in snap.sections.iter().filter(|x| x.status == "ok") {
                    // A collected section with no items still counts as
                    // collected: an empty rule list lacks what peers have.
                    if let Some(name) = driftwatch_common::proto::SECTION_NAMES
                        .iter()
                        .find(|n| **n == sec.name)
                    {
                        mine.entry(name).or_default();
                    }
                    for it in items(sec) {
                        if let Some(p) = it.peer {
                            mine.entry(it.section).or_default().insert((p, it.text));
                        }
                    }
                }
            }
            for (sec, set) in &mine {
                for (p, text) in set {
                    counts
                        .entry((sec, p.clone()))
                        .or_insert((0, text.clone()))
                        .0 += 1;
                }
            }
            held.push(mine);
        }
        for (mi, &i) in members.iter().enumerate() {
            for ((sec, peer), (count, text)) in &counts {
                let Some((out_sev, miss_sev)) = severities(sec) else {
                    continue;
                };
                let Some(mine) = held[mi].get(sec) else {
                    continue;
                };
                let has = mine.iter().any(|(p, _)| p == peer);
                if has && is_outlier(*count, n, s) {
                    out.entry(i).or_default().push(Draft {
                        kind: "peer_outlier",
                        section: sec.to_string(),
                        item: peer.clone(),
                        severity: out_sev.into(),
                        rule: rule.clone(),
                        message: format!("only {count} of {n} hosts in {rule} have {text}"),
                    });
                } else if !has && is_missing(*count, n, s) {
                    out.entry(i).or_default().push(Draft {
                        kind: "peer_missing",
                        section: sec.to_string(),
                        item: peer.clone(),
                        severity: miss_sev.into(),
                        rule: rule.clone(),
                        message: format!(
                            "{count} of {n} hosts in {rule} have {text}; this host does not"
                        ),
                    });
                }
            }
        }
    }
    out
}
