//! The collector's Prometheus metrics (`serve --metrics-listen ADDR`).
//!
//! Counters are updated by the services; everything derived from stored
//! state (hosts by state, connected agents) is a gauge computed at scrape
//! time, so it cannot drift from the truth. Adding one is one `gauge_fn`
//! line in [`CollectorMetrics::new`].

use std::sync::Arc;

use driftwatch_common::metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry};
use driftwatch_common::time::now_ms;
use tracing::warn;

use crate::error::ServiceError;
use crate::service::State;

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
    pub connections_dropped: Arc<Counter>,
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
            connections_dropped: registry.counter(
                "driftwatch_collector_connections_dropped_total",
                "Connections dropped at accept or closed by the collector, by reason (source_handshakes, handshakes, source_connections, connections, evicted_idle, idle_timeout).",
                &["reason"],
            ),
            registry,
        };
        m.reports_received.touch(&["new"]);
        m.reports_received.touch(&["duplicate"]);
        m.reports_received.touch(&["need_full"]);
        m.report_bytes.touch(&[]);
        m.enrollments.touch(&[]);
        m
    }

    /// Adds the gauges computed from `state` at scrape time.
    pub fn attach(&self, state: &State) {
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_hosts",
            "Hosts by state: fresh, stale (stale_after, or 3 report intervals, without a report), gone (gone_after), revoked.",
            &["state"],
            move || hosts_by_state(&st),
        );
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_findings_open",
            "Open drift findings by severity.",
            &["severity"],
            move || findings_by_severity(&st),
        );
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_sweeps",
            "Key sweeps by state: running (hosts pending), done (every host done), incomplete (a host failed or expired).",
            &["state"],
            move || sweeps_by_state(&st),
        );
        let st = state.clone();
        self.registry.gauge_fn(
            "driftwatch_collector_agent_streams",
            "Hosts with an open command stream (connected agents).",
            &[],
            move || vec![(vec![], st.streams.connected_hosts() as f64)],
        );
    }

    /// Counts a refused report by reason.
    pub fn rejected(&self, e: &ServiceError) {
        self.reports_rejected.inc(&[reject_reason(e)]);
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
        ServiceError::Revoked(_) => "revoked",
        ServiceError::InvalidArgument(_) => "invalid",
        ServiceError::Store(_) => "storage",
        _ => "other",
    }
}

fn findings_by_severity(state: &State) -> Vec<(Vec<String>, f64)> {
    let findings = match state.store.findings() {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "metrics: listing findings failed");
            return vec![];
        }
    };
    crate::drift::SEVERITIES
        .iter()
        .map(|sev| {
            let n = findings
                .iter()
                .filter(|f| f.resolved_ms == 0 && f.severity == *sev)
                .count();
            (vec![sev.to_string()], n as f64)
        })
        .collect()
}

fn sweeps_by_state(state: &State) -> Vec<(Vec<String>, f64)> {
    let now = now_ms();
    let jobs =
        match crate::service::sweeps::summaries(state.store.as_ref(), &state.settled_sweeps, now) {
            Ok(j) => j,
            Err(e) => {
                warn!(error = %e, "metrics: listing sweeps failed");
                return vec![];
            }
        };
    let mut counts = [0u64; 3];
    for v in jobs {
        let i = if v.hosts_pending > 0 {
            0
        } else if v.hosts_failed + v.hosts_expired > 0 {
            2
        } else {
            1
        };
        counts[i] += 1;
    }
    ["running", "done", "incomplete"]
        .iter()
        .zip(counts)
        .map(|(s, n)| (vec![s.to_string()], n as f64))
        .collect()
}

fn hosts_by_state(state: &State) -> Vec<(Vec<String>, f64)> {
    let mut counts = [0u64; HOST_STATES.len()];
    match state.store.list_hosts() {
        Ok(hosts) => {
            let now = now_ms();
            for h in &hosts {
                let s = crate::drift::host_state(h, &state.evaluator.settings, now);
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
    use driftwatch_common::proto::HostSummary;

    #[test]
    fn host_states_follow_the_thresholds() {
        let f = crate::drift::Settings {
            stale_after_ms: Some(5 * 60_000),
            ..Default::default()
        };
        let now = 100 * 86_400_000;
        let h = |last: i64, revoked: i64| HostSummary {
            last_seen_ms: last,
            revoked_ms: revoked,
            ..Default::default()
        };
        let state = |h: &HostSummary| crate::drift::host_state(h, &f, now);
        assert_eq!(state(&h(now - 1_000, 0)), "fresh");
        assert_eq!(state(&h(now - 5 * 60_000 - 1, 0)), "stale");
        assert_eq!(state(&h(now - 25 * 3_600_000, 0)), "gone");
        assert_eq!(state(&h(now, 1)), "revoked");
        let enrolled = HostSummary {
            enrolled_ms: now - 1_000,
            ..Default::default()
        };
        assert_eq!(state(&enrolled), "fresh", "judged from its enrollment");
    }
}
