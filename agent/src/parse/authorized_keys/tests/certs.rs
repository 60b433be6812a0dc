//! Certificates against `ssh-keygen -Lf` / `-lf`, made here with
//! `ssh-keygen -s` across the fields the ssh-key crate refuses on its own:
//! validity "forever" (no -V: valid-before 2^64-1), open-ended ranges, and
//! a key id or principal that is not UTF-8. None may lose the key.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use super::super::parse;

fn keygen(args: &[&OsStr]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("ssh-keygen must be installed (scripts/ci-deps.sh)");
    assert!(out.status.success(), "ssh-keygen {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// `Name: value` from `ssh-keygen -Lf`, plus the indented list under it.
fn field<'a>(l: &'a str, name: &str) -> (&'a str, Vec<&'a str>) {
    let mut lines = l.lines().skip_while(|x| !x.trim_start().starts_with(name));
    let head = lines.next().unwrap_or_else(|| panic!("no {name} in {l}"));
    let value = head.trim_start()[name.len()..].trim();
    let list = lines
        .take_while(|x| x.starts_with("                "))
        .map(str::trim)
        .collect();
    (value, list)
}

/// ssh-keygen's `Valid:` text for a range (its times in UTC here).
fn valid_text(after: u64, before: u64) -> String {
    let t = |s: u64| {
        let r = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string();
        r.trim_end_matches('Z').to_string()
    };
    match (after, before) {
        (0, u64::MAX) => "forever".into(),
        (0, b) => format!("before {}", t(b)),
        (a, u64::MAX) => format!("after {}", t(a)),
        (a, b) => format!("from {} to {}", t(a), t(b)),
    }
}

#[test]
fn certificates_the_crate_refuses_keep_their_key_and_agree_with_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n);
    let ca = p("ca");
    keygen(&[
        os("-q"),
        os("-t"),
        os("ed25519"),
        os("-N"),
        os(""),
        os("-C"),
        os("ca"),
        os("-f"),
        ca.as_os_str(),
    ]);
    // (name, key type, extra signing args, is the crate's own decoder refusing it)
    let bad_id = OsStr::from_bytes(b"id-\xff\xfe-latin1");
    let bad_principal = OsStr::from_bytes(b"ok,caf\xe9");
    let cases: Vec<(&str, &str, Vec<&OsStr>)> = vec![
        ("forever", "ed25519", vec![]),
        ("forever-rsa", "rsa", vec![os("-n"), os("alice,bob")]),
        (
            "always-to-forever",
            "ecdsa",
            vec![os("-V"), os("always:forever")],
        ),
        (
            "from-to-forever",
            "ed25519",
            vec![os("-V"), os("20200101:forever"), os("-h")],
        ),
        (
            "always-to-date",
            "ed25519",
            vec![os("-V"), os("always:20991231")],
        ),
        (
            "bounded",
            "ed25519",
            vec![os("-V"), os("20200101:20991231"), os("-z"), os("42")],
        ),
        ("non-utf8-id", "ed25519", vec![os("-V"), os("+52w")]),
        (
            "non-utf8-principal",
            "ed25519",
            vec![os("-n"), bad_principal],
        ),
        (
            "options",
            "ed25519",
            vec![
                os("-O"),
                os("force-command=/bin/true"),
                os("-O"),
                os("source-address=10.0.0.0/8"),
            ],
        ),
    ];
    let mut text = String::new();
    let mut files = Vec::new();
    for (name, t, extra) in &cases {
        let k = p(name);
        let comment = format!("{name} key");
        keygen(&[
            os("-q"),
            os("-t"),
            os(t),
            os("-N"),
            os(""),
            os("-C"),
            os(&comment),
            os("-f"),
            k.as_os_str(),
        ]);
        let id = if *name == "non-utf8-id" {
            bad_id
        } else {
            os(name)
        };
        let mut a = vec![os("-q"), os("-s"), ca.as_os_str(), os("-I"), id];
        a.extend(extra.iter().copied());
        let pubf = k.with_extension("pub");
        a.push(pubf.as_os_str());
        keygen(&a);
        let cert = p(&format!("{name}-cert.pub"));
        text.push_str(std::str::from_utf8(&std::fs::read(&cert).unwrap()).unwrap());
        files.push(cert);
    }
    let parsed = parse(&text);
    assert!(parsed.malformed.is_empty(), "{:#?}", parsed.malformed);
    assert_eq!(parsed.keys.len(), cases.len());
    for ((k, cert), (name, ..)) in parsed.keys.iter().zip(&files).zip(&cases) {
        check_against_ssh_keygen(k, cert, name);
    }
    // Only the non-UTF-8 fields are named as not decoded; "forever" is a
    // value OpenSSH defines, not an undecodable one.
    for (k, (name, ..)) in parsed.keys.iter().zip(&cases) {
        let u = &k.certificate.as_ref().unwrap().undecoded;
        match *name {
            "non-utf8-id" => assert!(
                u.len() == 1 && u[0].starts_with("key id is not UTF-8"),
                "{u:?}"
            ),
            "non-utf8-principal" => assert!(
                u.len() == 1 && u[0].starts_with("principal is not UTF-8"),
                "{u:?}"
            ),
            _ => assert!(u.is_empty(), "{name}: {u:?}"),
        }
    }
}

fn check_against_ssh_keygen(k: &driftwatch_common::proto::AuthorizedKey, cert: &Path, name: &str) {
    let l = keygen(&[os("-Lf"), cert.as_os_str()]);
    let short = keygen(&[os("-lf"), cert.as_os_str()]);
    let c = k.certificate.as_ref().unwrap();
    let (ty, _) = field(&l, "Type:");
    assert_eq!(
        ty,
        format!("{} {} certificate", k.key_type, c.cert_type),
        "{name}"
    );
    let (pk, _) = field(&l, "Public key:");
    assert_eq!(pk, format!("{} {}", k.label, k.fingerprint), "{name}");
    let (ca, _) = field(&l, "Signing CA:");
    assert!(ca.contains(&c.ca_fingerprint), "{name}: {ca}");
    let (id, _) = field(&l, "Key ID:");
    assert_eq!(id, format!("\"{}\"", c.key_id), "{name}");
    let (serial, _) = field(&l, "Serial:");
    assert_eq!(serial, c.serial.to_string(), "{name}");
    let (valid, _) = field(&l, "Valid:");
    assert_eq!(valid, valid_text(c.valid_after, c.valid_before), "{name}");
    let (none, principals) = field(&l, "Principals:");
    let want: Vec<String> = principals.iter().map(|s| s.to_string()).collect();
    assert_eq!(c.principals, want, "{name}");
    assert_eq!(none == "(none)", c.principals.is_empty(), "{name}");
    // -lf: bits, fingerprint, comment, label.
    let want = format!("{} {} {} ({})", k.bits, k.fingerprint, k.comment, k.label);
    assert_eq!(short.trim_end(), want, "{name}");
}
