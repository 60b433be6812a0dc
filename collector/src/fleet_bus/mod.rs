//! Fleet-wide events between collectors that share one store: a sweep
//! started through one collector reaches agents connected to another, a
//! revocation closes the host's streams everywhere, a baseline change and
//! a host's new keys are seen by every collector, and one collector at a
//! time holds the fleet's drift evaluation.
//!
//! A collector does what an action means locally itself, inline, as it
//! always did; the bus carries the event to the *other* collectors
//! ([`apply`] ignores events from its own collector). With one collector
//! (sled) the [`local`] bus has nobody else to tell and is always the
//! leader. Events are hints, not the record: the store is the truth, so an
//! applier re-reads what an event names, and a periodic [`catch_up`]
//! finds what a lost event would have said (a listener that reconnects
//! misses what was sent meanwhile).

pub mod apply;
pub mod local;
pub mod pg;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

pub use apply::{CatchUp, apply, catch_up};
pub use local::{LocalBus, LocalHub};

/// What one collector tells the others. Payloads are ids only: the
/// receiver reads the rest from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetEvent {
    /// A sweep job was stored: push it to connected hosts still pending.
    SweepStarted { sweep_id: String },
    /// A host was revoked: refuse it and close its streams at once.
    HostRevoked { host_id: String },
    /// A host was forgotten: it leaves the key and RAID indexes.
    HostForgotten { host_id: String },
    /// A report changed what the in-memory indexes hold of a host (its
    /// keys, its arrays): re-read its latest snapshot.
    HostChanged { host_id: String },
    /// Baselines (or other inputs of drift) changed: evaluate again.
    DataChanged,
}

impl FleetEvent {
    /// The text form carried by a database notification: `kind` or
    /// `kind:id` (ids never hold a colon or whitespace: they are
    /// validated names). Also how the PostgreSQL store can send one in the
    /// same transaction as its write.
    pub fn encode(&self) -> String {
        match self {
            FleetEvent::SweepStarted { sweep_id } => format!("sweep:{sweep_id}"),
            FleetEvent::HostRevoked { host_id } => format!("revoked:{host_id}"),
            FleetEvent::HostForgotten { host_id } => format!("forgotten:{host_id}"),
            FleetEvent::HostChanged { host_id } => format!("changed:{host_id}"),
            FleetEvent::DataChanged => "data".into(),
        }
    }

    pub fn decode(s: &str) -> Option<FleetEvent> {
        let (kind, id) = s.split_once(':').unwrap_or((s, ""));
        let id = || (!id.is_empty()).then(|| id.to_string());
        Some(match kind {
            "sweep" => FleetEvent::SweepStarted { sweep_id: id()? },
            "revoked" => FleetEvent::HostRevoked { host_id: id()? },
            "forgotten" => FleetEvent::HostForgotten { host_id: id()? },
            "changed" => FleetEvent::HostChanged { host_id: id()? },
            "data" if id().is_none() => FleetEvent::DataChanged,
            _ => return None,
        })
    }
}

/// An event as received, with the collector it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub origin: String,
    pub event: FleetEvent,
}

/// Held while evaluating drift; dropping it lets the next evaluation (on
/// any collector) run.
pub type EvaluationGuard = Box<dyn Send>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait FleetBus: Send + Sync + 'static {
    /// This collector's name on the bus (random per process): events it
    /// published come back with it, and [`apply`] skips them.
    fn origin(&self) -> &str;

    /// Tells the other collectors, once the write `event` describes is
    /// durable. Never blocks: a report or an admin call does not wait on
    /// the bus (a lost event is found by the catch-up).
    fn publish(&self, event: FleetEvent);

    /// Events from every collector, this one included, from now on. A
    /// receiver that lags loses events (the catch-up covers them).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Delivered>;

    /// Whether this collector holds the fleet-wide jobs now (the drift
    /// evaluation tick). Exactly one collector of a fleet does, as long
    /// as one is up.
    fn is_leader(&self) -> bool;

    /// Serializes drift evaluations fleet-wide: two collectors evaluating
    /// at once would race on reconciling the stored findings.
    fn evaluation_lock(&self) -> BoxFuture<'_, EvaluationGuard>;

    /// Whether other collectors may share the store (then the periodic
    /// catch-up runs).
    fn shared(&self) -> bool;
}

/// A random name for this collector process on the bus.
pub fn new_origin() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut r = [0u8; 6];
    SystemRandom::new()
        .fill(&mut r)
        .expect("system RNG available");
    format!("c-{}", hex::encode(r))
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn events_round_trip_their_text_form_and_junk_is_refused() {
        for e in [
            FleetEvent::SweepStarted {
                sweep_id: "sw-1-abc".into(),
            },
            FleetEvent::HostRevoked {
                host_id: "web-1".into(),
            },
            FleetEvent::HostForgotten {
                host_id: "web-2".into(),
            },
            FleetEvent::HostChanged {
                host_id: "db-1".into(),
            },
            FleetEvent::DataChanged,
        ] {
            assert_eq!(FleetEvent::decode(&e.encode()), Some(e.clone()), "{e:?}");
        }
        for junk in ["", "sweep", "sweep:", "data:x", "nuke:web-1"] {
            assert_eq!(FleetEvent::decode(junk), None, "{junk:?}");
        }
    }
}
