//! The collector's Prometheus metrics (`serve --metrics-listen ADDR`), on
//! `prometheus-client`.
//!
//! Counters are updated by the services; everything derived from stored
//! state (hosts by state, findings, sweeps, connected agents) is a gauge
//! computed at scrape time, so it cannot drift from the truth. Adding one
//! is one `GaugeFn` in [`CollectorMetrics::attach`]. RAID arrays by verdict
//! come from [`raid::RaidIndex`], kept current by the Report path.

pub mod raid;
mod scrape;

use std::sync::{Arc, RwLock};

use driftwatch_common::metrics::{GaugeFn, LATENCY_BUCKETS};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ServiceError;

pub use scrape::{FleetView, HOST_STATES};

/// One label with a value from a fixed vocabulary.
pub type Reason = [(&'static str, &'static str); 1];

/// The metrics the services update.
#[derive(Clone)]
pub struct CollectorMetrics {
    /// Read-locked while rendering; written only while attaching.
    pub registry: Arc<RwLock<Registry>>,
    pub reports_received: Family<Reason, Counter>,
    pub reports_rejected: Family<Reason, Counter>,
    pub report_bytes: Counter,
    pub report_seconds: Histogram,
    pub enrollments: Counter,
    pub connections_dropped: Family<Reason, Counter>,
    /// What agents' reports say their spools dropped.
    pub agent_spool_dropped: Counter,
    pub notify: crate::notify::NotifyMetrics,
}

const REJECT_REASONS: [&str; 6] = [
    "unauthenticated",
    "revoked",
    "permission_denied",
    "invalid",
    "storage",
    "other",
];

impl CollectorMetrics {
    /// Metrics with no storage behind them (unit tests, or before `bind`).
    pub fn detached() -> Self {
        let mut registry = Registry::default();
        let m = CollectorMetrics {
            registry: Arc::default(),
            reports_received: Family::default(),
            reports_rejected: Family::default(),
            report_bytes: Counter::default(),
            report_seconds: Histogram::new(LATENCY_BUCKETS.iter().copied()),
            enrollments: Counter::default(),
            connections_dropped: Family::default(),
            agent_spool_dropped: Counter::default(),
            notify: Default::default(),
        };
        registry.register(
            "driftwatch_collector_reports_received",
            "Reports stored and acknowledged (duplicates included)",
            m.reports_received.clone(),
        );
        registry.register(
            "driftwatch_collector_reports_rejected",
            "Reports refused, by reason (unauthenticated, revoked, permission_denied, invalid, storage, other)",
            m.reports_rejected.clone(),
        );
        registry.register(
            "driftwatch_collector_report_bytes",
            "Protobuf bytes of acknowledged reports",
            m.report_bytes.clone(),
        );
        registry.register(
            "driftwatch_collector_report_duration_seconds",
            "Ingest latency of a report, from receipt to durable acknowledgement",
            m.report_seconds.clone(),
        );
        registry.register(
            "driftwatch_collector_enrollments",
            "Hosts enrolled with a token",
            m.enrollments.clone(),
        );
        registry.register(
            "driftwatch_collector_connections_dropped",
            "Connections dropped at accept or closed by the collector, by reason (source_handshakes, handshakes, source_connections, connections, evicted_idle, idle_timeout)",
            m.connections_dropped.clone(),
        );
        registry.register(
            "driftwatch_collector_agent_spool_dropped",
            "Snapshots agents dropped from their spool (full, unwritable, or refused as too large), as their stored reports say",
            m.agent_spool_dropped.clone(),
        );
        m.notify.register(&mut registry);
        // Every series exists from the start, so a rate() over it begins at 0.
        for r in REJECT_REASONS {
            let _ = m.reports_rejected.get_or_create(&[("reason", r)]);
        }
        for o in ["new", "duplicate", "need_full"] {
            let _ = m.reports_received.get_or_create(&[("outcome", o)]);
        }
        *m.registry.write().expect("not poisoned") = registry;
        m
    }

    /// Adds the gauges computed from `fleet` at scrape time.
    pub fn attach(&self, fleet: std::sync::Arc<dyn FleetView>) {
        let mut r = self.registry.write().expect("not poisoned");
        let st = fleet.clone();
        r.register_collector(GaugeFn::boxed(
            "driftwatch_collector_hosts",
            "Hosts by state: fresh, stale (stale_after, or 3 report intervals, without a report), gone (gone_after), revoked",
            &["state"],
            move || scrape::hosts_by_state(st.as_ref()),
        ));
        let st = fleet.clone();
        r.register_collector(GaugeFn::many(
            &[
                (
                    "driftwatch_collector_findings_open",
                    "Open drift findings by severity",
                    &["severity"],
                ),
                (
                    "driftwatch_collector_findings_open_by_kind",
                    "Open drift findings by kind (peer_outlier, peer_missing, baseline_added, baseline_removed, baseline_changed, policy, stale, gone; other for any else) and severity",
                    &["kind", "severity"],
                ),
            ],
            move || scrape::findings(st.as_ref()),
        ));
        let st = fleet.clone();
        r.register_collector(GaugeFn::many(
            &[
                (
                    "driftwatch_collector_sweeps",
                    "Key sweeps by state: running (hosts pending), done (every host done), incomplete (a host failed or expired)",
                    &["state"],
                ),
                (
                    "driftwatch_collector_sweeps_overdue",
                    "Key sweeps past their deadline with a host failed or never answered (expired)",
                    &[],
                ),
            ],
            move || scrape::sweeps(st.as_ref()),
        ));
        let st = fleet.clone();
        r.register_collector(GaugeFn::boxed(
            "driftwatch_collector_agent_streams",
            "Hosts with an open command stream (connected agents)",
            &[],
            move || vec![(vec![], st.connected_agents() as f64)],
        ));
        let st = fleet;
        r.register_collector(GaugeFn::boxed(
            "driftwatch_collector_raid_arrays",
            "RAID arrays (md arrays, controllers' virtual drives) of each host's latest snapshot by verdict (healthy, warning, rebuilding, degraded, failed, unknown); hosts without arrays and revoked hosts are left out",
            &["host", "verdict"],
            move || st.raid_arrays(),
        ));
    }

    /// Counts a refused report by reason.
    pub fn rejected(&self, e: &ServiceError) {
        self.reports_rejected
            .get_or_create(&[("reason", reject_reason(e))])
            .inc();
    }
}

fn reject_reason(e: &ServiceError) -> &'static str {
    match e {
        ServiceError::Unauthenticated(_) => "unauthenticated",
        ServiceError::PermissionDenied(_) => "permission_denied",
        ServiceError::Revoked(_) => "revoked",
        ServiceError::InvalidArgument(_) => "invalid",
        ServiceError::Store(_) => "storage",
        _ => "other",
    }
}
