//! `ssh-keygen -lf` as the oracle: keys of every type it can generate here,
//! each inside a line with options, must give its type, bits and
//! fingerprint. ssh-keygen is a test dependency (scripts/ci-deps.sh).

use std::path::Path;
use std::process::Command;

use super::super::parse;
use crate::testutil::fixtures_dir;

/// (bits, fingerprint, comment, label) from one `ssh-keygen -lf` line:
/// `256 SHA256:xxx comment words (ED25519)`.
fn keygen_l(path: &Path) -> (u32, String, String, String) {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path)
        .output()
        .expect("ssh-keygen must be installed (scripts/ci-deps.sh)");
    assert!(
        out.status.success(),
        "ssh-keygen -lf {}: {:?}",
        path.display(),
        out
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let s = s.trim_end();
    let (bits, rest) = s.split_once(' ').unwrap();
    let (fp, rest) = rest.split_once(' ').unwrap();
    let open = rest.rfind(" (").unwrap();
    (
        bits.parse().unwrap(),
        fp.to_string(),
        rest[..open].to_string(),
        rest[open + 2..rest.len() - 1].to_string(),
    )
}

fn keygen(args: &[&str]) -> std::process::Output {
    Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen must be installed (scripts/ci-deps.sh)")
}

const OPTIONS: &str =
    r#"from="10.0.0.1,192.0.2.0/24",command="echo \"a, b\" done",no-pty,expiry-time="20300101""#;

#[test]
fn fingerprints_match_ssh_keygen_for_every_type_inside_option_lines() {
    let dir = tempfile::tempdir().unwrap();
    let specs: &[(&str, &[&str])] = &[
        ("rsa", &["-t", "rsa", "-b", "2048"]),
        ("rsa3072", &["-t", "rsa"]),
        ("dsa", &["-t", "dsa"]),
        ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
        ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
        ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
        ("ed25519", &["-t", "ed25519"]),
    ];
    // (public key file, what ssh-keygen says about it)
    let mut pubs = Vec::new();
    for (name, args) in specs {
        let f = dir.path().join(name);
        let comment = format!("{name} test@oracle with  spaces");
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-q", "-N", "", "-C", &comment, "-f", f.to_str().unwrap()]);
        let out = keygen(&a);
        if *name == "dsa" && !out.status.success() {
            // OpenSSH 9.8+ builds without DSA: that is the only allowed miss.
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            assert!(
                err.contains("unknown") || err.contains("unsupported"),
                "{err}"
            );
            continue;
        }
        assert!(out.status.success(), "ssh-keygen {a:?}: {out:?}");
        pubs.push(f.with_extension("pub"));
    }
    assert!(pubs.len() >= 6);
    // Certificates: ssh-keygen signs two keys with an ed25519 CA.
    let ca = dir.path().join("ed25519");
    for (name, ids) in [("ed25519", "alice,bob"), ("ecdsa384", "carol")] {
        let pk = dir.path().join(format!("{name}.pub"));
        let out = keygen(&[
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-I",
            &format!("id-{name}"),
            "-n",
            ids,
            "-V",
            "+52w",
            pk.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        pubs.push(dir.path().join(format!("{name}-cert.pub")));
    }
    // Every fixture public key ssh-keygen accepts (FIDO keys cannot be
    // generated without a token, so these stand in for them).
    for e in std::fs::read_dir(fixtures_dir().join("ssh/pubkeys")).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().contains("opaque") {
            pubs.push(p);
        }
    }
    pubs.sort();

    let mut text = String::from("# oracle\r\n\n");
    let mut expected = Vec::new();
    for p in &pubs {
        let line = std::fs::read_to_string(p).unwrap();
        text.push_str(&format!("  {OPTIONS} {}\n", line.trim_end()));
        expected.push((p.clone(), keygen_l(p)));
    }
    let parsed = parse(&text);
    assert!(parsed.malformed.is_empty(), "{:?}", parsed.malformed);
    assert_eq!(parsed.keys.len(), expected.len());
    let mut labels = std::collections::BTreeSet::new();
    for (k, (p, (bits, fp, comment, label))) in parsed.keys.iter().zip(&expected) {
        let what = p.display();
        assert_eq!(k.bits, *bits, "{what}");
        assert_eq!(&k.fingerprint, fp, "{what}");
        assert_eq!(&k.label, label, "{what}");
        let shown = if k.comment.is_empty() {
            "no comment"
        } else {
            &k.comment
        };
        assert_eq!(shown, comment, "{what}");
        let o: Vec<(&str, &str)> = k
            .options
            .iter()
            .map(|o| (o.name.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            o,
            vec![
                ("from", "10.0.0.1,192.0.2.0/24"),
                ("command", "echo \"a, b\" done"),
                ("no-pty", ""),
                ("expiry-time", "20300101"),
            ],
            "{what}"
        );
        assert!(k.problems.is_empty(), "{what}: {:?}", k.problems);
        labels.insert(label.clone());
    }
    for l in [
        "RSA",
        "ECDSA",
        "ED25519",
        "ECDSA-SK",
        "ED25519-SK",
        "ED25519-CERT",
        "ECDSA-CERT",
        "RSA-CERT",
        "DSA",
    ] {
        assert!(labels.contains(l), "no {l} key was checked: {labels:?}");
    }
    // Certificates made here: key id and principals as ssh-keygen set them.
    let certs: Vec<_> = parsed
        .keys
        .iter()
        .filter_map(|k| k.certificate.as_ref())
        .filter(|c| c.key_id.starts_with("id-"))
        .map(|c| {
            (
                c.key_id.as_str(),
                c.principals.join(","),
                c.cert_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        certs,
        vec![
            ("id-ecdsa384", "carol".to_string(), "user"),
            ("id-ed25519", "alice,bob".to_string(), "user"),
        ]
    );

    // ssh-keygen reads the whole options file too: same fingerprints.
    let file = dir.path().join("authorized_keys");
    std::fs::write(&file, &text).unwrap();
    let out = keygen(&["-lf", file.to_str().unwrap()]);
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    let ours: Vec<String> = parsed.keys.iter().map(|k| k.fingerprint.clone()).collect();
    assert_eq!(ours, theirs);
}

/// OpenSSH's own unit tests record each test key's fingerprint beside it
/// (`*.fp`): a second oracle, written by OpenSSH itself, for the same
/// keys and certificates ssh-keygen is asked about above.
#[test]
fn fingerprints_match_the_ones_openssh_recorded_for_its_test_keys() {
    let fps = fixtures_dir().join("ssh/pubkeys-fp");
    let mut n = 0;
    for e in std::fs::read_dir(&fps).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let recorded = std::fs::read_to_string(&p).unwrap();
        let line = std::fs::read_to_string(fixtures_dir().join(format!("ssh/pubkeys/{stem}.pub")))
            .unwrap_or_else(|e| panic!("{stem}.pub beside its .fp: {e}"));
        let parsed = parse(&line);
        assert!(
            parsed.malformed.is_empty(),
            "{stem}: {:?}",
            parsed.malformed
        );
        assert_eq!(parsed.keys.len(), 1, "{stem}");
        assert_eq!(parsed.keys[0].fingerprint, recorded.trim(), "{stem}");
        n += 1;
    }
    assert!(n >= 15, "only {n} recorded fingerprints");
}
