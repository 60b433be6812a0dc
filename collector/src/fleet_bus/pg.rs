//! The bus between collectors on one PostgreSQL. One dedicated session per
//! collector LISTENs on [`CHANNEL`], sends this collector's events with
//! `pg_notify` and holds the leader's advisory lock: a session lock lives
//! exactly as long as the session, so when a leader dies (even by SIGKILL)
//! its connection drops, the server releases the lock, and the next
//! collector to try takes it. The session is re-made after any failure;
//! what was notified meanwhile is found by the catch-up (apply.rs).
//!
//! Evaluations lock a second advisory key with a session of their own,
//! closed when the guard drops: two collectors never reconcile findings
//! at once, and a collector that dies mid-evaluation releases the lock
//! with its connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;
use tracing::{debug, info, warn};

use super::{BoxFuture, Delivered, EvaluationGuard, FleetBus, FleetEvent, new_origin};
use crate::store::pg::PgTarget;

/// The notification channel every collector of a fleet listens on.
pub const CHANNEL: &str = "driftwatch_fleet";
/// Advisory lock keys (one namespace: the first bytes of "driftwatch").
pub const LEADER_KEY: i64 = 0x6472_6966_7477_0001;
const EVALUATION_KEY: i64 = 0x6472_6966_7477_0002;
/// How often a collector that is not the leader tries to become it: the
/// longest a dead leader's jobs wait for a successor.
const LEADER_RETRY: Duration = Duration::from_secs(1);
/// Events waiting to be sent while the session is being re-made; beyond
/// it they are dropped (the catch-up covers them).
const OUTBOX: usize = 4096;

pub struct PgBus {
    origin: String,
    tx: broadcast::Sender<Delivered>,
    out: mpsc::Sender<FleetEvent>,
    leader: Arc<AtomicBool>,
    target: PgTarget,
}

impl PgBus {
    /// Starts the session task; the bus works from the moment it returns
    /// (events queue until the session is up).
    pub fn start(target: PgTarget) -> Arc<PgBus> {
        let (out, rx) = mpsc::channel(OUTBOX);
        let bus = Arc::new(PgBus {
            origin: new_origin(),
            tx: broadcast::channel(1024).0,
            out,
            leader: Arc::new(AtomicBool::new(false)),
            target,
        });
        tokio::spawn(session_loop(Arc::downgrade(&bus), rx));
        bus
    }
}

/// `origin event`, as sent: the origin lets a collector skip its own.
fn payload(origin: &str, e: &FleetEvent) -> String {
    format!("{origin} {}", e.encode())
}

fn parse_payload(p: &str) -> Option<Delivered> {
    let (origin, event) = p.split_once(' ')?;
    Some(Delivered {
        origin: origin.to_string(),
        event: FleetEvent::decode(event)?,
    })
}

/// Re-makes the session after each failure, with a capped backoff, until
/// the bus is dropped.
async fn session_loop(bus: std::sync::Weak<PgBus>, mut out: mpsc::Receiver<FleetEvent>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(b) = bus.upgrade() else { return };
        let (target, origin, tx, leader) = (
            b.target.clone(),
            b.origin.clone(),
            b.tx.clone(),
            b.leader.clone(),
        );
        drop(b);
        match session(&target, &origin, &tx, &leader, &mut out).await {
            Ok(()) => return, // the bus was dropped
            Err(e) => {
                if leader.swap(false, Ordering::AcqRel) {
                    warn!(error = %e, "fleet session lost: no longer the leader");
                } else {
                    warn!(error = %e, "fleet session lost; reconnecting");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn session(
    target: &PgTarget,
    origin: &str,
    tx: &broadcast::Sender<Delivered>,
    leader: &AtomicBool,
    out: &mut mpsc::Receiver<FleetEvent>,
) -> Result<(), String> {
    let (client, mut conn) = target.connect().await.map_err(|e| e.to_string())?;
    // Drive the connection here: notifications arrive on it, not on the
    // client. Its end (error or close) ends the session.
    let (conn_done_tx, mut conn_done) = tokio::sync::oneshot::channel::<String>();
    let txc = tx.clone();
    let driver = tokio::spawn(async move {
        let why = loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    match parse_payload(n.payload()) {
                        Some(d) => {
                            let _ = txc.send(d);
                        }
                        None => {
                            debug!(payload = %n.payload(), "unknown fleet notification ignored")
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the server closed the connection".to_string(),
            }
        };
        let _ = conn_done_tx.send(why);
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| format!("LISTEN {CHANNEL}: {e}"))?;
        info!(channel = CHANNEL, "listening for fleet events");
        let mut leader_tick = tokio::time::interval(LEADER_RETRY);
        loop {
            tokio::select! {
                why = &mut conn_done => return Err(why.unwrap_or_else(|_| "connection task ended".into())),
                ev = out.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    client
                        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload(origin, &ev)])
                        .await
                        .map_err(|e| format!("pg_notify: {e}"))?;
                }
                _ = leader_tick.tick(), if !leader.load(Ordering::Acquire) => {
                    let row = client
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_KEY])
                        .await
                        .map_err(|e| format!("pg_try_advisory_lock: {e}"))?;
                    if row.get::<_, bool>(0) {
                        leader.store(true, Ordering::Release);
                        info!("this collector now holds the fleet's drift evaluation");
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Holds the evaluation lock's session; dropping it closes the session,
/// which releases the lock.
struct PgEvaluationGuard {
    _client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for PgEvaluationGuard {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl FleetBus for PgBus {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn publish(&self, event: FleetEvent) {
        // Local subscribers hear it at once; the others through the server.
        let _ = self.tx.send(Delivered {
            origin: self.origin.clone(),
            event: event.clone(),
        });
        if self.out.try_send(event).is_err() {
            warn!(
                "fleet events are not being sent (the session is down); the other collectors catch up from the store"
            );
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.tx.subscribe()
    }

    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    fn evaluation_lock(&self) -> BoxFuture<'_, EvaluationGuard> {
        Box::pin(async move {
            let locked = async {
                let (client, conn) = self.target.connect().await.map_err(|e| e.to_string())?;
                let driver = tokio::spawn(async move {
                    let _ = conn.await;
                });
                client
                    .execute("SELECT pg_advisory_lock($1)", &[&EVALUATION_KEY])
                    .await
                    .map_err(|e| format!("pg_advisory_lock: {e}"))?;
                Ok::<_, String>(PgEvaluationGuard {
                    _client: client,
                    driver,
                })
            }
            .await;
            match locked {
                Ok(g) => Box::new(g) as EvaluationGuard,
                Err(e) => {
                    // The evaluation reads and writes the same database: it
                    // fails on its own if the database is away.
                    warn!(error = %e, "cannot take the fleet's evaluation lock; evaluating without it");
                    Box::new(()) as EvaluationGuard
                }
            }
        })
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_origin_and_junk_is_ignored() {
        let e = FleetEvent::SweepStarted {
            sweep_id: "sw-1".into(),
        };
        let d = parse_payload(&payload("c-ab", &e)).unwrap();
        assert_eq!((d.origin.as_str(), d.event), ("c-ab", e));
        assert_eq!(parse_payload("c-ab"), None);
        assert_eq!(parse_payload("c-ab bogus:1"), None);
    }
}
