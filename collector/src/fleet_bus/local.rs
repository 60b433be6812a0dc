//! The bus inside one process. A collector on sled is alone: it joins a
//! hub of its own, is its leader and tells nobody. Several members of one
//! hub (collectors built in one process over one store, as the tests do)
//! get each other's events, and the longest-standing member leads; when it
//! is dropped the next one takes over, as another collector takes over
//! from a dead one on PostgreSQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{BoxFuture, Delivered, EvaluationGuard, FleetBus, FleetEvent, new_origin};

/// Events a slow member may fall behind by before it lags (and catches up
/// from the store instead).
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct LocalHub {
    inner: Arc<Hub>,
}

struct Hub {
    tx: broadcast::Sender<Delivered>,
    /// Members by join order: the first leads.
    members: Mutex<Vec<u64>>,
    next_id: AtomicU64,
    evaluation: Arc<tokio::sync::Mutex<()>>,
}

impl Default for LocalHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalHub {
    pub fn new() -> Self {
        LocalHub {
            inner: Arc::new(Hub {
                tx: broadcast::channel(BACKLOG).0,
                members: Mutex::default(),
                next_id: AtomicU64::new(0),
                evaluation: Arc::default(),
            }),
        }
    }

    pub fn join(&self) -> LocalBus {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.members.lock().expect("not poisoned").push(id);
        LocalBus {
            hub: self.inner.clone(),
            id,
            origin: new_origin(),
        }
    }
}

/// One collector's membership of a [`LocalHub`]; leaves it when dropped.
pub struct LocalBus {
    hub: Arc<Hub>,
    id: u64,
    origin: String,
}

impl LocalBus {
    /// A collector alone with its store: the default.
    pub fn alone() -> Self {
        LocalHub::new().join()
    }
}

impl Drop for LocalBus {
    fn drop(&mut self) {
        self.hub
            .members
            .lock()
            .expect("not poisoned")
            .retain(|m| *m != self.id);
    }
}

impl FleetBus for LocalBus {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn publish(&self, event: FleetEvent) {
        // No receiver is no error: a collector alone has nobody to tell.
        let _ = self.hub.tx.send(Delivered {
            origin: self.origin.clone(),
            event,
        });
    }

    fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.hub.tx.subscribe()
    }

    fn is_leader(&self) -> bool {
        self.hub.members.lock().expect("not poisoned").first() == Some(&self.id)
    }

    fn evaluation_lock(&self) -> BoxFuture<'_, EvaluationGuard> {
        let lock = self.hub.evaluation.clone();
        Box::pin(async move { Box::new(lock.lock_owned().await) as EvaluationGuard })
    }

    fn shared(&self) -> bool {
        self.hub.members.lock().expect("not poisoned").len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn members_hear_each_other_and_leadership_passes_on_when_one_leaves() {
        let hub = LocalHub::new();
        let a = hub.join();
        let b = hub.join();
        assert!(a.is_leader() && !b.is_leader(), "the first member leads");
        assert!(a.shared() && b.shared());
        let mut rb = b.subscribe();
        a.publish(FleetEvent::DataChanged);
        let got = rb.recv().await.unwrap();
        assert_eq!(got.origin, a.origin());
        assert_eq!(got.event, FleetEvent::DataChanged);
        assert_ne!(a.origin(), b.origin());
        drop(a);
        assert!(b.is_leader(), "the next member takes over");
        assert!(!b.shared());
        assert!(LocalBus::alone().is_leader());
    }

    #[tokio::test]
    async fn one_evaluation_at_a_time_across_members() {
        let hub = LocalHub::new();
        let (a, b) = (hub.join(), hub.join());
        let held = a.evaluation_lock().await;
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(100), b.evaluation_lock()).await;
        assert!(waiting.is_err(), "b waits while a evaluates");
        drop(held);
        let _g = tokio::time::timeout(std::time::Duration::from_secs(1), b.evaluation_lock())
            .await
            .expect("free once a is done");
    }
}
