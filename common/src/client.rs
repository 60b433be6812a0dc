//! Opening a mutual-TLS gRPC channel to the collector: shared by the agent
//! and the admin CLI so both say the same thing when it fails.

use std::time::Duration;

use thiserror::Error;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{ClientFiles, TlsError, client_config};

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("invalid collector URL {0:?}: expected https://HOST:PORT")]
    BadUrl(String),
    #[error("collector URL {0:?} must start with https:// (driftwatch only speaks mutual TLS)")]
    NotHttps(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(
        "CA mismatch: the collector at {url} presented a certificate that the CA in {ca} did not issue ({reason}); pass the ca.pem of the PKI that collector's certificate came from (--ca or DRIFTWATCH_CA)"
    )]
    CaMismatch {
        url: String,
        ca: String,
        reason: String,
    },
    #[error(
        "cannot reach the collector at {url}: {reason} (is `driftwatch-collector serve` running there, and does its certificate name {host}?)"
    )]
    Unreachable {
        url: String,
        host: String,
        reason: String,
    },
}

/// The largest Admin response the CLI decodes. The collector refuses to
/// encode more ([`admin_response_limit`]), so a large host's `host show`
/// is answered whole instead of failing on tonic's 4 MiB default.
pub const ADMIN_RESPONSE_MAX_BYTES: usize = 1 << 30;

/// The largest message a collector accepts (`max_message_bytes`) for which
/// every Admin answer still fits [`ADMIN_RESPONSE_MAX_BYTES`].
pub const MAX_MESSAGE_BYTES_LIMIT: usize = ADMIN_RESPONSE_MAX_BYTES / 4;

/// What the collector may send in one Admin answer: a stored snapshot is a
/// report (at most `max_message_bytes`) plus what the collector stamps on
/// it, and a diff or history answer is derived from two snapshots; four
/// times the message limit covers both.
pub fn admin_response_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(4)
        .min(ADMIN_RESPONSE_MAX_BYTES)
}

pub async fn connect(url: &str, files: &ClientFiles) -> Result<Channel, ConnectError> {
    connect_from(url, files, None).await
}

/// [`connect`] from a chosen local address (tests use 127.0.0.x sources to
/// stand for distinct clients).
pub async fn connect_from(
    url: &str,
    files: &ClientFiles,
    local: Option<std::net::IpAddr>,
) -> Result<Channel, ConnectError> {
    let uri: Uri = url.parse().map_err(|_| ConnectError::BadUrl(url.into()))?;
    if uri.scheme_str() != Some("https") {
        return Err(ConnectError::NotHttps(url.into()));
    }
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::BadUrl(url.into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tls = client_config(files, &host)?;
    let unreachable = |reason: String| ConnectError::Unreachable {
        url: url.into(),
        host: host.clone(),
        reason,
    };
    let endpoint = Endpoint::from(uri.clone())
        .tls_config(tls)
        .map_err(|e| unreachable(error_chain(&e)))?
        .local_address(local)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    endpoint.connect().await.map_err(|e| {
        let reason = error_chain(&e);
        if is_ca_mismatch(&reason) {
            ConnectError::CaMismatch {
                url: url.into(),
                ca: files.ca.display().to_string(),
                reason,
            }
        } else {
            unreachable(reason)
        }
    })
}

/// rustls's words for a server certificate not signed by our CA: a
/// signature that does not verify against it, or an issuer it does not know.
fn is_ca_mismatch(reason: &str) -> bool {
    [
        "invalid peer certificate: BadSignature",
        "invalid peer certificate: UnknownIssuer",
    ]
    .iter()
    .any(|p| reason.contains(p))
}

/// Every cause in an error chain, joined, each said once: tonic's top-level
/// transport error alone ("transport error") tells an operator nothing, and
/// our own messages already embed their cause (so `error = %e` log lines are
/// whole), which `{:#}` would print a second time. The binaries print their
/// errors through this.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A status's message and its causes, without the Debug noise of
/// `Status`'s own Display.
fn status_chain(s: &tonic::Status) -> String {
    let mut parts = vec![s.message().to_string()];
    let mut cur = std::error::Error::source(s);
    while let Some(e) = cur {
        let m = e.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// A gRPC status as a sentence an operator can act on.
pub fn explain_status(what: &str, s: &tonic::Status) -> String {
    use tonic::Code;
    let msg = s.message();
    match s.code() {
        Code::Unauthenticated => format!("{what}: the collector refused this client: {msg}"),
        Code::PermissionDenied => format!("{what}: not allowed: {msg}"),
        Code::NotFound | Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition => {
            format!("{what}: {msg}")
        }
        Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled => {
            let chain = status_chain(s);
            // In TLS 1.3 a server that rejects the client certificate does
            // so after the client thinks the handshake is done, so the
            // client only sees its connection drop.
            let hint = if [
                "broken pipe",
                "connection reset",
                "connection error",
                "operation was canceled",
            ]
            .iter()
            .any(|p| chain.contains(p))
            {
                " (the collector closed the connection: check that this certificate was issued by the collector's CA and is not revoked)"
            } else {
                ""
            };
            format!("{what}: collector unavailable: {chain}{hint}")
        }
        _ => format!("{what}: {:?}: {}", s.code(), status_chain(s)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_foreign_ca_is_named_as_such() {
        assert!(super::is_ca_mismatch(
            "transport error: invalid peer certificate: BadSignature"
        ));
        assert!(super::is_ca_mismatch(
            "x: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!super::is_ca_mismatch("connection refused"));
    }
}
