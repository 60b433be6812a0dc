//! One webhook POST: a fresh connection (TLS with rustls for https), HTTP/1.1
//! on hyper, the whole attempt under the receiver's timeout. Webhooks are
//! rare enough that pooling connections would buy nothing. No redirects are
//! followed (a redirect would move a secret URL's events elsewhere).
//! Errors never name the URL's path or query.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::receiver::Receiver;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// Worth retrying: the receiver was away, slow, overloaded, or
    /// misconfigured in a way an operator can fix (401, 404, …).
    Failed {
        status: u16,
        error: String,
    },
    /// Refused for good: the body is what it refuses (400, 413, 415,
    /// 422), and resending it cannot help.
    Rejected {
        status: u16,
        error: String,
    },
}

/// Bytes of a refusal's body kept for the log line.
const BODY_SNIPPET: usize = 256;

pub async fn post(r: &Receiver, key: &str, body: Vec<u8>) -> Attempt {
    match tokio::time::timeout(r.timeout, attempt(r, key, body)).await {
        Err(_) => Attempt::Failed {
            status: 0,
            error: format!(
                "no answer from {} within {}",
                r.target,
                humantime::format_duration(r.timeout)
            ),
        },
        Ok(Err(e)) => Attempt::Failed {
            status: 0,
            error: format!("{}: {e}", r.target),
        },
        Ok(Ok((status, snippet))) => match status {
            200..=299 => Attempt::Delivered { status },
            400 | 413 | 415 | 422 => Attempt::Rejected {
                status,
                error: format!("{} refused the event: HTTP {status} {snippet}", r.target),
            },
            _ => Attempt::Failed {
                status,
                error: format!("{} answered HTTP {status} {snippet}", r.target),
            },
        },
    }
}

async fn attempt(r: &Receiver, key: &str, body: Vec<u8>) -> Result<(u16, String), String> {
    let t = &r.target;
    let addrs = tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("resolving {}: {e}", t.host))?;
    let mut last = format!("{} resolves to no address", t.host);
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    let _ = stream.set_nodelay(true);
    match &r.tls {
        Some(tls) => {
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| format!("{} is not a TLS server name: {e}", t.host))?;
            let tls = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(TokioIo::new(tls), r, key, body).await
        }
        None => send(TokioIo::new(stream), r, key, body).await,
    }
}

/// Aborts the connection task when the attempt ends or is cut off.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<I>(io: I, r: &Receiver, key: &str, body: Vec<u8>) -> Result<(u16, String), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = http::Request::post(r.target.path.as_str())
        .header(http::header::HOST, r.target.authority())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("driftwatch-collector/", env!("CARGO_PKG_VERSION")),
        )
        .header("idempotency-key", key)
        .header(http::header::CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok((status, String::new()));
    }
    // The start of a refusal's body says why (Slack: "invalid_payload").
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while got.len() < BODY_SNIPPET {
        match tokio::time::timeout(Duration::from_secs(1), body.frame()).await {
            Ok(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    got.extend_from_slice(d);
                }
            }
            _ => break,
        }
    }
    got.truncate(BODY_SNIPPET);
    // Written by the receiver: quoted and escaped before it reaches a log.
    Ok((status, format!("{:?}", String::from_utf8_lossy(&got))))
}
