//! The sled adapter. Layout (schema version 3), every value prefixed with a
//! one-byte encoding version:
//! - `meta`:      "schema" → u32 BE; "generation" → u64 BE, bumped by
//!   every sync and sealed outside sled (seal.rs)
//! - `hosts`:     host_id → HostSummary (prost)
//! - `latest`, `history`, `sections`: see reports.rs
//! - `findings`, `baselines`: see drift_store.rs
//! - `tokens`:    token id → Token (prost; the secret only as a hash)
//! - `sweeps`, `sweep_hosts`: see sweeps.rs (schema 3 moved each sweep's
//!   hosts out of the job's value into entries of their own; a schema-2
//!   dir is migrated at open)
//! - `audit`:     time 0x.. id → AuditEntry: see audit.rs
//!
//! Durability: sled's flush (on Linux) issues sync_file_range on the data
//! file and never fsync, nor fsyncs the directory of new files (traced with
//! strace; sled's own fsync runs on a background timer nobody awaits), so
//! [`SledStore::sync`] flushes and then
//! fsyncs the files itself, including blob files sled creates for large
//! values and the directories that gained entries.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use driftwatch_common::proto::{
    Baseline, BaselineCandidate, Finding, HostSummary, Label, Section, Snapshot, SnapshotRecord,
    Token,
};
use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{CandidateOutcome, PutOutcome, Store, StoreError};
use crate::tokens::{self, TokenError};

const SCHEMA_VERSION: u32 = 3;
/// Older layouts this collector migrates at open.
const SWEEPS_IN_ONE_VALUE: u32 = 2;
const ENCODING_V1: u8 = 1;

pub struct SledStore {
    pub(super) db: sled::Db,
    dir: PathBuf,
    pub(super) meta: sled::Tree,
    pub(super) hosts: sled::Tree,
    pub(super) latest: sled::Tree,
    pub(super) history: sled::Tree,
    pub(super) sections: sled::Tree,
    pub(super) findings: sled::Tree,
    pub(super) baselines: sled::Tree,
    pub(super) baseline_candidates: sled::Tree,
    pub(super) baseline_votes: sled::Tree,
    pub(super) candidates_lock: Mutex<()>,
    /// Writers hold it shared; a backup holds it exclusively while it
    /// copies, so it sees every tree at one instant (a report's trees are
    /// written together, and a backup must not split them).
    pub(super) write_gate: RwLock<()>,
    tokens: sled::Tree,
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    /// The last generation a sync wrote into `meta`, and the newest one
    /// known durable (its sync returned): see seal.rs.
    generation: AtomicU64,
    durable_generation: AtomicU64,
    sealer: Mutex<super::seal::Sealer>,
    /// Entries in the `audit` tree, counted on the first append (sled
    /// counts a tree by walking it): the trail keeps at most
    /// `audit::MAX_ENTRIES`.
    pub(super) audit_len: Mutex<Option<usize>>,
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn encode<M: Message>(m: &M) -> Vec<u8> {
    let mut v = Vec::with_capacity(m.encoded_len() + 1);
    v.push(ENCODING_V1);
    m.encode(&mut v).expect("Vec grows");
    v
}

pub(super) fn decode<M: Message + Default>(key: &[u8], v: &[u8]) -> Result<M, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    match v.split_first() {
        Some((&ENCODING_V1, rest)) => M::decode(rest).map_err(|e| corrupt(e.to_string())),
        Some((b, _)) => Err(corrupt(format!("unknown encoding version {b}"))),
        None => Err(corrupt("empty value".into())),
    }
}

/// sled's page cache. Its default (1 GiB) let the collector grow to
/// 0.9-1.8 GiB RSS under the load generator (BENCHMARKS.md); the hot data
/// (host records, latest snapshots of reporting hosts) is read once per
/// report, so a smaller cache costs little.
const CACHE_BYTES: u64 = 64 << 20;

/// Opens sled, turning a panic on a damaged log (what sled 0.34 does when
/// its `db` file holds garbage) into an error that names the file. The
/// panic's own report is kept off stderr: the error says it better.
fn open_sled(dir: &Path) -> Result<Result<sled::Db, StoreError>, sled::Error> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
    });
    std::panic::set_hook(quiet);
    match opened {
        Ok(r) => r.map(Ok),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "sled panicked while reading it".into());
            Ok(Err(StoreError::Damaged {
                path: dir.join("db").display().to_string(),
                reason,
            }))
        }
    }
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let tightened = super::private::make_private(dir).map_err(|e| io(dir, e))?;
        if tightened > 0 {
            tracing::warn!(
                dir = %dir.display(),
                entries = tightened,
                "data dir was readable by others: took group and other permissions off"
            );
        }
        // Measured before sled touches it: sled 0.34 takes damage anywhere
        // in `db` (an overwritten header, garbage in the middle, a cut
        // file) for a torn write at the end and opens the store empty.
        let db_bytes = std::fs::metadata(dir.join("db"))
            .map(|m| m.len())
            .unwrap_or(0);
        let db = open_sled(dir).map_err(|e| match e {
            // sled reports a held lock as ErrorKind::Other with this
            // text (the EWOULDBLOCK is only inside its message).
            sled::Error::Io(ioe)
                if ioe.kind() == std::io::ErrorKind::WouldBlock
                    || ioe.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: dir.display().to_string(),
                    reason: ioe.to_string(),
                }
            }
            // What sled says of a damaged conf or log at open.
            sled::Error::Corruption { .. } => StoreError::Damaged {
                path: format!("{}/conf or {}/db", dir.display(), dir.display()),
                reason: "sled reports corruption".into(),
            },
            sled::Error::Unsupported(m) => StoreError::Damaged {
                path: format!("{}/conf or {}/db", dir.display(), dir.display()),
                reason: m,
            },
            other => StoreError::Sled(other),
        })??;
        let meta = db.open_tree("meta")?;
        let mut migrate_from = None;
        match meta.get("schema")? {
            // The schema is the first record of every store and synced at
            // once: a `db` with bytes in it but no schema lost its records.
            None if db_bytes > 0 => {
                return Err(StoreError::Damaged {
                    path: dir.join("db").display().to_string(),
                    reason: format!(
                        "it holds {db_bytes} bytes but sled recovered no records from it, \
                         not even the schema: sled drops everything after damage it takes \
                         for a torn write"
                    ),
                });
            }
            None => {
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0xff; 4]));
                if found == SWEEPS_IN_ONE_VALUE {
                    migrate_from = Some(found);
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        path: dir.display().to_string(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
        }
        let recovered = match meta.get(super::seal::GENERATION_KEY)? {
            Some(v) => {
                u64::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: format!("meta/{}", super::seal::GENERATION_KEY),
                    reason: format!("{} bytes where 8 were written", v.len()),
                })?)
            }
            None => 0,
        };
        let seal_path = dir.join(super::seal::SEAL_FILE);
        let sealed = super::seal::read(dir)
            .map_err(|e| io(&seal_path, e))?
            .map_err(|e| StoreError::Damaged {
                path: seal_path.display().to_string(),
                reason: format!("{e}; delete it if the db is known good"),
            })?;
        tracing::info!(
            generation = recovered,
            sealed = ?sealed,
            "store opened: the last sync sled gave back, and the last one sealed as durable"
        );
        if let Some(sealed) = sealed
            && recovered < sealed
        {
            return Err(StoreError::Damaged {
                path: dir.join("db").display().to_string(),
                reason: format!(
                    "sled recovered the store as of sync {recovered}, but {} records that sync \
                     {sealed} was durable: what was written after sync {recovered} is lost \
                     (sled drops everything after damage it takes for a torn write). If an \
                     older copy of db was put back on purpose, delete the seal file to accept it",
                    seal_path.display()
                ),
            });
        }
        let store = SledStore {
            hosts: db.open_tree("hosts")?,
            latest: db.open_tree("latest")?,
            history: db.open_tree("history")?,
            sections: db.open_tree("sections")?,
            findings: db.open_tree("findings")?,
            baselines: db.open_tree("baselines")?,
            baseline_candidates: db.open_tree("baseline_candidates")?,
            baseline_votes: db.open_tree("baseline_votes")?,
            candidates_lock: Mutex::new(()),
            write_gate: RwLock::new(()),
            tokens: db.open_tree("tokens")?,
            meta,
            db,
            dir: dir.to_path_buf(),
            synced_blobs: Mutex::new(HashSet::new()),
            generation: AtomicU64::new(recovered),
            durable_generation: AtomicU64::new(recovered),
            sealer: Mutex::new(super::seal::Sealer::new(dir, sealed)),
            audit_len: Mutex::new(None),
        };
        if migrate_from == Some(SWEEPS_IN_ONE_VALUE) {
            let moved = store.migrate_sweeps_from_v2()?;
            store.sync()?;
            store.meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
            tracing::info!(
                sweep_hosts = moved,
                "data dir migrated from schema 2 to 3 (sweep hosts in entries of their own)"
            );
        }
        store.sync()?;
        store.seal(true)?;
        Ok(store)
    }

    /// Writes the newest durable generation into the seal when it is due
    /// (or `force`d): see seal.rs.
    fn seal(&self, force: bool) -> Result<(), StoreError> {
        let durable = self.durable_generation.load(Ordering::Acquire);
        let path = self.dir.join(super::seal::SEAL_FILE);
        self.sealer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seal(durable, force)
            .map_err(|e| io(&path, e))
    }

    /// sled's flush, then the fsyncs it does not do (module doc).
    fn sync_files(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.fsync_path(&self.dir.join("db"))?;
        self.fsync_path(&self.dir.join("conf"))?;
        let blobs = self.dir.join("blobs");
        if blobs.is_dir() {
            let mut synced = self.synced_blobs.lock().expect("not poisoned");
            let mut present = HashSet::new();
            let mut new_files = false;
            for entry in std::fs::read_dir(&blobs).map_err(|e| io(&blobs, e))? {
                let entry = entry.map_err(|e| io(&blobs, e))?;
                let name = entry.file_name();
                if !synced.contains(&name) {
                    new_files = true;
                    let path = entry.path();
                    if !super::fsync::sync_if_present(&path).map_err(|e| io(&path, e))? {
                        continue;
                    }
                }
                present.insert(name);
            }
            if new_files {
                self.fsync_path(&blobs)?;
            }
            *synced = present;
        }
        self.fsync_path(&self.dir)
    }

    /// Held by every write (see `write_gate`).
    pub(super) fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.write_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn host_record(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError> {
        self.hosts
            .get(host_id.as_bytes())?
            .map(|v| decode(host_id.as_bytes(), &v))
            .transpose()
    }

    fn fsync_path(&self, path: &Path) -> Result<(), StoreError> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(path, e))
    }
}

impl Store for SledStore {
    fn put_snapshot(
        &self,
        host_id: &str,
        snap: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        let _w = self.writing();
        self.put_report(host_id, snap, now_ms)
    }

    fn history(&self, host_id: &str, since_ms: i64) -> Result<Vec<SnapshotRecord>, StoreError> {
        self.history_inner(host_id, since_ms)
    }

    fn section_by_hash(&self, hash: &str) -> Result<Option<Section>, StoreError> {
        self.section_by_hash_inner(hash)
    }

    fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        let _w = self.writing();
        self.prune_inner(cutoff_ms)
    }

    fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.findings_inner()
    }

    fn put_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let _w = self.writing();
        self.put_findings_inner(findings)
    }

    fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        self.baselines_inner()
    }

    fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        self.baseline_inner(name)
    }

    fn put_baseline(&self, baseline: &Baseline, overwrite: bool) -> Result<bool, StoreError> {
        let _w = self.writing();
        self.put_baseline_inner(baseline, overwrite)
    }

    fn put_baseline_candidate(
        &self,
        host_id: &str,
        baseline: &Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError> {
        let _w = self.writing();
        self.put_candidate_inner(host_id, baseline, quorum)
    }

    fn backup_to_file(&self) -> Result<(PathBuf, super::backup::Counts), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(format!(
            "backup.partial-{}",
            driftwatch_common::time::now_ms()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(super::private::FILE_MODE)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let mut w = std::io::BufWriter::new(file);
        match self.export(&mut w) {
            Ok(counts) => Ok((path, counts)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn baseline_candidates(&self) -> Result<Vec<BaselineCandidate>, StoreError> {
        self.candidates_inner()
    }

    fn approve_image_baseline(
        &self,
        image_id: &str,
        from_host: &str,
        by: &str,
    ) -> Result<Option<Baseline>, StoreError> {
        let _w = self.writing();
        self.approve_inner(image_id, from_host, by)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.meta
            .insert(super::seal::GENERATION_KEY, &generation.to_be_bytes())?;
        self.sync_files()?;
        self.durable_generation
            .fetch_max(generation, Ordering::AcqRel);
        self.seal(false)
    }

    fn sync_final(&self) -> Result<(), StoreError> {
        self.sync()?;
        self.seal(true)
    }

    fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.hosts
            .iter()
            .map(|r| {
                let (k, v) = r?;
                decode(&k, &v)
            })
            .collect()
    }

    fn host(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError> {
        self.host_record(host_id)
    }

    fn create_token(&self, token: &Token) -> Result<(), StoreError> {
        let _w = self.writing();
        self.tokens.insert(token.id.as_bytes(), encode(token))?;
        Ok(())
    }

    fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.tokens
            .iter()
            .map(|r| {
                let (k, v) = r?;
                decode(&k, &v)
            })
            .collect()
    }

    fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.tokens
            .get(id.as_bytes())?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Option<Token>, StoreError> {
        let _w = self.writing();
        let Some(v) = self.tokens.get(id.as_bytes())? else {
            return Ok(None);
        };
        let mut t: Token = decode(id.as_bytes(), &v)?;
        if t.revoked_ms == 0 {
            t.revoked_ms = now_ms;
            self.tokens.insert(id.as_bytes(), encode(&t))?;
        }
        Ok(Some(t))
    }

    fn consume_token(
        &self,
        id: &str,
        presented: &str,
        now_ms: i64,
    ) -> Result<Result<Token, TokenError>, StoreError> {
        let _w = self.writing();
        self.tokens
            .transaction(|tx| {
                let Some(v) = tx.get(id.as_bytes())? else {
                    return Ok(Err(TokenError::Invalid));
                };
                let mut t: Token =
                    decode(id.as_bytes(), &v).map_err(ConflictableTransactionError::Abort)?;
                if let Err(e) = tokens::check(&t, presented, now_ms) {
                    return Ok(Err(e));
                }
                t.uses += 1;
                tx.insert(id.as_bytes(), encode(&t))?;
                Ok(Ok(t))
            })
            .map_err(tx_err)
    }

    fn enroll_host(&self, host: &HostSummary) -> Result<(), StoreError> {
        let _w = self.writing();
        self.hosts
            .transaction(|tx| {
                tx.insert(host.host_id.as_bytes(), encode(host))?;
                let prev = host.previous_host_id.as_bytes();
                if !prev.is_empty()
                    && let Some(v) = tx.get(prev)?
                {
                    let mut p: HostSummary =
                        decode(prev, &v).map_err(ConflictableTransactionError::Abort)?;
                    if !p.successor_host_ids.contains(&host.host_id) {
                        p.successor_host_ids.push(host.host_id.clone());
                        tx.insert(prev, encode(&p))?;
                    }
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    fn revoke_host(
        &self,
        host_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<HostSummary>, StoreError> {
        let _w = self.writing();
        self.hosts
            .transaction(|tx| {
                let Some(v) = tx.get(host_id.as_bytes())? else {
                    return Ok(None);
                };
                let mut h: HostSummary =
                    decode(host_id.as_bytes(), &v).map_err(ConflictableTransactionError::Abort)?;
                if h.revoked_ms == 0 {
                    h.revoked_ms = now_ms;
                    h.revoked_by = by.to_string();
                    tx.insert(host_id.as_bytes(), encode(&h))?;
                }
                Ok(Some(h))
            })
            .map_err(tx_err)
    }

    fn latest_snapshot(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError> {
        self.latest_inner(host_id)
    }
    fn forget_host(&self, host_id: &str) -> Result<Option<(HostSummary, u64)>, StoreError> {
        let _w = self.writing();
        self.forget_inner(host_id)
    }
    fn forgotten_revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        self.forgotten_revoked_inner()
    }
    fn latest_key_views(&self, f: &mut dyn FnMut(&str, &Snapshot)) -> Result<(), StoreError> {
        self.latest_key_views_inner(f)
    }
}

/// The labels an enrollment token gave win over what the agent says: the
/// group is the operator's decision, not the host's.
pub(super) fn merge_labels(enrollment: &[Label], reported: &[Label]) -> Vec<Label> {
    let mut out: Vec<Label> = reported
        .iter()
        .filter(|l| !enrollment.iter().any(|e| e.key == l.key))
        .cloned()
        .collect();
    out.extend(enrollment.iter().cloned());
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

pub(super) fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let _ = self.meta.flush();
        // The last second's syncs, which the rate limit left unsealed.
        let _ = self.seal(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{HostSection, Label, section::Body};
    use driftwatch_common::snapshot::ok_section;

    fn snap(seq: u64, hostname: &str) -> Snapshot {
        Snapshot {
            seq,
            labels: vec![Label {
                key: "group".into(),
                value: "web".into(),
            }],
            sections: vec![ok_section(
                Body::Host(HostSection {
                    hostname: hostname.into(),
                    ..Default::default()
                }),
                1,
            )],
            ..Default::default()
        }
    }

    #[test]
    fn a_damaged_sled_file_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledStore::open(dir.path()).unwrap());
        let conf = dir.path().join("conf");
        let mut bytes = std::fs::read(&conf).unwrap();
        for b in bytes.iter_mut().skip(5).take(8) {
            *b ^= 0xff;
        }
        std::fs::write(&conf, bytes).unwrap();
        let err = SledStore::open(dir.path())
            .err()
            .expect("a damaged conf must not open")
            .to_string();
        assert!(err.contains("conf") && err.contains("is damaged"), "{err}");
        assert!(err.contains("driftwatch-collector restore"), "{err}");
    }

    #[test]
    fn a_data_dir_in_use_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path())
            .err()
            .expect("second open must fail")
            .to_string();
        assert!(err.contains("is in use by another collector"), "{err}");
    }

    #[test]
    fn stores_dedups_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            assert_eq!(
                s.put_snapshot("h1", &snap(1, "a"), 1000).unwrap(),
                PutOutcome::Stored { changed: true }
            );
            assert_eq!(
                s.put_snapshot("h1", &snap(2, "b"), 2000).unwrap(),
                PutOutcome::Stored { changed: true }
            );
            assert_eq!(
                s.put_snapshot("h1", &snap(2, "b"), 3000).unwrap(),
                PutOutcome::Duplicate
            );
            assert_eq!(
                s.put_snapshot("h1", &snap(1, "old"), 4000).unwrap(),
                PutOutcome::Duplicate,
                "a replay of an older seq"
            );
            s.sync().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let h = s.host("h1").unwrap().unwrap();
        assert_eq!(
            (h.hostname.as_str(), h.last_seq, h.snapshots_stored),
            ("b", 2, 2)
        );
        assert_eq!((h.first_seen_ms, h.last_seen_ms), (1000, 2000));
        assert_eq!(s.latest_snapshot("h1").unwrap().unwrap().seq, 2);
        assert!(s.latest_snapshot("h").unwrap().is_none());
        assert_eq!(s.list_hosts().unwrap().len(), 1);
        assert_eq!(s.history("h1", 0).unwrap().len(), 2);
    }

    #[test]
    fn tokens_are_consumed_atomically_and_enrollment_labels_win() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let (tok, rec) = tokens::generate("web", 60_000, 1, "admin", 0);
        s.create_token(&rec).unwrap();
        assert_eq!(s.consume_token(&rec.id, &tok, 1).unwrap().unwrap().uses, 1);
        assert!(matches!(
            s.consume_token(&rec.id, &tok, 2).unwrap(),
            Err(TokenError::UsedUp { .. })
        ));
        assert_eq!(
            s.consume_token("00000000", &tok, 2).unwrap(),
            Err(TokenError::Invalid)
        );

        let web = Label {
            key: "group".into(),
            value: "web".into(),
        };
        s.enroll_host(&HostSummary {
            host_id: "h1".into(),
            enrollment_labels: vec![web.clone()],
            ..Default::default()
        })
        .unwrap();
        let mut sn = snap(1, "a");
        sn.labels = vec![
            Label {
                key: "group".into(),
                value: "db".into(),
            },
            Label {
                key: "env".into(),
                value: "prod".into(),
            },
        ];
        s.put_snapshot("h1", &sn, 5).unwrap();
        let h = s.host("h1").unwrap().unwrap();
        let got: Vec<_> = h
            .labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect();
        assert_eq!(got, vec!["env=prod", "group=web"]);

        s.enroll_host(&HostSummary {
            host_id: "h2".into(),
            previous_host_id: "h1".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.host("h1").unwrap().unwrap().successor_host_ids,
            vec!["h2".to_string()]
        );
        let r = s.revoke_host("h1", "alice", 9).unwrap().unwrap();
        assert_eq!((r.revoked_ms, r.revoked_by.as_str()), (9, "alice"));
        assert!(s.revoke_host("nope", "alice", 9).unwrap().is_none());
    }

    #[test]
    fn large_snapshots_go_to_blobs_and_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let mut big = snap(1, "big");
        big.agent_version = "x".repeat(600_000);
        s.put_snapshot("h", &big, 1).unwrap();
        s.sync().unwrap();
        assert_eq!(
            s.latest_snapshot("h").unwrap().unwrap().agent_version.len(),
            600_000
        );
    }
}
