//! The agent's main loop: collect every interval (with jitter), spool, and
//! deliver, retrying with exponential backoff while the collector is away.

use std::path::PathBuf;
use std::time::Duration;

use driftwatch_common::proto::Snapshot;
use driftwatch_common::snapshot::labels;
use driftwatch_common::time::now_ms;
use driftwatch_common::tls::ClientFiles;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::collect::{Collectors, Context};
use crate::hostfs::HostFs;
use crate::identity::{Identity, IdentityDir, IdentityError, TokenSource};
use crate::metrics::AgentMetrics;
use crate::report::{DeliverError, Reporter};
use crate::spool::{Spool, SpoolError};
use crate::state::{StateDir, StateError};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub collector: String,
    /// CA the collector's certificate must chain to.
    pub ca: PathBuf,
    pub identity: IdentitySource,
    pub state_dir: PathBuf,
    pub root: PathBuf,
    pub interval: Duration,
    pub labels: Vec<(String, String)>,
    pub sections: Vec<String>,
    pub spool_max_bytes: u64,
    /// Plain-HTTP `/metrics` listener; none unless asked for.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where the host certificate comes from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// Given by hand (`pki issue`): used as is.
    Files { cert: PathBuf, key: PathBuf },
    /// Kept in the state dir, enrolled with a token when missing or when
    /// the machine facts changed.
    Enrolled(TokenSource),
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Sections(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "snapshot {seq} was not acknowledged: {cause}; it stays in the spool ({spool}) and the next run sends it"
    )]
    NotAcknowledged {
        seq: u64,
        spool: String,
        cause: DeliverError,
    },
}

/// Collects one snapshot (blocking work runs on the blocking pool).
pub async fn collect_snapshot(
    collectors: Collectors,
    ctx: Context,
    labels_kv: &[(String, String)],
) -> (Collectors, Snapshot) {
    let started = now_ms();
    let (collectors, sections) = tokio::task::spawn_blocking(move || {
        let mut c = collectors;
        let sections = c.collect_all(&ctx);
        (c, sections)
    })
    .await
    .expect("collection task panicked outside a collector");
    let snap = Snapshot {
        collected_at_ms: started,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        labels: labels(labels_kv),
        sections,
        ..Default::default()
    };
    (collectors, snap)
}

struct Agent {
    cfg: RunConfig,
    identity: Option<Identity>,
    state: StateDir,
    spool: Spool,
    reporter: Reporter,
    collectors: Option<Collectors>,
    metrics: Option<AgentMetrics>,
}

/// Resolves the identity before anything else touches the state dir: a
/// re-enrollment sets the old spool and counters aside.
pub async fn resolve_identity(
    cfg: &RunConfig,
) -> Result<(ClientFiles, Option<Identity>), RunError> {
    match &cfg.identity {
        IdentitySource::Files { cert, key } => Ok((
            ClientFiles {
                ca: cfg.ca.clone(),
                cert: Some(cert.clone()),
                key: Some(key.clone()),
            },
            None,
        )),
        IdentitySource::Enrolled(tokens) => {
            std::fs::create_dir_all(&cfg.state_dir).map_err(|source| StateError::Io {
                path: cfg.state_dir.clone(),
                source,
            })?;
            let id = IdentityDir::new(&cfg.state_dir)
                .ensure(&cfg.collector, &cfg.ca, tokens, &HostFs::new(&cfg.root))
                .await?;
            Ok((id.client_files(&cfg.ca), Some(id)))
        }
    }
}

impl Agent {
    async fn open(cfg: RunConfig) -> Result<Self, RunError> {
        let collectors = Collectors::new(&cfg.sections).map_err(RunError::Sections)?;
        let (files, identity) = resolve_identity(&cfg).await?;
        let state = StateDir::open(&cfg.state_dir)?;
        let spool = Spool::open(&cfg.state_dir.join("spool"), cfg.spool_max_bytes)?;
        let reporter = Reporter::new(cfg.collector.clone(), files);
        Ok(Agent {
            cfg,
            identity,
            state,
            spool,
            reporter,
            collectors: Some(collectors),
            metrics: None,
        })
    }

    fn client_files(&self) -> ClientFiles {
        self.reporter.files().clone()
    }

    /// Renews an enrolled certificate when due; a failure is logged and
    /// retried next tick (the current certificate is still valid).
    async fn renew_if_due(&mut self) {
        let Some(current) = self.identity.clone() else {
            return;
        };
        let dir = IdentityDir::new(&self.cfg.state_dir);
        match dir
            .renew_if_due(&self.cfg.collector, &self.cfg.ca, &current)
            .await
        {
            Ok(Some(id)) => {
                self.reporter =
                    Reporter::new(self.cfg.collector.clone(), id.client_files(&self.cfg.ca));
                self.identity = Some(id);
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "certificate renewal failed; will retry"),
        }
    }

    /// Collects, numbers and spools one snapshot; returns its seq.
    async fn collect_and_spool(&mut self) -> Result<u64, RunError> {
        let ctx = Context {
            fs: HostFs::new(&self.cfg.root),
        };
        let collectors = self
            .collectors
            .take()
            .expect("collectors present between ticks");
        let (collectors, mut snap) = collect_snapshot(collectors, ctx, &self.cfg.labels).await;
        self.collectors = Some(collectors);
        snap.seq = self.state.next_seq()?;
        snap.spool_dropped = self.state.dropped_unreported();
        let dropped = self.spool.push(&snap)?;
        if let Some(m) = &self.metrics {
            m.collected(&snap);
        }
        if dropped > 0 {
            warn!(
                dropped,
                max_bytes = self.cfg.spool_max_bytes,
                "spool full: dropped the oldest snapshots"
            );
            self.state.add_dropped(dropped)?;
        }
        Ok(snap.seq)
    }
}

/// `--once`: one snapshot, delivered (with anything still spooled before
/// it), or an error saying why not.
pub async fn run_once(cfg: RunConfig) -> Result<u64, RunError> {
    let mut agent = Agent::open(cfg).await?;
    agent.renew_if_due().await;
    let seq = agent.collect_and_spool().await?;
    let spool_dir = agent.cfg.state_dir.join("spool").display().to_string();
    agent
        .reporter
        .drain(&agent.spool, &mut agent.state)
        .await
        .map_err(|cause| RunError::NotAcknowledged {
            seq,
            spool: spool_dir,
            cause,
        })?;
    info!(seq, "snapshot acknowledged");
    Ok(seq)
}

/// Reports every interval until `shutdown` resolves.
pub async fn run_forever(
    cfg: RunConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let mut agent = Agent::open(cfg).await?;
    // Dropped when this function returns, which stops the metrics server.
    let (_metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = agent.cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Metrics { addr, source })?;
        let m = AgentMetrics::new(agent.spool.clone());
        tokio::spawn(driftwatch_common::metrics::http::serve(
            listener,
            m.registry.clone(),
            async {
                let _ = metrics_stopped.await;
            },
        ));
        agent.metrics = Some(m);
    }
    let interval = agent.cfg.interval;
    let commands = tokio::spawn(crate::commands::hold_stream(
        agent.cfg.collector.clone(),
        agent.client_files(),
    ));
    let max_backoff = interval.clamp(Duration::from_secs(1), Duration::from_secs(300));
    let mut backoff = Duration::from_secs(1);
    let mut next_collect = Instant::now();
    let mut next_drain: Option<Instant> = None;
    tokio::pin!(shutdown);
    info!(collector = %agent.cfg.collector, interval_s = interval.as_secs_f64(), "agent started");
    loop {
        let wake = next_drain.map_or(next_collect, |d| d.min(next_collect));
        tokio::select! {
            _ = &mut shutdown => {
                info!("agent stopping");
                commands.abort();
                return Ok(());
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if Instant::now() >= next_collect {
            agent.renew_if_due().await;
            let seq = agent.collect_and_spool().await?;
            tracing::debug!(seq, "snapshot spooled");
            next_collect = Instant::now() + jittered(interval);
        }
        match agent.reporter.drain(&agent.spool, &mut agent.state).await {
            Ok(_) => {
                if let Some(m) = &agent.metrics {
                    m.deliveries.inc(&["ok"]);
                }
                backoff = Duration::from_secs(1);
                next_drain = None;
            }
            Err(e) => {
                if let Some(m) = &agent.metrics {
                    m.deliveries.inc(&["failed"]);
                }
                let wait = jittered(backoff);
                warn!(error = %e, retry_in_s = wait.as_secs_f64(), "delivery failed; snapshots stay spooled");
                next_drain = Some(Instant::now() + wait);
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// ±10% so a fleet started together spreads out instead of stampeding.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jittered(Duration::from_secs(100));
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }

    #[tokio::test]
    async fn once_without_a_collector_keeps_the_snapshot_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        driftwatch_common::pki::init(&d.path().join("pki"), &["localhost".into()]).unwrap();
        let cfg = RunConfig {
            // Port 1 on loopback: nothing listens.
            collector: "https://127.0.0.1:1".into(),
            ca: d.path().join("pki/ca.pem"),
            identity: IdentitySource::Files {
                cert: d.path().join("pki/admin.pem"),
                key: d.path().join("pki/admin-key.pem"),
            },
            state_dir: d.path().join("state"),
            root: "/".into(),
            interval: DEFAULT_INTERVAL,
            labels: vec![],
            sections: vec!["host".into()],
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            metrics_listen: None,
        };
        let err = run_once(cfg.clone()).await.unwrap_err().to_string();
        assert!(
            err.contains("snapshot 1 was not acknowledged") && err.contains("cannot reach"),
            "{err}"
        );
        let err = run_once(cfg).await.unwrap_err().to_string();
        assert!(err.contains("snapshot 2"), "{err}");
        let spool = Spool::open(&d.path().join("state/spool"), 1 << 20).unwrap();
        assert_eq!(
            spool
                .entries()
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
