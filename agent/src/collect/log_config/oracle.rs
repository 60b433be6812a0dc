//! The agent against `logrotate -d` (the real program decides what is
//! rotated): for every logrotate fixture and generated variants, which
//! files each stanza in effect rotates and which stanzas logrotate drops
//! must agree. logrotate runs in debug mode (nothing is touched) with its
//! state file in a temp dir, on a config whose paths point into a temp
//! tree. Deliberate differences, left out of the comparison:
//! - `include` lines are removed (logrotate would read this machine's own
//!   /etc/logrotate.d; includes are covered by the collector tests);
//! - a stanza logrotate refuses for a host lookup (`su`/`create` naming a
//!   user or group this machine lacks, an `olddir` that does not exist) is
//!   kept by the agent: those depend on the server, which the agent reports
//!   as written rather than resolve against its own root.
//!
//! logrotate is a test dependency (scripts/ci-deps.sh).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use driftwatch_common::proto::RotationPolicy;

use super::claim;
use crate::hostfs::HostFs;
use crate::parse::logrotate;
use crate::testutil::fixtures_dir;

/// logrotate's view: per stanza in effect, the existing files it considers.
fn logrotate_d(dir: &Path, conf: &str) -> (Vec<BTreeSet<String>>, String) {
    let cf = dir.join("logrotate.conf");
    std::fs::write(&cf, conf).unwrap();
    let out = Command::new("/usr/sbin/logrotate")
        .arg("-d")
        .arg("-s")
        .arg(dir.join("state"))
        .arg(&cf)
        .output()
        .expect("logrotate must be installed (scripts/ci-deps.sh)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut stanzas: Vec<BTreeSet<String>> = Vec::new();
    for l in text.lines() {
        if l.starts_with("rotating pattern: ") {
            stanzas.push(BTreeSet::new());
        } else if let Some(f) = l.strip_prefix("considering log ")
            && Path::new(f).is_file()
            && let Some(s) = stanzas.last_mut()
        {
            s.insert(f.to_string());
        }
    }
    (stanzas, text)
}

/// The agent's view of the same text.
fn agent(conf: &str) -> (Vec<BTreeSet<String>>, usize) {
    let p = logrotate::parse(conf, &RotationPolicy::default());
    let fs = HostFs::new("/");
    let mut claimed = HashMap::new();
    let mut out = Vec::new();
    let mut skipped = 0;
    for r in p.rules() {
        if r.skipped.is_some() {
            skipped += 1;
            continue;
        }
        let (m, _) = claim(&fs, r, &mut claimed);
        out.push(m.into_iter().collect());
    }
    (out, skipped)
}

/// Files for every pattern under `dir`: literal paths, and two matches
/// of each glob.
fn populate(dir: &Path, conf: &str) {
    for w in conf.split_whitespace() {
        let w = w.trim_matches(['"', '\'', '{', '}']);
        let Some(rel) = w.strip_prefix(dir.to_str().unwrap()) else {
            continue;
        };
        for name in [rel.replace(['*', '?'], "a"), rel.replace(['*', '?'], "b")] {
            let p = dir.join(name.trim_start_matches('/'));
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            if !p.is_dir() {
                std::fs::write(&p, "x\n").unwrap();
            }
        }
    }
}

/// Compares; returns how many (stanza, file) pairs logrotate rotates.
fn compare(name: &str, conf: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let conf: String = conf
        .replace("&DIR&", &format!("{d}/t"))
        .replace("/var/log/", &format!("{d}/var/log/"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("include"))
        .map(|l| format!("{l}\n"))
        .collect();
    populate(dir.path(), &conf);
    let (theirs, text) = logrotate_d(dir.path(), &conf);
    let (ours, _skipped) = agent(&conf);
    assert_eq!(
        ours, theirs,
        "{name}: agent vs logrotate -d\n{conf}\n--- logrotate said:\n{text}"
    );
    theirs.iter().map(BTreeSet::len).sum()
}

#[test]
fn every_logrotate_fixture_agrees_with_logrotate_d() {
    let (mut n, mut files) = (0, 0);
    for e in std::fs::read_dir(fixtures_dir().join("logconfig")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("logrotate") {
            continue;
        }
        files += compare(&name, &std::fs::read_to_string(&p).unwrap());
        n += 1;
    }
    assert!(n >= 8, "only {n} logrotate fixtures");
    assert!(
        files >= 8,
        "logrotate rotated only {files} files: is the tree right?"
    );
}

#[test]
fn generated_variants_agree_with_logrotate_d() {
    let cases = [
        "/var/log/a.log { daily }\n/var/log/b.log { }\n",
        "/var/log/a.log {\n size 300x\n rotate 2\n}\n/var/log/b.log {\n daily\n}\n",
        "/var/log/a.log {\n bogusopt\n rotate 3\n}\n",
        "/var/log/a.log { rotate 5 }\n/var/log/b.log { daily }\n",
        "/var/log/a.log { daily compress notifempty }\n",
        "/var/log/a.log {\ndaily\n} junk\n/var/log/b.log { weekly\n}\n",
        "/var/log/a.log {\n rotate 5 # comment\n}\n/var/log/b.log {\n}\n",
        "daily\nbogus\n/var/log/a.log { }\nsize 3q\n/var/log/b.log { }\n",
        "/var/log/a.log /var/log/a.log { }\n",
        "/var/log/a.log\n{\n daily\n}\n",
        "/var/log/a.log\n daily\n}\n/var/log/b.log { }\n",
        "/var/log/a.log { daily }\n/var/log/*.log {\n monthly\n}\n",
        "/var/log/a.log { daily }\n/var/log/b.log /var/log/a.log /var/log/c.log {\n monthly\n}\n",
        "/var/log/a.log {\n ignoreduplicates\n}\n/var/log/*.log {\n monthly\n}\n",
        "/var/log/a.log {\n size 10m\n}\n/var/log/b.log {\n size 0x10\n maxsize 1G\n}\n",
        "/var/log/a.log {\n weekly 9\n}\n/var/log/b.log { }\n",
        "/var/log/a.log {\n postrotate\n  echo }\n endscript\n rotate x\n}\n/var/log/b.log { }\n",
        "/var/log/a.log {\n su root\n}\n/var/log/b.log {\n rotate -1\n maxage 0x7\n}\n",
        "# only a comment\n\n",
        "/var/log/a.log {\n missingok\n",
    ];
    let mut files = 0;
    for (i, c) in cases.iter().enumerate() {
        files += compare(&format!("variant {i}"), c);
    }
    assert!(files >= 20, "logrotate rotated only {files} files");
}
