//! The store URL: `postgres://USER@HOST:PORT/DB?sslmode=…`, parsed into
//! typed values (pure: no environment, no files). A password is refused
//! wherever it appears: a command line is readable by every user of the
//! machine (`ps`, /proc/PID/cmdline), and config files get copied around.
//!
//! Host forms: a name or address (`db.example`, `127.0.0.1`, `[::1]`), a
//! unix socket directory percent-encoded in the authority
//! (`%2Frun%2Fpostgresql`), or `?host=/run/postgresql` (which wins over the
//! authority, as in libpq).

use std::fmt;
use std::path::PathBuf;

use super::connect::ConnectError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, unverified; plain text otherwise.
    Prefer,
    /// TLS or nothing, the server's certificate not checked.
    Require,
    /// TLS, the certificate chained to `sslrootcert`; any name.
    VerifyCa,
    /// TLS, chained to `sslrootcert` and issued for the host's name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// The directory holding `.s.PGSQL.PORT`.
    Unix(PathBuf),
}

/// Where the CA certificates for `verify-ca`/`verify-full` come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    /// `sslrootcert=system`: the web PKI roots compiled in.
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    pub user: String,
    pub host: Host,
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<RootCert>,
    pub application_name: Option<String>,
    pub connect_timeout_s: Option<u64>,
}

impl fmt::Display for StoreUrl {
    /// The URL as it can be logged (it never holds a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => write!(f, "postgres://{}@[{h}]", self.user)?,
            Host::Tcp(h) => write!(f, "postgres://{}@{h}", self.user)?,
            Host::Unix(p) => write!(f, "postgres://{}@{}", self.user, p.display())?,
        }
        write!(
            f,
            ":{}/{}?sslmode={}",
            self.port,
            self.dbname,
            self.sslmode.as_str()
        )
    }
}

fn bad(url: &str, reason: impl Into<String>) -> ConnectError {
    ConnectError::Url {
        url: redact(url),
        reason: reason.into(),
    }
}

/// The URL with anything between `://` and `@` after a `:` replaced, so a
/// refused URL can be quoted without repeating its password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
    .split("password=")
    .enumerate()
    .map(|(i, part)| {
        if i == 0 {
            part.to_string()
        } else {
            format!("***{}", &part[part.find('&').unwrap_or(part.len())..])
        }
    })
    .collect::<Vec<_>>()
    .join("password=")
}

fn percent_decode(url: &str, s: &str) -> Result<String, ConnectError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(url, format!("bad percent-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(url, format!("{s:?} is not UTF-8 once decoded")))
}

/// Parses a store URL. A password anywhere in it is an error
/// ([`ConnectError::PasswordInUrl`]).
pub fn parse(url: &str) -> Result<StoreUrl, ConnectError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| bad(url, "it must start with postgres:// or postgresql://"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, p),
        None => (before_query, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut user = String::new();
    if let Some(u) = userinfo {
        if u.contains(':') {
            return Err(ConnectError::PasswordInUrl { url: redact(url) });
        }
        user = percent_decode(url, u)?;
    }
    if hostport.contains(',') {
        return Err(bad(url, "several hosts are not supported: give one"));
    }
    let (host_raw, port_raw) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| bad(url, "an IPv6 address opened with [ is not closed"))?;
        (h.to_string(), after.strip_prefix(':').map(str::to_string))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (percent_decode(url, h)?, Some(p.to_string())),
            None => (percent_decode(url, hostport)?, None),
        }
    };
    let mut host = host_raw;
    let mut port = port_raw;
    let mut dbname = percent_decode(url, path)?;
    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut application_name = None;
    let mut connect_timeout_s = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad(url, format!("parameter {pair:?} has no value")))?;
        let v = percent_decode(url, v)?;
        match k {
            "password" | "passfile" => {
                return Err(ConnectError::PasswordInUrl { url: redact(url) });
            }
            "host" => host = v,
            "port" => port = Some(v),
            "user" => user = v,
            "dbname" => dbname = v,
            "sslmode" => sslmode = Some(SslMode::parse(&v).ok_or_else(|| {
                bad(
                    url,
                    format!(
                        "sslmode={v} is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                )
            })?),
            "sslrootcert" => {
                sslrootcert = Some(if v == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(v))
                })
            }
            "application_name" => application_name = Some(v),
            "connect_timeout" => {
                connect_timeout_s = Some(v.parse().map_err(|_| {
                    bad(
                        url,
                        format!("connect_timeout={v} is not a number of seconds"),
                    )
                })?)
            }
            other => {
                return Err(bad(
                    url,
                    format!(
                        "parameter {other} is not understood (known: host, port, user, dbname, \
                         sslmode, sslrootcert, application_name, connect_timeout)"
                    ),
                ));
            }
        }
    }
    if user.is_empty() {
        return Err(bad(url, "it names no user: postgres://USER@HOST/DB"));
    }
    if host.is_empty() {
        return Err(bad(
            url,
            "it names no host: a name, an address, or a socket directory (host=/run/postgresql)",
        ));
    }
    if dbname.is_empty() {
        return Err(bad(url, "it names no database: postgres://USER@HOST/DB"));
    }
    let port = match port.as_deref() {
        None | Some("") => 5432,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(url, format!("port {p:?} is not a port number")))?,
    };
    let host = if host.starts_with('/') {
        Host::Unix(PathBuf::from(host))
    } else {
        Host::Tcp(host)
    };
    // libpq's default is prefer; over a unix socket there is no TLS at all.
    let sslmode = sslmode.unwrap_or(match host {
        Host::Unix(_) => SslMode::Disable,
        Host::Tcp(_) => SslMode::Prefer,
    });
    if matches!(host, Host::Unix(_)) && !matches!(sslmode, SslMode::Disable | SslMode::Prefer) {
        return Err(bad(
            url,
            format!(
                "sslmode={} over a unix socket: PostgreSQL has no TLS there; use sslmode=disable \
                 or a TCP host",
                sslmode.as_str()
            ),
        ));
    }
    Ok(StoreUrl {
        user,
        host,
        port,
        dbname,
        sslmode,
        sslrootcert,
        application_name,
        connect_timeout_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> StoreUrl {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn err(url: &str) -> String {
        parse(url).expect_err(url).to_string()
    }

    #[test]
    fn tcp_urls_with_every_parameter() {
        let u = ok(
            "postgres://dw@db.example:6432/fleet?sslmode=verify-full&sslrootcert=/etc/dw/ca.pem&application_name=c1&connect_timeout=5",
        );
        assert_eq!(u.user, "dw");
        assert_eq!(u.host, Host::Tcp("db.example".into()));
        assert_eq!((u.port, u.dbname.as_str()), (6432, "fleet"));
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.sslrootcert, Some(RootCert::File("/etc/dw/ca.pem".into())));
        assert_eq!(u.application_name.as_deref(), Some("c1"));
        assert_eq!(u.connect_timeout_s, Some(5));
        assert_eq!(
            u.to_string(),
            "postgres://dw@db.example:6432/fleet?sslmode=verify-full"
        );
        let u = ok("postgresql://dw@[::1]/fleet?sslrootcert=system&sslmode=verify-ca");
        assert_eq!((u.host, u.port), (Host::Tcp("::1".into()), 5432));
        assert_eq!(u.sslrootcert, Some(RootCert::System));
        assert_eq!(u.sslmode, SslMode::VerifyCa);
        assert_eq!(ok("postgres://dw@10.0.0.5/x").sslmode, SslMode::Prefer);
    }

    #[test]
    fn unix_socket_forms() {
        let a = ok("postgres://dw@%2Fvar%2Frun%2Fpostgresql:5433/fleet");
        assert_eq!(a.host, Host::Unix("/var/run/postgresql".into()));
        assert_eq!((a.port, a.sslmode), (5433, SslMode::Disable));
        let b = ok("postgres://dw@/fleet?host=/var/run/postgresql&port=5433");
        assert_eq!(a, b);
        let c = ok("postgres://dw@ignored/fleet?host=%2Ftmp%2Fa%20b");
        assert_eq!(c.host, Host::Unix("/tmp/a b".into()));
        assert!(err("postgres://dw@%2Ftmp/x?sslmode=verify-full").contains("unix socket"));
    }

    #[test]
    fn a_password_is_refused_and_never_repeated() {
        for url in [
            "postgres://dw:s3cret@db/fleet",
            "postgres://dw:@db/fleet",
            "postgres://dw@db/fleet?password=s3cret",
            "postgres://dw@db/fleet?sslmode=require&password=s3cret&x=1",
        ] {
            let e = err(url);
            assert!(e.contains("--store-password-file"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        for (url, says) in [
            ("mysql://dw@db/x", "must start with postgres://"),
            ("postgres://db/x", "names no user"),
            ("postgres://dw@db", "names no database"),
            ("postgres://dw@db:99999/x", "is not a port number"),
            ("postgres://dw@db:0/x", "is not a port number"),
            ("postgres://dw@db/x?sslmode=allow-ish", "is not one of"),
            ("postgres://dw@db/x?gssencmode=disable", "is not understood"),
            ("postgres://dw@db/x?connect_timeout=soon", "not a number"),
            ("postgres://dw@a,b/x", "several hosts"),
            ("postgres://dw@[::1/x", "not closed"),
            ("postgres://dw@db/x%zz", "percent-escape"),
            ("postgres://dw@/x", "names no host"),
        ] {
            let e = err(url);
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
