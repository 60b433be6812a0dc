//! Group commit: many concurrent reports share one fsync.
//!
//! Each report writes, then waits on [`GroupCommit::commit`]. One worker
//! takes every waiter queued so far, runs a single [`Store::sync`], and
//! answers them all, so the fsync cost is paid per batch, not per report.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::{Store, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(w) = rx.try_recv() {
                    batch.push(w);
                }
                let s = store.clone();
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
                        e.to_string()
                    });
                for w in batch {
                    let _ = w.send(result.clone());
                }
            }
        });
        GroupCommit { tx }
    }

    /// Returns once everything written before this call is on disk.
    pub async fn commit(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .map_err(|_| "commit worker stopped".to_string())?;
        rx.await.map_err(|_| "commit worker stopped".to_string())?
    }
}
