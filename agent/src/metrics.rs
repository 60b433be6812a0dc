//! The agent's own Prometheus metrics, served only with `--metrics-listen`
//! (off by default: most fleets scrape the collector, not every server).

use std::sync::Arc;

use driftwatch_common::metrics::{Counter, Gauge, Registry};
use driftwatch_common::proto::Snapshot;
use driftwatch_common::snapshot::STATUS_ERROR;

use crate::spool::Spool;

#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Arc<Registry>,
    section_seconds: Arc<Gauge>,
    section_errors: Arc<Counter>,
    collections: Arc<Counter>,
    pub deliveries: Arc<Counter>,
    last_collect: Arc<Gauge>,
}

impl AgentMetrics {
    /// Spool depth is read from the spool directory at scrape time.
    pub fn new(spool: Spool) -> Self {
        let registry = Registry::new();
        let m = AgentMetrics {
            section_seconds: registry.gauge(
                "driftwatch_agent_section_collect_seconds",
                "How long the last collection of each section took.",
                &["section"],
            ),
            section_errors: registry.counter(
                "driftwatch_agent_section_errors_total",
                "Collections of a section that ended in status error.",
                &["section"],
            ),
            collections: registry.counter(
                "driftwatch_agent_collections_total",
                "Snapshots collected and spooled.",
                &[],
            ),
            deliveries: registry.counter(
                "driftwatch_agent_deliveries_total",
                "Spool drains, by result (ok: everything spooled was acknowledged; failed).",
                &["result"],
            ),
            last_collect: registry.gauge(
                "driftwatch_agent_last_collect_timestamp_seconds",
                "When the last snapshot was collected (Unix time).",
                &[],
            ),
            registry,
        };
        m.collections.touch(&[]);
        m.deliveries.touch(&["ok"]);
        m.deliveries.touch(&["failed"]);
        let s = spool.clone();
        m.registry.gauge_fn(
            "driftwatch_agent_spool_snapshots",
            "Snapshots waiting in the spool for an acknowledgement.",
            &[],
            move || {
                let n = s.entries().map_or(f64::NAN, |e| e.len() as f64);
                vec![(vec![], n)]
            },
        );
        m.registry.gauge_fn(
            "driftwatch_agent_spool_bytes",
            "Bytes of snapshots waiting in the spool.",
            &[],
            move || {
                let n = spool
                    .entries()
                    .map_or(f64::NAN, |e| e.iter().map(|x| x.size).sum::<u64>() as f64);
                vec![(vec![], n)]
            },
        );
        m
    }

    pub fn collected(&self, snap: &Snapshot) {
        self.collections.inc(&[]);
        self.last_collect
            .set(&[], snap.collected_at_ms as f64 / 1000.0);
        for s in &snap.sections {
            self.section_seconds
                .set(&[&s.name], s.duration_us as f64 / 1e6);
            if s.status == STATUS_ERROR {
                self.section_errors.inc(&[&s.name]);
            } else {
                self.section_errors.touch(&[&s.name]);
            }
        }
    }
}
