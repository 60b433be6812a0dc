//! The collector's config file (`driftwatch-collector serve --config F`).
//! Every key is optional; flags win over the file; the result is validated
//! into [`ServeConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use driftwatch_common::client::MAX_MESSAGE_BYTES_LIMIT;
use driftwatch_common::time::parse_duration;
use serde::Deserialize;

use crate::tls_incoming::Limits;

/// Largest gRPC message accepted: a full snapshot of a busy host is a few
/// hundred KiB; anything near this is garbage or an attack.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Plain-HTTP `/metrics` listener; none unless configured.
    pub metrics_listen: Option<SocketAddr>,
    /// The sled data dir (unused when `store` names PostgreSQL).
    pub data_dir: PathBuf,
    /// PostgreSQL instead of sled: `--store postgres://…`.
    pub store: Option<PgStoreConfig>,
    pub pki_dir: PathBuf,
    pub limits: Limits,
    pub max_message_bytes: usize,
    /// How long graceful shutdown waits for open RPCs.
    pub shutdown_grace: Duration,
    /// Policy file (TOML), re-read when it changes.
    pub policy: Option<PathBuf>,
    pub drift: crate::drift::Settings,
    /// How often findings are evaluated without anyone asking.
    pub drift_interval: Duration,
    /// History older than this is pruned (each host keeps its newest).
    pub retention: Duration,
    /// Lifetime of certificates issued at enrollment and renewal.
    pub enrolled_validity: Duration,
    /// Hosts that must agree on an image's bake-time baseline (0: an
    /// operator approves every one).
    pub baseline_quorum: usize,
    /// Webhook receivers of finding transitions.
    pub notify: Vec<crate::notify::Receiver>,
}

/// Where a PostgreSQL store is and how to log in (never a password here:
/// the URL refuses one; it comes from the file or the PG environment).
#[derive(Debug, Clone)]
pub struct PgStoreConfig {
    pub url: String,
    pub password_file: Option<PathBuf>,
}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";

/// Example:
/// ```toml
/// listen = "0.0.0.0:7443"
/// data_dir = "/var/lib/driftwatch/collector"
/// # or PostgreSQL instead of the data dir (the password from a file or PGPASSWORD/~/.pgpass):
/// # store = "postgres://driftwatch@db.example:5432/driftwatch?sslmode=verify-full&sslrootcert=/etc/driftwatch/db-ca.pem"
/// # store_password_file = "/etc/driftwatch/db-password"
/// pki_dir = "/etc/driftwatch/pki"
/// metrics_listen = "127.0.0.1:9464"   # plain HTTP GET /metrics; off when absent
/// stale_after = "5m"    # stale without a report this long [default: 3 report intervals]
/// gone_after = "24h"    # gone (and out of peer statistics) [default: 24h]
/// baseline_quorum = 3   # hosts that must agree on an image's bake-time baseline
/// [limits]
/// handshake_timeout = "10s"
/// max_handshakes = 256
/// max_connections = 50000             # capped to the open-file limit minus 256 for storage
/// max_handshakes_per_source = 16      # a source is an IPv4 address or an IPv6 /64
/// max_connections_per_source = 1024
/// first_stream_timeout = "10s"        # no stream yet (e.g. no HTTP/2 preface) this long after the handshake: closed
/// idle_timeout = "120s"               # no open stream this long after the last: closed
/// max_message_bytes = 16777216
/// [[notify]]                          # repeatable; see deploy/config/collector.toml
/// name = "ops"
/// url_file = "/etc/driftwatch/ops-webhook.url"   # or url = "https://…"
/// format = "slack"                    # or "json" [default]
/// min_severity = "high"
/// kinds = ["policy", "stale"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `postgres://USER@HOST:PORT/DB?sslmode=…`: store in PostgreSQL.
    pub store: Option<String>,
    pub store_password_file: Option<PathBuf>,
    pub pki_dir: Option<PathBuf>,
    pub metrics_listen: Option<String>,
    pub stale_after: Option<String>,
    pub gone_after: Option<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
    pub shutdown_grace: Option<String>,
    /// Policy file (TOML): see deploy/examples/policy.toml.
    pub policy: Option<PathBuf>,
    /// History older than this is pruned, e.g. "90d".
    pub retention: Option<String>,
    /// Lifetime of certificates issued at enrollment and renewal [default:
    /// 30d]; agents renew when a third is left.
    pub enrolled_cert_validity: Option<String>,
    /// Distinct hosts that must upload the same bake-time baseline before
    /// it becomes their image's [default: 3]; 0: only `driftwatch baseline
    /// approve` decides.
    pub baseline_quorum: Option<usize>,
    #[serde(default)]
    pub drift: DriftConfig,
    /// Webhook receivers of finding transitions (`[[notify]]` blocks).
    #[serde(default)]
    pub notify: Vec<crate::notify::NotifyConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Label that groups peers [default: group].
    pub group_label: Option<String>,
    /// Outlier: held by fewer than this percent of the group [default: a minority].
    pub outlier_below_percent: Option<f64>,
    /// Missing: held by at least this percent of the group [default: a majority].
    pub missing_at_least_percent: Option<f64>,
    /// Smallest group compared [default: 3].
    pub min_group: Option<usize>,
    /// Stale after this many report intervals, unless `stale_after` is set [default: 3].
    pub stale_intervals: Option<u64>,
    /// How often findings are evaluated [default: 30s].
    pub interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub handshake_timeout: Option<String>,
    pub max_handshakes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_handshakes_per_source: Option<usize>,
    pub max_connections_per_source: Option<usize>,
    pub first_stream_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_message_bytes: Option<usize>,
}

/// What the command line said; `None` means "not given".
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub store_password_file: Option<PathBuf>,
    pub pki_dir: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub metrics_listen: Option<String>,
}

fn socket_addr(what: &str, s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{what} address {s:?} is not HOST:PORT (e.g. 0.0.0.0:7443)"))
}

fn duration_or(s: Option<&str>, default: Duration) -> Result<Duration, String> {
    Ok(s.map(parse_duration).transpose()?.unwrap_or(default))
}

pub fn build(file: FileConfig, flags: Overrides) -> Result<ServeConfig, String> {
    let listen_s = flags
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = socket_addr("listen", &listen_s)?;
    let metrics_listen = flags
        .metrics_listen
        .or(file.metrics_listen)
        .map(|s| socket_addr("metrics_listen", &s))
        .transpose()?;
    let stale_after_ms = file
        .stale_after
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .map(|d| d.as_millis() as i64);
    let gone_after_ms =
        duration_or(file.gone_after.as_deref(), Duration::from_secs(24 * 3600))?.as_millis() as i64;
    if stale_after_ms.is_some_and(|s| s >= gone_after_ms) {
        return Err("gone_after must be longer than stale_after".into());
    }
    let store = match flags.store.or(file.store) {
        Some(url) => {
            // Refused here, before anything starts: a password in the URL,
            // a malformed one.
            crate::store::pg::url::parse(&url).map_err(|e| e.to_string())?;
            Some(PgStoreConfig {
                url,
                password_file: flags.store_password_file.or(file.store_password_file),
            })
        }
        None if flags.store_password_file.is_some() || file.store_password_file.is_some() => {
            return Err("store_password_file is set but no store URL: pass --store postgres://… or drop the password file".into());
        }
        None => None,
    };
    let data_dir = match (flags.data_dir.or(file.data_dir), &store) {
        (Some(d), _) => d,
        (None, Some(_)) => PathBuf::new(),
        (None, None) => {
            return Err("no data directory: pass --data-dir DIR (or --store postgres://…) or set data_dir in the config".into());
        }
    };
    let pki_dir = flags
        .pki_dir
        .or(file.pki_dir)
        .ok_or("no PKI directory: pass --pki-dir DIR or set pki_dir in the config")?;
    let dd = crate::drift::Settings::default();
    let dc = &file.drift;
    let pct = |p: Option<f64>, what: &str| -> Result<Option<f64>, String> {
        match p {
            Some(v) if !(0.0..=100.0).contains(&v) => {
                Err(format!("drift.{what} must be between 0 and 100"))
            }
            other => Ok(other.map(|v| v / 100.0)),
        }
    };
    let drift = crate::drift::Settings {
        group_label: dc.group_label.clone().unwrap_or(dd.group_label),
        outlier_below: pct(dc.outlier_below_percent, "outlier_below_percent")?,
        missing_at_least: pct(dc.missing_at_least_percent, "missing_at_least_percent")?,
        min_group: dc.min_group.unwrap_or(dd.min_group).max(2),
        stale_intervals: dc.stale_intervals.unwrap_or(dd.stale_intervals).max(1),
        stale_after_ms,
        gone_after_ms,
    };
    let drift_interval = dc
        .interval
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .unwrap_or(Duration::from_secs(30));
    let retention = file
        .retention
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .unwrap_or(Duration::from_secs(90 * 86_400));
    let d = Limits::default();
    let l = file.limits;
    let limits = Limits {
        handshake_timeout: l
            .handshake_timeout
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .unwrap_or(d.handshake_timeout),
        max_handshakes: l.max_handshakes.unwrap_or(d.max_handshakes).max(1),
        max_connections: l.max_connections.unwrap_or(d.max_connections).max(1),
        max_handshakes_per_source: l
            .max_handshakes_per_source
            .unwrap_or(d.max_handshakes_per_source)
            .max(1),
        max_connections_per_source: l
            .max_connections_per_source
            .unwrap_or(d.max_connections_per_source)
            .max(1),
        first_stream_timeout: duration_or(
            l.first_stream_timeout.as_deref(),
            d.first_stream_timeout,
        )?
        .max(Duration::from_secs(1)),
        idle_timeout: duration_or(l.idle_timeout.as_deref(), d.idle_timeout)?
            .max(Duration::from_secs(1)),
    };
    let max_message_bytes = l.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if max_message_bytes > MAX_MESSAGE_BYTES_LIMIT {
        return Err(format!(
            "limits.max_message_bytes = {max_message_bytes} is over {MAX_MESSAGE_BYTES_LIMIT}: \
             the CLI could not decode a host show of such a report"
        ));
    }
    Ok(ServeConfig {
        listen,
        metrics_listen,
        data_dir,
        store,
        pki_dir,
        limits,
        max_message_bytes,
        shutdown_grace: file
            .shutdown_grace
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .unwrap_or(Duration::from_secs(10)),
        policy: flags.policy.or(file.policy),
        enrolled_validity: duration_or(
            file.enrolled_cert_validity.as_deref(),
            crate::service::DEFAULT_ENROLLED_VALIDITY,
        )?,
        baseline_quorum: file
            .baseline_quorum
            .unwrap_or(crate::service::DEFAULT_BASELINE_QUORUM),
        drift,
        drift_interval,
        retention,
        notify: crate::notify::receiver::build(file.notify)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_url_replaces_the_data_dir_and_never_carries_a_password() {
        let file = |t: &str| -> FileConfig { toml::from_str(t).unwrap() };
        let c = build(
            file("pki_dir = \"/p\"\nstore = \"postgres://dw@db/fleet?sslmode=require\"\nstore_password_file = \"/etc/pw\"\n"),
            Overrides::default(),
        )
        .unwrap();
        let s = c.store.unwrap();
        assert_eq!(s.url, "postgres://dw@db/fleet?sslmode=require");
        assert_eq!(
            s.password_file.as_deref(),
            Some(std::path::Path::new("/etc/pw"))
        );
        let flags = Overrides {
            store: Some("postgres://dw:hunter2@db/fleet".into()),
            pki_dir: Some("/p".into()),
            ..Default::default()
        };
        let e = build(FileConfig::default(), flags).unwrap_err();
        assert!(
            e.contains("--store-password-file") && !e.contains("hunter2"),
            "{e}"
        );
        let e = build(
            file("pki_dir = \"/p\"\nstore_password_file = \"/etc/pw\"\n"),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("no store URL"), "{e}");
        let e = build(file("pki_dir = \"/p\"\n"), Overrides::default()).unwrap_err();
        assert!(e.contains("--store postgres://"), "{e}");
        let sled = build(
            file("pki_dir = \"/p\"\ndata_dir = \"/d\"\n"),
            Overrides::default(),
        )
        .unwrap();
        assert!(sled.store.is_none(), "without a URL: sled, as before");
    }

    #[test]
    fn flags_win_and_errors_say_what_to_do() {
        let file: FileConfig = driftwatch_common::config::parse_toml(
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/d\"\npki_dir = \"/p\"\n[limits]\nhandshake_timeout = \"3s\"\n",
        )
        .unwrap();
        let c = build(
            file,
            Overrides {
                listen: Some("127.0.0.1:2".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(3));
        let e = build(FileConfig::default(), Overrides::default()).unwrap_err();
        assert!(e.contains("--data-dir"), "{e}");
        assert!(driftwatch_common::config::parse_toml::<FileConfig>("lissen = 1").is_err());
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.drift.stale_after_ms, None, "by default: report intervals");
    }

    #[test]
    fn metrics_and_freshness_settings() {
        let file: FileConfig = driftwatch_common::config::parse_toml(
            "data_dir = \"/d\"\npki_dir = \"/p\"\nmetrics_listen = \"127.0.0.1:9464\"\nstale_after = \"90s\"\n",
        )
        .unwrap();
        let c = build(file, Overrides::default()).unwrap();
        assert_eq!(c.metrics_listen.map(|a| a.port()), Some(9464));
        assert_eq!(c.drift.stale_after_ms, Some(90_000));
        assert_eq!(c.drift.gone_after_ms, 24 * 3_600_000);
        let bad: FileConfig = driftwatch_common::config::parse_toml(
            "data_dir = \"/d\"\npki_dir = \"/p\"\nstale_after = \"2d\"\n",
        )
        .unwrap();
        let e = build(bad, Overrides::default()).unwrap_err();
        assert!(e.contains("gone_after"), "{e}");
    }
}
