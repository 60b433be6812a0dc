//! Token buckets for Enroll, per source address and per source network, so
//! a leaked token or a guessing script cannot mint certificates or load the
//! CA at line rate — not even from a whole /24 or an IPv6 /64 (which hands
//! one client 2^64 addresses).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// The network `ip` belongs to: its first `v4_bits` (IPv4) or `v6_bits`
/// (IPv6) bits. An IPv4-mapped IPv6 address (a dual-stack listener) counts
/// as the IPv4 address it carries.
pub fn network(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let bits = v4_bits.min(32) as u32;
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let bits = v6_bits.min(128) as u32;
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
        v4 => v4,
    }
}

/// One bucket per key: `per_minute` refill, `burst` capacity.
struct Buckets {
    per_minute: f64,
    burst: f64,
    map: HashMap<IpAddr, (f64, i64)>,
}

impl Buckets {
    fn new(per_minute: u32, burst: u32) -> Self {
        Buckets {
            per_minute: per_minute.max(1) as f64,
            burst: burst.max(1) as f64,
            map: HashMap::new(),
        }
    }

    /// Refills `key`'s bucket to `now_ms` and returns its tokens.
    fn refill(&mut self, key: IpAddr, now_ms: i64) -> &mut (f64, i64) {
        // Bound memory: forget keys whose buckets have refilled.
        if self.map.len() > 10_000 {
            let full_after_ms = (self.burst / self.per_minute * 60_000.0) as i64;
            self.map
                .retain(|_, (_, last)| now_ms - *last < full_after_ms);
        }
        let (per_minute, burst) = (self.per_minute, self.burst);
        let b = self.map.entry(key).or_insert((burst, now_ms));
        let refill = (now_ms - b.1).max(0) as f64 / 60_000.0 * per_minute;
        b.0 = (b.0 + refill).min(burst);
        b.1 = now_ms;
        b
    }

    fn wait_s(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / self.per_minute * 60.0).ceil() as u64
    }
}

/// Why an attempt was refused, and how long until one would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Address {
        wait_s: u64,
    },
    Network {
        network: IpAddr,
        bits: u8,
        wait_s: u64,
    },
}

pub struct RateLimiter {
    v4_bits: u8,
    v6_bits: u8,
    inner: Mutex<(Buckets, Buckets)>,
}

/// Enroll from one address: 30 a minute, 10 at once.
pub const ENROLL_PER_ADDRESS: (u32, u32) = (30, 10);
/// Enroll from one /24 or /64: 60 a minute, 20 at once (a fleet booting
/// behind one NAT is limited per address anyway).
pub const ENROLL_PER_NETWORK: (u32, u32) = (60, 20);

impl RateLimiter {
    /// `address` and `network` are (per minute, burst); networks are IPv4
    /// /`v4_bits` and IPv6 /`v6_bits`.
    pub fn new(address: (u32, u32), network: (u32, u32), v4_bits: u8, v6_bits: u8) -> Self {
        RateLimiter {
            v4_bits,
            v6_bits,
            inner: Mutex::new((
                Buckets::new(address.0, address.1),
                Buckets::new(network.0, network.1),
            )),
        }
    }

    /// The enrollment limits: per address, and per /24 or /64.
    pub fn enroll() -> Self {
        Self::new(ENROLL_PER_ADDRESS, ENROLL_PER_NETWORK, 24, 64)
    }

    /// Takes one token from `ip`'s bucket and one from its network's, or
    /// neither (a refused attempt does not drain the other bucket).
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), Limited> {
        let ip = canonical(ip);
        let net = network(ip, self.v4_bits, self.v6_bits);
        let mut guard = self.inner.lock().expect("not poisoned");
        let (addr, nets) = &mut *guard;
        let a = addr.refill(ip, now_ms).0;
        if a < 1.0 {
            return Err(Limited::Address {
                wait_s: addr.wait_s(a),
            });
        }
        let n = nets.refill(net, now_ms).0;
        if n < 1.0 {
            let bits = if net.is_ipv4() {
                self.v4_bits
            } else {
                self.v6_bits
            };
            return Err(Limited::Network {
                network: net,
                bits,
                wait_s: nets.wait_s(n),
            });
        }
        addr.refill(ip, now_ms).0 -= 1.0;
        nets.refill(net, now_ms).0 -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bursts_then_refills_per_address() {
        let r = RateLimiter::new((6, 3), (1000, 1000), 24, 64);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..3 {
            assert!(r.check(a, 0).is_ok());
        }
        assert_eq!(
            r.check(a, 0),
            Err(Limited::Address { wait_s: 10 }),
            "6/min: one every 10s"
        );
        assert!(r.check(b, 0).is_ok(), "other addresses are not affected");
        assert!(r.check(a, 10_000).is_ok());
        assert!(r.check(a, 10_000).is_err());
    }

    #[test]
    fn a_network_shares_one_bucket_and_v6_counts_per_64() {
        let r = RateLimiter::new((100, 100), (6, 4), 24, 64);
        for i in 1..=4 {
            assert!(r.check(ip(&format!("192.0.2.{i}")), 0).is_ok());
        }
        // A fifth address of the same /24 is refused; another /24 is not.
        assert_eq!(
            r.check(ip("192.0.2.200"), 0),
            Err(Limited::Network {
                network: ip("192.0.2.0"),
                bits: 24,
                wait_s: 10
            })
        );
        assert!(r.check(ip("192.0.3.1"), 0).is_ok());
        // A dual-stack listener sees IPv4 clients as mapped addresses.
        assert!(r.check(ip("::ffff:192.0.2.9"), 0).is_err());
        for i in 1..=4 {
            assert!(r.check(ip(&format!("2001:db8:0:1::{i:x}")), 0).is_ok());
        }
        assert!(r.check(ip("2001:db8:0:1:ffff::1"), 0).is_err());
        assert!(r.check(ip("2001:db8:0:2::1"), 0).is_ok());
    }

    #[test]
    fn a_refused_attempt_takes_nothing_from_the_other_bucket() {
        let r = RateLimiter::new((1, 1), (60, 2), 24, 64);
        assert!(r.check(ip("10.1.1.1"), 0).is_ok());
        // Refused per address: the network keeps its second token.
        assert!(matches!(
            r.check(ip("10.1.1.1"), 0),
            Err(Limited::Address { .. })
        ));
        assert!(r.check(ip("10.1.1.2"), 0).is_ok());
    }

    #[test]
    fn networks_mask_the_host_bits() {
        assert_eq!(network(ip("10.1.2.3"), 24, 64), ip("10.1.2.0"));
        assert_eq!(network(ip("10.1.2.3"), 32, 64), ip("10.1.2.3"));
        assert_eq!(network(ip("10.1.2.3"), 0, 64), ip("0.0.0.0"));
        assert_eq!(
            network(ip("2001:db8:1:2:3:4:5:6"), 24, 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(network(ip("::ffff:10.9.8.7"), 24, 64), ip("10.9.8.0"));
    }
}
