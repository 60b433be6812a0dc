//! RAID arrays per host by verdict, from each host's latest snapshot: the
//! `driftwatch_collector_raid_arrays{host,verdict}` gauge. Built from the
//! store at start (the same one-pass subset scan as the key index) and kept
//! current by the Report path, so a scrape reads no snapshot.
//!
//! Cardinality: one series per verdict (a fixed vocabulary) per host that
//! has arrays. Array names come from the host and never become labels.

use std::collections::HashMap;

use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{RaidSection, Snapshot};

/// The agent's verdict vocabulary (parse/verdict.rs), then what a verdict
/// outside it is counted as.
pub const VERDICTS: [&str; 6] = [
    "healthy",
    "warning",
    "rebuilding",
    "degraded",
    "failed",
    "unknown",
];

#[derive(Default)]
pub struct RaidIndex {
    hosts: HashMap<String, (u64, [u32; VERDICTS.len()])>,
}

/// Arrays (md arrays and controllers' virtual drives) of `r` by verdict.
pub fn count(r: &RaidSection) -> [u32; VERDICTS.len()] {
    let mut n = [0u32; VERDICTS.len()];
    let verdicts = r.md_arrays.iter().map(|a| a.verdict.as_str()).chain(
        r.controllers
            .iter()
            .flat_map(|c| c.virtual_drives.iter().map(|d| d.verdict.as_str())),
    );
    for v in verdicts {
        let i = VERDICTS
            .iter()
            .position(|x| *x == v)
            .unwrap_or(VERDICTS.len() - 1);
        n[i] = n[i].saturating_add(1);
    }
    n
}

impl RaidIndex {
    /// Follows a stored snapshot of `host_id`: a raid section with a body
    /// replaces what the host had, one sent as its hash alone keeps it, and
    /// a snapshot without one (or whose raid section failed) leaves the
    /// host out, as its latest snapshot does. An older seq changes nothing.
    pub fn update(&mut self, host_id: &str, snap: &Snapshot) {
        if self
            .hosts
            .get(host_id)
            .is_some_and(|(seq, _)| *seq > snap.seq)
        {
            return;
        }
        let raid = snap.sections.iter().find(|s| s.name == "raid");
        match raid {
            Some(s) if s.hash_only => {
                if let Some(e) = self.hosts.get_mut(host_id) {
                    e.0 = snap.seq;
                }
            }
            Some(s) => match &s.body {
                Some(Body::Raid(r)) if count(r).iter().any(|n| *n > 0) => {
                    self.hosts.insert(host_id.to_string(), (snap.seq, count(r)));
                }
                _ => {
                    self.hosts.remove(host_id);
                }
            },
            None => {
                self.hosts.remove(host_id);
            }
        }
    }

    pub fn remove_host(&mut self, host_id: &str) {
        self.hosts.remove(host_id);
    }

    /// (host, verdict) → arrays, every verdict for every host with arrays,
    /// hosts `skip` says no to left out.
    pub fn samples(&self, skip: impl Fn(&str) -> bool) -> Vec<(Vec<String>, f64)> {
        let mut out = Vec::new();
        for (host, (_, counts)) in &self.hosts {
            if skip(host) {
                continue;
            }
            for (v, n) in VERDICTS.iter().zip(counts) {
                out.push((vec![host.clone(), v.to_string()], f64::from(*n)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{MdArray, RaidController, RaidVirtualDrive, Section};

    fn snap(seq: u64, section: Option<Section>) -> Snapshot {
        Snapshot {
            seq,
            sections: section.into_iter().collect(),
            ..Default::default()
        }
    }

    fn raid(verdicts: &[&str], vd: &str) -> Section {
        Section {
            name: "raid".into(),
            status: "ok".into(),
            body: Some(Body::Raid(RaidSection {
                md_arrays: verdicts
                    .iter()
                    .map(|v| MdArray {
                        verdict: v.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                controllers: vec![RaidController {
                    virtual_drives: vec![RaidVirtualDrive {
                        verdict: vd.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn value(idx: &RaidIndex, host: &str, verdict: &str) -> Option<f64> {
        idx.samples(|_| false)
            .into_iter()
            .find(|(l, _)| l[0] == host && l[1] == verdict)
            .map(|(_, v)| v)
    }

    #[test]
    fn follows_the_latest_snapshot_of_each_host() {
        let mut idx = RaidIndex::default();
        idx.update(
            "h1",
            &snap(1, Some(raid(&["healthy", "degraded"], "failed"))),
        );
        assert_eq!(value(&idx, "h1", "degraded"), Some(1.0));
        assert_eq!(value(&idx, "h1", "failed"), Some(1.0));
        assert_eq!(value(&idx, "h1", "healthy"), Some(1.0));
        assert_eq!(value(&idx, "h1", "rebuilding"), Some(0.0));
        // A verdict outside the vocabulary is counted, not made a label.
        idx.update("h2", &snap(1, Some(raid(&["on fire"], "healthy"))));
        assert_eq!(value(&idx, "h2", "unknown"), Some(1.0));
        assert_eq!(idx.samples(|_| false).len(), 2 * VERDICTS.len());

        // Unchanged (hash only) keeps the counts; an older seq is ignored.
        let hash_only = Section {
            name: "raid".into(),
            hash_only: true,
            ..Default::default()
        };
        idx.update("h1", &snap(2, Some(hash_only)));
        idx.update("h1", &snap(1, Some(raid(&["healthy"], "healthy"))));
        assert_eq!(value(&idx, "h1", "degraded"), Some(1.0));
        // Repaired.
        idx.update(
            "h1",
            &snap(3, Some(raid(&["healthy", "healthy"], "healthy"))),
        );
        assert_eq!(value(&idx, "h1", "degraded"), Some(0.0));
        assert_eq!(value(&idx, "h1", "healthy"), Some(3.0));
        // No raid section in the latest snapshot: no series.
        idx.update("h1", &snap(4, None));
        assert_eq!(value(&idx, "h1", "healthy"), None);
        assert_eq!(idx.samples(|h| h == "h2").len(), 0);
        idx.remove_host("h2");
        assert!(idx.samples(|_| false).is_empty());
    }
}
