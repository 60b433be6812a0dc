//! [`PgStore`]: the `Store` trait on PostgreSQL.
//!
//! The trait is synchronous (the services call it on tokio's blocking
//! pool, as sled does blocking IO). The store owns a small runtime of its
//! own: every method sends its work there and waits on a plain channel,
//! so it can be called from any thread, a blocking-pool thread or a
//! runtime's worker alike, without "a runtime within a runtime".
//!
//! Durability: pool connections run with `synchronous_commit = off`, so a
//! write's COMMIT returns once its WAL is written, not flushed.
//! [`Store::sync`] then commits one transaction with `synchronous_commit =
//! on`; PostgreSQL flushes the WAL up to that commit record, which lies
//! after every commit that returned before the sync began. So a sync
//! makes every earlier write durable with one WAL flush, however many
//! reports, connections or collectors wrote: the group commit of
//! store/durable.rs keeps its meaning, and nothing is acknowledged before
//! a flush covered it.

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool, PoolError};
use tokio_postgres::error::SqlState;

use super::connect::PgTarget;
use crate::store::StoreError;

/// Connections per collector: the services run at most 16 store calls at
/// once (service/mod.rs), plus group commit's syncs and the evaluator.
pub const POOL_SIZE: usize = 24;

/// How a failed statement is classified for the caller.
pub struct PgError;

impl PgError {
    pub fn schema(url: &str, found: i32, expected: i32) -> StoreError {
        StoreError::PgSchema {
            url: url.to_string(),
            found,
            expected,
        }
    }

    pub fn from_pg(what: &str, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            what: what.to_string(),
            message: format!("{e:#}"),
            code: e.code().map(|c| c.code().to_string()),
            unreachable: is_unreachable(e),
        }
    }
}

/// The server could not be reached or went away, as opposed to a
/// statement it refused.
fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(c) => {
            let c = c.code();
            c.starts_with("08")
                || c == SqlState::ADMIN_SHUTDOWN.code()
                || c == SqlState::CRASH_SHUTDOWN.code()
                || c == SqlState::CANNOT_CONNECT_NOW.code()
                || c == SqlState::TOO_MANY_CONNECTIONS.code()
        }
    }
}

/// Adds what was being done to a PostgreSQL error.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| PgError::from_pg(what, &e))
    }
}

impl<T> Ctx<T> for Result<T, PoolError> {
    fn ctx(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| match e {
            PoolError::Backend(e) => PgError::from_pg(what, &e),
            other => StoreError::Postgres {
                what: what.to_string(),
                message: format!("no database connection: {other}"),
                code: None,
                unreachable: true,
            },
        })
    }
}

/// Serialization failures, deadlocks and a unique key another writer took
/// first: the transaction is run again from its reads.
pub fn is_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres { code: Some(c), .. }
        if c == SqlState::T_R_SERIALIZATION_FAILURE.code()
            || c == SqlState::T_R_DEADLOCK_DETECTED.code()
            || c == SqlState::UNIQUE_VIOLATION.code())
}

/// What the futures share: the pool.
pub struct Inner {
    pub pool: Pool,
}

impl Inner {
    pub async fn conn(&self) -> Result<Object, StoreError> {
        self.pool.get().await.ctx("getting a database connection")
    }
}

pub struct PgStore {
    pub(super) inner: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
    url: String,
}

impl PgStore {
    /// Connects, checks the server answers, and creates or migrates the
    /// schema; refuses a schema newer than this collector's.
    pub fn open(target: &PgTarget) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pg-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io {
                path: "the store's runtime".into(),
                source: e,
            })?;
        let url = target.url.to_string();
        let pool_target =
            target.with_options("-c synchronous_commit=off -c statement_timeout=60000");
        let pool = {
            let _entered = rt.enter();
            pool_target
                .pool(POOL_SIZE)
                .map_err(|e| StoreError::Postgres {
                    what: "making the connection pool".into(),
                    message: e.to_string(),
                    code: None,
                    unreachable: false,
                })?
        };
        let store = PgStore {
            inner: Arc::new(Inner { pool }),
            rt: Some(rt),
            url: url.clone(),
        };
        let t = target.clone();
        let found = store.call(move |i| async move {
            // The first connection says plainly what is wrong (password,
            // TLS, no such database), which a pool error would not.
            let (mut client, conn) = t.connect().await.map_err(|e| StoreError::Postgres {
                what: "connecting".into(),
                unreachable: e.is_unreachable(),
                message: e.to_string(),
                code: None,
            })?;
            let conn = tokio::spawn(conn);
            let found = super::schema::migrate(&mut client, &t.url.to_string()).await;
            drop(client);
            let _ = conn.await;
            // And the pool works.
            drop(i.conn().await?);
            found
        })?;
        tracing::info!(store = %url, found_schema = found, schema = super::schema::SCHEMA_VERSION, "PostgreSQL store opened");
        Ok(store)
    }

    /// Runs `f` on the store's runtime and waits for it from any thread.
    pub(super) fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.inner.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt
            .as_ref()
            .expect("runtime lives as long as the store")
            .spawn(async move {
                let _ = tx.send(fut.await);
            });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Postgres {
                what: "waiting for the store's runtime".into(),
                message: "the task ended without an answer".into(),
                code: None,
                unreachable: true,
            })
        })
    }

    /// The URL it was opened with (no secret in it).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics on a runtime's thread.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
