//! Storage behind a trait: the services speak [`Store`]; only the adapter
//! (sled today) knows the on-disk encoding.

mod durable;
mod fsync;
mod sled_store;

pub use durable::GroupCommit;
pub use sled_store::SledStore;

use driftwatch_common::proto::{HostSummary, Snapshot, Token};

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
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "data dir {path} was written by schema version {found}, this collector understands {expected}: upgrade the collector"
    )]
    Schema {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("data dir {path} is in use by another collector (or not writable): {reason}")]
    Locked { path: String, reason: String },
}

/// What became of a stored snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// (host, seq) was already stored: acknowledged again, not stored twice.
    Duplicate,
}

pub trait Store: Send + Sync + 'static {
    /// Writes a snapshot for `host_id` received at `now_ms`. Not durable
    /// until [`Store::sync`] returns.
    fn put_snapshot(
        &self,
        host_id: &str,
        snapshot: &Snapshot,
        now_ms: i64,
    ) -> Result<PutOutcome, StoreError>;
    /// Makes every write so far durable (fsync'd).
    fn sync(&self) -> Result<(), StoreError>;
    fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError>;
    fn host(&self, host_id: &str) -> Result<Option<HostSummary>, StoreError>;
    fn latest_snapshot(&self, host_id: &str) -> Result<Option<Snapshot>, StoreError>;

    fn create_token(&self, token: &Token) -> Result<(), StoreError>;
    fn list_tokens(&self) -> Result<Vec<Token>, StoreError>;
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
}
