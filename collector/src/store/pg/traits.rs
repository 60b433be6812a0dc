//! The store traits on [`PgStore`]: each method sends its work to the
//! store's runtime (store.rs) with owned arguments.

use std::collections::BTreeMap;
use std::path::PathBuf;

use driftwatch_common::proto::{
    AuditEntry, Baseline, BaselineCandidate, Finding, HostSummary, NotifyEvent, Section, Snapshot,
    SnapshotRecord, SweepHost, SweepJob, Token,
};

use super::store::{Ctx, PgStore};
use crate::store::sled_store::encode;
use crate::store::{
    AuditStore, CandidateOutcome, OutboxStore, PutOutcome, Queued, Store, StoreError, SweepStore,
    backup,
};
use crate::tokens::TokenError;

/// What `backup` says on PostgreSQL.
pub const NO_BACKUP: &str = "this collector stores in PostgreSQL: back the database up with PostgreSQL's own tools (pg_dump -Fc DB, or a base backup with WAL archiving); `backup`, `check`, `restore` and the seal are for the embedded sled store";

impl Store for PgStore {
    fn put_snapshot(
        &self,
        host_id: &str,
        snapshot: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        let (h, s) = (host_id.to_string(), snapshot.clone());
        self.call(move |i| async move { i.put_report(h, s, now_ms).await })
    }

    /// Commits a transaction under `synchronous_commit = on`: the WAL is
    /// flushed through it, so through every write that returned before.
    /// It must write WAL: PostgreSQL commits a transaction that wrote none
    /// (even with an xid) without waiting for a flush, so it writes a
    /// transactional logical message, which needs no table and no row that
    /// concurrent syncs would queue on.
    fn sync(&self) -> Result<(), StoreError> {
        self.call(|i| async move {
            let c = i.conn().await?;
            c.batch_execute(
                "BEGIN; SET LOCAL synchronous_commit TO on; \
                 SELECT pg_logical_emit_message(true, 'driftwatch-sync', ''); COMMIT",
            )
            .await
            .ctx("making writes durable (a synchronous commit)")
        })
    }

    fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.call(|i| async move { i.list_hosts().await })
    }

    fn host(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError> {
        let h = host_id.to_string();
        self.call(move |i| async move { i.host(h).await })
    }

    fn latest_snapshot(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let h = host_id.to_string();
        self.call(move |i| async move { i.latest(h).await })
    }

    fn latest_key_views(&self, f: &mut dyn FnMut(&str, &Snapshot)) -> Result<(), StoreError> {
        let mut after: Option<String> = None;
        loop {
            let a = after.clone();
            let page = self.call(move |i| async move { i.key_views_page(a).await })?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (host, view) in &page {
                f(host, view);
            }
        }
    }

    fn history(&self, host_id: &str, since_ms: i64) -> Result<Vec<SnapshotRecord>, StoreError> {
        let h = host_id.to_string();
        self.call(move |i| async move { i.history(h, since_ms).await })
    }

    fn section_by_hash(&self, hash: &str) -> Result<Option<Section>, StoreError> {
        let h = hash.to_string();
        self.call(move |i| async move { i.section_by_hash(h).await })
    }

    fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        self.call(move |i| async move { i.prune(cutoff_ms).await })
    }

    fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.call(|i| async move { i.findings().await })
    }

    fn put_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let f = findings.to_vec();
        self.call(move |i| async move { i.put_findings(f).await })
    }

    fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        self.call(|i| async move { i.baselines().await })
    }

    fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        let n = name.to_string();
        self.call(move |i| async move { i.baseline(n).await })
    }

    fn put_baseline(&self, baseline: &Baseline, overwrite: bool) -> Result<bool, StoreError> {
        let b = baseline.clone();
        self.call(move |i| async move { i.put_baseline(b, overwrite).await })
    }

    fn put_baseline_candidate(
        &self,
        host_id: &str,
        baseline: &Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError> {
        let (h, b) = (host_id.to_string(), baseline.clone());
        self.call(move |i| async move { i.put_baseline_candidate(h, b, quorum).await })
    }

    fn backup_to_file(&self) -> Result<(PathBuf, backup::Counts), StoreError> {
        Err(StoreError::Unsupported(NO_BACKUP.into()))
    }

    fn baseline_candidates(&self) -> Result<Vec<BaselineCandidate>, StoreError> {
        self.call(|i| async move { i.baseline_candidates().await })
    }

    fn approve_image_baseline(
        &self,
        image_id: &str,
        from_host: &str,
        by: &str,
    ) -> Result<Option<Baseline>, StoreError> {
        let (a, b, c) = (image_id.to_string(), from_host.to_string(), by.to_string());
        self.call(move |i| async move { i.approve_image_baseline(a, b, c).await })
    }

    fn create_token(&self, token: &Token) -> Result<(), StoreError> {
        let t = token.clone();
        self.call(move |i| async move { i.create_token(t).await })
    }

    fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.call(|i| async move { i.list_tokens().await })
    }

    fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        let id = id.to_string();
        self.call(move |i| async move { i.token(id).await })
    }

    fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Option<Token>, StoreError> {
        let id = id.to_string();
        self.call(move |i| async move { i.revoke_token(id, now_ms).await })
    }

    fn consume_token(
        &self,
        id: &str,
        presented: &str,
        now_ms: i64,
    ) -> Result<Result<Token, TokenError>, StoreError> {
        let (id, p) = (id.to_string(), presented.to_string());
        self.call(move |i| async move { i.consume_token(id, p, now_ms).await })
    }

    fn enroll_host(&self, host: &HostSummary) -> Result<(), StoreError> {
        let h = host.clone();
        self.call(move |i| async move { i.enroll_host(h).await })
    }

    fn revoke_host(
        &self,
        host_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<HostSummary>, StoreError> {
        let (h, b) = (host_id.to_string(), by.to_string());
        self.call(move |i| async move { i.revoke_host(h, b, now_ms).await })
    }

    fn forget_host(&self, host_id: &str) -> Result<Option<(HostSummary, u64)>, StoreError> {
        let h = host_id.to_string();
        self.call(move |i| async move { i.forget_host(h).await })
    }

    fn forgotten_revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        self.call(|i| async move { i.forgotten_revoked_ids().await })
    }
}

impl SweepStore for PgStore {
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError> {
        let j = job.clone();
        self.call(move |i| async move { i.put_sweep(j).await })
    }

    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        let id = id.to_string();
        self.call(move |i| async move { i.get_sweep(id).await })
    }

    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.call(|i| async move { i.list_sweeps().await })
    }

    fn sweep_headers(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.call(|i| async move { i.sweep_headers().await })
    }

    fn sweep_host(&self, id: &str, host_id: &str) -> Result<Option<SweepHost>, StoreError> {
        let (id, h) = (id.to_string(), host_id.to_string());
        Ok(self
            .call(move |i| async move { i.sweep_host_raw(id, h).await })?
            .map(|(e, _)| e))
    }

    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepHost>, StoreError> {
        loop {
            let (a, b) = (id.to_string(), host_id.to_string());
            let Some((mut entry, old)) =
                self.call(move |i| async move { i.sweep_host_raw(a, b).await })?
            else {
                return Ok(None);
            };
            if !f(&mut entry) {
                return Ok(Some(entry));
            }
            let (a, b, new) = (id.to_string(), host_id.to_string(), encode(&entry));
            if self.call(move |i| async move { i.swap_sweep_host(a, b, old, new).await })? {
                return Ok(Some(entry));
            }
        }
    }

    fn mark_sweep_sent(
        &self,
        id: &str,
        host_ids: &[String],
        sent_ms: i64,
    ) -> Result<usize, StoreError> {
        let (id, hosts) = (id.to_string(), host_ids.to_vec());
        self.call(move |i| async move { i.mark_sweep_sent(id, hosts, sent_ms).await })
    }
}

impl OutboxStore for PgStore {
    fn put_findings_and_queue(
        &self,
        findings: &[Finding],
        events: &[NotifyEvent],
    ) -> Result<(), StoreError> {
        let (f, e) = (findings.to_vec(), events.to_vec());
        self.call(move |i| async move { i.put_findings_and_queue(f, e).await })
    }

    fn queued(&self, receiver: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let r = receiver.to_string();
        self.call(move |i| async move { i.queued(r, limit).await })
    }

    fn dequeue(&self, key: &[u8]) -> Result<(), StoreError> {
        let k = key.to_vec();
        self.call(move |i| async move { i.dequeue(k).await })
    }

    fn trim_queue(&self, receiver: &str, keep: usize) -> Result<u64, StoreError> {
        let r = receiver.to_string();
        self.call(move |i| async move { i.trim_queue(r, keep).await })
    }

    fn queue_lengths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.call(|i| async move { i.queue_lengths().await })
    }
}

impl AuditStore for PgStore {
    fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.call(move |i| async move { i.put_audit(e, super::jobs::AUDIT_MAX).await })
    }

    fn audit(&self, since_ms: i64, limit: usize) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        self.call(move |i| async move { i.audit(since_ms, limit).await })
    }
}
