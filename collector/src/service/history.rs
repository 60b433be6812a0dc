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

/// What `history` asks for: since a time, only some sections, the newest
/// `limit` entries.
#[derive(Debug, Default, Clone)]
pub struct HistoryQuery {
    pub since_ms: i64,
    pub sections: Vec<String>,
    pub limit: u32,
}

pub fn history(
    store: &dyn Store,
    host_id: &str,
    q: &HistoryQuery,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let records = store.history(host_id, 0)?;
    let mut cache = HashMap::new();
    let mut prev: Vec<Section> = Vec::new();
    let mut out = Vec::new();
    for rec in records {
        let cur = sections_of(store, &rec, &mut cache)?;
        if rec.collected_at_ms >= q.since_ms {
            let mut sections = diff(&prev, &cur);
            if !q.sections.is_empty() {
                sections.retain(|s| q.sections.contains(&s.section));
            }
            // A record that changed nothing in the asked sections is not
            // an entry of their history.
            if q.sections.is_empty() || !sections.is_empty() {
                out.push(HistoryEntry {
                    seq: rec.seq,
                    collected_at_ms: rec.collected_at_ms,
                    received_ms: rec.received_ms,
                    sections,
                });
            }
        }
        prev = cur;
    }
    if q.limit > 0 && out.len() > q.limit as usize {
        out.drain(..out.len() - q.limit as usize);
    }
    Ok(out)
}

/// A point in a host's history: a sequence number, or an RFC 3339 time.
/// Returns the index of the record in force at that point. A seq the host
/// never reported (above its last), or a point before the oldest stored
/// record, is NotFound: an empty diff would claim nothing changed.
pub fn pick(records: &[SnapshotRecord], last_seq: u64, at: &str) -> Result<usize, ServiceError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(ServiceError::NotFound("no stored snapshot".into()));
    };
    if let Ok(seq) = at.parse::<u64>() {
        let newest = last_seq.max(last.seq);
        if seq > newest {
            return Err(ServiceError::NotFound(format!(
                "no snapshot with seq {seq}: the newest is seq {newest} (`driftwatch history HOST` lists them)"
            )));
        }
        return records.iter().rposition(|r| r.seq <= seq).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no stored snapshot at seq {seq}: the oldest kept is seq {} (older ones were pruned or never stored)",
                first.seq
            ))
        });
    }
    let t = humantime::parse_rfc3339_weak(at).map_err(|_| {
        ServiceError::InvalidArgument(format!(
            "{at:?} is neither a sequence number nor a time like 2026-11-26T04:00:00Z"
        ))
    })?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    records
        .iter()
        .rposition(|r| r.collected_at_ms <= ms)
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no stored snapshot at or before {at}: the oldest kept was collected {}",
                driftwatch_common::time::format_ms(first.collected_at_ms)
            ))
        })
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
    fn rec(seq: u64, at: i64) -> SnapshotRecord {
        SnapshotRecord {
            seq,
            collected_at_ms: at,
            ..Default::default()
        }
    }

    #[test]
    fn points_outside_the_history_are_not_found() {
        let records = [rec(3, 3000), rec(7, 7000)];
        assert_eq!(pick(&records, 9, "7").unwrap(), 1);
        assert_eq!(pick(&records, 9, "9").unwrap(), 1, "seq 9 changed nothing");
        assert_eq!(pick(&records, 9, "5").unwrap(), 0);
        for bad in ["10", "2", "1970-01-01T00:00:01Z"] {
            let e = pick(&records, 9, bad).unwrap_err();
            assert!(matches!(e, ServiceError::NotFound(_)), "{bad}: {e}");
        }
        assert_eq!(pick(&records, 9, "1970-01-01T00:00:05.5Z").unwrap(), 0);
        assert!(matches!(
            pick(&records, 9, "soon"),
            Err(ServiceError::InvalidArgument(_))
        ));
    }

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
