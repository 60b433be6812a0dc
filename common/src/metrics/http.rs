//! `GET /metrics` over plain HTTP/1.1 on hyper, on a listener of its own.
//!
//! Plain HTTP, as is the norm for Prometheus scrape ports: bind it to
//! loopback or a management network, never where the fleet's port is. One
//! request per connection, request head bounded in bytes and in time, the
//! whole exchange bounded in time, and a cap on concurrent connections, so a
//! slow or hostile client cannot pile up work.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Request head (line and headers); hyper's smallest allowed read buffer.
/// A larger head is answered 431.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Until the request head is read.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole exchange, response included: a client that stops reading the
/// body gives its slot back.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CONNECTIONS: usize = 16;

/// Binds `addr` (port 0 picks one: see the returned address).
pub async fn bind(
    addr: std::net::SocketAddr,
) -> std::io::Result<(TcpListener, std::net::SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// Serves `registry` until `shutdown` resolves. It is read-locked while a
/// scrape renders (scrapes render side by side).
pub async fn serve(
    listener: TcpListener,
    registry: Arc<RwLock<Registry>>,
    shutdown: impl Future<Output = ()>,
) {
    let addr = listener.local_addr().ok();
    info!(addr = ?addr, "metrics listening (plain HTTP, GET /metrics)");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics connection refused: too many open");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| respond(req, registry.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .max_buf_size(MAX_REQUEST_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "metrics request failed"),
                Err(_) => debug!(%peer, "metrics connection timed out"),
            }
            drop(permit);
        });
    }
}

async fn respond(
    req: Request<Incoming>,
    registry: Arc<RwLock<Registry>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // hyper leaves the body out of a HEAD answer itself.
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into()));
    }
    if req.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "driftwatch metrics are at /metrics\n".into(),
        ));
    }
    // Scrape-time gauges read storage: off the async workers.
    let render = move || super::render(&registry.read().expect("not poisoned"));
    match tokio::task::spawn_blocking(render).await {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
            Ok(r)
        }
        Err(e) => {
            warn!(error = %e, "rendering metrics failed");
            Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering metrics failed; see the log\n".into(),
            ))
        }
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .expect("server answers and closes")
            .unwrap();
        out
    }

    #[tokio::test]
    async fn answers_metrics_refuses_the_rest_and_bounds_the_request() {
        let mut r = Registry::default();
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        r.register("t_requests", "Requests", c.clone());
        c.inc();
        let (l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(l, Arc::new(RwLock::new(r)), async {
            let _ = stopped.await;
        }));

        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains("content-type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(
            ok.contains("\r\n\r\n# HELP t_requests_total Requests."),
            "{ok}"
        );
        assert!(ok.ends_with("t_requests_total 1\n"), "{ok}");

        let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let post = exchange(
            addr,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let other = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");

        let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 2 * MAX_REQUEST_BYTES));
        big.extend_from_slice(b"\r\n\r\n");
        let refused = exchange(addr, &big).await;
        assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_loses_its_slot() {
        let (l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(l, Arc::default(), async {
            let _ = stopped.await;
        }));
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let n = tokio::time::timeout(READ_TIMEOUT * 3, silent.read_to_end(&mut buf))
            .await
            .expect("closed after the read timeout")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
}
