use super::*;
use crate::testutil::fixture;

fn parse_fixture(name: &str) -> Parsed {
    parse(&fixture(&format!("logconfig/{name}")))
}

fn active(p: &Parsed) -> Vec<&LogForward> {
    p.forwards.iter().filter(|f| !f.commented).collect()
}

/// (target, port, protocol, selector) of each forward.
fn summary(f: &[&LogForward]) -> Vec<(String, u32, String, String)> {
    f.iter()
        .map(|f| {
            (
                f.target.clone(),
                f.port,
                f.protocol.clone(),
                f.selector.clone(),
            )
        })
        .collect()
}

fn outputs(p: &Parsed) -> Vec<(&str, bool, &str)> {
    p.outputs
        .iter()
        .map(|o| (o.path.as_str(), o.no_sync, o.selector.as_str()))
        .collect()
}

#[test]
fn ubuntu_main_file_loads_modules_and_includes_the_drop_in_dir() {
    let p = parse_fixture("rsyslog.conf-ubuntu-noble.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert_eq!(p.modules, ["imuxsock", "imklog"]);
    assert_eq!(
        p.includes,
        [Include {
            pattern: "/etc/rsyslog.d/*.conf".into(),
            line: 53,
            optional: false
        }]
    );
    assert!(p.forwards.is_empty(), "{:?}", p.forwards);
    assert!(p.outputs.is_empty());
}

#[test]
fn ubuntu_default_rules_write_local_files_only() {
    let p = parse_fixture("rsyslog.d-50-default-ubuntu-noble.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(p.forwards.is_empty(), "{:?}", p.forwards);
    assert_eq!(
        outputs(&p),
        [
            ("/var/log/auth.log", false, "auth,authpriv.*"),
            ("/var/log/syslog", true, "*.*;auth,authpriv.none"),
            ("/var/log/kern.log", true, "kern.*"),
            ("/var/log/mail.log", true, "mail.*"),
            ("/var/log/mail.err", false, "mail.err"),
        ]
    );
    assert_eq!(p.outputs[1].line, 9);
}

#[test]
fn redhat_forwarding_block_is_commented_out() {
    let p = parse_fixture("rsyslog.conf-redhat-commented-tcp-forwarding.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(active(&p).is_empty(), "{:?}", p.forwards);
    let f = &p.forwards[..];
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].commented);
    assert_eq!(
        (f[0].target.as_str(), f[0].port, f[0].protocol.as_str()),
        ("remote-host", 514, "tcp")
    );
    assert_eq!(f[0].line, 86);
    assert_eq!(p.modules, ["imuxsock", "imklog"]);
    assert_eq!(p.includes[0].pattern, "/etc/rsyslog.d/*.conf");
    let paths: Vec<&str> = p.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/var/log/messages",
            "/var/log/secure",
            "/var/log/maillog",
            "/var/log/cron",
            "/var/log/spooler",
            "/var/log/boot.log"
        ]
    );
}

#[test]
fn legacy_sample_forwards_over_udp_and_tcp_with_options() {
    let p = parse_fixture("rsyslog-sample-legacy-selectors-udp-tcp-forwarding.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let a = active(&p);
    let s = |t: &str, port: u32, proto: &str| {
        (t.to_string(), port, proto.to_string(), "*.*".to_string())
    };
    assert_eq!(
        summary(&a),
        [
            s("172.19.2.16", 0, "udp"),
            s("172.19.2.16", 0, "udp"),
            s("172.19.2.16", 1514, "udp"),
            s("172.19.2.16", 1514, "tcp"),
            s("172.19.2.16", 1514, "tcp"),
            s("172.19.2.16", 1514, "tcp"),
            s("172.19.2.16", 1514, "udp"),
        ]
    );
    assert_eq!(a[0].options, "template=RFC3164fmt");
    assert_eq!(a[5].options, "(z9,o) template=RFC3164Fmt");
    assert_eq!(a[6].options, "(z9)");
    assert_eq!(a[3].line, 229);
    let paths: Vec<&str> = p.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/var/log/winsyslog-like.log",
            "/var/log/traditionalfile.log",
            "/var/log/anothertraditionalfile.log",
            "/var/log/myhost.log",
            "/var/log/error",
        ]
    );
    assert_eq!(
        p.outputs[3].selector,
        r#":FROMHOST, isequal,"myhost.example.com""#
    );
}

#[test]
fn multi_line_omfwd_action_with_selector_and_commented_alternatives() {
    let p = parse_fixture("rsyslog.d-99-forward-omfwd-tcp-disk-queue.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let a = active(&p);
    assert_eq!(
        summary(&a),
        [(
            "CHANGE_ME".to_string(),
            10514,
            "tcp".to_string(),
            "*.*".to_string()
        )]
    );
    assert_eq!(a[0].options, "template=ForwardFormat");
    assert_eq!(a[0].line, 35);
    // The four commented `if … then { action(…) }` alternatives are noted.
    let c: Vec<&LogForward> = p.forwards.iter().filter(|f| f.commented).collect();
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(
        c.iter()
            .all(|f| f.target == "CHANGE_ME" && f.port == 10514 && f.protocol == "tcp")
    );
    assert_eq!(
        c[0].selector,
        r#"if ($syslogfacility-text == "auth" or $syslogfacility-text == "authpriv")"#
    );
}

#[test]
fn bare_action_without_selector_defaults_to_udp() {
    let p = parse_fixture("rsyslog.d-40-omfwd-action-no-selector.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert_eq!(
        summary(&active(&p)),
        [(
            "collector".to_string(),
            514,
            "udp".to_string(),
            String::new()
        )]
    );
    assert_eq!(p.forwards[0].line, 3);
}

#[test]
fn docker_if_then_writes_local_files_only() {
    let p = parse_fixture("rsyslog.d-docker-rainerscript-if-then.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(p.forwards.is_empty());
    assert_eq!(
        outputs(&p),
        [
            (
                "dynafile:DockerLogFileName",
                false,
                "if $programname startswith 'docker/'"
            ),
            (
                "/var/log/docker/docker.log",
                false,
                "if $syslogtag startswith 'docker'"
            ),
        ]
    );
    assert_eq!(p.outputs[1].line, 16);
}

#[test]
fn relp_ipv6_include_and_single_statement_if() {
    let text = r#"
*.* :omrelp:relp.example.com:2514;RSYSLOG_ForwardFormat
*.* @@[2001:db8::1]:6514
& @backup.example.com
include(file="/etc/rsyslog.d/extra/*.conf" mode="optional")
module(load="omrelp")
$ModLoad imfile
if $programname == 'sshd' then action(type="omfwd" target="siem" port="6514" protocol="TCP" StreamDriverMode="1")
ruleset(name="remote") {
  /* block
     comment */ action(type="omrelp" target="10.1.1.1" port="20514")
}
"#;
    let p = parse(text);
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let s = summary(&active(&p));
    assert_eq!(
        s,
        [
            ("relp.example.com".into(), 2514, "relp".into(), "*.*".into()),
            ("2001:db8::1".into(), 6514, "tcp".into(), "*.*".into()),
            ("backup.example.com".into(), 0, "udp".into(), "*.*".into()),
            (
                "siem".into(),
                6514,
                "tls".into(),
                "if $programname == 'sshd'".into()
            ),
            (
                "10.1.1.1".into(),
                20514,
                "relp".into(),
                "ruleset remote".into()
            ),
        ]
    );
    assert_eq!(p.forwards[4].line, 11);
    assert_eq!(
        p.includes,
        [Include {
            pattern: "/etc/rsyslog.d/extra/*.conf".into(),
            line: 5,
            optional: true
        }]
    );
    assert_eq!(p.modules, ["omrelp", "imfile"]);
}

#[test]
fn legacy_actions_after_then_and_foreach_blocks() {
    let text = "if $msg contains 'panic' then @@alerts.example.com:5514\nforeach ($.i in $!list) do {\n  action(type=\"omfwd\" target=\"each\")\n}\nif $programname == 'cron' then -/var/log/cron.log\n";
    let p = parse(text);
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert_eq!(
        summary(&active(&p)),
        [
            (
                "alerts.example.com".into(),
                5514,
                "tcp".into(),
                "if $msg contains 'panic'".into()
            ),
            (
                "each".into(),
                0,
                "udp".into(),
                "foreach ($.i in $!list)".into()
            ),
        ]
    );
    assert_eq!(
        outputs(&p),
        [("/var/log/cron.log", true, "if $programname == 'cron'")]
    );
}

#[test]
fn malformed_statements_are_reported_with_lines() {
    let text = "*.* @@host:99999\njunk line here\nauth.*\naction(type=\"omfwd\" port=\"514\")\n*.* action(type=\"omfwd\" target=\"x\"\n";
    let p = parse(text);
    let lines: Vec<u32> = p.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5], "{:?}", p.issues);
    assert!(p.issues[0].reason.contains("bad port"));
    assert!(p.issues[4].reason.contains("never closed"));
    assert!(p.forwards.is_empty());
}

#[test]
fn garbage_never_panics() {
    for t in [
        "(",
        ")",
        "action(",
        "if",
        "if then",
        "}}}{{{",
        ":",
        "::::",
        "&",
        "@",
        "*.* @",
        "*.* @(",
        "*.* @[",
        "$",
        "\u{0}\u{ff}",
        "action(type=\"omfwd\" target=\"é",
        "/*",
        "*/",
        "#\\",
        "a\\",
    ] {
        let _ = parse(t);
    }
}

#[test]
fn omfwd_load_balancing_arrays_give_one_forward_per_target_with_its_port() {
    let p = parse_fixture("rsyslog-upstream-test-omfwd-lb-2target.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let f: Vec<(&str, u32, &str)> = p
        .forwards
        .iter()
        .map(|f| (f.target.as_str(), f.port, f.protocol.as_str()))
        .collect();
    assert_eq!(
        f,
        [("127.0.0.1", 13514, "tcp"), ("127.0.0.1", 13515, "tcp")]
    );
    // One port for two targets: every target uses it.
    let p = parse_fixture("rsyslog-upstream-test-omfwd-lb-susp.conf");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let f: Vec<(&str, u32)> = p
        .forwards
        .iter()
        .map(|f| (f.target.as_str(), f.port))
        .collect();
    assert_eq!(f, [("xlocalhost", 13516), ("127.0.0.1", 13516)]);
    // More ports than targets: the extra ports are ignored, as rsyslog does.
    let p =
        parse(r#"action(type="omfwd" target=["a.example"] port=["1514", "2514"] protocol="udp")"#);
    assert_eq!(p.forwards.len(), 1);
    assert_eq!(p.forwards[0].port, 1514);
}
