//! Group commit: many concurrent reports share one fsync.
//!
//! Each report writes, then waits on [`GroupCommit::commit`]. One worker
//! takes every waiter queued so far, starts a single [`Store::sync`] for
//! them (each sync covers every write made before it started), and answers
//! them all when it returns: the fsync cost is paid per batch, not per
//! report. Up to [`MAX_SYNCS_IN_FLIGHT`] batches sync at once.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::error;

use super::{Store, StoreError};

/// Why a sync failed, as every waiter of its batch gets it.
#[derive(Debug, Clone)]
pub struct CommitError {
    pub message: String,
    /// No space left: the client is told so (RESOURCE_EXHAUSTED), not
    /// given an internal error.
    pub disk_full: bool,
    /// The database is unreachable: the client is told UNAVAILABLE.
    pub unavailable: bool,
}

type Waiter = oneshot::Sender<Result<(), CommitError>>;

/// Syncs that may run at once. One at a time (a plain leader/follower
/// group commit) made every report wait for the sync already running and
/// then its own, and measured slower than a sync per report, because the
/// kernel already merges concurrent fsyncs into one journal commit. A few
/// in flight keep that overlap and still batch under load (BENCHMARKS.md).
const MAX_SYNCS_IN_FLIGHT: usize = 4;

#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_SYNCS_IN_FLIGHT));
            while let Some(first) = rx.recv().await {
                // Take a slot before collecting the batch, so everyone who
                // queues while all slots are busy rides on the next sync.
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let mut batch = vec![first];
                while let Ok(w) = rx.try_recv() {
                    batch.push(w);
                }
                let s = store.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || s.sync())
                        .await
                        .unwrap_or_else(|e| {
                            Err(StoreError::Io {
                                path: "sync task".into(),
                                source: std::io::Error::other(e),
                            })
                        })
                        .map_err(|e| {
                            error!(error = %e, "durable sync failed");
                            CommitError {
                                message: e.to_string(),
                                disk_full: e.is_disk_full(),
                                unavailable: e.is_unavailable(),
                            }
                        });
                    drop(permit);
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                });
            }
        });
        GroupCommit { tx }
    }

    /// Returns once everything written before this call is on disk.
    pub async fn commit(&self) -> Result<(), CommitError> {
        let stopped = || CommitError {
            message: "commit worker stopped".into(),
            disk_full: false,
            unavailable: false,
        };
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}
