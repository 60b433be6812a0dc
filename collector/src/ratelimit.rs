//! Per-source-address token buckets for Enroll, so a leaked token or a
//! guessing script cannot mint certificates or load the CA at line rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

pub struct RateLimiter {
    per_minute: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, i64)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1) as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip` at `now_ms`; Err(seconds to wait) if empty.
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let mut b = self.buckets.lock().expect("not poisoned");
        // Bound memory: forget addresses whose buckets have refilled.
        if b.len() > 10_000 {
            let full_after_ms = (self.burst / self.per_minute * 60_000.0) as i64;
            b.retain(|_, (_, last)| now_ms - *last < full_after_ms);
        }
        let (tokens, last) = b.entry(ip).or_insert((self.burst, now_ms));
        let refill = (now_ms - *last).max(0) as f64 / 60_000.0 * self.per_minute;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_minute * 60.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_per_address() {
        let r = RateLimiter::new(6, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(r.check(a, 0).is_ok());
        }
        assert_eq!(r.check(a, 0), Err(10), "6/min: one every 10s");
        assert!(r.check(b, 0).is_ok(), "other addresses are not affected");
        assert!(r.check(a, 10_000).is_ok());
        assert!(r.check(a, 10_000).is_err());
    }
}
