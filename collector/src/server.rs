//! Building and running the collector: the library entry point the binary
//! and the tests share.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftwatch_common::metrics;
use driftwatch_common::pki;
use driftwatch_common::proto::agent_server::AgentServer;
use driftwatch_common::tls;
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use crate::config::{DEFAULT_MAX_MESSAGE_BYTES, ServeConfig};
use crate::service::State;
use crate::service::agent::AgentService;
use crate::store::{Recovering, Store, StoreError};
use crate::tls_incoming;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "TLS setup from {dir}: {source} (it needs ca.pem, server.pem and server-key.pem: `driftwatch-collector pki init --dir {dir} --server-name NAME` makes them)"
    )]
    Tls { dir: PathBuf, source: tls::TlsError },
    #[error("CA from {dir} (the collector signs enrollment CSRs with it): {source}")]
    Ca { dir: PathBuf, source: pki::PkiError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A collector bound to its port and ready to run.
pub struct Collector {
    config: ServeConfig,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
    state: State,
    /// What the store held before the indexes were loaded: the fleet
    /// catch-up starts from it.
    fleet_seen: crate::fleet_bus::CatchUp,
}

impl Collector {
    /// Loads certificates, opens storage and binds the port (port 0 picks a
    /// free one: see [`Collector::local_addr`]).
    pub async fn bind(config: ServeConfig) -> Result<Self, ServeError> {
        let dir = &config.pki_dir;
        let tls_err = |source| ServeError::Tls {
            dir: dir.clone(),
            source,
        };
        let ca = tls::read_cert_file(&dir.join(pki::CA_CERT)).map_err(tls_err)?;
        let cert = tls::read_cert_file(&dir.join(pki::SERVER_CERT)).map_err(tls_err)?;
        let key = tls::read_key_file(&dir.join(pki::SERVER_KEY)).map_err(tls_err)?;
        let tls = Arc::new(tls::server_config(&ca, &cert, &key).map_err(tls_err)?);
        let data_dir = config.data_dir.clone();
        // Collectors on one PostgreSQL tell each other through it; a
        // collector on sled is alone.
        let mut bus: Option<Arc<dyn crate::fleet_bus::FleetBus>> = None;
        let store: Arc<dyn Store> = match config.store.clone() {
            // Sled-only wrappers (disk full, seal) stay with sled.
            None => Arc::new(
                tokio::task::spawn_blocking(move || Recovering::open(&data_dir))
                    .await
                    .expect("open task")?,
            ),
            Some(pg) => {
                bus = Some(crate::fleet_bus::pg::PgBus::start(pg_target(&pg)?));
                Arc::new(
                    tokio::task::spawn_blocking(move || open_pg(&pg))
                        .await
                        .expect("open task")?,
                )
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let ca = pki::Ca::load(dir).map_err(|source| ServeError::Ca {
            dir: dir.clone(),
            source,
        })?;
        let evaluator =
            crate::evaluator::Evaluator::new(config.drift.clone(), config.policy.clone());
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let fleet_seen = crate::fleet_bus::CatchUp::baseline(store.as_ref())?;
        let mut state = State::new(store, ca, evaluator)?;
        if let Some(bus) = bus {
            state.bus = bus;
        }
        state.enrolled_validity = config.enrolled_validity;
        state.baseline_quorum = config.baseline_quorum;
        if !config.notify.is_empty() {
            let (receivers, metrics, s) = (
                config.notify.clone(),
                state.metrics.notify.clone(),
                state.store.clone(),
            );
            let n = tokio::task::spawn_blocking(move || {
                crate::notify::Notifier::open(receivers, metrics, s.as_ref())
            })
            .await
            .expect("outbox task")?;
            let n = Arc::new(n);
            state.evaluator.set_notifier(n.clone());
            state.notifier = Some(n);
        }
        state.metrics.attach(std::sync::Arc::new(state.clone()));
        Ok(Collector {
            state,
            config,
            listener,
            metrics_listener,
            tls,
            fleet_seen,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound socket")
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound socket"))
    }

    /// Serves until `shutdown` resolves, then drains for at most
    /// `shutdown_grace` and makes storage durable.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let addr = self.local_addr();
        let max = self.config.max_message_bytes;
        let incoming = tls_incoming::incoming(
            self.listener,
            self.tls,
            self.config.limits.clone(),
            self.state.metrics.connections_dropped.clone(),
        );
        let agent = AgentServer::new(AgentService {
            state: self.state.clone(),
        })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin = crate::service::admin::serve(self.state.clone(), max);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(l) = self.metrics_listener {
            let registry = self.state.metrics.registry.clone();
            tokio::spawn(metrics::http::serve(l, registry, async {
                let _ = metrics_stopped.await;
            }));
        }
        let grace = self.config.shutdown_grace;
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            // Per connection: 64 open streams, of which 32 in flight (the
            // rest wait), bounded headers, and a cap on streams a client
            // opens and resets at once (the HTTP/2 "rapid reset" flood).
            .max_concurrent_streams(Some(64))
            .concurrency_limit_per_connection(32)
            .http2_max_header_list_size(16 * 1024)
            .http2_max_pending_accept_reset_streams(Some(32))
            .timeout(Duration::from_secs(60))
            // Counts each connection's open streams, so one with none can
            // be closed after `idle_timeout` or evicted at the cap.
            .layer(crate::conn_limits::StreamCountLayer::default())
            .add_service(agent)
            .add_service(admin)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        info!(%addr, "collector listening");
        if let Some(n) = &self.state.notifier {
            n.start(self.state.store.clone());
            for r in n.receivers() {
                info!(receiver = %r.name, target = %r.target, "notifications go to this receiver");
            }
        }
        let background = tokio::spawn(background(
            self.state.clone(),
            self.config.drift_interval,
            self.config.retention,
        ));
        let fleet = tokio::spawn(crate::fleet_bus::apply::run(
            self.state.clone(),
            self.fleet_seen,
        ));
        let mut server = Box::pin(server);
        tokio::select! {
            r = &mut server => r?,
            _ = shutdown => {
                info!("shutting down: draining open requests");
                let _ = stop_tx.send(());
                match tokio::time::timeout(grace, &mut server).await {
                    Ok(r) => r?,
                    Err(_) => warn!(grace_s = grace.as_secs(), "open connections outlived the grace period; closing them"),
                }
            }
        }
        background.abort();
        fleet.abort();
        if let Some(n) = &self.state.notifier {
            n.stop();
        }
        drop(metrics_stop);
        let store = self.state.store.clone();
        // Bounded: a sync stuck on a failing disk must not keep the process
        // from ending. What it abandons was never acknowledged, so agents
        // still hold it in their spools.
        match tokio::time::timeout(
            FINAL_SYNC,
            tokio::task::spawn_blocking(move || store.sync_final()),
        )
        .await
        {
            Ok(Ok(Ok(()))) => {
                info!("shutdown complete; storage synced");
                Ok(())
            }
            Ok(Ok(Err(e))) => {
                warn!(error = %e, "shutdown abandoned the final sync: writes since the last acknowledged one are not on disk (nothing acknowledged is lost: agents resend what was not acknowledged)");
                Err(e.into())
            }
            Ok(Err(e)) => panic!("sync task: {e}"),
            Err(_) => {
                warn!(
                    waited_s = FINAL_SYNC.as_secs(),
                    "shutdown abandoned the final sync after waiting: writes since the last acknowledged one may not be on disk (agents resend what was not acknowledged)"
                );
                Err(ServeError::Store(StoreError::Io {
                    path: "final sync".into(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "did not finish"),
                }))
            }
        }
    }
}

/// Opens the PostgreSQL store, the password from the file or the PG
/// environment of this process.
fn open_pg(cfg: &crate::config::PgStoreConfig) -> Result<crate::store::pg::PgStore, StoreError> {
    crate::store::pg::PgStore::open(&pg_target(cfg)?)
}

fn pg_target(cfg: &crate::config::PgStoreConfig) -> Result<crate::store::pg::PgTarget, StoreError> {
    let env = |k: &str| std::env::var(k).ok();
    crate::store::pg::target(&cfg.url, cfg.password_file.as_deref(), &env).map_err(|e| {
        StoreError::Postgres {
            what: "connecting".into(),
            unreachable: e.is_unreachable(),
            message: e.to_string(),
            code: None,
        }
    })
}

/// How long shutdown waits for the final sync.
const FINAL_SYNC: Duration = Duration::from_secs(10);

/// With no new data, findings are re-evaluated this often (stale and gone
/// hosts are the only findings time alone creates).
const TIME_ONLY_REEVALUATION_MS: i64 = 120_000;

/// Findings are evaluated on a timer so stale hosts and policy breaches are
/// recorded even when nobody asks; retention prunes hourly.
async fn background(state: State, drift_every: Duration, retention: Duration) {
    let mut drift_tick = tokio::time::interval(drift_every.max(Duration::from_secs(1)));
    let mut prune_tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = drift_tick.tick() => {
                // One collector of a fleet evaluates on the timer; the
                // others answer `drift` from what it stored (evaluating
                // on demand under the same fleet-wide lock).
                if !state.bus.is_leader() {
                    continue;
                }
                let _guard = state.bus.evaluation_lock().await;
                let now = driftwatch_common::time::now_ms();
                // Each evaluation decodes every host's latest snapshot: run it
                // when data changed, and otherwise only as often as time alone
                // can change a finding (stale and gone hosts).
                if let Err(e) = state.evaluator.run(state.store.clone(), now, TIME_ONLY_REEVALUATION_MS).await {
                    warn!(error = %e, "drift evaluation failed");
                } else if let Err(e) = state.durable().await {
                    warn!(error = %e, "storing findings failed");
                }
            }
            _ = prune_tick.tick() => {
                let cutoff = driftwatch_common::time::now_ms() - retention.as_millis() as i64;
                let store = state.store.clone();
                match tokio::task::spawn_blocking(move || store.prune(cutoff)).await {
                    // Hourly; the line says retention ran at all.
                    Ok(Ok((records, sections))) => info!(records, sections, "retention pass done"),
                    Ok(Err(e)) => warn!(error = %e, "retention pruning failed"),
                    Err(e) => warn!(error = %e, "retention task failed"),
                }
            }
        }
    }
}
