//! Peer drift: within a group of hosts, items only a minority hold
//! (outliers) and items a majority hold that a host lacks (missing).
//!
//! Hosts are reduced to interned item ids first ([`PeerItems`]), so a fleet
//! is held as a few bytes per item per host instead of decoded snapshots,
//! and membership is a binary search instead of a scan.

use std::collections::{BTreeMap, HashMap};

use driftwatch_common::proto::{HostSummary, Snapshot};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use driftwatch_common::vocab::CollectionStatus;

use super::items::items;
use super::{Draft, Settings};

/// How serious a peer difference is, per section: (outlier, missing);
/// None where peers are not compared. A key only one web host has is
/// suspicious; a package version spread is routine.
pub fn severities(section: SectionKind) -> Option<(Severity, Severity)> {
    use Severity::*;
    match section {
        SectionKind::SshKeys => Some((High, Low)),
        SectionKind::Processes => Some((Low, Medium)),
        SectionKind::Containers => Some((Medium, Medium)),
        SectionKind::LogConfig => Some((Medium, Medium)),
        SectionKind::Packages => Some((Low, Low)),
        SectionKind::Host => Some((Low, Info)),
        // An account only one host of a group has is a way in the others
        // lack; a missing one is usually a host not yet set up.
        SectionKind::Accounts => Some((High, Low)),
        // A rule only one host has is a way to root the others lack.
        SectionKind::Sudoers => Some((High, Medium)),
        // A port only one web host opens is what an intruder or a
        // forgotten debug server looks like; one the others have is a
        // service down.
        SectionKind::Listening => Some((Medium, Medium)),
        // A host behind its peers on patches: its pending updates are the
        // items; policy judges security ones and the index's age.
        SectionKind::Updates => Some((Low, Info)),
        // Arrays and virtual drives are per machine by nature (their items
        // carry no peer identity).
        SectionKind::Raid => None,
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

/// Every peer identity seen in the fleet, numbered. An item's text is the
/// first one seen for its (section, peer id).
#[derive(Default)]
pub struct Interner {
    /// Section → peer id → number; nested so a lookup borrows the peer id
    /// (this runs once per item per host per evaluation).
    ids: HashMap<SectionKind, HashMap<String, u32>>,
    items: Vec<(SectionKind, String, String)>,
}

impl Interner {
    /// Items interned so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn id(&mut self, section: SectionKind, peer: String, text: String) -> u32 {
        let in_section = self.ids.entry(section).or_default();
        if let Some(&id) = in_section.get(&peer) {
            return id;
        }
        let id = self.items.len() as u32;
        in_section.insert(peer.clone(), id);
        self.items.push((section, peer, text));
        id
    }
}

/// One host as peer statistics see it.
#[derive(Default)]
pub struct PeerItems {
    /// Bit i set: section `SectionKind::ALL[i]` was collected (status ok).
    collected: u32,
    /// Sorted, without duplicates.
    ids: Vec<u32>,
}

impl PeerItems {
    pub const EMPTY: PeerItems = PeerItems {
        collected: 0,
        ids: Vec::new(),
    };

    pub fn of(snapshot: Option<&Snapshot>, interner: &mut Interner) -> Self {
        let mut out = PeerItems::default();
        let Some(snap) = snapshot else {
            return out;
        };
        for sec in snap.sections.iter().filter(|x| CollectionStatus::is_ok(x)) {
            // A collected section with no items still counts as collected:
            // an empty rule list lacks what peers have.
            if let Some(k) = SectionKind::of(sec) {
                out.collected |= 1 << k.index();
            }
            for it in items(sec) {
                if let Some(p) = it.peer {
                    out.ids.push(interner.id(it.section, p, it.text));
                }
            }
        }
        out.ids.sort_unstable();
        out.ids.dedup();
        out
    }

    fn has(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    fn collected(&self, section: SectionKind) -> bool {
        self.collected & (1 << section.index()) != 0
    }
}

/// Findings for every peer group (hosts sharing the group label, and hosts
/// sharing an image id). `hosts[i]` and `items[i]` are the same host, one
/// of those still in peer statistics; the result is keyed by that index.
pub fn evaluate(
    hosts: &[&HostSummary],
    items: &[&PeerItems],
    interner: &Interner,
    s: &Settings,
) -> BTreeMap<usize, Vec<Draft>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        if let Some(l) = h.labels.iter().find(|l| l.key == s.group_label) {
            groups
                .entry(format!("{}={}", s.group_label, l.value))
                .or_default()
                .push(i);
        }
        if !h.image_id.is_empty() {
            groups
                .entry(format!("image={}", h.image_id))
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
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &i in &members {
            for &id in &items[i].ids {
                *counts.entry(id).or_default() += 1;
            }
        }
        // In (section name, peer id) order, so findings come out as they
        // always did.
        let mut candidates: Vec<(u32, usize)> = counts.into_iter().collect();
        candidates.sort_unstable_by(|a, b| {
            let (x, y) = (&interner.items[a.0 as usize], &interner.items[b.0 as usize]);
            (x.0.name(), &x.1).cmp(&(y.0.name(), &y.1))
        });
        for &i in &members {
            let mine = items[i];
            for &(id, count) in &candidates {
                let (sec, peer, text) = &interner.items[id as usize];
                let Some((out_sev, miss_sev)) = severities(*sec) else {
                    continue;
                };
                if !mine.collected(*sec) {
                    continue;
                }
                let has = mine.has(id);
                if has && is_outlier(count, n, s) {
                    out.entry(i).or_default().push(Draft {
                        kind: "peer_outlier",
                        section: Some(*sec),
                        item: peer.clone(),
                        severity: out_sev,
                        rule: rule.clone(),
                        message: format!("only {count} of {n} hosts in {rule} have {text}"),
                    });
                } else if !has && is_missing(count, n, s) {
                    out.entry(i).or_default().push(Draft {
                        kind: "peer_missing",
                        section: Some(*sec),
                        item: peer.clone(),
                        severity: miss_sev,
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
