//! History and diff answers, assembled from the content-addressed store.

use std::collections::HashMap;

use driftwatch_common::proto::{HistoryEntry, Section, SectionChanges, SnapshotRecord};
use driftwatch_common::stable::stable_section;

use crate::drift::diff::diff;
use crate::error::ServiceError;
use crate::store::{Store, StoreError};

/// A record's sections, resolved through a cache (consecutive records
/// share most hashes).
pub fn sections_of(
    store: &dyn Store,
    rec: &SnapshotRecord,
    cache: &mut HashMap<String, Section>,
) -> Result<Vec<Section>, StoreError> {
    let mut out = Vec::new();
    for r in &rec.sections {
        if let Some(s) = cache.get(&r.hash) {
            out.push(s.clone());
            continue;
        }
        if let Some(s) = store.section_by_hash(&r.hash)? {
            cache.insert(r.hash.clone(), s.clone());
            out.push(s);
        } else {
            // Pruned or lost: the reference still says what the status was.
            out.push(Section {
                name: r.name.clone(),
                status: r.status.clone(),
                error: r.error.clone(),
                hash: r.hash.clone(),
                ..Default::default()
            });
        }
    }
    Ok(out)
}

pub fn history(
    store: &dyn Store,
    host_id: &str,
    since_ms: i64,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let records = store.history(host_id, 0)?;
    let mut cache = HashMap::new();
    let mut prev: Vec<Section> = Vec::new();
    let mut out = Vec::new();
    for rec in records {
        let cur = sections_of(store, &rec, &mut cache)?;
        if rec.collected_at_ms >= since_ms {
            out.push(HistoryEntry {
                seq: rec.seq,
                collected_at_ms: rec.collected_at_ms,
                received_ms: rec.received_ms,
                sections: diff(&prev, &cur),
            });
        }
        prev = cur;
    }
    Ok(out)
}

/// A point in a host's history: a sequence number, or an RFC 3339 time.
/// Returns the index of the record in force at that point.
pub fn pick(records: &[SnapshotRecord], at: &str) -> Result<usize, ServiceError> {
    let idx = if let Ok(seq) = at.parse::<u64>() {
        records.iter().rposition(|r| r.seq <= seq)
    } else {
        let t = humantime::parse_rfc3339_weak(at).map_err(|_| {
            ServiceError::InvalidArgument(format!(
                "{at:?} is neither a sequence number nor a time like 2026-11-26T04:00:00Z"
            ))
        })?;
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        records.iter().rposition(|r| r.collected_at_ms <= ms)
    };
    idx.ok_or_else(|| ServiceError::NotFound(format!("no stored snapshot at or before {at}")))
}

pub fn stable(sections: &[Section]) -> Vec<Section> {
    sections.iter().map(stable_section).collect()
}

/// What `new` has that `old` does not, both in their stable form (a stored
/// form is stable already, and reducing it again changes nothing).
pub fn compare(old: &[Section], new: &[Section]) -> Vec<SectionChanges> {
    diff(&stable(old), &stable(new))
}

pub fn diff_records(
    store: &dyn Store,
    records: &[SnapshotRecord],
    from: usize,
    to: usize,
) -> Result<Vec<SectionChanges>, StoreError> {
    let mut cache = HashMap::new();
    let a = sections_of(store, &records[from], &mut cache)?;
    let b = sections_of(store, &records[to], &mut cache)?;
    Ok(diff(&a, &b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{Baseline, Snapshot};
    use driftwatch_common::testgen::{Gen, sections};

    use crate::store::{SledStore, Store};

    /// Random snapshots of every section kind: compared with themselves,
    /// with a baseline made of them, and with what the store gives back,
    /// they show no difference, and baseline drift finds nothing.
    #[test]
    fn a_snapshot_against_itself_its_baseline_and_its_history_shows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for seed in 0..60 {
            let host = format!("h{seed}");
            let snap = Snapshot {
                seq: 1,
                agent_epoch: 1,
                collected_at_ms: 1000,
                sections: sections(&mut Gen::new(seed)),
                ..Default::default()
            };
            store.put_snapshot(&host, &snap, 1000).unwrap();
            let latest = store.latest_snapshot(&host).unwrap().unwrap();
            assert!(compare(&snap.sections, &snap.sections).is_empty());
            assert_eq!(
                compare(&snap.sections, &latest.sections),
                vec![],
                "seed {seed}"
            );
            let name = format!("self{seed}");
            let b = Baseline {
                name: name.clone(),
                snapshot: Some(Box::new(latest.clone())),
                ..Default::default()
            };
            store.put_baseline(&b, true).unwrap();
            let b = store.baseline(&name).unwrap().unwrap();
            let base = &b.snapshot.as_ref().unwrap().sections;
            assert_eq!(compare(base, &latest.sections), vec![], "seed {seed}");
            assert_eq!(crate::drift::baseline::evaluate(&b, &latest), vec![]);
            let records = store.history(&host, 0).unwrap();
            let stored = sections_of(&store, &records[0], &mut HashMap::new()).unwrap();
            assert_eq!(compare(&stored, &latest.sections), vec![], "seed {seed}");
            assert_eq!(compare(&stored, base), vec![], "seed {seed}");
        }
    }
}
