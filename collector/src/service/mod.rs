//! gRPC services. Each RPC: authorize from the certificate, validate, call
//! the store on a blocking thread, map errors in one place (crate::error).

pub mod admin;
pub mod agent;
pub mod audit;
mod fleet_view;
pub mod history;
pub mod notify;
pub mod sweeps;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use driftwatch_common::pki::Ca;
use tonic::Request;

use crate::auth;
use crate::error::ServiceError;
use crate::evaluator::Evaluator;
use crate::fleet_bus::{FleetBus, LocalBus};
use crate::keyindex::KeyIndex;
use crate::metrics::CollectorMetrics;
use crate::metrics::raid::RaidIndex;
use crate::ratelimit::RateLimiter;
use crate::store::{GroupCommit, Store};
use crate::streams::Streams;

/// Store calls running at once. Each holds a blocking thread and, for a
/// report, a decoded and a re-encoded snapshot; unbounded, 1,000 agents
/// reporting at once drove tokio's blocking pool to its 512 threads and the
/// collector to 1.4 GiB RSS on 2 cores (BENCHMARKS.md). The rest wait here,
/// in async land, for a few bytes each.
const STORE_CONCURRENCY: usize = 16;

/// Enrolled certificates live this long; agents renew when a third is left.
pub const DEFAULT_ENROLLED_VALIDITY: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);

/// Hosts that must agree on an image's bake-time baseline.
pub const DEFAULT_BASELINE_QUORUM: usize = 3;

/// What the services share.
#[derive(Clone)]
pub struct State {
    pub store: Arc<dyn Store>,
    pub commit: GroupCommit,
    pub ca: Arc<Ca>,
    /// Revoked host ids, loaded at start and kept in memory so the check on
    /// every RPC costs no storage read.
    pub revoked: Arc<RwLock<HashSet<String>>>,
    pub streams: Arc<Streams>,
    pub enroll_limit: Arc<RateLimiter>,
    pub enrolled_validity: std::time::Duration,
    /// Distinct hosts that must upload the same bake-time baseline before
    /// it is their image's (0: only `driftwatch baseline approve`).
    pub baseline_quorum: usize,
    pub evaluator: Arc<Evaluator>,
    /// Where every key is, from the latest snapshots (`keys find`).
    pub keys: Arc<RwLock<KeyIndex>>,
    /// RAID arrays by verdict per host, from the latest snapshots (metrics).
    pub raid: Arc<RwLock<RaidIndex>>,
    pub metrics: CollectorMetrics,
    pub settled_sweeps: Arc<sweeps::SettledSweeps>,
    /// Webhook delivery, when `[[notify]]` receivers are configured.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// Events to and from the other collectors sharing the store, and who
    /// holds the fleet-wide jobs (alone on sled: nobody else, always).
    pub bus: Arc<dyn FleetBus>,
    store_gate: Arc<tokio::sync::Semaphore>,
}

impl State {
    pub fn new(
        store: Arc<dyn Store>,
        ca: Ca,
        evaluator: Evaluator,
    ) -> Result<Self, crate::store::StoreError> {
        let mut revoked: HashSet<String> = store
            .list_hosts()?
            .into_iter()
            .filter(|h| h.revoked_ms > 0)
            .map(|h| h.host_id)
            .collect();
        // Forgetting a revoked host removes its record, never its revocation.
        revoked.extend(store.forgotten_revoked_ids()?);
        // One pass over the latest snapshots (a subset decode) for both.
        let mut keys = KeyIndex::default();
        let mut raid = RaidIndex::default();
        store.latest_key_views(&mut |host, snap| {
            keys.update(host, snap);
            raid.update(host, snap);
        })?;
        let commit = GroupCommit::start(store.clone());
        Ok(State {
            store,
            commit,
            ca: Arc::new(ca),
            revoked: Arc::new(RwLock::new(revoked)),
            streams: Arc::new(Streams::default()),
            enroll_limit: Arc::new(RateLimiter::enroll()),
            enrolled_validity: DEFAULT_ENROLLED_VALIDITY,
            baseline_quorum: DEFAULT_BASELINE_QUORUM,
            evaluator: Arc::new(evaluator),
            keys: Arc::new(RwLock::new(keys)),
            raid: Arc::new(RwLock::new(raid)),
            metrics: CollectorMetrics::detached(),
            settled_sweeps: Arc::default(),
            notifier: None,
            bus: Arc::new(LocalBus::alone()),
            store_gate: Arc::new(tokio::sync::Semaphore::new(STORE_CONCURRENCY)),
        })
    }

    pub fn is_revoked(&self, host_id: &str) -> bool {
        self.revoked.read().expect("not poisoned").contains(host_id)
    }

    /// A host certificate whose host has not been revoked.
    pub fn require_live_host<T>(&self, req: &Request<T>) -> Result<String, ServiceError> {
        let host = auth::require_host(req)?;
        if self.is_revoked(&host) {
            return Err(ServiceError::Revoked(format!(
                "host {host} was revoked: its certificate is refused (re-enroll the machine to give it a new identity)"
            )));
        }
        Ok(host)
    }

    /// Runs a store call on the blocking pool (sled does blocking IO).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        F: FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        let _permit = self
            .store_gate
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(format!("store gate closed: {e}")))?;
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ServiceError::Internal(format!("store task failed: {e}")))?
            .map_err(ServiceError::from)
    }

    /// Waits until everything written so far is durable.
    pub async fn durable(&self) -> Result<(), ServiceError> {
        self.commit.commit().await.map_err(|e| {
            if e.disk_full {
                tracing::error!(error = %e.message, "storage full");
                ServiceError::ResourceExhausted(crate::error::DISK_FULL.into())
            } else if e.unavailable {
                tracing::error!(error = %e.message, "database unreachable");
                ServiceError::Unavailable(crate::error::DATABASE_DOWN.into())
            } else {
                ServiceError::Internal(e.message)
            }
        })
    }
}
