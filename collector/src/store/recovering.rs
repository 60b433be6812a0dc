//! A store that survives a failed disk write. sled keeps the first IO
//! error of a database (ENOSPC, say) and fails every later write and sync
//! with it, so a collector whose disk filled once refused every report
//! until restarted, even after space was freed. This wrapper notices such
//! an error, keeps serving reads from the old database while the disk is
//! still full, and once there is free space again reopens the data dir
//! (sled recovers its log as after a crash). Nothing acknowledged is lost:
//! an acknowledgement follows a successful sync, and writes of a failed
//! sync were never acknowledged, so their agents still spool them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use driftwatch_common::proto::AuditEntry;
use driftwatch_common::proto::{
    Baseline, BaselineCandidate, Finding, HostSummary, NotifyEvent, Section, Snapshot,
    SnapshotRecord, SweepHost, SweepJob, Token,
};
use tracing::{info, warn};

use super::{
    AuditStore, CandidateOutcome, OutboxStore, PutOutcome, Queued, SledStore, Store, StoreError,
    SweepStore,
};
use crate::tokens::TokenError;

/// Free bytes the data dir's filesystem needs before a reopen is tried.
const REOPEN_FREE_BYTES: u64 = 8 << 20;
/// Reopen attempts at most this often.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

pub struct Recovering {
    dir: PathBuf,
    inner: RwLock<Option<Arc<SledStore>>>,
    broken: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
}

impl StoreError {
    /// The write failed for lack of space (or the store is waiting for
    /// space after such a failure).
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::Sled(sled::Error::Io(e)) => e,
            StoreError::Io { source, .. } => source,
            _ => return false,
        };
        io.raw_os_error() == Some(libc::ENOSPC)
            || io.raw_os_error() == Some(libc::EDQUOT)
            || io.kind() == std::io::ErrorKind::StorageFull
    }

    /// The database is down or unreachable: worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Postgres {
                unreachable: true,
                ..
            }
        )
    }

    /// sled remembers this error: the database fails from now on.
    fn is_sticky(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Io(_)))
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe_zeroed();
    #[allow(unsafe_code)]
    // SAFETY: statvfs writes into the struct we own; the path is a valid C string.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail.saturating_mul(st.f_frsize))
}

#[allow(unsafe_code)]
fn unsafe_zeroed() -> libc::statvfs {
    // SAFETY: statvfs is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

impl Recovering {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Recovering {
            inner: RwLock::new(Some(Arc::new(SledStore::open(dir)?))),
            dir: dir.to_path_buf(),
            broken: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
        })
    }

    fn waiting(&self) -> StoreError {
        StoreError::Io {
            path: self.dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "an earlier write failed (disk full?); writes resume by themselves once space is freed",
            ),
        }
    }

    /// Reopens the data dir if a write failed and there is room again.
    fn recover(&self) {
        if !self.broken.load(Ordering::Acquire) {
            return;
        }
        {
            let mut last = self.last_attempt.lock().expect("not poisoned");
            if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        if free_bytes(&self.dir).is_some_and(|b| b < REOPEN_FREE_BYTES) {
            return;
        }
        let mut w = self.inner.write().expect("not poisoned");
        if !self.broken.load(Ordering::Acquire) {
            return;
        }
        // The old database holds the data dir's lock until dropped.
        *w = None;
        match SledStore::open(&self.dir) {
            Ok(s) => {
                *w = Some(Arc::new(s));
                self.broken.store(false, Ordering::Release);
                info!(dir = %self.dir.display(), "storage reopened after a failed write; accepting reports again");
            }
            Err(e) => warn!(error = %e, "reopening storage after a failed write failed; retrying"),
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&SledStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.recover();
        let g = self.inner.read().expect("not poisoned");
        let s = g.as_ref().ok_or_else(|| self.waiting())?;
        let r = f(s);
        if let Err(e) = &r
            && e.is_sticky()
            && !self.broken.swap(true, Ordering::AcqRel)
        {
            warn!(error = %e, disk_full = e.is_disk_full(), "storage write failed: refusing writes until the store can be reopened");
        }
        r
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&SledStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.recover();
        // Fail fast: the old database would only repeat its error.
        if self.broken.load(Ordering::Acquire) {
            return Err(self.waiting());
        }
        self.read(f)
    }
}

impl SweepStore for Recovering {
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError> {
        self.write(|s| s.put_sweep(job))
    }
    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        self.read(|s| s.get_sweep(id))
    }
    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.read(|s| s.list_sweeps())
    }
    fn sweep_headers(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.read(|s| s.sweep_headers())
    }
    fn sweep_host(&self, id: &str, host_id: &str) -> Result<Option<SweepHost>, StoreError> {
        self.read(|s| s.sweep_host(id, host_id))
    }
    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepHost>, StoreError> {
        self.write(|s| s.update_sweep_host(id, host_id, f))
    }
    fn mark_sweep_sent(
        &self,
        id: &str,
        host_ids: &[String],
        sent_ms: i64,
    ) -> Result<usize, StoreError> {
        self.write(|s| s.mark_sweep_sent(id, host_ids, sent_ms))
    }
}

impl OutboxStore for Recovering {
    fn put_findings_and_queue(
        &self,
        findings: &[Finding],
        events: &[NotifyEvent],
    ) -> Result<(), StoreError> {
        self.write(|s| s.put_findings_and_queue(findings, events))
    }
    fn queued(&self, receiver: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        self.read(|s| s.queued(receiver, limit))
    }
    fn dequeue(&self, key: &[u8]) -> Result<(), StoreError> {
        self.write(|s| s.dequeue(key))
    }
    fn trim_queue(&self, receiver: &str, keep: usize) -> Result<u64, StoreError> {
        self.write(|s| s.trim_queue(receiver, keep))
    }
    fn queue_lengths(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.read(|s| s.queue_lengths())
    }
}

impl AuditStore for Recovering {
    fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write(|s| s.put_audit(entry))
    }
    fn audit(&self, since_ms: i64, limit: usize) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        self.read(|s| s.audit(since_ms, limit))
    }
}

impl Store for Recovering {
    fn put_snapshot(
        &self,
        host_id: &str,
        snapshot: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        self.write(|s| s.put_snapshot(host_id, snapshot, now_ms))
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.write(|s| s.sync())
    }
    fn sync_final(&self) -> Result<(), StoreError> {
        self.write(|s| s.sync_final())
    }
    fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.read(|s| s.list_hosts())
    }
    fn host(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError> {
        self.read(|s| s.host(host_id))
    }
    fn latest_snapshot(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError> {
        self.read(|s| s.latest_snapshot(host_id))
    }
    fn latest_key_views(&self, f: &mut dyn FnMut(&str, &Snapshot)) -> Result<(), StoreError> {
        self.read(|s| s.latest_key_views(f))
    }
    fn history(&self, host_id: &str, since_ms: i64) -> Result<Vec<SnapshotRecord>, StoreError> {
        self.read(|s| s.history(host_id, since_ms))
    }
    fn section_by_hash(&self, hash: &str) -> Result<Option<Section>, StoreError> {
        self.read(|s| s.section_by_hash(hash))
    }
    fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        self.write(|s| s.prune(cutoff_ms))
    }
    fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.read(|s| s.findings())
    }
    fn put_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        self.write(|s| s.put_findings(findings))
    }
    fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        self.read(|s| s.baselines())
    }
    fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        self.read(|s| s.baseline(name))
    }
    fn put_baseline(&self, baseline: &Baseline, overwrite: bool) -> Result<bool, StoreError> {
        self.write(|s| s.put_baseline(baseline, overwrite))
    }
    fn put_baseline_candidate(
        &self,
        host_id: &str,
        baseline: &Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError> {
        self.write(|s| s.put_baseline_candidate(host_id, baseline, quorum))
    }
    fn baseline_candidates(&self) -> Result<Vec<BaselineCandidate>, StoreError> {
        self.read(|s| s.baseline_candidates())
    }
    fn backup_to_file(&self) -> Result<(PathBuf, super::backup::Counts), StoreError> {
        // Reads the store; the file it writes is not sled's.
        self.read(|s| s.backup_to_file())
    }
    fn approve_image_baseline(
        &self,
        image_id: &str,
        from_host: &str,
        by: &str,
    ) -> Result<Option<Baseline>, StoreError> {
        self.write(|s| s.approve_image_baseline(image_id, from_host, by))
    }
    fn create_token(&self, token: &Token) -> Result<(), StoreError> {
        self.write(|s| s.create_token(token))
    }
    fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.read(|s| s.list_tokens())
    }
    fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.read(|s| s.token(id))
    }
    fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Option<Token>, StoreError> {
        self.write(|s| s.revoke_token(id, now_ms))
    }
    fn consume_token(
        &self,
        id: &str,
        presented: &str,
        now_ms: i64,
    ) -> Result<Result<Token, TokenError>, StoreError> {
        self.write(|s| s.consume_token(id, presented, now_ms))
    }
    fn enroll_host(&self, host: &HostSummary) -> Result<(), StoreError> {
        self.write(|s| s.enroll_host(host))
    }
    fn revoke_host(
        &self,
        host_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<HostSummary>, StoreError> {
        self.write(|s| s.revoke_host(host_id, by, now_ms))
    }
    fn forget_host(&self, host_id: &str) -> Result<Option<(HostSummary, u64)>, StoreError> {
        self.write(|s| s.forget_host(host_id))
    }
    fn forgotten_revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(|s| s.forgotten_revoked_ids())
    }
}
