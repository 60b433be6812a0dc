use super::*;
use crate::testutil::fixture;

#[test]
fn debian_default_has_files_and_only_a_commented_tcp_destination() {
    let p = parse(&fixture("logconfig/syslog-ng.conf-debian-default.conf"));
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert_eq!(
        p.includes,
        [
            ("scl.conf".to_string(), 2),
            ("/etc/syslog-ng/conf.d/*.conf".to_string(), 161)
        ]
    );
    assert!(p.forwards.iter().all(|f| f.commented), "{:?}", p.forwards);
    let f = &p.forwards;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (
            f[0].target.as_str(),
            f[0].port,
            f[0].protocol.as_str(),
            f[0].selector.as_str()
        ),
        ("127.0.0.1", 1000, "tcp", "d_net")
    );
    assert_eq!(f[0].line, 79);
    let files: Vec<(&str, &str)> = p
        .outputs
        .iter()
        .map(|o| (o.selector.as_str(), o.path.as_str()))
        .collect();
    assert_eq!(files.len(), 20, "{files:?}");
    assert_eq!(files[0], ("d_auth", "/var/log/auth.log"));
    assert_eq!(files[14], ("d_newsnotice", "/var/log/news/news.notice"));
    assert!(files.contains(&("d_console_all", "`tty10`")));
    assert_eq!(files[19], ("d_ppp", "/var/log/ppp.log"));
    assert_eq!(p.outputs[0].line, 34);
}

#[test]
fn docker_network_source_is_not_a_forward() {
    let p = parse(&fixture(
        "logconfig/syslog-ng.conf-docker-network-source.conf",
    ));
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(p.forwards.is_empty(), "{:?}", p.forwards);
    let files: Vec<&str> = p.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(files, ["/var/log/messages", "/var/log/messages-kv.log"]);
    assert!(p.outputs.iter().all(|o| o.selector == "d_local"));
    assert_eq!(p.includes, [("scl.conf".to_string(), 14)]);
}

#[test]
fn network_tcp_udp_syslog_drivers_and_inline_destinations() {
    let text = r#"
destination d_remote {
    network("logs.example.com" port(6514) transport("tls") tls(ca-dir("/etc/ca")));
    udp("10.0.0.5");
    syslog('siem.example.com' transport(udp) port(601));
    tcp6("2001:db8::2" port(1514));
};
log { source(s_src); destination { tcp("inline.example.com" port(514)); }; };
source s_net { tcp(port(514)); };
"#;
    let p = parse(text);
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let s: Vec<(&str, u32, &str, &str, u32)> = p
        .forwards
        .iter()
        .map(|f| {
            (
                f.target.as_str(),
                f.port,
                f.protocol.as_str(),
                f.selector.as_str(),
                f.line,
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            ("logs.example.com", 6514, "tls", "d_remote", 3),
            ("10.0.0.5", 0, "udp", "d_remote", 4),
            ("siem.example.com", 601, "udp", "d_remote", 5),
            ("2001:db8::2", 1514, "tcp", "d_remote", 6),
            ("inline.example.com", 514, "tcp", "", 8),
        ]
    );
}

#[test]
fn unbalanced_and_bad_ports_are_reported() {
    let p = parse("destination d { tcp(\"h\" port(99999)); };\ndestination e { udp(port(1));\n");
    let lines: Vec<u32> = p.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 2, 2], "{:?}", p.issues);
    assert!(p.issues[0].reason.contains("bad port"));
    assert!(p.issues[1].reason.contains("never closed"));
    assert!(p.issues[2].reason.contains("without a host"));
}

#[test]
fn garbage_never_panics() {
    for t in [
        "{",
        ")",
        "(((",
        "\"",
        "`",
        "destination",
        "destination {",
        "@include",
        "\u{0}{}()",
    ] {
        let _ = parse(t);
    }
}
