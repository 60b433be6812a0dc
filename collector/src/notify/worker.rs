//! One receiver's delivery task: its queue oldest first, one event at a
//! time, each retried until the receiver takes it (or refuses it for
//! good). While a receiver fails, the wait between attempts doubles from
//! 1 s up to 5 min, each wait drawn between half and all of that (jitter:
//! collectors restarted together do not retry in step).

use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_common::proto::NotifyTestResult;
use tracing::{error, info, warn};

use super::http::{Attempt, post};
use super::receiver::Receiver;
use super::{Notifier, body, by};
use crate::store::Store;

const BATCH: usize = 32;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// After a store error: the store recovers by itself (store/recovering.rs).
const STORE_RETRY: Duration = Duration::from_secs(5);

pub fn backoff(failures: u32) -> Duration {
    let full = FIRST_RETRY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY);
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

pub async fn run(n: Arc<Notifier>, r: Arc<Receiver>, store: Arc<dyn Store>) {
    let wake = n.wake[&r.name].clone();
    let mut failures = 0u32;
    loop {
        let name = r.name.clone();
        let batch = match blocking(&store, move |s| s.queued(&name, BATCH)).await {
            Ok(b) => b,
            Err(e) => {
                warn!(receiver = %r.name, error = %e, "reading the notification outbox failed; retrying");
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        if batch.is_empty() {
            // A wake-up sent since the read above is kept as a permit.
            wake.notified().await;
            continue;
        }
        for (key, ev) in batch {
            let payload = body::render(r.format, &ev);
            loop {
                let started = Instant::now();
                let attempt = post(&r, &ev.idempotency_key, payload.clone()).await;
                let elapsed_ms = started.elapsed().as_millis() as i64;
                let result = |delivered, status, error: &str, rejected| NotifyTestResult {
                    name: r.name.clone(),
                    idempotency_key: ev.idempotency_key.clone(),
                    delivered,
                    http_status: status as u32,
                    error: error.to_string(),
                    rejected,
                    elapsed_ms,
                };
                let (done, status, err, rejected) = match &attempt {
                    Attempt::Delivered { status } => {
                        failures = 0;
                        n.metrics.sent.get_or_create(&by(&r.name)).inc();
                        info!(receiver = %r.name, key = %ev.idempotency_key, event = %ev.event, status, elapsed_ms, "notification delivered");
                        (true, *status, String::new(), false)
                    }
                    Attempt::Rejected { status, error } => {
                        failures = 0;
                        n.metrics.drop_n(&r.name, "rejected", 1);
                        error!(receiver = %r.name, key = %ev.idempotency_key, error = %error, "notification refused by the receiver; dropped (resending the same body cannot help)");
                        (true, *status, error.clone(), true)
                    }
                    Attempt::Failed { status, error } => {
                        failures += 1;
                        n.metrics.failed.get_or_create(&by(&r.name)).inc();
                        (false, *status, error.clone(), false)
                    }
                };
                n.answer(&r.name, &ev.idempotency_key, || {
                    result(done && !rejected, status, &err, rejected)
                });
                if done {
                    let k = key.clone();
                    if let Err(e) = blocking(&store, move |s| s.dequeue(&k)).await {
                        // It goes again, with the same key: at least once.
                        warn!(receiver = %r.name, error = %e, "removing a delivered notification from the outbox failed; it will be sent again");
                        tokio::time::sleep(STORE_RETRY).await;
                    } else {
                        n.metrics.queued.get_or_create(&by(&r.name)).dec();
                    }
                    break;
                }
                let wait = backoff(failures);
                warn!(receiver = %r.name, key = %ev.idempotency_key, error = %err, failures, retry_in_ms = wait.as_millis() as u64, "notification delivery failed; it stays queued");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        for _ in 0..100 {
            let b = backoff(1);
            assert!(b >= Duration::from_millis(500) && b <= FIRST_RETRY, "{b:?}");
            let b = backoff(4);
            assert!(
                b >= Duration::from_secs(4) && b <= Duration::from_secs(8),
                "{b:?}"
            );
            assert!(backoff(40) <= MAX_RETRY && backoff(40) >= MAX_RETRY / 2);
        }
    }
}
