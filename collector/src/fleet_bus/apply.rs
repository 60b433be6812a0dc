//! What an event from another collector does here, and the periodic
//! catch-up that finds from the store what a lost event would have said.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use driftwatch_common::time::now_ms;
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;
use tracing::{debug, info, warn};

use super::{Delivered, FleetEvent};
use crate::service::State;
use crate::store::{Store, StoreError};

/// How often a collector sharing its store looks for what events would
/// have told it. A backstop: events arrive within milliseconds.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(5);

/// Applies one event from another collector (events from this one were
/// applied where they happened). Errors are logged: the catch-up retries.
pub async fn apply(state: &State, d: &Delivered) {
    if d.origin == state.bus.origin() {
        return;
    }
    debug!(origin = %d.origin, event = %d.event.encode(), "fleet event");
    let r = match &d.event {
        FleetEvent::SweepStarted { sweep_id } => {
            crate::service::sweeps::push_stored(state, sweep_id).await;
            Ok(())
        }
        FleetEvent::HostRevoked { host_id } => revoked(state, host_id).await,
        FleetEvent::HostForgotten { host_id } => {
            forgotten(state, host_id);
            Ok(())
        }
        FleetEvent::HostChanged { host_id } => reindex(state, host_id).await,
        FleetEvent::DataChanged => {
            state.evaluator.data_changed();
            Ok(())
        }
    };
    if let Err(e) = r {
        warn!(event = %d.event.encode(), error = %e, "fleet event not applied; the catch-up retries");
    }
}

/// Trusts the store, not the event: the host must be revoked there.
async fn revoked(state: &State, host_id: &str) -> Result<(), crate::error::ServiceError> {
    let h = host_id.to_string();
    let revoked = state
        .blocking(move |s| Ok(s.host(&h)?.is_some_and(|h| h.revoked_ms > 0)))
        .await?;
    if revoked {
        close_revoked(state, host_id);
    }
    Ok(())
}

fn close_revoked(state: &State, host_id: &str) {
    let fresh = state
        .revoked
        .write()
        .expect("not poisoned")
        .insert(host_id.to_string());
    state.evaluator.data_changed();
    let closed = state.streams.close(
        host_id,
        Status::permission_denied(format!(
            "host {host_id} was revoked (through another collector)"
        )),
    );
    if fresh || closed > 0 {
        info!(host = %host_id, streams_closed = closed, "host revoked through another collector");
    }
}

fn forgotten(state: &State, host_id: &str) {
    state
        .keys
        .write()
        .expect("not poisoned")
        .remove_host(host_id);
    state
        .raid
        .write()
        .expect("not poisoned")
        .remove_host(host_id);
    state.evaluator.data_changed();
}

/// Re-reads a host's latest snapshot into the key and RAID indexes.
async fn reindex(state: &State, host_id: &str) -> Result<(), crate::error::ServiceError> {
    let h = host_id.to_string();
    let snap = state.blocking(move |s| s.latest_snapshot(&h)).await?;
    if let Some(snap) = snap {
        if crate::keyindex::ssh_keys_body(&snap).is_some() {
            state
                .keys
                .write()
                .expect("not poisoned")
                .update(host_id, &snap);
        }
        state
            .raid
            .write()
            .expect("not poisoned")
            .update(host_id, &snap);
    }
    state.evaluator.data_changed();
    Ok(())
}

/// What the last catch-up saw: per host, its count of stored changes
/// (bumped whenever its stable content changed, which is when the indexes
/// need it again), and the sweeps it knew.
#[derive(Debug, Default)]
pub struct CatchUp {
    changes: HashMap<String, u64>,
    sweeps: HashSet<String>,
}

impl CatchUp {
    /// What the store holds now: taken before the collector loads its
    /// indexes, so a change between the two is seen by the first pass.
    pub fn baseline(store: &dyn Store) -> Result<CatchUp, StoreError> {
        Ok(CatchUp {
            changes: store
                .list_hosts()?
                .into_iter()
                .map(|h| (h.host_id, h.changes_stored))
                .collect(),
            sweeps: store.sweep_headers()?.into_iter().map(|j| j.id).collect(),
        })
    }
}

/// One pass over the store: hosts revoked, forgotten or changed, and
/// sweeps started, that no event told this collector of.
pub async fn catch_up(state: &State, seen: &mut CatchUp) -> Result<(), crate::error::ServiceError> {
    let (hosts, forgotten_revoked, headers) = state
        .blocking(|s| {
            Ok((
                s.list_hosts()?,
                s.forgotten_revoked_ids()?,
                s.sweep_headers()?,
            ))
        })
        .await?;
    // Revoked and then forgotten before this pass: no host record is left,
    // the revocation is.
    for id in forgotten_revoked {
        if !state.is_revoked(&id) {
            close_revoked(state, &id);
        }
    }
    let mut present = HashSet::with_capacity(hosts.len());
    for h in &hosts {
        present.insert(h.host_id.as_str());
        if h.revoked_ms > 0 && !state.is_revoked(&h.host_id) {
            close_revoked(state, &h.host_id);
        }
        if seen.changes.get(&h.host_id) != Some(&h.changes_stored) {
            reindex(state, &h.host_id).await?;
            seen.changes.insert(h.host_id.clone(), h.changes_stored);
        }
    }
    let gone: Vec<String> = seen
        .changes
        .keys()
        .filter(|h| !present.contains(h.as_str()))
        .cloned()
        .collect();
    for h in gone {
        forgotten(state, &h);
        seen.changes.remove(&h);
    }
    let now = now_ms();
    for j in headers {
        if seen.sweeps.insert(j.id.clone()) && now < j.expires_ms {
            crate::service::sweeps::push_stored(state, &j.id).await;
        }
    }
    Ok(())
}

/// Applies events from other collectors as they come, and catches up from
/// the store every [`CATCH_UP_EVERY`] while the store is shared (and at
/// once after falling behind). Runs until the bus closes.
pub async fn run(state: State, mut seen: CatchUp) {
    let mut rx = state.bus.subscribe();
    // The baseline was just taken: the first pass is due a period later.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + CATCH_UP_EVERY, CATCH_UP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(d) => apply(&state, &d).await,
                Err(RecvError::Lagged(n)) => {
                    warn!(missed = n, "fleet events missed; catching up from the store");
                    if let Err(e) = catch_up(&state, &mut seen).await {
                        warn!(error = %e, "fleet catch-up failed");
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                if state.bus.shared()
                    && let Err(e) = catch_up(&state, &mut seen).await
                {
                    warn!(error = %e, "fleet catch-up failed");
                }
            }
        }
    }
}
