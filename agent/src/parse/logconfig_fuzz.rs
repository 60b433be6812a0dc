//! The log-config parsers must never panic, whatever a host's files hold:
//! random mixes of the grammar's own punctuation, multi-byte characters and
//! fixture fragments, from a fixed seed so a failure reproduces.

use driftwatch_common::proto::RotationPolicy;

use super::{journald, logrotate, rsyslog, syslog_ng};
use crate::testutil::fixture;

const PIECES: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "\"",
    "'",
    "`",
    "\\",
    "\n",
    " ",
    "\t",
    "#",
    "/*",
    "*/",
    "@",
    "@@",
    ":",
    ";",
    ",",
    "=",
    "[",
    "]",
    "$",
    "&",
    "*.*",
    "if ",
    " then ",
    "action(",
    "type=\"omfwd\"",
    "target=",
    "port=",
    "é",
    "😀",
    "\u{0}",
    "include",
    "destination d {",
    "tcp(",
    "port(",
    "[Journal]",
    "Storage=",
    "rotate",
    "size",
    "1k",
    "postrotate",
    "endscript",
    "/var/log/x",
];

#[test]
fn random_input_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0x10c0_4f16);
    let corpus: Vec<String> = [
        "rsyslog.d-99-forward-omfwd-tcp-disk-queue.conf",
        "syslog-ng.conf-debian-default.conf",
        "logrotate.d-syslog-ng-debian",
    ]
    .iter()
    .map(|f| fixture(&format!("logconfig/{f}")))
    .collect();
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..rng.usize(1..40) {
            if rng.u8(..) < 8 {
                // A random slice of a real file, cut on a char boundary.
                let c = &corpus[rng.usize(..corpus.len())];
                let a = rng.usize(..c.len());
                let b = (a + rng.usize(..200)).min(c.len());
                if let Some(part) = c.get(a..b) {
                    s.push_str(part);
                }
            } else {
                s.push_str(PIECES[rng.usize(..PIECES.len())]);
            }
        }
        let _ = rsyslog::parse(&s);
        let _ = syslog_ng::parse(&s);
        let _ = journald::parse(&s);
        let _ = logrotate::parse(&s, &RotationPolicy::default());
    }
}
