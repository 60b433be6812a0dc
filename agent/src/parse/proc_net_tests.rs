use super::*;
use crate::testutil::fixture;

fn shown(text: &str, t: Table) -> Vec<String> {
    let (socks, bad) = parse(text, t);
    assert!(bad.is_empty(), "{bad:?}");
    socks
        .iter()
        .map(|s| format!("{} {} {} {}", s.address, s.port, scope(&s.address), s.inode))
        .collect()
}

/// The tables captured on this project's build machine while a test
/// process held the sockets SOURCES.md lists (listening/); established
/// connections and a connected UDP socket are in them too and must not
/// be listed.
#[test]
fn real_tables_give_exactly_the_accepting_sockets() {
    assert_eq!(
        shown(&fixture("listening/tcp"), Table::Tcp),
        [
            "127.0.0.1 18080 loopback 24865",
            "0.0.0.0 2024 all 1190",
            "0.0.0.0 18443 all 24866",
        ]
    );
    assert_eq!(
        shown(&fixture("listening/tcp6"), Table::Tcp6),
        [
            "::1 18631 loopback 24868",
            // Bound to ::ffff:127.0.0.1: an IPv4-mapped address, shown as IPv4.
            "127.0.0.1 18632 loopback 24869",
            ":: 18022 all 24867",
        ]
    );
    assert_eq!(
        shown(&fixture("listening/udp"), Table::Udp),
        ["0.0.0.0 15353 all 24870", "127.0.0.53 15354 loopback 24871"]
    );
    assert_eq!(
        shown(&fixture("listening/udp6"), Table::Udp6),
        [":: 15355 all 24872", "::1 15356 loopback 24873"]
    );
}

#[test]
fn malformed_lines_are_named_by_number_and_the_rest_kept() {
    let text = fixture("listening/tcp");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "   9: garbage");
    lines.insert(3, "  10: 0100007F:ZZZZ 00000000:0000 0A 0:0 0:0 0 0 0 1 1");
    lines.insert(4, "  11: 0100:0016 00000000:0000 0A 0:0 0:0 0 0 0 1 1");
    let (socks, bad) = parse(&lines.join("\n"), Table::Tcp);
    assert_eq!(socks.len(), 3);
    assert_eq!(
        bad,
        [
            (
                3,
                "expected at least 10 fields starting with \"N:\", found 2".to_string()
            ),
            (4, "port \"ZZZZ\" is not hex".to_string()),
            (5, "local address \"0100\" is not a hex address".to_string()),
        ]
    );
}

#[test]
fn scopes_and_mapped_addresses() {
    let line = |addr: &str| {
        format!("sl\n 0: {addr}:0016 {addr}:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1")
    };
    let one = |addr: &str, t| parse(&line(addr), t).0[0].address.to_string();
    assert_eq!(
        one("0000000000000000FFFF000000000000", Table::Tcp6),
        "0.0.0.0"
    );
    assert_eq!(scope(&"0.0.0.0".parse().unwrap()), "all");
    assert_eq!(
        one("0000000000000000FFFF00000A01A8C0", Table::Tcp6),
        "192.168.1.10"
    );
    assert_eq!(scope(&"10.1.2.3".parse().unwrap()), "specific");
    assert_eq!(scope(&"127.9.9.9".parse().unwrap()), "loopback");
    assert_eq!(
        one("000080FE00000000FF005450B6AD1DFE", Table::Tcp6),
        "fe80::5054:ff:fe1d:adb6"
    );
}

#[test]
fn fd_links_and_status() {
    assert_eq!(socket_inode(b"socket:[24865]"), Some(24865));
    assert_eq!(socket_inode(b"pipe:[24865]"), None);
    assert_eq!(socket_inode(b"/dev/null"), None);
    assert_eq!(socket_inode(b"socket:[x]"), None);
    assert_eq!(
        status_uid("Name:\tsshd\nUid:\t107\t107\t107\t107\nGid:\t65534\n"),
        Some(107)
    );
    assert_eq!(status_uid("Name:\tx\n"), None);
}
