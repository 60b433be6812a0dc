//! Connecting to PostgreSQL: a parsed store URL plus a password becomes a
//! [`PgTarget`], which opens single connections (the store's pool, and a
//! dedicated connection for LISTEN) with TLS as `sslmode` says. Every
//! failure is a [`ConnectError`] that says what failed and what to do.

use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use thiserror::Error;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::{self, Host, SslMode, StoreUrl};

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error(
        "store URL {url} is not valid: {reason} (expected postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA.pem)"
    )]
    Url { url: String, reason: String },
    #[error(
        "store URL {url} carries a password: a command line or config file is no place for it (others can read it); put it in a 0600 file given with --store-password-file, or in PGPASSWORD or ~/.pgpass"
    )]
    PasswordInUrl { url: String },
    #[error("cannot read the store password file {path}: {source}")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "store password file {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}`"
    )]
    PasswordFileMode { path: String, mode: u32 },
    #[error("sslrootcert {path} cannot be used: {reason}")]
    RootCert { path: String, reason: String },
    #[error(
        "sslmode={mode} checks the server's certificate against a CA: add sslrootcert=FILE (the CA certificate that issued it) or sslrootcert=system to the store URL"
    )]
    NoRootCert { mode: &'static str },
    #[error("TLS configuration for the store: {0}")]
    Tls(String),
    #[error("cannot connect to PostgreSQL at {target}: {source:#}; {hint}")]
    Connect {
        target: String,
        hint: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot make a connection pool for {target}: {reason}")]
    Pool { target: String, reason: String },
}

impl ConnectError {
    /// The database could not be reached (down, refused, timed out), as
    /// opposed to a configuration the operator must fix.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ConnectError::Connect { source, .. } if source.as_db_error().is_none()
            && !source.to_string().contains("TLS"))
    }
}

/// The stream type of a connection made by [`PgTarget::connect`].
pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// What to connect to and how; cheap to clone.
#[derive(Clone)]
pub struct PgTarget {
    pub url: StoreUrl,
    config: Config,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the config: it holds the password.
        write!(f, "PgTarget({})", self.url)
    }
}

/// Parses `url`, finds the password (password.rs: `password_file`, then
/// the PG environment read through `env`) and builds the TLS config.
pub fn target(
    url_text: &str,
    password_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PgTarget, ConnectError> {
    let url = url::parse(url_text)?;
    let password = super::password::resolve(&url, password_file, env)?;
    PgTarget::new(url, password)
}

impl PgTarget {
    pub fn new(url: StoreUrl, password: Option<String>) -> Result<Self, ConnectError> {
        let mut config = Config::new();
        config
            .user(&url.user)
            .dbname(&url.dbname)
            .port(url.port)
            .application_name(
                url.application_name
                    .as_deref()
                    .unwrap_or("driftwatch-collector"),
            )
            .connect_timeout(Duration::from_secs(url.connect_timeout_s.unwrap_or(10)))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(60))
            .ssl_mode(match url.sslmode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
            });
        match &url.host {
            Host::Tcp(h) => config.host(h),
            Host::Unix(p) => config.host_path(p),
        };
        if let Some(p) = &password {
            config.password(p);
        }
        let tls = MakeRustlsConnect::new(super::tls::client_config(
            url.sslmode,
            url.sslrootcert.as_ref(),
        )?);
        Ok(PgTarget { url, config, tls })
    }

    /// One connection; the caller drives `Connection` (spawn it) to get
    /// notifications and keep the client working.
    pub async fn connect(&self) -> Result<(Client, Connection<Socket, TlsStream>), ConnectError> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.explain(e))
    }

    /// A pool of up to `max_size` connections. Nothing connects yet: the
    /// first `get` does (the store checks at open).
    pub fn pool(&self, max_size: usize) -> Result<Pool, ConnectError> {
        let manager = Manager::from_config(
            self.config.clone(),
            self.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(
                self.url.connect_timeout_s.unwrap_or(10),
            )))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| ConnectError::Pool {
                target: self.url.to_string(),
                reason: e.to_string(),
            })
    }

    /// Names the failure's likely cause and the fix.
    pub fn explain(&self, e: tokio_postgres::Error) -> ConnectError {
        let code = e.code().map(|c| c.code().to_string());
        let text = format!("{e:#}");
        let hint = match code.as_deref() {
            Some("28P01") | Some("28000") => format!(
                "the server refused role {}: check its password (--store-password-file, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf",
                self.url.user
            ),
            Some("3D000") => format!(
                "database {} does not exist: create it (createdb -O {} {})",
                self.url.dbname, self.url.user, self.url.dbname
            ),
            _ if text.contains("TLS") || text.contains("certificate") => format!(
                "the TLS handshake failed under sslmode={}: check that the server has ssl=on, that sslrootcert is the CA that issued its certificate, and (verify-full) that the certificate names the host in the URL",
                self.url.sslmode.as_str()
            ),
            _ if text.contains("password missing") => "the server asks for a password and none was given: use --store-password-file, PGPASSWORD or ~/.pgpass".to_string(),
            _ => "check that PostgreSQL runs and accepts connections there (host, port, socket directory)".to_string(),
        };
        ConnectError::Connect {
            target: self.url.to_string(),
            hint,
            source: e,
        }
    }
}

impl PgTarget {
    /// The same target with server settings for its sessions
    /// (`-c name=value ...`).
    pub fn with_options(&self, options: &str) -> PgTarget {
        let mut t = self.clone();
        t.config.options(options);
        t
    }
}
