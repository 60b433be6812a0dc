//! The agent's main loop: collect every interval (with jitter), spool, and
//! deliver, retrying with exponential backoff while the collector is away.

use std::path::PathBuf;
use std::time::Duration;

use driftwatch_common::proto::{Baseline, Snapshot};
use driftwatch_common::snapshot::labels;
use driftwatch_common::time::now_ms;
use driftwatch_common::tls::ClientFiles;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::collect::{Collectors, Context};
use crate::failover::{Backoff, CollectorSet, MoveReason, jittered};
use crate::hostfs::HostFs;
use crate::identity::{Identity, IdentityDir, IdentityError, TokenSource};
use crate::metrics::AgentMetrics;
use crate::report::{DeliverError, Reporter};
use crate::spool::{Spool, SpoolError};
use crate::state::{StateDir, StateError};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// Least time a delivery attempt gets before collection takes its turn.
const MIN_DRAIN_BUDGET: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Collector URLs in the order to try them (at least one); the agent
    /// moves to the next when the one in use is down.
    pub collectors: Vec<String>,
    /// CA the collector's certificate must chain to.
    pub ca: PathBuf,
    pub identity: IdentitySource,
    pub state_dir: PathBuf,
    pub root: PathBuf,
    pub interval: Duration,
    pub labels: Vec<(String, String)>,
    pub sections: Vec<String>,
    pub spool_max_bytes: u64,
    /// Unchanged sections still travel in full this often (volatile values).
    pub full_refresh: Duration,
    /// Plain-HTTP `/metrics` listener; none unless asked for.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

pub const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(900);

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
    #[error(transparent)]
    Refused(DeliverError),
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
    upstream: CollectorSet,
    identity: Option<Identity>,
    state: StateDir,
    spool: Spool,
    reporter: Reporter,
    collectors: Option<Collectors>,
    /// The image's bake-time baseline, and whether it still needs uploading.
    baseline: Option<(Baseline, bool)>,
    metrics: Option<AgentMetrics>,
}

/// Resolves the identity before anything else touches the state dir: a
/// re-enrollment sets the old spool and counters aside.
pub async fn resolve_identity(
    cfg: &RunConfig,
    collectors: &CollectorSet,
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
                .ensure(collectors, &cfg.ca, tokens, &HostFs::new(&cfg.root))
                .await?;
            Ok((id.client_files(&cfg.ca), Some(id)))
        }
    }
}

impl Agent {
    async fn open(cfg: RunConfig) -> Result<Self, RunError> {
        let collectors = Collectors::new(&cfg.sections).map_err(RunError::Sections)?;
        let set = CollectorSet::new(cfg.collectors.clone());
        let (files, identity) = resolve_identity(&cfg, &set).await?;
        let state = StateDir::open(&cfg.state_dir)?;
        let spool = Spool::open(&cfg.state_dir.join("spool"), cfg.spool_max_bytes)?;
        let reporter = Reporter::new(set.clone(), files).with_full_refresh(cfg.full_refresh);
        let baseline = crate::baseline::load(&cfg.state_dir).unwrap_or_else(|e| {
            warn!(error = %e, "ignoring an unreadable baked baseline");
            None
        });
        Ok(Agent {
            cfg,
            upstream: set,
            identity,
            state,
            spool,
            reporter,
            collectors: Some(collectors),
            baseline,
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
            .renew_if_due(&self.upstream.current().url, &self.cfg.ca, &current)
            .await
        {
            Ok(Some(id)) => {
                // Same delta state and refresh period: only the files change.
                self.reporter.set_files(id.client_files(&self.cfg.ca));
                self.identity = Some(id);
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "certificate renewal failed; will retry"),
        }
    }

    /// Once a snapshot carrying the baked baseline was acknowledged, later
    /// ones stop carrying it (and a restart does not send it again).
    fn after_delivery(&mut self) {
        if self.reporter.baseline_delivered
            && let Some((_, pending)) = &mut self.baseline
            && *pending
        {
            match crate::baseline::mark_uploaded(&self.cfg.state_dir) {
                Ok(()) => *pending = false,
                Err(e) => {
                    warn!(error = %e, "could not record the baseline upload; it will be sent again")
                }
            }
        }
    }

    /// Lets the collectors take their rate baselines (see
    /// [`PRIME_INTERVAL`]).
    async fn prime(&mut self) {
        let ctx = Context {
            fs: HostFs::new(&self.cfg.root),
        };
        let mut collectors = self
            .collectors
            .take()
            .expect("collectors present between ticks");
        let collectors = tokio::task::spawn_blocking(move || {
            collectors.prime_all(&ctx);
            collectors
        })
        .await
        .expect("priming panicked outside a collector");
        self.collectors = Some(collectors);
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
        snap.agent_epoch = self.state.epoch();
        snap.interval_s = self.cfg.interval.as_secs();
        if let Some((b, pending)) = &self.baseline {
            snap.image_id = b.image_id.clone();
            if *pending {
                snap.image_baseline = Some(Box::new(b.clone()));
            }
        }
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

impl Agent {
    /// One tick's collection. A snapshot that cannot be spooled (disk
    /// full, spool directory broken) is counted as dropped and the agent
    /// goes on: exiting would also stop delivering what is already spooled,
    /// which is what frees the space, and the next tick tries again.
    async fn collect_or_count(&mut self) {
        match self.collect_and_spool().await {
            Ok(seq) => debug!(seq, "snapshot spooled"),
            Err(e) => {
                error!(error = %e, "snapshot could not be spooled; counted as dropped");
                if let Err(e) = self.state.add_dropped(1) {
                    error!(error = %e, "could not record the dropped snapshot");
                }
            }
        }
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
        .map_err(|cause| match cause {
            DeliverError::TooLarge { .. } => RunError::Refused(cause),
            cause => RunError::NotAcknowledged {
                seq,
                spool: spool_dir,
                cause,
            },
        })?;
    agent.after_delivery();
    info!(seq, "snapshot acknowledged");
    Ok(seq)
}

/// How long after start the first collection runs. The collectors are
/// primed at start, so the first report's CPU% covers this second instead
/// of reading 0.0 for every process; with delta reporting that first body
/// can be what `host show` displays for up to --full-refresh on a quiet
/// host. `--once` does not wait (and reports no CPU%).
pub const PRIME_INTERVAL: Duration = Duration::from_secs(1);

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
        let m = AgentMetrics::new(
            agent.spool.clone(),
            agent.state.dropped_counter(),
            &agent.upstream,
        );
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
    // A sweep that changed key files asks for a snapshot at once.
    let (collect_now, mut collect_requests) = tokio::sync::mpsc::channel::<()>(1);
    let commands = tokio::spawn(crate::commands::hold_stream(
        agent.upstream.clone(),
        agent.client_files(),
        crate::commands::Executor::new(HostFs::new(&agent.cfg.root), collect_now),
    ));
    let max_backoff = interval.clamp(Duration::from_secs(1), Duration::from_secs(300));
    let mut backoff = Backoff::new(Duration::from_secs(1), max_backoff, agent.upstream.len());
    // Set while the collector refuses this host (revoked): no delivery is
    // tried before then, whatever collections happen meanwhile.
    let mut refused_until: Option<Instant> = None;
    agent.prime().await;
    let mut next_collect = Instant::now() + PRIME_INTERVAL;
    let mut next_drain: Option<Instant> = None;
    tokio::pin!(shutdown);
    info!(collector = %agent.upstream.current().url, collectors = agent.upstream.len(), interval_s = interval.as_secs_f64(), "agent started");
    loop {
        let wake = next_drain.map_or(next_collect, |d| d.min(next_collect));
        tokio::select! {
            _ = &mut shutdown => {
                info!("agent stopping");
                commands.abort();
                return Ok(());
            }
            _ = tokio::time::sleep_until(wake) => {}
            Some(()) = collect_requests.recv() => next_collect = Instant::now(),
        }
        if Instant::now() >= next_collect {
            agent.renew_if_due().await;
            agent.collect_or_count().await;
            next_collect = Instant::now() + jittered(interval);
        }
        if refused_until.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        // Delivery must not stall collection: over a dead connection (a
        // partition drops packets silently) a report can hang until its
        // timeout, and snapshots must keep being taken meanwhile. Cutting
        // the drain short is safe: an entry leaves the spool only after its
        // ack, and a resend of an acknowledged one is acked as duplicate.
        let budget = next_collect
            .saturating_duration_since(Instant::now())
            .max(MIN_DRAIN_BUDGET);
        let drained = match tokio::time::timeout(
            budget,
            agent.reporter.drain(&agent.spool, &mut agent.state),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                let e = DeliverError::TimedOut(budget);
                agent.reporter.abandon(MoveReason::TimedOut, &e.to_string());
                Err(e)
            }
        };
        match drained {
            Ok(_) => {
                agent.after_delivery();
                if let Some(m) = &agent.metrics {
                    m.delivered(true);
                }
                backoff.succeeded();
                next_drain = None;
                refused_until = None;
            }
            Err(e) => {
                if let Some(m) = &agent.metrics {
                    m.delivered(false);
                }
                let wait = jittered(after_failure(&e, &mut backoff));
                if matches!(e, DeliverError::Refused(_)) {
                    // Logged once per (hourly) attempt, not every interval.
                    error!(error = %e, retry_in_s = wait.as_secs_f64(), "the collector refuses this host (revoked?): re-enroll it to report again; snapshots stay spooled");
                    refused_until = Some(Instant::now() + wait);
                } else {
                    warn!(error = %e, retry_in_s = wait.as_secs_f64(), "delivery failed; snapshots stay spooled");
                    refused_until = None;
                }
                next_drain = Some(Instant::now() + wait);
            }
        }
    }
}

/// How long a refused (revoked) host waits between delivery attempts: its
/// certificate stays refused until it re-enrolls, so retrying every few
/// minutes would only fill its log forever.
pub const REFUSED_RETRY: Duration = Duration::from_secs(3600);

/// After a failed delivery: how long to wait before the next attempt. A
/// refusal leaves the backoff as it was: it says nothing about whether
/// collectors are reachable.
fn after_failure(e: &DeliverError, backoff: &mut Backoff) -> Duration {
    match e {
        DeliverError::Refused(_) => REFUSED_RETRY,
        _ => backoff.failed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_host_waits_an_hour_an_unreachable_one_backs_off() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(4), 1);
        let refused = DeliverError::Refused("revoked".into());
        let away = DeliverError::TimedOut(s(1));
        assert_eq!(after_failure(&away, &mut b), s(1));
        assert_eq!(after_failure(&refused, &mut b), REFUSED_RETRY);
        assert_eq!(
            after_failure(&away, &mut b),
            s(2),
            "a refusal does not advance the backoff"
        );
        assert_eq!(after_failure(&away, &mut b), s(4));
        assert_eq!(after_failure(&away, &mut b), s(4), "capped");
    }

    /// A config whose collector (port 1 on loopback) never answers.
    fn unreachable_collector(d: &std::path::Path) -> RunConfig {
        driftwatch_common::pki::init(&d.join("pki"), &["localhost".into()]).unwrap();
        RunConfig {
            collectors: vec!["https://127.0.0.1:1".into()],
            ca: d.join("pki/ca.pem"),
            identity: IdentitySource::Files {
                cert: d.join("pki/admin.pem"),
                key: d.join("pki/admin-key.pem"),
            },
            state_dir: d.join("state"),
            root: "/".into(),
            interval: DEFAULT_INTERVAL,
            labels: vec![],
            sections: vec!["host".into()],
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            full_refresh: DEFAULT_FULL_REFRESH,
            metrics_listen: None,
        }
    }

    #[tokio::test]
    async fn a_snapshot_that_cannot_be_spooled_is_counted_and_the_agent_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let cfg = unreachable_collector(d.path());
        let mut agent = Agent::open(cfg).await.unwrap();
        agent.collect_or_count().await;
        assert_eq!(agent.spool.entries().unwrap().len(), 1);
        // The spool directory becomes unusable (as a full disk would make
        // every write fail): the tick counts the loss instead of ending the loop.
        let spool = d.path().join("state/spool");
        std::fs::remove_dir_all(&spool).unwrap();
        std::fs::write(&spool, b"not a directory").unwrap();
        agent.collect_or_count().await;
        assert_eq!(agent.state.dropped_unreported(), 1);
        std::fs::remove_file(&spool).unwrap();
        std::fs::create_dir(&spool).unwrap();
        agent.collect_or_count().await;
        let e = agent.spool.entries().unwrap();
        assert_eq!(e.len(), 1);
        let snap = agent.spool.read(&e[0]).unwrap().unwrap();
        assert_eq!(
            (snap.seq, snap.spool_dropped),
            (3, 1),
            "the loss travels with the next snapshot"
        );
    }

    #[tokio::test]
    async fn once_without_a_collector_keeps_the_snapshot_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let cfg = unreachable_collector(d.path());
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
