//! Several collector addresses, one in use at a time. The report path and
//! the command stream share one [`CollectorSet`]: whichever of them first
//! finds the collector gone moves the set on, and the other follows at its
//! next connection, so both end up on the same collector.
//!
//! Collectors behind one database are interchangeable, so the agent never
//! prefers the first address again once it moved: it stays where it works
//! (moving back and forth would only double the reconnections of a fleet).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use driftwatch_common::client::ConnectError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::{info, warn};

/// Why the agent left a collector: a fixed vocabulary, so it can be a
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveReason {
    /// TCP connect refused or timed out, or the name did not resolve.
    Unreachable,
    /// The TLS handshake failed (a certificate our CA did not issue).
    Tls,
    /// The collector answered UNAVAILABLE, or the connection broke mid-call.
    Unavailable,
    /// A delivery hung past its budget (a partition drops packets silently).
    TimedOut,
    /// The command stream was lost or ended by the collector.
    StreamLost,
}

impl MoveReason {
    pub const ALL: [MoveReason; 5] = [
        MoveReason::Unreachable,
        MoveReason::Tls,
        MoveReason::Unavailable,
        MoveReason::TimedOut,
        MoveReason::StreamLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MoveReason::Unreachable => "unreachable",
            MoveReason::Tls => "tls",
            MoveReason::Unavailable => "unavailable",
            MoveReason::TimedOut => "timed_out",
            MoveReason::StreamLost => "stream_lost",
        }
    }

    /// Whether a failed connection attempt means "try another collector";
    /// None for failures of our own files, which no other collector cures.
    pub fn of_connect(e: &ConnectError) -> Option<MoveReason> {
        match e {
            ConnectError::Unreachable { .. } => Some(MoveReason::Unreachable),
            ConnectError::CaMismatch { .. } => Some(MoveReason::Tls),
            ConnectError::BadUrl(_) | ConnectError::NotHttps(_) | ConnectError::Tls(_) => None,
        }
    }

    /// gRPC codes that say "this collector cannot serve you now" rather
    /// than "no collector will": a broken connection surfaces as Unknown or
    /// Cancelled, a collector shutting down as Unavailable.
    pub fn of_code(code: tonic::Code) -> Option<MoveReason> {
        use tonic::Code;
        match code {
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
                Some(MoveReason::Unavailable)
            }
            _ => None,
        }
    }
}

/// One choice of collector: the index lets a failure report name which
/// address failed, so two parts failing on the same collector move once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    pub url: String,
}

#[derive(Clone)]
pub struct CollectorSet {
    inner: Arc<Inner>,
}

struct Inner {
    urls: Vec<String>,
    current: AtomicUsize,
    moves: Family<[(&'static str, &'static str); 1], Counter>,
}

impl std::fmt::Debug for CollectorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorSet")
            .field("urls", &self.inner.urls)
            .field("current", &self.inner.current.load(Ordering::Relaxed))
            .finish()
    }
}

impl CollectorSet {
    /// `urls` in the order given (the first is tried first); duplicates are
    /// dropped. Panics on an empty list: configuration refuses one first.
    pub fn new(urls: Vec<String>) -> Self {
        let mut seen = Vec::with_capacity(urls.len());
        for u in urls {
            if !seen.contains(&u) {
                seen.push(u);
            }
        }
        assert!(!seen.is_empty(), "a collector set needs an address");
        let moves = Family::default();
        for r in MoveReason::ALL {
            let _ = moves.get_or_create(&[("reason", r.as_str())]);
        }
        CollectorSet {
            inner: Arc::new(Inner {
                urls: seen,
                current: AtomicUsize::new(0),
                moves,
            }),
        }
    }

    pub fn one(url: impl Into<String>) -> Self {
        Self::new(vec![url.into()])
    }

    pub fn len(&self) -> usize {
        self.inner.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn urls(&self) -> &[String] {
        &self.inner.urls
    }

    pub fn current(&self) -> Pick {
        let index = self.inner.current.load(Ordering::Acquire);
        Pick {
            index,
            url: self.inner.urls[index].clone(),
        }
    }

    /// `failed` was found down for `reason`: moves to the next address
    /// unless someone already moved away from it. Returns the address to
    /// use next.
    pub fn failed(&self, failed: &Pick, reason: MoveReason, detail: &str) -> Pick {
        let n = self.inner.urls.len();
        if n == 1 {
            return self.current();
        }
        let next = (failed.index + 1) % n;
        if self
            .inner
            .current
            .compare_exchange(failed.index, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.inner
                .moves
                .get_or_create(&[("reason", reason.as_str())])
                .inc();
            warn!(
                from = %failed.url,
                to = %self.inner.urls[next],
                reason = reason.as_str(),
                error = %detail,
                "moving to another collector"
            );
        }
        self.current()
    }

    /// Logs the collector a part of the agent is now connected to.
    pub fn connected(&self, pick: &Pick, part: &'static str) {
        info!(collector = %pick.url, part, "connected to collector");
    }

    /// Moves away from collectors, by reason (for the agent's metrics).
    pub fn moves(&self) -> Family<[(&'static str, &'static str); 1], Counter> {
        self.inner.moves.clone()
    }
}

/// The wait between attempts while collectors are away: exponential, but
/// doubled only once every address was tried, so the first failure of one
/// collector leads to the next address after the first step (not after
/// the backoff the dead one earned). With one address this is the plain
/// doubling the agent always had.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
    addresses: usize,
    failed_in_round: usize,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, addresses: usize) -> Self {
        Backoff {
            first,
            max: max.max(first),
            step: first,
            addresses: addresses.max(1),
            failed_in_round: 0,
        }
    }

    /// A failure: how long to wait (before jitter) before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let wait = self.step;
        self.failed_in_round += 1;
        if self.failed_in_round >= self.addresses {
            self.failed_in_round = 0;
            self.step = (self.step * 2).min(self.max);
        }
        wait
    }

    pub fn succeeded(&mut self) {
        self.step = self.first;
        self.failed_in_round = 0;
    }
}

/// ±10% so a fleet that lost its collector together spreads out instead of
/// stampeding the next one.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn one_address_doubles_every_failure_as_before() {
        let mut b = Backoff::new(s(1), s(8), 1);
        let waits: Vec<_> = (0..6).map(|_| b.failed()).collect();
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(8), s(8)]);
        b.succeeded();
        assert_eq!(b.failed(), s(1));
    }

    #[test]
    fn several_addresses_double_once_per_round() {
        let mut b = Backoff::new(s(1), s(300), 3);
        let waits: Vec<_> = (0..7).map(|_| b.failed()).collect();
        assert_eq!(waits, [s(1), s(1), s(1), s(2), s(2), s(2), s(4)]);
        b.succeeded();
        assert_eq!((b.failed(), b.failed()), (s(1), s(1)));
    }

    #[test]
    fn rotation_wraps_and_a_second_report_of_the_same_failure_moves_once() {
        let set = CollectorSet::new(vec!["https://a:1".into(), "https://b:1".into()]);
        let a = set.current();
        assert_eq!(a.url, "https://a:1");
        let b = set.failed(&a, MoveReason::Unreachable, "refused");
        assert_eq!(b.url, "https://b:1");
        // The command stream saw the same collector die a moment later: it
        // must not move the set again, back onto the dead one.
        assert_eq!(set.failed(&a, MoveReason::StreamLost, "lost"), b);
        let again = set.failed(&b, MoveReason::Unavailable, "down");
        assert_eq!(again, a, "wraps around to the first");
        let moved = |r: MoveReason| set.moves().get_or_create(&[("reason", r.as_str())]).get();
        assert_eq!(
            (
                moved(MoveReason::Unreachable),
                moved(MoveReason::StreamLost),
                moved(MoveReason::Unavailable)
            ),
            (1, 0, 1)
        );
    }

    #[test]
    fn duplicates_are_one_address_and_one_address_never_moves() {
        let set = CollectorSet::new(vec!["https://a:1".into(), "https://a:1".into()]);
        assert_eq!(set.len(), 1);
        let a = set.current();
        assert_eq!(set.failed(&a, MoveReason::Tls, "x"), a);
    }

    #[test]
    fn which_failures_move() {
        use tonic::Code;
        assert_eq!(
            MoveReason::of_code(Code::Unavailable),
            Some(MoveReason::Unavailable)
        );
        assert_eq!(
            MoveReason::of_code(Code::Unknown),
            Some(MoveReason::Unavailable)
        );
        // Revoked, too large, storage full, bad input: another collector
        // of the same fleet answers the same.
        for c in [
            Code::PermissionDenied,
            Code::OutOfRange,
            Code::ResourceExhausted,
            Code::InvalidArgument,
            Code::Unauthenticated,
        ] {
            assert_eq!(MoveReason::of_code(c), None, "{c:?}");
        }
        let refused = ConnectError::Unreachable {
            url: "https://a:1".into(),
            host: "a".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            MoveReason::of_connect(&refused),
            Some(MoveReason::Unreachable)
        );
        assert_eq!(
            MoveReason::of_connect(&ConnectError::NotHttps("http://a".into())),
            None
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jittered(s(100));
            assert!(j >= s(90) && j <= s(110), "{j:?}");
        }
    }
}
