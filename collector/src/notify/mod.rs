//! Notifications: `[[notify]]` receivers are told when a finding opens and
//! when it resolves. The evaluator turns each transition into one event
//! per interested receiver and writes them to the store's outbox in the
//! same transaction as the findings, then syncs; only then are they
//! counted as queued. One delivery task per receiver ([`worker`]) sends
//! its queue oldest first, retries with exponential backoff and jitter,
//! and removes an event only once the receiver answered 2xx (or refused
//! it for good): delivery is at least once, across restarts, and a retry
//! carries the same idempotency key. Nothing on the report or evaluation
//! path waits for a receiver.

pub mod body;
pub mod http;
pub mod receiver;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftwatch_common::proto::{Finding, NotifyEvent, NotifyTestResult};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::warn;

pub use receiver::{NotifyConfig, Receiver};

use crate::store::{Store, StoreError};

type ByReceiver = [(&'static str, String); 1];

/// Counters and the queue gauge, per receiver.
#[derive(Clone, Default)]
pub struct NotifyMetrics {
    pub sent: Family<ByReceiver, Counter>,
    pub failed: Family<ByReceiver, Counter>,
    pub dropped: Family<[(&'static str, String); 2], Counter>,
    pub queued: Family<ByReceiver, Gauge>,
}

fn by(name: &str) -> ByReceiver {
    [("receiver", name.to_string())]
}

impl NotifyMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "driftwatch_collector_notifications_sent",
            "Notifications a receiver accepted (2xx), by receiver",
            self.sent.clone(),
        );
        r.register(
            "driftwatch_collector_notifications_failed",
            "Notification delivery attempts that failed and will be retried, by receiver",
            self.failed.clone(),
        );
        r.register(
            "driftwatch_collector_notifications_dropped",
            "Notifications given up, by receiver and reason (outbox_full: the oldest went past max_queued; rejected: the receiver refused the body with 400/413/415/422; unconfigured: queued for a receiver no longer in the config)",
            self.dropped.clone(),
        );
        r.register(
            "driftwatch_collector_notifications_queued",
            "Notifications in the outbox waiting for delivery, by receiver",
            self.queued.clone(),
        );
    }

    fn drop_n(&self, receiver: &str, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&[
                ("receiver", receiver.to_string()),
                ("reason", reason.into()),
            ])
            .inc_by(n);
    }
}

/// A finding's transition in one reconcile: `opened` for one that holds
/// and was not open before, `resolved` for one that no longer holds.
pub fn transitions<'a>(
    stored: &[Finding],
    changes: &'a [Finding],
) -> Vec<(&'static str, &'a Finding)> {
    let open: std::collections::HashSet<&str> = stored
        .iter()
        .filter(|f| f.resolved_ms == 0)
        .map(|f| f.id.as_str())
        .collect();
    changes
        .iter()
        .filter_map(|f| {
            if f.resolved_ms != 0 {
                Some(("resolved", f))
            } else if !open.contains(f.id.as_str()) {
                Some(("opened", f))
            } else {
                None
            }
        })
        .collect()
}

/// Stable per transition: the finding, the episode (when it opened; a
/// finding that resolves and comes back is a new episode) and which end.
pub fn idempotency_key(event: &str, f: &Finding) -> String {
    format!("{}-{}-{event}", f.id, f.first_seen_ms)
}

type Waiter = tokio::sync::oneshot::Sender<NotifyTestResult>;

pub struct Notifier {
    receivers: Vec<Arc<Receiver>>,
    wake: HashMap<String, Arc<tokio::sync::Notify>>,
    metrics: NotifyMetrics,
    /// `notify test` callers, by receiver and idempotency key: told the
    /// first attempt's outcome.
    waiters: Mutex<HashMap<(String, String), Waiter>>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Notifier {
    /// Drops what is queued for receivers no longer configured, trims each
    /// queue to its bound and sets the gauges. Blocking (store calls).
    pub fn open(
        receivers: Vec<Receiver>,
        metrics: NotifyMetrics,
        store: &dyn Store,
    ) -> Result<Notifier, StoreError> {
        let receivers: Vec<Arc<Receiver>> = receivers.into_iter().map(Arc::new).collect();
        for (name, n) in store.queue_lengths()? {
            match receivers.iter().find(|r| r.name == name) {
                None => {
                    let gone = store.trim_queue(&name, 0)?;
                    warn!(receiver = %name, dropped = gone, "notifications queued for a receiver that is no longer configured were dropped");
                    metrics.drop_n(&name, "unconfigured", gone);
                }
                Some(r) => {
                    let gone = store.trim_queue(&name, r.max_queued)?;
                    if gone > 0 {
                        warn!(receiver = %name, dropped = gone, max_queued = r.max_queued, "outbox over max_queued at start: the oldest notifications were dropped");
                        metrics.drop_n(&name, "outbox_full", gone);
                    }
                    metrics
                        .queued
                        .get_or_create(&by(&name))
                        .set((n - gone) as i64);
                }
            }
        }
        for r in &receivers {
            let _ = metrics.sent.get_or_create(&by(&r.name));
            let _ = metrics.failed.get_or_create(&by(&r.name));
            let _ = metrics.queued.get_or_create(&by(&r.name));
        }
        Ok(Notifier {
            wake: receivers
                .iter()
                .map(|r| (r.name.clone(), Arc::default()))
                .collect(),
            receivers,
            metrics,
            waiters: Mutex::default(),
            workers: Mutex::default(),
        })
    }

    pub fn receivers(&self) -> &[Arc<Receiver>] {
        &self.receivers
    }

    /// One delivery task per receiver.
    pub fn start(self: &Arc<Self>, store: Arc<dyn Store>) {
        let mut w = self.workers.lock().expect("not poisoned");
        for r in &self.receivers {
            w.push(tokio::spawn(worker::run(
                self.clone(),
                r.clone(),
                store.clone(),
            )));
        }
    }

    /// Stops the delivery tasks (shutdown). An attempt cut off here may
    /// have arrived; its event stays queued and is sent again, with the
    /// same key, after the restart.
    pub fn stop(&self) {
        for w in self.workers.lock().expect("not poisoned").drain(..) {
            w.abort();
        }
    }

    /// The events for this reconcile's transitions, per interested
    /// receiver. A receiver offered more than it may queue keeps the
    /// newest; the rest are counted and logged as dropped.
    pub fn events_for(
        &self,
        stored: &[Finding],
        changes: &[Finding],
        now_ms: i64,
    ) -> Vec<NotifyEvent> {
        let moved = transitions(stored, changes);
        let mut out = Vec::new();
        for r in &self.receivers {
            let mine: Vec<_> = moved
                .iter()
                .filter(|(_, f)| r.wants(&f.kind, &f.severity))
                .collect();
            let skip = mine.len().saturating_sub(r.max_queued);
            if skip > 0 {
                warn!(receiver = %r.name, dropped = skip, max_queued = r.max_queued, "more finding transitions at once than the receiver may queue: the oldest were dropped");
                self.metrics.drop_n(&r.name, "outbox_full", skip as u64);
            }
            out.extend(mine[skip..].iter().map(|(event, f)| NotifyEvent {
                receiver: r.name.clone(),
                idempotency_key: idempotency_key(event, f),
                event: event.to_string(),
                finding: Some((*f).clone()),
                queued_ms: now_ms,
            }));
        }
        out
    }

    /// `events` are in the outbox and synced: bound each queue, count them
    /// and wake their receivers' tasks. Blocking (store calls).
    pub fn queued(&self, store: &dyn Store, events: &[NotifyEvent]) {
        let mut per: HashMap<&str, i64> = HashMap::new();
        for e in events {
            *per.entry(e.receiver.as_str()).or_default() += 1;
        }
        for (name, n) in per {
            let Some(r) = self.receivers.iter().find(|r| r.name == name) else {
                continue;
            };
            let gone = match store.trim_queue(name, r.max_queued) {
                Ok(g) => g,
                Err(e) => {
                    warn!(receiver = %name, error = %e, "bounding the notification outbox failed");
                    0
                }
            };
            if gone > 0 {
                warn!(receiver = %name, dropped = gone, max_queued = r.max_queued, "notification outbox full: the oldest notifications were dropped");
                self.metrics.drop_n(name, "outbox_full", gone);
            }
            self.metrics
                .queued
                .get_or_create(&by(name))
                .inc_by(n - gone as i64);
            if let Some(w) = self.wake.get(name) {
                w.notify_one();
            }
        }
    }

    /// Registers a `notify test` caller for `receiver`'s event `key`.
    pub fn wait_for(
        &self,
        receiver: &str,
        key: &str,
    ) -> tokio::sync::oneshot::Receiver<NotifyTestResult> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters
            .lock()
            .expect("not poisoned")
            .insert((receiver.to_string(), key.to_string()), tx);
        rx
    }

    fn answer(&self, receiver: &str, key: &str, result: impl FnOnce() -> NotifyTestResult) {
        let k = (receiver.to_string(), key.to_string());
        if let Some(w) = self.waiters.lock().expect("not poisoned").remove(&k) {
            let _ = w.send(result());
        }
    }

    /// How long a `notify test` waits for the receiver's first attempt.
    pub fn test_wait(r: &Receiver) -> Duration {
        r.timeout + Duration::from_secs(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, first: i64, resolved: i64) -> Finding {
        Finding {
            id: id.into(),
            first_seen_ms: first,
            resolved_ms: resolved,
            ..Default::default()
        }
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_them() {
        use crate::store::{OutboxStore, SledStore};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let receivers = receiver::build(vec![
            NotifyConfig {
                name: "small".into(),
                url: Some("http://127.0.0.1:9/".into()),
                max_queued: Some(2),
                ..Default::default()
            },
            NotifyConfig {
                name: "critical".into(),
                url: Some("http://127.0.0.1:9/".into()),
                min_severity: Some("critical".into()),
                ..Default::default()
            },
        ])
        .unwrap();
        let metrics = NotifyMetrics::default();
        let n = Notifier::open(receivers, metrics.clone(), &store).unwrap();
        let new = |id: &str| Finding {
            severity: "high".into(),
            ..f(id, 1, 0)
        };
        let changes = vec![new("a"), new("b"), new("c")];
        let events = n.events_for(&[], &changes, 5);
        let keys: Vec<&str> = events.iter().map(|e| e.idempotency_key.as_str()).collect();
        assert_eq!(
            keys,
            ["b-1-opened", "c-1-opened"],
            "the newest two; none below critical"
        );
        store.put_findings_and_queue(&changes, &events).unwrap();
        n.queued(&store, &events);
        let more = n.events_for(&changes, &[new("a"), new("b"), new("c"), new("d")], 6);
        store.put_findings_and_queue(&[], &more).unwrap();
        n.queued(&store, &more);
        let left: Vec<String> = store
            .queued("small", 10)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.idempotency_key)
            .collect();
        assert_eq!(left, ["c-1-opened", "d-1-opened"]);
        let dropped = metrics
            .dropped
            .get_or_create(&[
                ("receiver", "small".into()),
                ("reason", "outbox_full".into()),
            ])
            .get();
        assert_eq!(
            dropped, 2,
            "one cut from the batch, one trimmed from the queue"
        );
        assert_eq!(metrics.queued.get_or_create(&by("small")).get(), 2);
    }

    #[test]
    fn transitions_are_openings_and_resolutions_only() {
        let stored = vec![f("open", 1, 0), f("gone", 1, 0), f("old", 1, 5)];
        // Seen again, resolved, reopened after a resolution, new.
        let changes = vec![
            f("open", 1, 0),
            f("gone", 1, 9),
            f("old", 9, 0),
            f("new", 9, 0),
        ];
        let t: Vec<(&str, &str)> = transitions(&stored, &changes)
            .into_iter()
            .map(|(e, f)| (e, f.id.as_str()))
            .collect();
        assert_eq!(
            t,
            [("resolved", "gone"), ("opened", "old"), ("opened", "new")]
        );
        assert_eq!(idempotency_key("opened", &changes[2]), "old-9-opened");
        assert_ne!(
            idempotency_key("opened", &changes[2]),
            idempotency_key("opened", &stored[2]),
            "a finding that comes back is a new episode"
        );
    }
}
