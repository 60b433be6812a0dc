//! `driftwatch notify test`, collector side: a test event goes through the
//! outbox and the delivery tasks like any finding's, and the caller is
//! told how its first attempt went.

use driftwatch_common::proto::{Finding, NotifyEvent, NotifyTestResult};
use driftwatch_common::time::now_ms;
use tracing::info;

use super::State;
use crate::error::ServiceError;
use crate::notify::Notifier;

/// Queues a test event for every receiver (or the one named) and waits
/// for each one's first delivery attempt.
pub async fn test(
    state: &State,
    admin: &str,
    name: &str,
) -> Result<Vec<NotifyTestResult>, ServiceError> {
    let n = state.notifier.clone().ok_or_else(|| {
        ServiceError::FailedPrecondition(
            "no [[notify]] receivers are configured in collector.toml".into(),
        )
    })?;
    let chosen: Vec<_> = n
        .receivers()
        .iter()
        .filter(|r| name.is_empty() || r.name == name)
        .cloned()
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = n.receivers().iter().map(|r| r.name.as_str()).collect();
        return Err(ServiceError::NotFound(format!(
            "no [[notify]] block is named {name:?} (configured: {})",
            names.join(", ")
        )));
    }
    let now = now_ms();
    let nonce = format!("{:016x}", fastrand::u64(..));
    let events: Vec<NotifyEvent> = chosen
        .iter()
        .map(|r| NotifyEvent {
            receiver: r.name.clone(),
            idempotency_key: format!("test-{now}-{nonce}"),
            event: "test".into(),
            finding: Some(Finding {
                id: "test".into(),
                kind: "test".into(),
                severity: "info".into(),
                message: format!("sent by {admin} with `driftwatch notify test`"),
                first_seen_ms: now,
                last_seen_ms: now,
                ..Default::default()
            }),
            queued_ms: now,
        })
        .collect();
    // Registered before queueing: a fast receiver cannot answer unheard.
    let waits: Vec<_> = chosen
        .iter()
        .zip(&events)
        .map(|(r, e)| (r.clone(), n.wait_for(&r.name, &e.idempotency_key)))
        .collect();
    let (queued, nq) = (events.clone(), n.clone());
    state
        .blocking(move |s| {
            s.put_findings_and_queue(&[], &queued)?;
            s.sync()?;
            nq.queued(s, &queued);
            Ok(())
        })
        .await?;
    info!(%admin, receivers = chosen.len(), "test notification queued");
    let mut out = Vec::new();
    for ((r, rx), e) in waits.into_iter().zip(events) {
        let result = match tokio::time::timeout(Notifier::test_wait(&r), rx).await {
            Ok(Ok(res)) => res,
            _ => NotifyTestResult {
                name: r.name.clone(),
                idempotency_key: e.idempotency_key,
                error: format!(
                    "no attempt finished within {}s (events queued before it go first); it stays queued",
                    Notifier::test_wait(&r).as_secs()
                ),
                ..Default::default()
            },
        };
        out.push(result);
    }
    Ok(out)
}
