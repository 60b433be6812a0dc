//! Report ingest on PostgreSQL, the same rules as sled's (reports.rs):
//! content-addressed stable sections, a history record only when
//! something stable changed, the latest full snapshot per host.
//!
//! (host, seq) is stored once, also when two collectors receive the same
//! resend at once: the full path holds the host's row lock (`FOR UPDATE`)
//! from its duplicate check to its commit, and a new host's first insert
//! meets the primary key (the loser reruns and finds a duplicate). The
//! unchanged fast path holds no lock: its update is conditional on the
//! row version it read, and a writer that came between makes it read again.

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Object};
use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{HostSummary, Section, Snapshot, SnapshotRecord};
use driftwatch_common::snapshot::{host_section, section_statuses};
use driftwatch_common::stable::section_hash;

use super::store::{Ctx, Inner, is_retryable};
use crate::store::reports::{KeyView, is_duplicate, record_of, same_content};
use crate::store::sled_store::{decode, encode, merge_labels};
use crate::store::{PutOutcome, StoreError, assemble};

/// Rows per page when the whole `latest` table is read.
const PAGE: i64 = 256;

fn hashes_of(snap: &Snapshot) -> Vec<String> {
    snap.sections.iter().map(|s| s.hash.clone()).collect()
}

fn record_hashes(rec: &SnapshotRecord) -> Vec<String> {
    rec.sections.iter().map(|s| s.hash.clone()).collect()
}

/// The host record after an unchanged report.
fn touched(mut h: HostSummary, snap: &Snapshot, now_ms: i64) -> HostSummary {
    if snap.seq >= h.last_seq || snap.agent_epoch != h.agent_epoch {
        h.last_seq = snap.seq;
        h.agent_epoch = snap.agent_epoch;
        h.interval_s = snap.interval_s;
    }
    h.last_seen_ms = now_ms;
    h.snapshots_stored += 1;
    h.spool_dropped_total += snap.spool_dropped;
    h
}

fn ssh_keys_hash(snap: &Snapshot) -> Option<&str> {
    snap.sections
        .iter()
        .find(|s| matches!(s.body, Some(Body::SshKeys(_))))
        .map(|s| s.hash.as_str())
}

impl Inner {
    pub async fn put_report(
        &self,
        host_id: String,
        snap: Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        let mut client = self.conn().await?;
        if snap.sections.iter().all(|s| s.hash_only)
            && let Some(done) = fast_path(&client, &host_id, &snap, now_ms).await?
        {
            return Ok(done);
        }
        let mut attempt = 0;
        loop {
            match put_full(&mut client, &host_id, &snap, now_ms).await {
                Err(e) if is_retryable(&e) && attempt < 5 => attempt += 1,
                other => return other,
            }
        }
    }

    pub async fn section_by_hash(&self, hash: String) -> Result<Option<Section>, StoreError> {
        let c = self.conn().await?;
        let st = c
            .prepare_cached("SELECT value FROM sections WHERE hash = $1")
            .await
            .ctx("preparing a section read")?;
        c.query_opt(&st, &[&hash])
            .await
            .ctx("reading a section")?
            .map(|r| decode(hash.as_bytes(), r.get::<_, &[u8]>(0)))
            .transpose()
    }

    pub async fn latest(&self, host_id: String) -> Result<Option<Snapshot>, StoreError> {
        let c = self.conn().await?;
        let st = c
            .prepare_cached("SELECT value FROM latest WHERE host_id = $1")
            .await
            .ctx("preparing a latest read")?;
        c.query_opt(&st, &[&host_id])
            .await
            .ctx("reading a latest snapshot")?
            .map(|r| decode(host_id.as_bytes(), r.get::<_, &[u8]>(0)))
            .transpose()
    }

    /// One page of (host, key view) after `after`, in host order.
    pub async fn key_views_page(
        &self,
        after: Option<String>,
    ) -> Result<Vec<(String, Snapshot)>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT host_id, value FROM latest WHERE $1::text IS NULL OR host_id > $1 \
                 ORDER BY host_id LIMIT $2",
                &[&after, &PAGE],
            )
            .await
            .ctx("reading latest snapshots")?;
        rows.iter()
            .map(|r| {
                let host: String = r.get(0);
                let view: KeyView = decode(host.as_bytes(), r.get::<_, &[u8]>(1))?;
                Ok((host, view.into_snapshot()))
            })
            .collect()
    }

    pub async fn history(
        &self,
        host_id: String,
        since_ms: i64,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT value FROM history WHERE host_id = $1 AND collected_at_ms >= $2 \
                 ORDER BY record_no",
                &[&host_id, &since_ms],
            )
            .await
            .ctx("reading history")?;
        rows.iter()
            .map(|r| decode(host_id.as_bytes(), r.get::<_, &[u8]>(0)))
            .collect()
    }

    /// As sled's prune: records received before the cutoff go, each
    /// host's newest stays; then sections nothing refers to (history,
    /// latest snapshots, baselines).
    pub async fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        let baselines = self.baselines().await?;
        let pinned: Vec<String> = baselines
            .iter()
            .filter_map(|b| b.snapshot.as_ref())
            .flat_map(|s| s.sections.iter().map(|x| x.hash.clone()))
            .collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a prune")?;
        let records = tx
            .execute(
                "DELETE FROM history h WHERE h.received_ms < $1 AND h.record_no < \
                 (SELECT max(n.record_no) FROM history n WHERE n.host_id = h.host_id)",
                &[&cutoff_ms],
            )
            .await
            .ctx("pruning history")?;
        let sections = tx
            .execute(
                "DELETE FROM sections s WHERE NOT EXISTS (SELECT 1 FROM ( \
                   SELECT unnest(hashes) AS hash FROM history \
                   UNION SELECT unnest(hashes) FROM latest \
                   UNION SELECT unnest($1::text[])) live WHERE live.hash = s.hash)",
                &[&pinned],
            )
            .await
            .ctx("pruning sections")?;
        tx.commit().await.ctx("committing a prune")?;
        Ok((records, sections))
    }
}

/// An unchanged report (every section a hash, and they are the host's
/// last record): only the host row changes. None: not this case, or the
/// row is not there yet; the full path decides.
async fn fast_path(
    client: &Object,
    host_id: &str,
    snap: &Snapshot,
    now_ms: i64,
) -> Result<Option<PutOutcome>, StoreError> {
    let read = client
        .prepare_cached("SELECT value, last_record, version FROM hosts WHERE host_id = $1")
        .await
        .ctx("preparing a host read")?;
    let write = client
        .prepare_cached(
            "UPDATE hosts SET value = $2, version = version + 1 WHERE host_id = $1 AND version = $3",
        )
        .await
        .ctx("preparing a host update")?;
    loop {
        let Some(row) = client
            .query_opt(&read, &[&host_id])
            .await
            .ctx("reading a host")?
        else {
            return Ok(None);
        };
        let h: HostSummary = decode(host_id.as_bytes(), row.get::<_, &[u8]>(0))?;
        if is_duplicate(&h, snap) {
            return Ok(Some(PutOutcome::Duplicate));
        }
        let Some(last) = row.get::<_, Option<&[u8]>>(1) else {
            return Ok(None);
        };
        let last: SnapshotRecord = decode(host_id.as_bytes(), last)?;
        if h.changes_stored == 0 || !same_content(&last, &record_of(snap, now_ms)) {
            return Ok(None);
        }
        let version: i64 = row.get(2);
        let h = touched(h, snap, now_ms);
        let n = client
            .execute(&write, &[&host_id, &encode(&h), &version])
            .await
            .ctx("updating a host")?;
        if n == 1 {
            return Ok(Some(PutOutcome::Stored { changed: false }));
        }
    }
}

async fn put_full(
    client: &mut Object,
    host_id: &str,
    snap: &Snapshot,
    now_ms: i64,
) -> Result<PutOutcome, StoreError> {
    let tx = client.transaction().await.ctx("starting a report")?;
    let row = tx
        .query_opt(
            "SELECT value, last_record FROM hosts WHERE host_id = $1 FOR UPDATE",
            &[&host_id],
        )
        .await
        .ctx("locking a host")?;
    let exists = row.is_some();
    let (mut h, last_record): (HostSummary, Option<SnapshotRecord>) = match &row {
        Some(r) => (
            decode(host_id.as_bytes(), r.get::<_, &[u8]>(0))?,
            r.get::<_, Option<&[u8]>>(1)
                .map(|v| decode(host_id.as_bytes(), v))
                .transpose()?,
        ),
        None => (
            HostSummary {
                host_id: host_id.to_string(),
                first_seen_ms: now_ms,
                ..Default::default()
            },
            None,
        ),
    };
    if is_duplicate(&h, snap) {
        return Ok(PutOutcome::Duplicate);
    }
    // The fast path's case, met under the lock (it lost a race).
    if h.changes_stored > 0
        && snap.sections.iter().all(|s| s.hash_only)
        && last_record
            .as_ref()
            .is_some_and(|r| same_content(r, &record_of(snap, now_ms)))
    {
        write_host(&tx, exists, host_id, &touched(h, snap, now_ms), None).await?;
        tx.commit().await.ctx("committing a report")?;
        return Ok(PutOutcome::Stored { changed: false });
    }
    let prev: Option<Snapshot> = tx
        .query_opt("SELECT value FROM latest WHERE host_id = $1", &[&host_id])
        .await
        .ctx("reading a latest snapshot")?
        .map(|r| decode(host_id.as_bytes(), r.get::<_, &[u8]>(0)))
        .transpose()?;
    // Every hash assembly may ask about, in one query: bodies for the
    // hash-only sections, existence for the full ones.
    let wanted: Vec<String> = snap
        .sections
        .iter()
        .filter(|s| s.hash_only)
        .map(|s| s.hash.clone())
        .collect();
    let mut asked = wanted.clone();
    asked.extend(
        snap.sections
            .iter()
            .filter(|s| !s.hash_only)
            .map(section_hash),
    );
    let mut known: HashMap<String, Section> = HashMap::new();
    for r in tx
        .query(
            "SELECT hash, CASE WHEN hash = ANY($2) THEN value END FROM sections WHERE hash = ANY($1)",
            &[&asked, &wanted],
        )
        .await
        .ctx("reading sections")?
    {
        let hash: String = r.get(0);
        let section = match r.get::<_, Option<&[u8]>>(1) {
            Some(v) => decode(hash.as_bytes(), v)?,
            // Only its existence is asked about.
            None => Section::default(),
        };
        known.insert(hash, section);
    }
    let assembled = match assemble(snap, prev.as_ref(), |h| Ok(known.get(h).cloned()))? {
        Ok(a) => a,
        Err(missing) => return Ok(PutOutcome::NeedFull(missing)),
    };
    if !assembled.new_sections.is_empty() {
        let (hashes, values): (Vec<String>, Vec<Vec<u8>>) = assembled
            .new_sections
            .iter()
            .map(|(h, s)| (h.clone(), encode(s)))
            .unzip();
        tx.execute(
            "INSERT INTO sections (hash, value) SELECT * FROM unnest($1::text[], $2::bytea[]) \
             ON CONFLICT (hash) DO NOTHING",
            &[&hashes, &values],
        )
        .await
        .ctx("writing sections")?;
    }
    let full = assembled.snapshot;
    let record = record_of(&full, now_ms);
    let changed = last_record
        .as_ref()
        .filter(|_| h.changes_stored > 0)
        .is_none_or(|p| !same_content(p, &record));
    let mut new_last = None;
    if changed {
        h.changes_stored += 1;
        h.last_change_seq = full.seq;
        let value = encode(&record);
        tx.execute(
            "INSERT INTO history (host_id, record_no, collected_at_ms, received_ms, hashes, value) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &host_id,
                &(h.changes_stored as i64),
                &record.collected_at_ms,
                &now_ms,
                &record_hashes(&record),
                &value,
            ],
        )
        .await
        .ctx("writing a history record")?;
        new_last = Some(value);
    }
    if full.seq >= h.last_seq || full.agent_epoch != h.agent_epoch {
        tx.execute(
            "INSERT INTO latest (host_id, value, hashes) VALUES ($1, $2, $3) \
             ON CONFLICT (host_id) DO UPDATE SET value = EXCLUDED.value, hashes = EXCLUDED.hashes",
            &[&host_id, &encode(&full), &hashes_of(&full)],
        )
        .await
        .ctx("writing a latest snapshot")?;
        let keys_now = ssh_keys_hash(&full);
        if keys_now != prev.as_ref().and_then(ssh_keys_hash) {
            write_host_keys(&tx, host_id, &full).await?;
        }
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
    write_host(&tx, exists, host_id, &h, new_last).await?;
    tx.commit().await.ctx("committing a report")?;
    Ok(PutOutcome::Stored { changed })
}

async fn write_host(
    tx: &impl GenericClient,
    exists: bool,
    host_id: &str,
    h: &HostSummary,
    last: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    let value = encode(h);
    if exists {
        tx.execute(
            "UPDATE hosts SET value = $2, last_record = coalesce($3, last_record), \
             version = version + 1 WHERE host_id = $1",
            &[&host_id, &value, &last],
        )
        .await
    } else {
        tx.execute(
            "INSERT INTO hosts (host_id, value, last_record) VALUES ($1, $2, $3)",
            &[&host_id, &value, &last],
        )
        .await
    }
    .ctx("writing a host")
    .map(|_| ())
}

/// fingerprint, comment, user, path, line: one vector per column.
type KeyColumns = (Vec<String>, Vec<String>, Vec<String>, Vec<String>, Vec<i64>);

/// The host's keys as rows, for queries by fingerprint or comment.
async fn write_host_keys(
    tx: &impl GenericClient,
    host_id: &str,
    full: &Snapshot,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM host_keys WHERE host_id = $1", &[&host_id])
        .await
        .ctx("clearing a host's keys")?;
    let mut cols = KeyColumns::default();
    for s in &full.sections {
        if let Some(Body::SshKeys(k)) = &s.body {
            for f in &k.files {
                for key in &f.keys {
                    cols.0.push(key.fingerprint.clone());
                    cols.1.push(key.comment.clone());
                    cols.2.push(f.user.clone());
                    cols.3.push(f.path.clone());
                    cols.4.push(i64::from(key.line));
                }
            }
        }
    }
    if cols.0.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO host_keys (host_id, fingerprint, comment, username, path, line) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])",
        &[&host_id, &cols.0, &cols.1, &cols.2, &cols.3, &cols.4],
    )
    .await
    .ctx("writing a host's keys")?;
    Ok(())
}
