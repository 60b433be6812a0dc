//! `[[notify]]` blocks of collector.toml, validated into [`Receiver`]s.
//! A webhook URL often carries a token (Slack's does, in its path), so it
//! can come from a file, and no URL is ever logged or printed beyond its
//! scheme, host and port ([`Target`]'s `Debug` and `Display`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use driftwatch_common::time::parse_duration;
use serde::Deserialize;

use crate::drift::{SEVERITIES, severity_rank};

/// Finding kinds a block may select (`kinds`).
pub const KINDS: &[&str] = &[
    "peer_outlier",
    "peer_missing",
    "baseline_added",
    "baseline_removed",
    "baseline_changed",
    "baseline_unconfirmed",
    "policy",
    "stale",
    "gone",
];

/// Queued events per receiver unless `max_queued` says otherwise.
pub const DEFAULT_MAX_QUEUED: usize = 10_000;
/// Per delivery attempt unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// One `[[notify]]` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub name: String,
    /// The webhook URL; or `url_file`, a file holding it (for URLs with
    /// tokens: the config file stays shareable).
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    /// "json" (the driftwatch event, the default) or "slack" (Slack's
    /// incoming-webhook body, which Mattermost and others accept too).
    pub format: Option<String>,
    /// Findings below this severity are not sent [default: info, all].
    pub min_severity: Option<String>,
    /// Only these finding kinds [default: all].
    pub kinds: Option<Vec<String>>,
    /// Per delivery attempt, connect to response [default: 10s].
    pub timeout: Option<String>,
    /// PEM CA certificate(s) an https receiver's certificate must chain to,
    /// instead of the built-in public roots (an internal receiver).
    pub ca_file: Option<PathBuf>,
    /// Events kept queued for this receiver while it is down; beyond it
    /// the oldest are dropped, counted and logged [default: 10000].
    pub max_queued: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Slack,
}

/// Where events are POSTed. `Debug`/`Display` show the origin only.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query: possibly secret.
    pub path: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}/…", self.host, self.port)
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Target {
    /// Parses an http(s) URL. The error never repeats the URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: http::Uri = url.parse().map_err(|e| {
            format!("is not a URL ({e}); it must be http://HOST[:PORT]/PATH or https://…")
        })?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must start with http:// or https://".into()),
        };
        let auth = uri.authority().ok_or("names no host")?;
        if auth.as_str().contains('@') {
            return Err("carries user:password@: put a token in the path or query instead".into());
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("names no host".into());
        }
        Ok(Target {
            https,
            host: host.to_string(),
            port: auth.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_string()),
        })
    }

    /// `Host:` header value.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A validated receiver.
#[derive(Clone)]
pub struct Receiver {
    pub name: String,
    pub target: Target,
    pub format: Format,
    /// Index into [`SEVERITIES`].
    pub min_severity: usize,
    /// None: every kind.
    pub kinds: Option<Vec<String>>,
    pub timeout: Duration,
    pub max_queued: usize,
    /// For https targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("format", &self.format)
            .field("min_severity", &SEVERITIES[self.min_severity])
            .field("kinds", &self.kinds)
            .field("timeout", &self.timeout)
            .field("max_queued", &self.max_queued)
            .finish()
    }
}

impl Receiver {
    /// Whether a finding of this kind and severity goes to this receiver.
    pub fn wants(&self, kind: &str, severity: &str) -> bool {
        severity_rank(severity).unwrap_or(0) >= self.min_severity
            && self
                .kinds
                .as_ref()
                .is_none_or(|k| k.iter().any(|x| x == kind))
    }
}

/// Reads a secret URL file, refusing one every local user can read.
fn read_url_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("url_file {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "url_file {} is readable by every user, and a webhook URL is a secret: chmod o-r it (e.g. 0640 root:driftwatch)",
            path.display()
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("url_file {}: {e}", path.display()))?;
    let url = text.trim();
    if url.is_empty() || url.lines().count() != 1 {
        return Err(format!(
            "url_file {} must hold exactly one URL on one line",
            path.display()
        ));
    }
    Ok(url.to_string())
}

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| format!("ca_file {}: {e}", p.display()))?;
            let certs = driftwatch_common::tls::certs_from_pem(&pem)
                .map_err(|_| format!("ca_file {} holds no PEM certificate", p.display()))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("ca_file {}: {e}", p.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Validates every block; names must be unique.
pub fn build(blocks: Vec<NotifyConfig>) -> Result<Vec<Receiver>, String> {
    let mut out: Vec<Receiver> = Vec::new();
    for b in blocks {
        let name = b.name.clone();
        let ctx = |e: String| format!("[[notify]] {name:?}: {e}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ctx(
                "name must be letters, digits, '-', '_' or '.' (it names the receiver in metrics and `driftwatch notify test --name`)".into(),
            ));
        }
        if out.iter().any(|r| r.name == name) {
            return Err(ctx("a second block has this name".into()));
        }
        let url = match (&b.url, &b.url_file) {
            (Some(u), None) => u.clone(),
            (None, Some(f)) => read_url_file(f).map_err(ctx)?,
            _ => return Err(ctx("set exactly one of url and url_file".into())),
        };
        let target = Target::parse(&url).map_err(|e| ctx(format!("the URL {e}")))?;
        let format = match b.format.as_deref() {
            None | Some("json") => Format::Json,
            Some("slack") => Format::Slack,
            Some(other) => {
                return Err(ctx(format!("format {other:?} is not json or slack")));
            }
        };
        let min_severity = match b.min_severity.as_deref() {
            None => 0,
            Some(s) => severity_rank(s).ok_or_else(|| {
                ctx(format!(
                    "min_severity {s:?} is not one of {}",
                    SEVERITIES.join(", ")
                ))
            })?,
        };
        if let Some(k) = b
            .kinds
            .iter()
            .flatten()
            .find(|k| !KINDS.contains(&k.as_str()))
        {
            return Err(ctx(format!(
                "kind {k:?} is not one of {}",
                KINDS.join(", ")
            )));
        }
        let timeout = b
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(ctx)?
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(ctx(format!(
                "timeout must be more than 0 and at most {}s",
                MAX_TIMEOUT.as_secs()
            )));
        }
        let max_queued = b.max_queued.unwrap_or(DEFAULT_MAX_QUEUED);
        if max_queued == 0 {
            return Err(ctx("max_queued must be at least 1".into()));
        }
        if b.ca_file.is_some() && !target.https {
            return Err(ctx("ca_file is set but the URL is not https".into()));
        }
        let tls = target
            .https
            .then(|| tls_config(b.ca_file.as_deref()))
            .transpose()
            .map_err(ctx)?;
        out.push(Receiver {
            name,
            target,
            format,
            min_severity,
            kinds: b.kinds,
            timeout,
            max_queued,
            tls,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(toml: &str) -> Result<Vec<Receiver>, String> {
        #[derive(Deserialize)]
        struct F {
            notify: Vec<NotifyConfig>,
        }
        let f: F = driftwatch_common::config::parse_toml(toml).map_err(|e| e.to_string())?;
        build(f.notify)
    }

    #[test]
    fn a_url_is_shown_without_its_path_and_bad_blocks_say_why() {
        let secret = "https://hooks.example.com/services/T0/B0/SECRETTOKEN?x=1";
        let r = block(&format!(
            "[[notify]]\nname = \"slack\"\nurl = \"{secret}\"\nformat = \"slack\"\nmin_severity = \"high\"\nkinds = [\"policy\"]\n"
        ))
        .unwrap();
        let shown = format!("{:?} {}", r[0], r[0].target);
        assert!(!shown.contains("SECRETTOKEN"), "{shown}");
        assert!(shown.contains("https://hooks.example.com:443/"), "{shown}");
        assert_eq!(r[0].target.path, "/services/T0/B0/SECRETTOKEN?x=1");
        assert!(r[0].wants("policy", "critical"));
        assert!(!r[0].wants("policy", "medium"));
        assert!(!r[0].wants("stale", "critical"));

        let e = block("[[notify]]\nname = \"a\"\nurl = \"ftp://x/SECRET\"\n").unwrap_err();
        assert!(e.contains("http://") && !e.contains("SECRET"), "{e}");
        let e = block("[[notify]]\nname = \"a\"\n").unwrap_err();
        assert!(e.contains("exactly one of url and url_file"), "{e}");
        let e = block("[[notify]]\nname = \"a\"\nurl = \"http://x/\"\nkinds = [\"polcy\"]\n")
            .unwrap_err();
        assert!(e.contains("\"polcy\"") && e.contains("policy"), "{e}");
        let e = block(
            "[[notify]]\nname = \"a\"\nurl = \"http://x/\"\n[[notify]]\nname = \"a\"\nurl = \"http://y/\"\n",
        )
        .unwrap_err();
        assert!(e.contains("second block"), "{e}");
    }

    #[test]
    fn a_url_file_readable_by_everyone_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("url");
        std::fs::write(&f, "http://127.0.0.1:9/hook?token=SECRET\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let toml = format!("[[notify]]\nname = \"a\"\nurl_file = \"{}\"\n", f.display());
        let e = block(&toml).unwrap_err();
        assert!(e.contains("chmod") && !e.contains("SECRET"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = block(&toml).unwrap();
        assert_eq!(
            (r[0].target.port, r[0].target.path.as_str()),
            (9, "/hook?token=SECRET")
        );
    }
}
