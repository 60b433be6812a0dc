//! Sweeps, the notification outbox and the audit trail on PostgreSQL.
//!
//! A sweep host entry is changed by compare-and-swap on its value (the
//! caller's closure runs on the caller's thread, between a read and a
//! conditional update): a second collector's result that came between
//! makes the update miss, and the closure sees that result on the next
//! round, so a sweep's first final result per host wins everywhere.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use driftwatch_common::proto::{AuditEntry, Finding, NotifyEvent, SweepHost, SweepJob};

use super::records::upsert_findings;
use super::store::{Ctx, Inner};
use crate::store::audit::MAX_ENTRIES;
use crate::store::sled_store::{decode, encode};
use crate::store::{Queued, StoreError};

impl Inner {
    /// Entries and header in one transaction: a job is never seen with
    /// part of its hosts.
    pub async fn put_sweep(&self, job: SweepJob) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a sweep write")?;
        tx.execute("DELETE FROM sweep_hosts WHERE sweep_id = $1", &[&job.id])
            .await
            .ctx("replacing a sweep's hosts")?;
        // Last entry of a host wins, as in sled's batch.
        let mut hosts: BTreeMap<&str, &SweepHost> = BTreeMap::new();
        for h in &job.hosts {
            hosts.insert(h.host_id.as_str(), h);
        }
        let ids: Vec<&str> = hosts.keys().copied().collect();
        let values: Vec<Vec<u8>> = hosts.values().map(|h| encode(*h)).collect();
        tx.execute(
            "INSERT INTO sweep_hosts (sweep_id, host_id, value) \
             SELECT $1, * FROM unnest($2::text[], $3::bytea[])",
            &[&job.id, &ids, &values],
        )
        .await
        .ctx("writing a sweep's hosts")?;
        let header = SweepJob {
            hosts: vec![],
            ..job.clone()
        };
        tx.execute(
            "INSERT INTO sweeps (id, value) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
            &[&job.id, &encode(&header)],
        )
        .await
        .ctx("writing a sweep")?;
        tx.commit().await.ctx("committing a sweep")
    }

    pub async fn get_sweep(&self, id: String) -> Result<Option<SweepJob>, StoreError> {
        let c = self.conn().await?;
        let Some(row) = c
            .query_opt("SELECT value FROM sweeps WHERE id = $1", &[&id])
            .await
            .ctx("reading a sweep")?
        else {
            return Ok(None);
        };
        let mut job: SweepJob = decode(id.as_bytes(), row.get::<_, &[u8]>(0))?;
        job.hosts = sweep_hosts_of(&c, &id).await?;
        Ok(Some(job))
    }

    pub async fn sweep_headers(&self) -> Result<Vec<SweepJob>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query("SELECT id, value FROM sweeps ORDER BY id", &[])
            .await
            .ctx("listing sweeps")?;
        rows.iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), r.get::<_, &[u8]>(1)))
            .collect()
    }

    pub async fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError> {
        let mut jobs = self.sweep_headers().await?;
        let c = self.conn().await?;
        for j in &mut jobs {
            j.hosts = sweep_hosts_of(&c, &j.id).await?;
        }
        Ok(jobs)
    }

    /// The entry and its stored bytes (what a compare-and-swap compares).
    pub async fn sweep_host_raw(
        &self,
        id: String,
        host_id: String,
    ) -> Result<Option<(SweepHost, Vec<u8>)>, StoreError> {
        let c = self.conn().await?;
        let Some(row) = c
            .query_opt(
                "SELECT value FROM sweep_hosts WHERE sweep_id = $1 AND host_id = $2",
                &[&id, &host_id],
            )
            .await
            .ctx("reading a sweep host")?
        else {
            return Ok(None);
        };
        let raw: Vec<u8> = row.get(0);
        Ok(Some((decode(host_id.as_bytes(), &raw)?, raw)))
    }

    /// Writes `new` only if the entry is still `old`; whether it was.
    pub async fn swap_sweep_host(
        &self,
        id: String,
        host_id: String,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        let n = c
            .execute(
                "UPDATE sweep_hosts SET value = $4 WHERE sweep_id = $1 AND host_id = $2 AND value = $3",
                &[&id, &host_id, &old, &new],
            )
            .await
            .ctx("updating a sweep host")?;
        Ok(n == 1)
    }

    /// Sets `sent_ms` on each named entry, under its row lock, keeping
    /// whatever else the entry says now.
    pub async fn mark_sweep_sent(
        &self,
        id: String,
        host_ids: Vec<String>,
        sent_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a sweep sent mark")?;
        let rows = tx
            .query(
                "SELECT host_id, value FROM sweep_hosts WHERE sweep_id = $1 AND host_id = ANY($2) \
                 ORDER BY host_id FOR UPDATE",
                &[&id, &host_ids],
            )
            .await
            .ctx("locking sweep hosts")?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut values = Vec::with_capacity(rows.len());
        for r in &rows {
            let host: String = r.get(0);
            let mut e: SweepHost = decode(host.as_bytes(), r.get::<_, &[u8]>(1))?;
            e.sent_ms = sent_ms;
            values.push(encode(&e));
            ids.push(host);
        }
        tx.execute(
            "UPDATE sweep_hosts s SET value = u.value FROM unnest($2::text[], $3::bytea[]) AS u(host_id, value) \
             WHERE s.sweep_id = $1 AND s.host_id = u.host_id",
            &[&id, &ids, &values],
        )
        .await
        .ctx("marking sweep hosts sent")?;
        tx.commit().await.ctx("committing a sweep sent mark")?;
        // sled counts every named host that has an entry, once per name.
        let found: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        Ok(host_ids
            .iter()
            .filter(|h| found.contains(h.as_str()))
            .count())
    }

    pub async fn put_findings_and_queue(
        &self,
        findings: Vec<Finding>,
        events: Vec<NotifyEvent>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a findings write")?;
        upsert_findings(&tx, &findings).await?;
        if !events.is_empty() {
            let receivers: Vec<&str> = events.iter().map(|e| e.receiver.as_str()).collect();
            let values: Vec<Vec<u8>> = events.iter().map(encode).collect();
            // WITH ORDINALITY keeps the events' order in their ids.
            tx.execute(
                "INSERT INTO outbox (receiver, value) SELECT r, v FROM \
                 unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS e(r, v, n) ORDER BY n",
                &[&receivers, &values],
            )
            .await
            .ctx("queueing notifications")?;
        }
        tx.commit().await.ctx("committing findings")
    }

    pub async fn put_findings(&self, findings: Vec<Finding>) -> Result<(), StoreError> {
        let c = self.conn().await?;
        upsert_findings(&c, &findings).await
    }

    pub async fn queued(&self, receiver: String, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT id, value FROM outbox WHERE receiver = $1 ORDER BY id LIMIT $2",
                &[&receiver, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .ctx("reading the outbox")?;
        rows.iter()
            .map(|r| {
                let key = r.get::<_, i64>(0).to_be_bytes().to_vec();
                Ok((key.clone(), decode(&key, r.get::<_, &[u8]>(1))?))
            })
            .collect()
    }

    pub async fn dequeue(&self, key: Vec<u8>) -> Result<(), StoreError> {
        let id =
            i64::from_be_bytes(key.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: hex::encode(&key),
                reason: "an outbox key on PostgreSQL is 8 bytes".into(),
            })?);
        let c = self.conn().await?;
        c.execute("DELETE FROM outbox WHERE id = $1", &[&id])
            .await
            .ctx("dequeueing a notification")?;
        Ok(())
    }

    pub async fn trim_queue(&self, receiver: String, keep: usize) -> Result<u64, StoreError> {
        let c = self.conn().await?;
        c.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE receiver = $1 \
             ORDER BY id DESC OFFSET $2)",
            &[&receiver, &(keep.min(i64::MAX as usize) as i64)],
        )
        .await
        .ctx("trimming the outbox")
    }

    pub async fn queue_lengths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT receiver, count(*) FROM outbox GROUP BY receiver",
                &[],
            )
            .await
            .ctx("counting the outbox")?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Appends, then drops the oldest beyond the bound: the count is an
    /// index-only scan, cheap at the trail's size, and admin actions are rare.
    pub async fn put_audit(&self, entry: AuditEntry, max: usize) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO audit (at_ms, value) VALUES ($1, $2)",
            &[&entry.at_ms, &encode(&entry)],
        )
        .await
        .ctx("writing an audit entry")?;
        c.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY at_ms DESC, id DESC OFFSET $1)",
            &[&(max as i64)],
        )
        .await
        .ctx("bounding the audit trail")?;
        Ok(())
    }

    pub async fn audit(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        let c = self.conn().await?;
        let take = limit.min(i64::MAX as usize - 1) as i64 + 1;
        let rows = c
            .query(
                "SELECT value FROM audit WHERE at_ms >= $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
                &[&since_ms, &take],
            )
            .await
            .ctx("reading the audit trail")?;
        let more = rows.len() > limit;
        let out = rows
            .iter()
            .take(limit)
            .map(|r| decode(b"audit", r.get::<_, &[u8]>(0)))
            .collect::<Result<_, _>>()?;
        Ok((out, more))
    }
}

/// The bound the trait's `put_audit` applies.
pub const AUDIT_MAX: usize = MAX_ENTRIES;

async fn sweep_hosts_of(c: &impl GenericClient, id: &str) -> Result<Vec<SweepHost>, StoreError> {
    let rows = c
        .query(
            "SELECT host_id, value FROM sweep_hosts WHERE sweep_id = $1 ORDER BY host_id",
            &[&id],
        )
        .await
        .ctx("reading a sweep's hosts")?;
    rows.iter()
        .map(|r| decode(r.get::<_, &str>(0).as_bytes(), r.get::<_, &[u8]>(1)))
        .collect()
}
