//! Where each simulated agent connects from. A real fleet's agents each
//! have an address of their own, and the collector caps handshakes and
//! connections per source address (collector/src/conn_limits.rs). A load
//! generator connecting every agent from 127.0.0.1 is one client behind a
//! NAT to the collector: its 64 concurrent handshakes hit the per-source
//! cap of 16, refused agents reconnect and resend in full, and the run
//! measures that churn instead of report intake. On loopback every
//! 127.0.0.0/8 address is local, so agent `i` gets its own.

use std::net::{IpAddr, Ipv4Addr};

/// The source address of agent `i`, or None (the kernel's choice) when
/// the collector is not on IPv4 loopback or `one_source` was asked for.
pub fn source_for(collector_url: &str, i: usize, one_source: bool) -> Option<IpAddr> {
    if one_source || !on_v4_loopback(collector_url) {
        return None;
    }
    // 127.64.0.0 upwards: clear of 127.0.0.1 and of the 127.0.0.x that
    // tests use as named clients; 4 million agents before wrapping.
    let n = (i % (1 << 22)) as u32;
    Some(IpAddr::V4(Ipv4Addr::from((127 << 24) | ((64 << 16) + n))))
}

fn on_v4_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_collectors_get_one_source_per_agent() {
        let a = source_for("https://localhost:7443", 0, false).unwrap();
        let b = source_for("https://127.0.0.1:7443", 70_000, false).unwrap();
        assert_eq!(a, "127.64.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(b, "127.65.17.112".parse::<IpAddr>().unwrap());
        assert!(a.is_loopback() && b.is_loopback());
        assert_ne!(source_for("https://localhost:1", 1, false), Some(a));
    }

    #[test]
    fn other_collectors_and_one_source_leave_it_to_the_kernel() {
        assert_eq!(source_for("https://collector.example:7443", 3, false), None);
        assert_eq!(source_for("https://[::1]:7443", 3, false), None);
        assert_eq!(source_for("https://localhost:7443", 3, true), None);
    }
}
