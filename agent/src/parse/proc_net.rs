//! `/proc/net/{tcp,tcp6,udp,udp6}`: the kernel's socket tables, one line
//! per socket (`sl local_address rem_address st … uid timeout inode …`).
//!
//! Addresses are hex of the kernel's in-memory (network-order) bytes
//! printed as native 32-bit words, so on little-endian `0100007F` is
//! 127.0.0.1; IPv6 is four such words. Ports are plain hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which table a text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Tcp, Table::Tcp6, Table::Udp, Table::Udp6];

    /// Host path of the table.
    pub fn path(self) -> &'static str {
        match self {
            Table::Tcp => "/proc/net/tcp",
            Table::Tcp6 => "/proc/net/tcp6",
            Table::Udp => "/proc/net/udp",
            Table::Udp6 => "/proc/net/udp6",
        }
    }

    pub fn protocol(self) -> &'static str {
        match self {
            Table::Tcp | Table::Tcp6 => "tcp",
            Table::Udp | Table::Udp6 => "udp",
        }
    }

    pub fn family(self) -> &'static str {
        match self {
            Table::Tcp | Table::Udp => "ipv4",
            Table::Tcp6 | Table::Udp6 => "ipv6",
        }
    }

    fn is_v6(self) -> bool {
        matches!(self, Table::Tcp6 | Table::Udp6)
    }

    /// The state that means "accepts traffic": TCP_LISTEN for TCP; for
    /// UDP TCP_CLOSE, which is how the kernel shows a bound socket that
    /// is not connected (a connected one, a client's, is ESTABLISHED).
    fn accepting_state(self) -> u8 {
        match self {
            Table::Tcp | Table::Tcp6 => 0x0A,
            Table::Udp | Table::Udp6 => 0x07,
        }
    }
}

/// One accepting socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSocket {
    /// IPv4-mapped IPv6 addresses are given as their IPv4 address.
    pub address: IpAddr,
    pub port: u16,
    pub uid: u32,
    pub inode: u64,
}

/// "all", "loopback" or "specific".
pub fn scope(a: &IpAddr) -> &'static str {
    if a.is_unspecified() {
        "all"
    } else if a.is_loopback() {
        "loopback"
    } else {
        "specific"
    }
}

/// The accepting sockets of one table's text; every other socket
/// (established, time-wait, connected UDP) is left out. Malformed lines
/// come back with their 1-based number; the header is line 1.
pub fn parse(text: &str, table: Table) -> (Vec<NetSocket>, Vec<(u32, String)>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("sl")) {
            continue;
        }
        match parse_line(line, table) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(why) => bad.push((n, why)),
        }
    }
    (out, bad)
}

fn parse_line(line: &str, table: Table) -> Result<Option<NetSocket>, String> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return Err(format!(
            "expected at least 10 fields starting with \"N:\", found {}",
            f.len()
        ));
    }
    let state = u8::from_str_radix(f[3], 16).map_err(|_| format!("state {:?} is not hex", f[3]))?;
    if state != table.accepting_state() {
        return Ok(None);
    }
    let (addr, port) = f[1]
        .split_once(':')
        .ok_or_else(|| format!("local address {:?} has no ':port'", f[1]))?;
    let port = u16::from_str_radix(port, 16).map_err(|_| format!("port {port:?} is not hex"))?;
    let address = decode_addr(addr, table.is_v6())
        .ok_or_else(|| format!("local address {addr:?} is not a hex address"))?;
    let uid = f[7]
        .parse()
        .map_err(|_| format!("uid {:?} is not a number", f[7]))?;
    let inode = f[9]
        .parse()
        .map_err(|_| format!("inode {:?} is not a number", f[9]))?;
    Ok(Some(NetSocket {
        address,
        port,
        uid,
        inode,
    }))
}

fn word(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // The kernel prints each 32-bit word of the address as it sits in
    // memory read as a native integer; its native bytes are the address.
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

fn decode_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    if !v6 {
        return word(hex).map(|b| IpAddr::V4(Ipv4Addr::from(b)));
    }
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        chunk.copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
    }
    let a = Ipv6Addr::from(bytes);
    Some(match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    })
}

/// The inode of a `/proc/PID/fd/N` link's target, when it is a socket
/// (`socket:[12345]`).
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    std::str::from_utf8(link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
        .ok()?
        .parse()
        .ok()
}

/// The real uid of a `/proc/PID/status` text (first number of `Uid:`).
pub fn status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
#[path = "proc_net_tests.rs"]
mod tests;
