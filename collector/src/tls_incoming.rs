//! The collector's listener: TCP accept → TLS 1.3 handshake (bounded in time
//! and in how many run at once) → a stream tonic serves, each connection
//! carrying the caller's certificate as [`PeerInfo`].
//!
//! Who may hold how many slots, and when an idle connection is closed, is
//! `conn_limits`.
//!
//! We terminate TLS ourselves instead of using tonic's built-in TLS so that
//! the protocol version, handshake timeouts and connection caps are ours to
//! set, and so identity comes from exactly one place.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use driftwatch_common::identity::Identity;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::conn_limits::{Activity, Caps, DropLog, Slot, Slots};

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: SocketAddr,
    /// The identity in the verified leaf certificate, when the client
    /// presented one (an error when its name is not one of ours). Parsed
    /// once per connection, not per RPC: an agent sends thousands of
    /// reports over one connection.
    pub identity: Option<Arc<Result<Identity, String>>>,
    /// Its open streams and idle clock (counted by [`StreamCountLayer`]).
    ///
    /// [`StreamCountLayer`]: crate::conn_limits::StreamCountLayer
    pub activity: Arc<Activity>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; more are dropped at accept.
    pub max_handshakes: usize,
    /// Established connections at once; at the cap the longest-idle one is
    /// closed to make room, and without an idle one new ones are dropped.
    pub max_connections: usize,
    /// Handshakes at once from one source (an address, an IPv6 /64).
    pub max_handshakes_per_source: usize,
    /// Connections at once from one source.
    pub max_connections_per_source: usize,
    /// A connection that has opened no stream this long after its
    /// handshake (one that never sent the HTTP/2 preface has none) is closed.
    pub first_stream_timeout: Duration,
    /// A connection with no open stream this long after its last one is
    /// closed. A running agent holds its command stream open.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            max_connections: 50_000,
            max_handshakes_per_source: 16,
            max_connections_per_source: 1024,
            first_stream_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

pub struct TlsConn {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
    first_stream_timeout: Duration,
    idle_timeout: Duration,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    drops: DropLog,
    _slot: Slot,
}

impl TlsConn {
    /// Whether this connection is to end now: evicted, or idle too long.
    /// Registers the task to be woken when that may change.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let act = &self.info.activity;
        act.register(cx);
        if act.evicted() {
            return true;
        }
        let Some(deadline) = act.idle_deadline(self.first_stream_timeout, self.idle_timeout) else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.idle_timer.deadline() != deadline {
            self.idle_timer.as_mut().reset(deadline);
        }
        if self.idle_timer.as_mut().poll(cx).is_ready() {
            self.drops.record("idle_timeout", self.info.remote.ip());
            return true;
        }
        false
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // End of stream: hyper closes the connection as if the client had.
        if self.expired(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts connections until the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    limits: Limits,
    dropped: Family<crate::metrics::Reason, Counter>,
) -> ReceiverStream<Result<TlsConn, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let slots = Slots::new(
        Caps {
            handshakes: limits.max_handshakes,
            connections: limits.max_connections,
            handshakes_per_source: limits.max_handshakes_per_source,
            connections_per_source: limits.max_connections_per_source,
        },
        dropped,
    );
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                _ = tx.closed() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let mut slot = match slots.admit(remote.ip()) {
                Ok(s) => s,
                Err(reason) => {
                    slots.drops.record(reason, remote.ip());
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let drops = slots.drops.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let result =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                let tls = match result {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
                let activity = slot.established();
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| {
                        Arc::new(Identity::from_cert_der(c.as_ref()).map_err(|e| e.to_string()))
                    });
                let conn = TlsConn {
                    inner: tls,
                    info: PeerInfo {
                        remote,
                        identity,
                        activity,
                    },
                    first_stream_timeout: limits.first_stream_timeout,
                    idle_timeout: limits.idle_timeout,
                    idle_timer: Box::pin(tokio::time::sleep(limits.first_stream_timeout)),
                    drops,
                    _slot: slot,
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}
