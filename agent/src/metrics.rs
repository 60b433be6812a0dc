//! The agent's own Prometheus metrics (on `prometheus-client`), served only
//! with `--metrics-listen` (off by default: most fleets scrape the
//! collector, not every server).

use std::sync::{Arc, RwLock};

use driftwatch_common::metrics::GaugeFn;
use driftwatch_common::proto::Snapshot;
use driftwatch_common::vocab::CollectionStatus;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::failover::CollectorSet;
use crate::spool::Spool;

type Section = [(&'static str, String); 1];
type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Arc<RwLock<Registry>>,
    section_seconds: Family<Section, F64Gauge>,
    section_errors: Family<Section, Counter>,
    collections: Counter,
    pub deliveries: Family<[(&'static str, &'static str); 1], Counter>,
    last_collect: F64Gauge,
}

impl AgentMetrics {
    /// Spool depth is read from the spool directory at scrape time;
    /// `spool_dropped` is the state's count of snapshots dropped since
    /// start (`StateDir::dropped_counter`). Which collector is in use is
    /// read from `upstream` at scrape time.
    pub fn new(spool: Spool, spool_dropped: Counter, upstream: &CollectorSet) -> Self {
        let mut r = Registry::default();
        let m = AgentMetrics {
            registry: Arc::default(),
            section_seconds: Family::default(),
            section_errors: Family::default(),
            collections: Counter::default(),
            deliveries: Family::default(),
            last_collect: F64Gauge::default(),
        };
        r.register(
            "driftwatch_agent_section_collect_seconds",
            "How long the last collection of each section took",
            m.section_seconds.clone(),
        );
        r.register(
            "driftwatch_agent_section_errors",
            "Collections of a section that ended in status error",
            m.section_errors.clone(),
        );
        r.register(
            "driftwatch_agent_collections",
            "Snapshots collected and spooled",
            m.collections.clone(),
        );
        r.register(
            "driftwatch_agent_deliveries",
            "Spool drains, by result (ok: everything spooled was acknowledged; failed)",
            m.deliveries.clone(),
        );
        r.register(
            "driftwatch_agent_last_collect_timestamp_seconds",
            "When the last snapshot was collected (Unix time)",
            m.last_collect.clone(),
        );
        r.register(
            "driftwatch_agent_spool_dropped",
            "Snapshots dropped since the agent started: the spool was full (oldest first), a snapshot could not be spooled, or the collector refused one as too large",
            spool_dropped,
        );
        r.register(
            "driftwatch_agent_collector_moves",
            "Moves from the collector in use to another, by why the one in use was left (unreachable, tls, unavailable, timed_out, stream_lost)",
            upstream.moves(),
        );
        let set = upstream.clone();
        r.register_collector(GaugeFn::many(
            &[(
                "driftwatch_agent_collector_in_use",
                "1 for the collector address the agent uses now, 0 for the other configured ones",
                &["url"],
            )],
            move || {
                let current = set.current().index;
                vec![
                    set.urls()
                        .iter()
                        .enumerate()
                        .map(|(i, u)| (vec![u.clone()], f64::from(u8::from(i == current))))
                        .collect(),
                ]
            },
        ));
        for result in ["ok", "failed"] {
            let _ = m.deliveries.get_or_create(&[("result", result)]);
        }
        r.register_collector(GaugeFn::many(
            &[
                (
                    "driftwatch_agent_spool_snapshots",
                    "Snapshots waiting in the spool for an acknowledgement",
                    &[],
                ),
                (
                    "driftwatch_agent_spool_bytes",
                    "Bytes of snapshots waiting in the spool",
                    &[],
                ),
            ],
            move || {
                // NaN, not 0, when the spool cannot be read: an empty spool
                // is good news this would not be.
                let (n, bytes) = spool.entries().map_or((f64::NAN, f64::NAN), |e| {
                    (e.len() as f64, e.iter().map(|x| x.size).sum::<u64>() as f64)
                });
                vec![vec![(vec![], n)], vec![(vec![], bytes)]]
            },
        ));
        *m.registry.write().expect("not poisoned") = r;
        m
    }

    pub fn collected(&self, snap: &Snapshot) {
        self.collections.inc();
        self.last_collect.set(snap.collected_at_ms as f64 / 1000.0);
        for s in &snap.sections {
            let labels = [("section", s.name.clone())];
            self.section_seconds
                .get_or_create(&labels)
                .set(s.duration_us as f64 / 1e6);
            let errors = self.section_errors.get_or_create(&labels);
            if s.status == CollectionStatus::Error.as_str() {
                errors.inc();
            }
        }
    }

    pub fn delivered(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.deliveries.get_or_create(&[("result", result)]).inc();
    }
}
