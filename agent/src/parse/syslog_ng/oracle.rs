//! The agent against `syslog-ng --syntax-only` (syslog-ng's own config
//! check). syslog-ng only checks syntax, so the comparison is: a config it
//! refuses must give the agent an issue, and one it accepts none, except
//! where the agent deliberately says more (a port no socket can use, which
//! syslog-ng accepts and fails on only at start). The forwards the agent
//! finds in accepted configs are the ones each variant was built with.
//! syslog-ng is unpacked (not installed: it conflicts with rsyslog) by
//! scripts/ci-deps.sh into `SYSLOG_NG_ROOT`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::parse;
use crate::testutil::fixtures_dir;

fn syslog_ng_root() -> PathBuf {
    let root = std::env::var_os("SYSLOG_NG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/driftwatch-tests/syslog-ng".into());
    assert!(
        root.join("usr/sbin/syslog-ng").is_file(),
        "syslog-ng not found under {}: run scripts/ci-deps.sh",
        root.display()
    );
    root
}

/// syslog-ng's verdict: accepted, and what it said.
fn syntax_only(conf: &Path) -> (bool, String) {
    let root = syslog_ng_root();
    let out = Command::new(root.join("usr/sbin/syslog-ng"))
        .arg("--syntax-only")
        .arg("-f")
        .arg(conf)
        // Moves the module and include directories under the unpacked root.
        .env("SYSLOGNG_PREFIX", root.join("usr"))
        .env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"))
        .output()
        .expect("run syslog-ng --syntax-only");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// (fixture, what syslog-ng says, why the agent reads it anyway).
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "syslog-ng.conf-debian-default.conf",
        "Error parsing options statement",
        "a 4.x config (`@version: 4.11`, `stats(freq(0))`); Debian 12 ships 3.38",
    ),
    (
        "syslog-ng.conf-docker-network-source.conf",
        "syntax error",
        "a 4.x config (`default-network-drivers` options of 4.x); Debian 12 ships 3.38",
    ),
];

#[test]
fn every_syslog_ng_fixture_matches_syntax_only() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures_dir().join("logconfig")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("syslog-ng") {
            continue;
        }
        n += 1;
        let (ok, said) = syntax_only(&p);
        let parsed = parse(&std::fs::read_to_string(&p).unwrap());
        match REFUSED.iter().find(|(f, ..)| *f == name) {
            Some((_, why, _)) => assert!(
                !ok && said.contains(why),
                "{name}: expected syslog-ng to refuse it with {why:?}, got:\n{said}"
            ),
            None => {
                assert!(ok, "{name}: syslog-ng refused it:\n{said}");
                assert!(parsed.issues.is_empty(), "{name}: {:?}", parsed.issues);
            }
        }
    }
    assert!(n >= 2, "syslog-ng fixtures missing");
}

const HEAD: &str = "@version: 3.38\nsource s { internal(); };\n";

/// (body after HEAD, forwards as target:port/protocol, the agent reports an
/// issue although syslog-ng accepts it).
const VARIANTS: &[(&str, &[&str], bool)] = &[
    (
        "destination d { network(\"10.0.0.1\" port(514) transport(\"tcp\")); };\nlog { source(s); destination(d); };\n",
        &["10.0.0.1:514/tcp"],
        false,
    ),
    (
        "destination d { tcp(\"logs.example\" port(6514)); udp(\"10.0.0.2\"); };\nlog { source(s); destination(d); };\n",
        &["logs.example:6514/tcp", "10.0.0.2:0/udp"],
        false,
    ),
    (
        "destination d { syslog(\"10.0.0.3\" transport(\"udp\") port(601)); };\nlog { source(s); destination(d); };\n",
        &["10.0.0.3:601/udp"],
        false,
    ),
    (
        "log { source(s); destination { network(\"10.9.9.9\" port(514)); }; };\n",
        &["10.9.9.9:514/tcp"],
        false,
    ),
    (
        "destination d { file(\"/var/log/x.log\"); };\nlog { source(s); destination(d); };\n",
        &[],
        false,
    ),
    (
        "# destination old { tcp(\"10.1.1.1\"); };\ndestination d { tcp6(\"2001:db8::2\" port(1514)); };\nlog { source(s); destination(d); };\n",
        &["2001:db8::2:1514/tcp"],
        false,
    ),
    // syslog-ng checks no value: these fail only when it starts.
    (
        "destination d { network(\"10.0.0.1\" port(70000)); };\nlog { source(s); destination(d); };\n",
        &[],
        true,
    ),
    (
        "destination d { network(\"10.0.0.1\" port(514x)); };\nlog { source(s); destination(d); };\n",
        &[],
        true,
    ),
    // Refused by syslog-ng: the agent must say something is wrong.
    (
        "destination d { network(\"10.0.0.1\" port(514); };\nlog { source(s); destination(d); };\n",
        &[],
        true,
    ),
    (
        "destination d { tcp(\"10.0.0.1\" port(514)); \nlog { source(s); destination(d); };\n",
        &[],
        true,
    ),
];

#[test]
fn generated_variants_match_syntax_only() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("syslog-ng.conf");
    let mut refused = 0;
    for (body, forwards, agent_issue) in VARIANTS {
        let text = format!("{HEAD}{body}");
        std::fs::write(&conf, &text).unwrap();
        let (ok, said) = syntax_only(&conf);
        let p = parse(&text);
        if !ok {
            refused += 1;
            assert!(
                !p.issues.is_empty(),
                "syslog-ng refused it, the agent saw nothing wrong:\n{text}\n{said}"
            );
            continue;
        }
        assert_eq!(
            !p.issues.is_empty(),
            *agent_issue,
            "{text}\nagent issues: {:?}",
            p.issues
        );
        if !agent_issue {
            let got: Vec<String> = p
                .forwards
                .iter()
                .filter(|f| !f.commented)
                .map(|f| format!("{}:{}/{}", f.target, f.port, f.protocol))
                .collect();
            assert_eq!(got, *forwards, "{text}");
        }
    }
    assert_eq!(
        refused, 2,
        "the two broken variants are refused by syslog-ng"
    );
}
