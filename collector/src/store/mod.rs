//! Storage behind a trait: the services speak [`Store`]; only the adapter
//! (sled today) knows the on-disk encoding.

mod audit;
pub mod backup;
mod drift_store;
mod durable;
mod forget;
mod fsync;
mod outbox;
pub mod pg;
pub mod private;
mod recovering;
mod reports;
pub mod seal;
mod sled_store;
mod sweeps;

pub use audit::AuditStore;
pub use durable::{CommitError, GroupCommit};
pub use outbox::{OutboxStore, Queued};
pub use recovering::Recovering;
pub use reports::{Assembled, assemble};
pub use sled_store::SledStore;
pub use sweeps::SweepStore;

use driftwatch_common::proto::{
    Baseline, BaselineCandidate, Finding, HostSummary, Section, Snapshot, SnapshotRecord, Token,
};

use crate::tokens::TokenError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage io on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "stored record {key} is corrupt: {reason} (`driftwatch-collector check --data-dir DIR` lists every damaged record; restore the last backup with `driftwatch-collector restore`)"
    )]
    Corrupt { key: String, reason: String },
    #[error(
        "data file {path} is damaged ({reason}): the collector cannot start on it. Keep the dir for inspection, restore the last backup into an empty dir (`driftwatch-collector restore --from BACKUP --data-dir NEW_DIR`) and start with --data-dir NEW_DIR once `driftwatch-collector check --data-dir NEW_DIR` says it is sound"
    )]
    Damaged { path: String, reason: String },
    #[error(
        "data dir {path} was written by schema version {found}, this collector understands {expected}: upgrade the collector"
    )]
    Schema {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("PostgreSQL store: {what}: {message}")]
    Postgres {
        what: String,
        message: String,
        /// The SQLSTATE, when the server answered one.
        code: Option<String>,
        /// The server could not be reached or went away (the client is
        /// told UNAVAILABLE: an agent keeps its report and retries).
        unreachable: bool,
    },
    #[error(
        "database {url} has schema version {found}, this collector understands up to {expected}: upgrade this collector (every collector sharing a database must be at least as new as the newest one that opened it)"
    )]
    PgSchema {
        url: String,
        found: i32,
        expected: i32,
    },
    /// What this store cannot do, and what to use instead.
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "data dir {path} is in use by another collector: stop that one, or give this one another --data-dir ({reason})"
    )]
    Locked { path: String, reason: String },
}

/// What became of an uploaded bake-time baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateOutcome {
    /// It is the image's baseline now, agreed by these hosts.
    Confirmed { hosts: Vec<String> },
    /// Kept as a candidate: `agreeing` hosts uploaded this content, and
    /// `contents` different contents exist for the image.
    Pending { agreeing: usize, contents: usize },
    /// The image already has a baseline; whether this upload equals it.
    AlreadyDecided { same: bool },
}

/// What became of a reported snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored; `changed` when its stable content differs from the host's
    /// previous snapshot (then it is in the history).
    Stored { changed: bool },
    /// (host, seq) was already stored: acknowledged again, not stored twice.
    Duplicate,
    /// Hash-only sections the collector does not know: nothing stored.
    NeedFull(Vec<String>),
}

pub trait Store: SweepStore + OutboxStore + AuditStore + Send + Sync + 'static {
    /// Writes a (possibly delta) snapshot for `host_id` received at
    /// `now_ms`. Not durable until [`Store::sync`] returns.
    fn put_snapshot(
        &self,
        host_id: &str,
        snapshot: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError>;
    /// Makes every write so far durable (fsync'd).
    fn sync(&self) -> Result<(), StoreError>;
    /// The last sync before the process ends: also records, outside the
    /// store, how far it is durable (seal.rs), which `sync` does only once
    /// a second.
    fn sync_final(&self) -> Result<(), StoreError> {
        self.sync()
    }
    fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError>;
    fn host(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError>;
    /// The host's latest full snapshot (volatile values as last sent).
    fn latest_snapshot(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError>;
    /// Every host's latest snapshot reduced to what the key and RAID indexes
    /// need: seq, collected_at_ms and its `host`, `ssh_keys` and `raid` sections, decoded
    /// without the others (at start, decoding every full snapshot was most
    /// of the collector's start time: BENCHMARKS.md).
    fn latest_key_views(&self, f: &mut dyn FnMut(&str, &Snapshot)) -> Result<(), StoreError>;
    /// Snapshots that changed something, oldest first.
    fn history(&self, host_id: &str, since_ms: i64) -> Result<Vec<SnapshotRecord>, StoreError>;
    /// A stable section by its content hash.
    fn section_by_hash(&self, hash: &str) -> Result<Option<Section>, StoreError>;
    /// Retention: drops history older than `cutoff_ms` (each host keeps its
    /// newest) and unreferenced sections; returns (records, sections) removed.
    fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError>;
    fn findings(&self) -> Result<Vec<Finding>, StoreError>;
    /// Inserts or replaces findings by id.
    fn put_findings(&self, findings: &[Finding]) -> Result<(), StoreError>;
    fn baselines(&self) -> Result<Vec<Baseline>, StoreError>;
    fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError>;
    /// Returns whether it was written (an existing one is kept unless `overwrite`).
    fn put_baseline(&self, baseline: &Baseline, overwrite: bool) -> Result<bool, StoreError>;
    /// Keeps `host_id`'s upload of its image's bake-time baseline as a
    /// candidate (one per host: a new one replaces it) and makes it the
    /// image's baseline when `quorum` distinct live hosts uploaded the same
    /// content and no host uploaded a different one (`quorum` 0: only an
    /// operator decides).
    fn put_baseline_candidate(
        &self,
        host_id: &str,
        baseline: &Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError>;
    /// Writes a consistent backup into a new 0600 file inside the data
    /// dir (the caller streams and removes it); returns its path.
    fn backup_to_file(&self) -> Result<(std::path::PathBuf, backup::Counts), StoreError>;
    fn baseline_candidates(&self) -> Result<Vec<BaselineCandidate>, StoreError>;
    /// Makes `from_host`'s candidate the image's baseline; None when that
    /// host uploaded none for the image.
    fn approve_image_baseline(
        &self,
        image_id: &str,
        from_host: &str,
        by: &str,
    ) -> Result<Option<Baseline>, StoreError>;

    fn create_token(&self, token: &Token) -> Result<(), StoreError>;
    fn list_tokens(&self) -> Result<Vec<Token>, StoreError>;
    /// One token record by id, read-only.
    fn token(&self, id: &str) -> Result<Option<Token>, StoreError>;
    /// Marks a token revoked; None if there is no such token.
    fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Option<Token>, StoreError>;
    /// Checks `presented` against token `id` and, if it may still enroll,
    /// counts one use, atomically (two hosts racing for the last use of a
    /// token cannot both win).
    fn consume_token(
        &self,
        id: &str,
        presented: &str,
        now_ms: i64,
    ) -> Result<Result<Token, TokenError>, StoreError>;
    /// Records a newly enrolled host; links it as the successor of
    /// `host.previous_host_id` when that host exists.
    fn enroll_host(&self, host: &HostSummary) -> Result<(), StoreError>;
    /// Marks a host revoked; None if there is no such host.
    fn revoke_host(
        &self,
        host_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<HostSummary>, StoreError>;
    /// Removes a host and what is stored about it (host record, latest
    /// snapshot, history, findings); returns it and how many records went,
    /// None if there is no such host. A revoked host's id is kept in
    /// [`Store::forgotten_revoked_ids`] so it stays refused.
    fn forget_host(&self, host_id: &str) -> Result<Option<(HostSummary, u64)>, StoreError>;
    /// Revoked hosts that were forgotten: still refused.
    fn forgotten_revoked_ids(&self) -> Result<Vec<String>, StoreError>;
}
