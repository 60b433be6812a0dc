//! The agent against `rsyslogd -N1 -f CONF` (rsyslog's own config check):
//! every rsyslog fixture's accept/refuse verdict from the real rsyslogd is
//! checked against the table below, and a file rsyslogd accepts must give
//! the agent no issues. Where rsyslogd refuses a file the agent reads
//! without complaint, the table says why the agent deliberately differs:
//! the refusal depends on this machine or this rsyslog version, not on the
//! file (a module not installed here, a user this machine lacks, a newer
//! syntax), and the agent reports what the file asks for on the server.
//! Generated variants check forwarding statements the same way. rsyslogd
//! is a test dependency (scripts/ci-deps.sh).

use std::path::Path;
use std::process::Command;

use super::parse;
use crate::testutil::fixtures_dir;

/// rsyslogd -N1's verdict: accepted, and its error lines.
fn rsyslogd_n1(conf: &Path) -> (bool, String) {
    let out = Command::new("/usr/sbin/rsyslogd")
        .arg("-N1")
        .arg("-f")
        .arg(conf)
        .output()
        .expect("rsyslogd must be installed (scripts/ci-deps.sh)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// (fixture, rsyslogd refuses it here because …). Not listed: accepted.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "rsyslog-sample-legacy-selectors-udp-tcp-forwarding.conf",
        "errors occurred in file",
        "its database actions (`>host,db,…`) need ommysql, not loaded here",
    ),
    (
        "rsyslog.conf-ubuntu-noble.conf",
        "user 'syslog' could not be found",
        "`$PrivDropToUser syslog`: Ubuntu has that user, this machine not",
    ),
    (
        "rsyslog-upstream-test-omfwd-lb-2target.conf",
        "parameter 'target' is not a string",
        "omfwd arrays are rsyslog 8.2402+; Debian 12 ships 8.2302",
    ),
    (
        "rsyslog-upstream-test-omfwd-lb-susp.conf",
        "parameter 'target' is not a string",
        "as above",
    ),
];

#[test]
fn every_rsyslog_fixture_matches_rsyslogd_n1() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures_dir().join("logconfig")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("rsyslog") {
            continue;
        }
        n += 1;
        let (ok, said) = rsyslogd_n1(&p);
        let ours = parse(&std::fs::read_to_string(&p).unwrap());
        match REFUSED.iter().find(|(f, ..)| *f == name) {
            Some((_, msg, why)) => {
                assert!(
                    !ok,
                    "{name}: rsyslogd now accepts it (the table said: {why})"
                );
                assert!(
                    said.contains(msg),
                    "{name}: expected {msg:?} ({why}), got:\n{said}"
                );
            }
            None => {
                assert!(ok, "{name}: rsyslogd refuses it:\n{said}");
                assert!(
                    ours.issues.is_empty(),
                    "{name}: rsyslogd accepts it but the agent says {:?}",
                    ours.issues
                );
            }
        }
    }
    assert!(n >= 9, "only {n} rsyslog fixtures");
}

/// (target, port, protocol) of a forward.
type Fwd<'a> = (&'a str, u32, &'a str);

#[test]
fn generated_forwarding_statements_match_rsyslogd_n1() {
    // (statement, forwards the agent finds: (target, port, protocol))
    let cases: &[(&str, &[Fwd])] = &[
        ("*.* @10.0.0.1", &[("10.0.0.1", 0, "udp")]),
        (
            "*.* @@logs.example.com:1514",
            &[("logs.example.com", 1514, "tcp")],
        ),
        ("auth.* @[2001:db8::1]:514", &[("2001:db8::1", 514, "udp")]),
        (
            "action(type=\"omfwd\" target=\"10.0.0.2\" port=\"6514\" protocol=\"tcp\")",
            &[("10.0.0.2", 6514, "tcp")],
        ),
        (
            "if $programname == 'sshd' then {\n  action(type=\"omfwd\" target=\"siem.example\" port=\"514\")\n}",
            &[("siem.example", 514, "udp")],
        ),
        ("# *.* @@commented.example:514", &[]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (stmt, want)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("v{i}.conf"));
        // A local file action too: rsyslogd refuses a config with no action.
        let text = format!("{stmt}\n*.* /var/log/dw-oracle.log\n");
        std::fs::write(&f, &text).unwrap();
        let (ok, said) = rsyslogd_n1(&f);
        let ours = parse(&text);
        assert!(ok, "{stmt}: rsyslogd refuses it:\n{said}");
        assert!(ours.issues.is_empty(), "{stmt}: {:?}", ours.issues);
        let got: Vec<Fwd> = ours
            .forwards
            .iter()
            .filter(|f| !f.commented)
            .map(|f| (f.target.as_str(), f.port, f.protocol.as_str()))
            .collect();
        assert_eq!(got, *want, "{stmt}");
    }
    // A bad port: rsyslogd -N1 accepts it (a port is a string to it, only
    // resolved when it connects, then fails at run time); the agent
    // deliberately reports it, since that forward will never deliver.
    let f = dir.path().join("bad.conf");
    std::fs::write(&f, "action(type=\"omfwd\" target=\"h\" port=\"99999x\")\n").unwrap();
    let (ok, _) = rsyslogd_n1(&f);
    let ours = parse(&std::fs::read_to_string(&f).unwrap());
    assert!(ok, "rsyslogd -N1 now refuses a bad port: the agent agrees");
    assert!(
        ours.issues[0].reason.contains("bad port"),
        "{:?}",
        ours.issues
    );
}
