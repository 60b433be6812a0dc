//! Report ingest on sled: content-addressed stable sections, a history
//! record only when something stable changed, and the latest full snapshot
//! (volatile values included) per host.
//!
//! Trees: `sections` (hash → stable Section), `history` (host 0x00 seq →
//! SnapshotRecord), `latest` (host → Snapshot).

use std::collections::HashSet;

use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{
    HostSection, HostSummary, RaidSection, Section, SectionRef, Snapshot, SnapshotRecord,
    SshKeysSection,
};
use driftwatch_common::snapshot::{host_section, section_statuses};
use driftwatch_common::stable::{section_hash, stable_section};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::sled_store::{SledStore, decode, encode, merge_labels, tx_err};
use super::{PutOutcome, StoreError};

/// History is keyed by a per-host record number, not by seq: an agent whose
/// state was reset starts its sequence again (new epoch), and its records
/// must not overwrite the old ones.
pub(super) fn history_key(host_id: &str, record_no: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(host_id.len() + 9);
    k.extend_from_slice(host_id.as_bytes());
    k.push(0);
    k.extend_from_slice(&record_no.to_be_bytes());
    k
}

pub(super) fn host_prefix(host_id: &str) -> Vec<u8> {
    let mut p = host_id.as_bytes().to_vec();
    p.push(0);
    p
}

/// A wire-compatible subset of `Snapshot` (same field numbers): what the
/// key index needs. prost skips every other field by its length, so a
/// host's packages and processes are never decoded into memory.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct KeyView {
    #[prost(uint64, tag = "2")]
    seq: u64,
    #[prost(int64, tag = "3")]
    collected_at_ms: i64,
    #[prost(message, repeated, tag = "6")]
    sections: Vec<KeyViewSection>,
}

/// A subset of `Section`: the `host` (10), `ssh_keys` (12) and `raid` (14)
/// members of its body oneof, which on the wire are plain optional fields.
#[derive(Clone, PartialEq, prost::Message)]
struct KeyViewSection {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    status: String,
    #[prost(string, tag = "9")]
    truncated: String,
    #[prost(message, optional, tag = "10")]
    host: Option<HostSection>,
    #[prost(message, optional, tag = "12")]
    ssh_keys: Option<SshKeysSection>,
    #[prost(message, optional, tag = "14")]
    raid: Option<RaidSection>,
}

impl KeyView {
    pub(super) fn into_snapshot(self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            collected_at_ms: self.collected_at_ms,
            sections: self
                .sections
                .into_iter()
                .filter_map(|s| {
                    let body = match (s.host, s.ssh_keys, s.raid) {
                        (Some(h), _, _) => Body::Host(h),
                        (None, Some(k), _) => Body::SshKeys(k),
                        (None, None, Some(r)) => Body::Raid(r),
                        (None, None, None) => return None,
                    };
                    Some(Section {
                        name: s.name,
                        status: s.status,
                        truncated: s.truncated,
                        body: Some(body),
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// The result of putting a delta report together with what is stored.
#[derive(Debug)]
pub struct Assembled {
    /// The full snapshot: hash-only sections filled in.
    pub snapshot: Snapshot,
    /// Stable sections not yet stored, by hash.
    pub new_sections: Vec<(String, Section)>,
}

/// Fills in hash-only sections from the previous latest snapshot (whose
/// volatile values are then the freshest we have) or from the
/// content-addressed store; recomputes every full section's hash (the
/// agent's claim is never the storage key). `Err` lists sections the
/// collector cannot fill in.
pub fn assemble(
    snap: &Snapshot,
    prev: Option<&Snapshot>,
    known: impl Fn(&str) -> Result<Option<Section>, StoreError>,
) -> Result<Result<Assembled, Vec<String>>, StoreError> {
    let mut out = snap.clone();
    let mut new_sections = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for s in &mut out.sections {
        if s.hash_only {
            let from_prev = prev
                .and_then(|p| {
                    p.sections
                        .iter()
                        .find(|x| x.name == s.name && x.hash == s.hash)
                })
                .filter(|x| x.body.is_some() || x.status != "ok");
            let stable = match from_prev {
                Some(p) => Some(p.clone()),
                None => known(&s.hash)?,
            };
            match stable {
                Some(full) => {
                    let duration = s.duration_us;
                    *s = full;
                    s.duration_us = duration;
                    s.hash_only = false;
                    // From the previous snapshot its time comes along; a body
                    // from the content-addressed store has none (0).
                }
                None => missing.push(s.name.clone()),
            }
        } else {
            s.body_collected_at_ms = snap.collected_at_ms;
            s.hash = section_hash(s);
            if seen.insert(s.hash.clone()) && known(&s.hash)?.is_none() {
                new_sections.push((s.hash.clone(), stable_section(s)));
            }
        }
    }
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    Ok(Ok(Assembled {
        snapshot: out,
        new_sections,
    }))
}

pub(super) fn record_of(snap: &Snapshot, now_ms: i64) -> SnapshotRecord {
    SnapshotRecord {
        seq: snap.seq,
        collected_at_ms: snap.collected_at_ms,
        received_ms: now_ms,
        labels: snap.labels.clone(),
        sections: snap
            .sections
            .iter()
            .map(|s| SectionRef {
                name: s.name.clone(),
                status: s.status.clone(),
                error: s.error.clone(),
                hash: s.hash.clone(),
            })
            .collect(),
    }
}

/// Same stable content: same sections (by name, status, hash) and labels.
/// When the collector received a record; records written before it was
/// stored (none since schema 1, but a 0 is possible) fall back to the
/// agent's collection time.
pub(super) fn received_or_collected(rec: &SnapshotRecord) -> i64 {
    if rec.received_ms > 0 {
        rec.received_ms
    } else {
        rec.collected_at_ms
    }
}

pub(super) fn same_content(a: &SnapshotRecord, b: &SnapshotRecord) -> bool {
    a.labels == b.labels && a.sections == b.sections
}

impl SledStore {
    pub(super) fn put_report(
        &self,
        host_id: &str,
        snap: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        // Outside the transaction: the duplicate check and assembly read;
        // the transaction re-checks the sequence so a race cannot store twice.
        let host: Option<HostSummary> = self.host_record(host_id)?;
        if let Some(h) = &host
            && is_duplicate(h, snap)
        {
            return Ok(PutOutcome::Duplicate);
        }
        // Fast path: every section came as a hash and they are exactly the
        // host's last stored record. Nothing but the host record changes, so
        // neither the (large) latest snapshot is decoded nor rewritten: an
        // unchanged report costs a small write, not a copy of the host.
        if let Some(h) = &host
            && h.changes_stored > 0
            && snap.sections.iter().all(|s| s.hash_only)
        {
            let k = history_key(host_id, h.changes_stored);
            let last: Option<SnapshotRecord> =
                self.history.get(&k)?.map(|v| decode(&k, &v)).transpose()?;
            if last.is_some_and(|r| same_content(&r, &record_of(snap, now_ms))) {
                return self.touch_unchanged(host_id, snap, now_ms);
            }
        }
        let prev: Option<Snapshot> = self
            .latest
            .get(host_id.as_bytes())?
            .map(|v| decode(host_id.as_bytes(), &v))
            .transpose()?;
        let assembled = match assemble(snap, prev.as_ref(), |h| self.section_by_hash_inner(h))? {
            Ok(a) => a,
            Err(missing) => return Ok(PutOutcome::NeedFull(missing)),
        };
        let full = assembled.snapshot;
        let record = record_of(&full, now_ms);
        let latest_bytes = encode(&full);
        (&self.hosts, &self.latest, &self.history, &self.sections)
            .transaction(|(hosts, latest, history, sections)| {
                let mut h: HostSummary = match hosts.get(host_id.as_bytes())? {
                    Some(v) => decode(host_id.as_bytes(), &v)
                        .map_err(ConflictableTransactionError::Abort)?,
                    None => HostSummary {
                        host_id: host_id.to_string(),
                        first_seen_ms: now_ms,
                        ..Default::default()
                    },
                };
                if is_duplicate(&h, snap) {
                    return Ok(PutOutcome::Duplicate);
                }
                for (hash, stable) in &assembled.new_sections {
                    sections.insert(hash.as_bytes(), encode(stable))?;
                }
                let prev_record: Option<SnapshotRecord> = if h.changes_stored > 0 {
                    let k = history_key(host_id, h.changes_stored);
                    history
                        .get(&k)?
                        .map(|v| decode(&k, &v))
                        .transpose()
                        .map_err(ConflictableTransactionError::Abort)?
                } else {
                    None
                };
                let changed = prev_record
                    .as_ref()
                    .is_none_or(|p| !same_content(p, &record));
                if changed {
                    h.changes_stored += 1;
                    h.last_change_seq = full.seq;
                    history.insert(history_key(host_id, h.changes_stored), encode(&record))?;
                }
                if full.seq >= h.last_seq || full.agent_epoch != h.agent_epoch {
                    latest.insert(host_id.as_bytes(), latest_bytes.as_slice())?;
                    h.latest_version += 1;
                    h.last_seq = full.seq;
                    h.agent_epoch = full.agent_epoch;
                    h.labels = merge_labels(&h.enrollment_labels, &full.labels);
                    h.sections = section_statuses(&full);
                    h.interval_s = full.interval_s;
                    if !full.image_id.is_empty() {
                        h.image_id = full.image_id.clone();
                    }
                    if let Some(hs) = host_section(&full) {
                        h.hostname = hs.hostname.clone();
                        h.os = hs.os_pretty_name.clone();
                    }
                }
                h.last_seen_ms = now_ms;
                h.snapshots_stored += 1;
                h.spool_dropped_total += full.spool_dropped;
                hosts.insert(host_id.as_bytes(), encode(&h))?;
                Ok(PutOutcome::Stored { changed })
            })
            .map_err(tx_err)
    }

    /// An unchanged report: the host record alone moves on.
    fn touch_unchanged(
        &self,
        host_id: &str,
        snap: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        self.hosts
            .transaction(|hosts| {
                let Some(v) = hosts.get(host_id.as_bytes())? else {
                    return Err(ConflictableTransactionError::Abort(StoreError::Corrupt {
                        key: host_id.into(),
                        reason: "host record vanished during a report".into(),
                    }));
                };
                let mut h: HostSummary =
                    decode(host_id.as_bytes(), &v).map_err(ConflictableTransactionError::Abort)?;
                if is_duplicate(&h, snap) {
                    return Ok(PutOutcome::Duplicate);
                }
                if snap.seq >= h.last_seq || snap.agent_epoch != h.agent_epoch {
                    h.last_seq = snap.seq;
                    h.agent_epoch = snap.agent_epoch;
                    h.interval_s = snap.interval_s;
                }
                h.last_seen_ms = now_ms;
                h.snapshots_stored += 1;
                h.spool_dropped_total += snap.spool_dropped;
                hosts.insert(host_id.as_bytes(), encode(&h))?;
                Ok(PutOutcome::Stored { changed: false })
            })
            .map_err(tx_err)
    }

    pub(super) fn section_by_hash_inner(&self, hash: &str) -> Result<Option<Section>, StoreError> {
        self.sections
            .get(hash.as_bytes())?
            .map(|v| decode(hash.as_bytes(), &v))
            .transpose()
    }

    pub(super) fn latest_inner(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError> {
        self.latest
            .get(host_id.as_bytes())?
            .map(|v| decode(host_id.as_bytes(), &v))
            .transpose()
    }

    pub(super) fn latest_key_views_inner(
        &self,
        f: &mut dyn FnMut(&str, &Snapshot),
    ) -> Result<(), StoreError> {
        for kv in self.latest.iter() {
            let (k, v) = kv?;
            let view: KeyView = decode(&k, &v)?;
            f(&String::from_utf8_lossy(&k), &view.into_snapshot());
        }
        Ok(())
    }

    pub(super) fn history_inner(
        &self,
        host_id: &str,
        since_ms: i64,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        let mut out = Vec::new();
        for r in self.history.scan_prefix(host_prefix(host_id)) {
            let (k, v) = r?;
            let rec: SnapshotRecord = decode(&k, &v)?;
            if rec.collected_at_ms >= since_ms {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Drops history records received before `cutoff_ms` (the collector's
    /// clock: an agent whose clock was reset to the past must not have its
    /// acknowledged history pruned at the next start), keeping each host's
    /// newest, then every stable section nothing refers to any more (mark
    /// and sweep over records, latest snapshots and baselines).
    pub(super) fn prune_inner(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut removed_records = 0;
        let mut candidates = Vec::new();
        for r in self.history.iter() {
            let (k, v) = r?;
            let rec: SnapshotRecord = decode(&k, &v)?;
            candidates.push((k.to_vec(), received_or_collected(&rec)));
        }
        // Keep the newest record of each host whatever its age.
        let mut newest: std::collections::HashMap<Vec<u8>, Vec<u8>> =
            std::collections::HashMap::new();
        for (k, _) in &candidates {
            newest.insert(k[..k.len() - 9].to_vec(), k.clone());
        }
        for (k, at) in &candidates {
            if *at < cutoff_ms && newest.get(&k[..k.len() - 9]) != Some(k) {
                self.history.remove(k)?;
                removed_records += 1;
            }
        }
        let mut live: HashSet<String> = HashSet::new();
        for r in self.history.iter() {
            let (k, v) = r?;
            let rec: SnapshotRecord = decode(&k, &v)?;
            live.extend(rec.sections.into_iter().map(|s| s.hash));
        }
        for r in self.latest.iter() {
            let (k, v) = r?;
            let s: Snapshot = decode(&k, &v)?;
            live.extend(s.sections.into_iter().map(|s| s.hash));
        }
        for b in self.baselines_inner()? {
            if let Some(s) = b.snapshot {
                live.extend(s.sections.into_iter().map(|s| s.hash));
            }
        }
        let mut removed_sections = 0;
        for r in self.sections.iter() {
            let (k, _) = r?;
            if !live.contains(std::str::from_utf8(&k).unwrap_or("")) {
                self.sections.remove(&k)?;
                removed_sections += 1;
            }
        }
        Ok((removed_records, removed_sections))
    }
}

/// A (host, seq) already stored in the same agent epoch. Agents deliver
/// their spool in order, so anything at or below the last seq is a resend.
pub(super) fn is_duplicate(h: &HostSummary, snap: &Snapshot) -> bool {
    h.agent_epoch == snap.agent_epoch && h.last_seq > 0 && snap.seq <= h.last_seq
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::section::Body;
    use driftwatch_common::proto::{HostSection, Package, PackagesSection};
    use driftwatch_common::snapshot::ok_section;

    /// The key view is the same bytes read with fewer fields: what it
    /// gives equals the full decode's host and ssh_keys sections.
    #[test]
    fn key_views_match_the_full_snapshot_s_host_and_keys() {
        use driftwatch_common::proto::{AuthorizedKey, AuthorizedKeysFile, KeyOption};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let mut s = snap(3, 99, &["bash", "curl"]);
        s.collected_at_ms = 1234;
        s.sections.push(ok_section(
            Body::SshKeys(SshKeysSection {
                files: vec![AuthorizedKeysFile {
                    user: "bob".into(),
                    path: "/home/bob/.ssh/authorized_keys".into(),
                    keys: vec![AuthorizedKey {
                        line: 2,
                        fingerprint: "SHA256:x".into(),
                        comment: "bob@laptop".into(),
                        options: vec![KeyOption {
                            name: "from".into(),
                            value: "10.0.0.1".into(),
                            has_value: true,
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            1,
        ));
        crate::store::Store::put_snapshot(&store, "h1", &s, 5).unwrap();
        let full = crate::store::Store::latest_snapshot(&store, "h1")
            .unwrap()
            .unwrap();
        let mut seen = Vec::new();
        crate::store::Store::latest_key_views(&store, &mut |h, v| {
            seen.push((h.to_string(), v.clone()))
        })
        .unwrap();
        assert_eq!(seen.len(), 1);
        let (host, view) = &seen[0];
        assert_eq!(host, "h1");
        assert_eq!((view.seq, view.collected_at_ms), (3, 1234));
        let wanted: Vec<(String, String, Option<Body>)> = full
            .sections
            .iter()
            .filter(|x| x.name == "host" || x.name == "ssh_keys")
            .map(|x| (x.name.clone(), x.status.clone(), x.body.clone()))
            .collect();
        let got: Vec<(String, String, Option<Body>)> = view
            .sections
            .iter()
            .map(|x| (x.name.clone(), x.status.clone(), x.body.clone()))
            .collect();
        assert_eq!(got, wanted);
        assert_eq!(got.len(), 2);
    }

    fn snap(seq: u64, uptime: u64, pkgs: &[&str]) -> Snapshot {
        Snapshot {
            seq,
            agent_epoch: 7,
            sections: vec![
                ok_section(
                    Body::Host(HostSection {
                        hostname: "h".into(),
                        uptime_s: uptime,
                        ..Default::default()
                    }),
                    1,
                ),
                ok_section(
                    Body::Packages(PackagesSection {
                        packages: pkgs
                            .iter()
                            .map(|n| Package {
                                name: n.to_string(),
                                version: "1".into(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                    1,
                ),
            ],
            ..Default::default()
        }
    }

    fn delta(mut s: Snapshot) -> Snapshot {
        for x in &mut s.sections {
            x.body = None;
            x.hash_only = true;
        }
        s
    }

    #[test]
    fn assemble_fills_hash_only_sections_or_names_the_missing() {
        let prev = snap(1, 10, &["a"]);
        let d = delta(snap(2, 20, &["a"]));
        let none = |_: &str| Ok(None);
        let a = assemble(&d, Some(&prev), none).unwrap().unwrap();
        assert!(a.new_sections.is_empty());
        let Some(Body::Host(h)) = &a.snapshot.sections[0].body else {
            panic!()
        };
        assert_eq!(h.uptime_s, 10, "volatile values are the last full ones");
        assert_eq!(
            assemble(&d, None, none).unwrap().unwrap_err(),
            vec!["host", "packages"]
        );
        let mut forged = snap(3, 1, &["a"]);
        forged.sections[1].hash = "not-the-hash".into();
        let a = assemble(&forged, None, none).unwrap().unwrap();
        assert_eq!(
            a.snapshot.sections[1].hash,
            section_hash(&snap(3, 1, &["a"]).sections[1])
        );
    }

    #[test]
    fn each_body_keeps_the_time_its_values_were_collected() {
        let none = |_: &str| Ok(None);
        let at = |seq, ms| Snapshot {
            collected_at_ms: ms,
            ..snap(seq, seq * 10, &["a"])
        };
        let mut claimed = at(1, 1_000);
        claimed.sections[0].body_collected_at_ms = 99; // never the agent's say
        let first = assemble(&claimed, None, none).unwrap().unwrap().snapshot;
        let times = |s: &Snapshot| -> Vec<i64> {
            s.sections.iter().map(|x| x.body_collected_at_ms).collect()
        };
        assert_eq!(times(&first), [1_000, 1_000]);
        // host sent in full at 2s, packages as a hash: its body is from 1s.
        let mut d = at(2, 2_000);
        d.sections[1].body = None;
        d.sections[1].hash_only = true;
        let second = assemble(&d, Some(&first), none).unwrap().unwrap().snapshot;
        assert_eq!(times(&second), [2_000, 1_000]);
        let third = assemble(&delta(at(3, 3_000)), Some(&second), none)
            .unwrap()
            .unwrap()
            .snapshot;
        assert_eq!(times(&third), [2_000, 1_000], "carried along, not reset");
        // Restored from the content-addressed store: no volatile values, no time.
        let stored = stable_section(&first.sections[1]);
        let from_store = |_: &str| Ok(Some(stored.clone()));
        let mut d = at(4, 4_000);
        d.sections[1].body = None;
        d.sections[1].hash_only = true;
        let fourth = assemble(&d, None, from_store).unwrap().unwrap().snapshot;
        assert_eq!(times(&fourth), [4_000, 0]);
    }

    #[test]
    fn unchanged_reports_add_no_history_and_retention_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            s.put_report("h", &snap(1, 1, &["a"]), 1_000).unwrap(),
            PutOutcome::Stored { changed: true }
        );
        let section_bytes = |s: &SledStore| -> usize {
            s.sections
                .iter()
                .map(|r| r.map(|(k, v)| k.len() + v.len()).unwrap())
                .sum()
        };
        let before = section_bytes(&s);
        for seq in 2..=101 {
            let outcome = s
                .put_report("h", &delta(snap(seq, seq, &["a"])), 1_000 + seq as i64)
                .unwrap();
            assert_eq!(outcome, PutOutcome::Stored { changed: false });
        }
        assert_eq!(
            section_bytes(&s),
            before,
            "100 unchanged reports add no section bytes"
        );
        let latest = s.latest.get("h").unwrap().unwrap();
        let outcome = s
            .put_report("h", &delta(snap(102, 7, &["a"])), 2_000)
            .unwrap();
        assert_eq!(outcome, PutOutcome::Stored { changed: false });
        assert_eq!(
            s.latest.get("h").unwrap().unwrap(),
            latest,
            "an unchanged report does not rewrite the latest snapshot"
        );
        assert_eq!(s.history_inner("h", 0).unwrap().len(), 1);
        assert_eq!(
            s.put_report("h", &snap(121, 1, &["a", "b"]), 5_000)
                .unwrap(),
            PutOutcome::Stored { changed: true }
        );
        assert_eq!(
            s.put_report("h", &snap(121, 1, &["a", "b"]), 5_000)
                .unwrap(),
            PutOutcome::Duplicate
        );
        assert_eq!(
            s.put_report("h", &delta(snap(121, 1, &["a", "b"])), 5_000)
                .unwrap(),
            PutOutcome::Duplicate,
            "a replayed delta is a duplicate on the fast path too"
        );
        let mut restarted = snap(1, 1, &["a", "b"]);
        restarted.agent_epoch = 8;
        assert_eq!(
            s.put_report("h", &restarted, 6_000).unwrap(),
            PutOutcome::Stored { changed: false }
        );
        let hist = s.history_inner("h", 0).unwrap();
        assert_eq!(hist.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 121]);
        let h = s.host_record("h").unwrap().unwrap();
        assert_eq!(
            (h.snapshots_stored, h.changes_stored, h.last_seq),
            (104, 2, 1)
        );

        // The old record goes, its now-unreferenced packages section too.
        assert_eq!(s.prune_inner(4_000).unwrap(), (1, 1));
        assert_eq!(s.history_inner("h", 0).unwrap().len(), 1);
        assert_eq!(
            s.prune_inner(i64::MAX).unwrap(),
            (0, 0),
            "the newest record always stays"
        );
    }
}
