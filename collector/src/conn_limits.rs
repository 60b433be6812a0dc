//! Who holds the collector's connection slots. One table counts handshakes
//! and connections globally and per source (an IPv4 address, an IPv6 /64),
//! knows which established connections have no open stream (idle), and
//! evicts the longest-idle one when the global cap is reached: an idle
//! connection costs its owner nothing to reopen, and a flood of them must
//! not lock out an admin or an agent. A connection that opens no stream
//! within `first_stream_timeout` of its handshake (one that never sent the
//! HTTP/2 preface), or has had none for `idle_timeout`, is closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Reason;
use tonic::codegen::http::{Request, Response};
use tracing::warn;

/// Reasons a connection is dropped or closed by us (the metric's label).
pub const DROP_REASONS: [&str; 6] = [
    "source_handshakes",
    "handshakes",
    "source_connections",
    "connections",
    "evicted_idle",
    "idle_timeout",
];

/// The key connections are counted under: the address, or an IPv6 /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    crate::ratelimit::network(ip, 32, 64)
}

/// One connection's stream count and idle clock, shared by the connection
/// (which closes itself) and the request layer (which counts streams).
#[derive(Debug)]
pub struct Activity {
    streams: AtomicUsize,
    /// When the last stream ended (ms since `base`); accept time at first.
    idle_since_ms: AtomicU64,
    evicted: AtomicBool,
    had_stream: AtomicBool,
    waker: Mutex<Option<Waker>>,
    base: Instant,
}

impl Activity {
    fn new(base: Instant) -> Self {
        Activity {
            streams: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(base.elapsed().as_millis() as u64),
            evicted: AtomicBool::new(false),
            had_stream: AtomicBool::new(false),
            waker: Mutex::new(None),
            base,
        }
    }

    fn stream_started(&self) {
        self.streams.fetch_add(1, Ordering::AcqRel);
        self.had_stream.store(true, Ordering::Release);
    }

    fn stream_ended(&self) {
        if self.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since_ms
                .store(self.base.elapsed().as_millis() as u64, Ordering::Release);
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.lock().expect("not poisoned").take() {
            w.wake();
        }
    }

    /// Remembers the connection task to wake on eviction or idleness.
    pub fn register(&self, cx: &Context<'_>) {
        let mut w = self.waker.lock().expect("not poisoned");
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }

    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// When this connection, idle now, is to be closed: `first` after the
    /// handshake until its first stream (a client that never sends the
    /// HTTP/2 preface has none), `idle` after its last stream ended; None
    /// while a stream is open.
    pub fn idle_deadline(&self, first: Duration, idle: Duration) -> Option<Instant> {
        let timeout = if self.had_stream.load(Ordering::Acquire) {
            idle
        } else {
            first
        };
        (self.streams.load(Ordering::Acquire) == 0).then(|| {
            self.base + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)) + timeout
        })
    }

    fn idle_since(&self) -> Option<u64> {
        (self.streams.load(Ordering::Acquire) == 0)
            .then(|| self.idle_since_ms.load(Ordering::Acquire))
    }
}

#[derive(Debug, Clone)]
pub struct Caps {
    pub handshakes: usize,
    pub connections: usize,
    pub handshakes_per_source: usize,
    pub connections_per_source: usize,
}

#[derive(Default)]
struct Counts {
    handshakes: usize,
    connections: usize,
}

#[derive(Default)]
struct Table {
    total: Counts,
    per_source: HashMap<IpAddr, Counts>,
    live: HashMap<u64, Arc<Activity>>,
    next_id: u64,
}

/// The shared table; cheap to clone.
#[derive(Clone)]
pub struct Slots {
    caps: Caps,
    table: Arc<Mutex<Table>>,
    base: Instant,
    pub drops: DropLog,
}

impl Slots {
    pub fn new(caps: Caps, dropped: Family<Reason, Counter>) -> Self {
        for r in DROP_REASONS {
            let _ = dropped.get_or_create(&[("reason", r)]);
        }
        Slots {
            caps,
            table: Arc::default(),
            base: Instant::now(),
            drops: DropLog::new(dropped),
        }
    }

    /// A slot for a new connection from `ip` (in handshake), or the reason
    /// it is refused. At the global connection cap the longest-idle
    /// established connection is evicted to make room.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, &'static str> {
        let src = source_of(ip);
        let mut t = self.table.lock().expect("not poisoned");
        let per = t.per_source.get(&src);
        if per.is_some_and(|c| c.handshakes >= self.caps.handshakes_per_source) {
            return Err("source_handshakes");
        }
        if per.is_some_and(|c| c.connections >= self.caps.connections_per_source) {
            return Err("source_connections");
        }
        if t.total.handshakes >= self.caps.handshakes {
            return Err("handshakes");
        }
        if t.total.connections >= self.caps.connections {
            let victim = t
                .live
                .values()
                .filter(|a| !a.evicted())
                .filter_map(|a| a.idle_since().map(|s| (s, a)))
                .min_by_key(|(s, _)| *s)
                .map(|(_, a)| a.clone());
            match victim {
                Some(a) => {
                    a.evicted.store(true, Ordering::Release);
                    a.wake();
                    self.drops.record("evicted_idle", ip);
                }
                None => return Err("connections"),
            }
        }
        t.total.handshakes += 1;
        t.total.connections += 1;
        let c = t.per_source.entry(src).or_default();
        c.handshakes += 1;
        c.connections += 1;
        let id = t.next_id;
        t.next_id += 1;
        Ok(Slot {
            slots: self.clone(),
            src,
            id,
            in_handshake: true,
        })
    }
}

/// A connection's place in the table; freed on drop.
pub struct Slot {
    slots: Slots,
    src: IpAddr,
    id: u64,
    in_handshake: bool,
}

impl Slot {
    /// The handshake finished: the connection now counts as established
    /// (and can be evicted while idle).
    pub fn established(&mut self) -> Arc<Activity> {
        let act = Arc::new(Activity::new(self.slots.base));
        let table = self.slots.table.clone();
        let mut t = table.lock().expect("not poisoned");
        self.end_handshake(&mut t);
        t.live.insert(self.id, act.clone());
        act
    }

    fn end_handshake(&mut self, t: &mut Table) {
        if std::mem::take(&mut self.in_handshake) {
            t.total.handshakes -= 1;
            if let Some(c) = t.per_source.get_mut(&self.src) {
                c.handshakes -= 1;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let table = self.slots.table.clone();
        let mut t = table.lock().expect("not poisoned");
        self.end_handshake(&mut t);
        t.live.remove(&self.id);
        t.total.connections -= 1;
        if let Some(c) = t.per_source.get_mut(&self.src) {
            c.connections -= 1;
            if c.connections == 0 {
                t.per_source.remove(&self.src);
            }
        }
    }
}

/// Counts every dropped connection and logs at most one line per reason
/// every 10 s, with how many it stood for: a flood must not become a
/// flood of log lines.
#[derive(Clone)]
pub struct DropLog {
    counter: Family<Reason, Counter>,
    last: Arc<Mutex<HashMap<&'static str, (Instant, u64)>>>,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl DropLog {
    fn new(counter: Family<Reason, Counter>) -> Self {
        DropLog {
            counter,
            last: Arc::default(),
        }
    }

    pub fn record(&self, reason: &'static str, remote: IpAddr) {
        self.counter.get_or_create(&[("reason", reason)]).inc();
        let mut last = self.last.lock().expect("not poisoned");
        let now = Instant::now();
        let e = last.entry(reason).or_insert((now - LOG_EVERY, 0));
        e.1 += 1;
        if now.duration_since(e.0) >= LOG_EVERY {
            warn!(
                reason,
                %remote,
                dropped = e.1,
                "dropping connections (count since the last such line; the metric driftwatch_collector_connections_dropped_total has all)"
            );
            *e = (now, 0);
        }
    }
}

/// A tower layer that counts each request as a stream of its connection
/// until its response body is finished or dropped (a `Commands` stream
/// counts for as long as it is open), and lets each host have one Report
/// in progress: a second one is refused before its body is read or
/// decoded (four concurrent 16 MB reports from one certificate took the
/// collector to 2.9 GB).
#[derive(Clone, Default)]
pub struct StreamCountLayer {
    reporting: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl<S> tower_layer::Layer<S> for StreamCountLayer {
    type Service = StreamCount<S>;
    fn layer(&self, inner: S) -> StreamCount<S> {
        StreamCount {
            inner,
            reporting: self.reporting.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StreamCount<S> {
    inner: S,
    reporting: Arc<Mutex<std::collections::HashSet<String>>>,
}

const REPORT_PATH: &str = "/driftwatch.v1.Agent/Report";

/// A host's one report in progress; ends on drop.
struct Reporting {
    set: Arc<Mutex<std::collections::HashSet<String>>>,
    host: String,
}

impl Drop for Reporting {
    fn drop(&mut self) {
        self.set.lock().expect("not poisoned").remove(&self.host);
    }
}

fn report_slot<B>(
    req: &Request<B>,
    set: &Arc<Mutex<std::collections::HashSet<String>>>,
) -> Result<Option<Reporting>, String> {
    if req.uri().path() != REPORT_PATH {
        return Ok(None);
    }
    let host = req
        .extensions()
        .get::<crate::tls_incoming::PeerInfo>()
        .and_then(|p| p.identity.clone())
        .and_then(|id| match &*id {
            Ok(driftwatch_common::identity::Identity::Host(h)) => Some(h.clone()),
            _ => None,
        });
    // Without a host certificate the service refuses it anyway.
    let Some(host) = host else { return Ok(None) };
    if !set.lock().expect("not poisoned").insert(host.clone()) {
        return Err(host);
    }
    Ok(Some(Reporting {
        set: set.clone(),
        host,
    }))
}

struct StreamGuard(Option<Arc<Activity>>);

impl StreamGuard {
    fn new(act: Option<Arc<Activity>>) -> Self {
        if let Some(a) = &act {
            a.stream_started();
        }
        StreamGuard(act)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.stream_ended();
        }
    }
}

impl<S, B> tonic::codegen::Service<Request<B>> for StreamCount<S>
where
    S: tonic::codegen::Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let reporting = match report_slot(&req, &self.reporting) {
            Ok(r) => r,
            Err(host) => {
                let status = tonic::Status::resource_exhausted(format!(
                    "host {host} already has a report in progress: one at a time per host (retry when it is acknowledged)"
                ));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let act = req
            .extensions()
            .get::<crate::tls_incoming::PeerInfo>()
            .map(|p| p.activity.clone());
        let guard = StreamGuard::new(act);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            drop(reporting);
            Ok(resp.map(|body| {
                tonic::body::Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

struct GuardedBody {
    inner: tonic::body::Body,
    _guard: StreamGuard,
}

impl http_body::Body for GuardedBody {
    type Data = <tonic::body::Body as http_body::Body>::Data;
    type Error = <tonic::body::Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(conns: usize) -> Slots {
        Slots::new(
            Caps {
                handshakes: 100,
                connections: conns,
                handshakes_per_source: 2,
                connections_per_source: 3,
            },
            Family::default(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_source_caps_count_v6_per_64_and_free_on_drop() {
        let s = slots(100);
        let a = s.admit(ip("2001:db8::1")).unwrap();
        let _b = s.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            s.admit(ip("2001:db8::3")).err(),
            Some("source_handshakes"),
            "one /64 is one source"
        );
        assert!(s.admit(ip("2001:db8:0:1::1")).is_ok(), "another /64");
        drop(a);
        let mut c = s.admit(ip("2001:db8::3")).unwrap();
        c.established();
        let mut d = s.admit(ip("2001:db8::4")).unwrap();
        d.established();
        // Three connections from the /64 (one still in handshake).
        assert_eq!(s.admit(ip("2001:db8::5")).err(), Some("source_connections"));
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let s = slots(2);
        let mut a = s.admit(ip("10.0.0.1")).unwrap();
        let act_a = a.established();
        std::thread::sleep(Duration::from_millis(5));
        let mut b = s.admit(ip("10.0.0.2")).unwrap();
        let act_b = b.established();
        // b has a stream open: only a may be evicted.
        act_b.stream_started();
        let _c = s.admit(ip("10.0.0.3")).unwrap();
        assert!(act_a.evicted() && !act_b.evicted());
        drop(a);
        // Now every connection is busy or in handshake: refused.
        assert_eq!(s.admit(ip("10.0.0.4")).err(), Some("connections"));
        act_b.stream_ended();
        let (first, idle) = (Duration::from_secs(1), Duration::from_secs(100));
        assert!(act_b.idle_deadline(first, idle).unwrap() > Instant::now() + first);
        assert!(act_a.idle_deadline(first, idle).unwrap() < Instant::now() + first);
        assert!(s.admit(ip("10.0.0.4")).is_ok());
        assert!(act_b.evicted());
    }
}
