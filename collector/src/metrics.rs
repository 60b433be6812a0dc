//! The collector's Prometheus metrics (`serve --metrics-listen ADDR`).
//!
//! Counters are updated by the services; everything derived from stored
//! state (hosts by state, connected agents) is a gauge computed at scrape
//! time, so it cannot drift from the truth. Adding one is one `gauge_fn`
//! line in [`CollectorMetrics::new`].

use std::sync::Arc;
use std::time::Duration;

use driftwatch_common::metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry};
use driftwatch_common::proto::HostSummary;
use driftwatch_common::time::now_ms;
use tracing::warn;

use crate::error::ServiceError;
use crate::service::State;

pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_GONE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// When a host counts as stale or gone. The collector does not know each
/// agent's interval, so these are fixed thresholds from the config.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub stale_after: Duration,
    pub gone_after: Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            stale_after: DEFAULT_STALE_AFTER,
            gone_after: DEFAULT_GONE_AFTER,
        }
    }
}

impl Freshness {
    /// fresh, stale, gone or revoked. A host that enrolled but never
    /// reported counts from its enrollment.
    pub fn state_of(&self, h: &HostSummary, now_ms: i64) -> &'static str {
        if h.revoked_ms > 0 {
            return "revoked";
        }
        let seen = h.last_seen_ms.max(h.enrolled_ms).max(h.first_seen_ms);
        let age = Duration::from_millis(now_ms.saturating_sub(seen).max(0) as u64);
        if age >= self.gone_after {
            "gone"
        } else if age >= self.stale_after {
            "stale"
        } else {
            "fresh"
        }
    }
}

pub const HOST_STATES: [&str; 4] = ["fresh", "stale", "gone", "revoked"];

/// The metrics the services update.
#[derive(Clone)]
pub struct CollectorMetrics {
    pub registry: Arc<Registry>,
    pub reports_received: Arc<Counter>,
    pub reports_rejected: Arc<Counter>,
    pub report_bytes: Arc<Counter>,
    pub report_seconds: Arc<Histogram>,
    pub enrollments: Arc<Counter>,
}

impl CollectorMetrics {
    /// Metrics with no storage behind them (unit tests, or before `bind`).
    pub fn detached() -> Self {
        let registry = Registry::new();
        let reports_rejected = registry.counter(
            "driftwatch_collector_reports_rejected_total",
            "Reports refused, by reason (unauthenticated, revoked, permission_denied, invalid, storage, other).",
            &["reason"],
        );
        for r in REJECT_REASONS {
            reports_rejected.touch(&[r]);
        }
        let m = CollectorMetrics {
            reports_received: registry.counter(
                "driftwatch_collector_reports_received_total",
                "Reports stored and acknowledged (duplicates included).",
                &["outcome"],
            ),
            reports_rejected,
            report_bytes: registry.counter(
                "driftwatch_collector_report_bytes_total",
                "Protobuf bytes of acknowledged reports.",
                &[],
            ),
            report_seconds: registry.histogram(
                "driftwatch_collector_report_duration_seconds",
                "Ingest latency of a report, from receipt to durable acknowledgement.",
                &[],
                LATENCY_BUCKETS,
            ),
            enrollments: registry.counter(
                "driftwatch_collector_enrollments_total",
                "Hosts enrolled with a token.",
                &[],
            ),
            registry,
        };
        m.reports_received.touch(&["new"]);
        m.reports_received.touch(&["duplicate"]);
        m.report_bytes.touch(&[]);
        m.enrollments.touch(&[]);
        m
    }

    /// Adds the gauges computed from `state` at scrape time.
    pub fn attach(&self, state: &State, freshness: Freshness) {
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_hosts",
            "Hosts by state: fresh, stale (not seen for stale_after), gone (not seen for gone_after), revoked.",
            &["state"],
            move || hosts_by_state(&st, freshness),
        );
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_agent_streams",
            "Hosts with an open command stream (connected agents).",
            &[],
            move || vec![(vec![], st.streams.connected_hosts() as f64)],
        );
    }

    /// Counts a refused report; `revoked` says the certificate's host was
    /// revoked (the error alone does not tell it from other refusals).
    pub fn rejected(&self, e: &ServiceError, revoked: bool) {
        let reason = if revoked { "revoked" } else { reject_reason(e) };
        self.reports_rejected.inc(&[reason]);
    }
}

const REJECT_REASONS: [&str; 6] = [
    "unauthenticated",
    "revoked",
    "permission_denied",
    "invalid",
    "storage",
    "other",
];

fn reject_reason(e: &ServiceError) -> &'static str {
    match e {
        ServiceError::Unauthenticated(_) => "unauthenticated",
        ServiceError::PermissionDenied(_) => "permission_denied",
        ServiceError::InvalidArgument(_) => "invalid",
        ServiceError::Store(_) => "storage",
        _ => "other",
    }
}

fn hosts_by_state(state: &State, f: Freshness) -> Vec<(Vec<String>, f64)> {
    let mut counts = [0u64; HOST_STATES.len()];
    match state.store.list_hosts() {
        Ok(hosts) => {
            let now = now_ms();
            for h in &hosts {
                let s = f.state_of(h, now);
                if let Some(i) = HOST_STATES.iter().position(|x| *x == s) {
                    counts[i] += 1;
                }
            }
        }
        // An empty answer would look like a fleet that vanished; leave the
        // series out so the scrape shows the gap instead.
        Err(e) => {
            warn!(error = %e, "metrics: listing hosts failed");
            return vec![];
        }
    }
    HOST_STATES
        .iter()
        .zip(counts)
        .map(|(s, n)| (vec![s.to_string()], n as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_states_follow_the_thresholds() {
        let f = Freshness::default();
        let now = 100 * 86_400_000;
        let h = |last: i64, revoked: i64| HostSummary {
            last_seen_ms: last,
            revoked_ms: revoked,
            ..Default::default()
        };
        assert_eq!(f.state_of(&h(now - 1_000, 0), now), "fresh");
        assert_eq!(f.state_of(&h(now - 5 * 60_000, 0), now), "stale");
        assert_eq!(f.state_of(&h(now - 86_400_000, 0), now), "gone");
        assert_eq!(f.state_of(&h(now, 1), now), "revoked");
        let enrolled_only = HostSummary {
            enrolled_ms: now - 1_000,
            ..Default::default()
        };
        assert_eq!(f.state_of(&enrolled_only, now), "fresh");
    }
}
