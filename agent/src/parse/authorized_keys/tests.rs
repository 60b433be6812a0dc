use super::*;
use crate::testutil::{fixture, fixtures_dir};

/// (line, label, bits, fingerprint, comment) of every key.
fn summary(p: &Parsed) -> Vec<(u32, &str, u32, &str, &str)> {
    p.keys
        .iter()
        .map(|k| {
            (
                k.line,
                k.label.as_str(),
                k.bits,
                k.fingerprint.as_str(),
                k.comment.as_str(),
            )
        })
        .collect()
}

fn opts(k: &AuthorizedKey) -> Vec<(&str, &str)> {
    k.options
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_str()))
        .collect()
}

#[test]
fn rustcrypto_fixture_options_comments_blank_lines() {
    let p = parse(&fixture(
        "ssh/authorized_keys-rustcrypto-options-comments-blank-lines.txt",
    ));
    assert!(p.malformed.is_empty(), "{:?}", p.malformed);
    // Fingerprints as `ssh-keygen -lf` prints them for this file.
    assert_eq!(
        summary(&p),
        vec![
            (
                19,
                "ED25519",
                256,
                "SHA256:UCUiLr7Pjs9wFFJMDByLgc3NrtdU344OgUM45wZPcIQ",
                ""
            ),
            (
                22,
                "ECDSA",
                256,
                "SHA256:JQ6FV0rf7qqJHZqIj4zNH8eV0oB8KLKh9Pph3FTD98g",
                "user2@example.com"
            ),
            (
                25,
                "DSA",
                1024,
                "SHA256:Nh0Me49Zh9fDw/VYUfq43IJmI1T+XrjiYONPND8GzaM",
                "user3@example.com"
            ),
            (
                28,
                "RSA",
                4096,
                "SHA256:FKAyeywtQNZLl1YTzIzCV/ThadBlnWMaD7jHQYDseEY",
                "user4@example.com"
            ),
            (
                31,
                "ECDSA",
                256,
                "SHA256:6gGQ78cmzGJqvY324gYXvW0q+f6FvIg7ujl+Zc7nVaA",
                "hello world this is a long comment"
            ),
        ]
    );
    assert_eq!(opts(&p.keys[1]), vec![("command", "/usr/bin/date")]);
    assert_eq!(
        opts(&p.keys[2]),
        vec![("environment", "PATH=/bin:/usr/bin")]
    );
    assert_eq!(
        opts(&p.keys[3]),
        vec![
            ("from", "10.0.0.?,*.example.com"),
            ("no-x11-forwarding", "")
        ]
    );
    assert_eq!(p.keys[2].key_type, "ssh-dss");
    assert!(p.keys.iter().all(|k| k.problems.is_empty()));
}

#[test]
fn ssh_assets_fixture_manpage_options_and_type_mismatch() {
    let text = fixture("ssh/authorized_keys-ssh-assets-manpage-options-real-keys.txt");
    let p = parse(&text);
    assert_eq!(
        summary(&p),
        vec![
            (
                5,
                "ED25519",
                256,
                "SHA256:MGQYDcaNR7O8GnZZdPYVzAKpEtPFmrnAQvfjqEhbRpU",
                ""
            ),
            (
                6,
                "DSA",
                1024,
                "SHA256:Z1pltblH88Q0vKqEbR7JmUDmQFb7gP60XdhTUcfs+7k",
                "complex example with comment"
            ),
            (
                7,
                "DSA",
                1024,
                "SHA256:x/rFeORGgVsUf2428lMF66siZmuokkfXOC0ajFNmQ/4",
                "DSA format SSH key for unit tests"
            ),
            (
                8,
                "RSA",
                3072,
                "SHA256:4x+zy57DIgnlhJUG6bWgXPBk/o8fUxp5K3N7N0CnGNI",
                "demo@example.net"
            ),
            (
                9,
                "ED25519",
                256,
                "SHA256:Em8g+F4WH/1EDGNWYxyyh5O8qUL+GZRKUvf0/X1Dcv8",
                ""
            ),
            (
                10,
                "ED25519",
                256,
                "SHA256:MGQYDcaNR7O8GnZZdPYVzAKpEtPFmrnAQvfjqEhbRpU",
                "ed25519 format SSH key for unit tests"
            ),
            (
                11,
                "RSA",
                3072,
                "SHA256:gIwUx2wF5JN6QKCzjE+9/KH+dWKmGTjNl23BNCdwN/k",
                ""
            ),
        ]
    );
    assert_eq!(
        opts(&p.keys[1]),
        vec![
            ("from", "*.sales.example.net,!pc.sales.example.net"),
            ("command", "dump /home"),
            ("no-pty", ""),
            ("no-port-forwarding", ""),
        ]
    );
    assert_eq!(
        opts(&p.keys[2]),
        vec![
            ("permitopen", "192.0.2.1:80"),
            ("permitopen", "192.0.2.2:25")
        ]
    );
    assert_eq!(
        opts(&p.keys[3]),
        vec![
            ("permitlisten", "localhost:8080"),
            ("permitopen", "localhost:22000")
        ]
    );
    assert_eq!(
        opts(&p.keys[4]),
        vec![("tunnel", "0"), ("command", "sh /etc/netstart tun0")]
    );
    assert_eq!(
        opts(&p.keys[5]),
        vec![("restrict", ""), ("command", "uptime")]
    );
    assert_eq!(
        opts(&p.keys[6]),
        vec![("restrict", ""), ("pty", ""), ("command", "nethack")]
    );
    // The last line calls an ecdsa-sha2-nistp256 blob an sk-ecdsa key:
    // sshd (and ssh-keygen) reject it, so must we.
    assert_eq!(p.malformed.len(), 1);
    let m = &p.malformed[0];
    assert_eq!(m.line, 12);
    assert!(m.reason.contains("mismatch"), "{}", m.reason);
    assert!(m.reason.contains("ecdsa-sha2-nistp256"), "{}", m.reason);
    assert!(m.text.starts_with("no-touch-required sk-ecdsa"));
    // Byte ranges point at exactly the line.
    for k in &p.keys {
        let s = &text[k.byte_offset as usize..(k.byte_offset + k.byte_len) as usize];
        assert_eq!(text.lines().nth(k.line as usize - 1), Some(s));
    }
}

#[test]
fn sshd8_placeholder_keys_are_malformed_with_their_options_understood() {
    let p = parse(&fixture(
        "ssh/authorized_keys-sshd8-manpage-example-placeholder-keys.txt",
    ));
    assert!(p.keys.is_empty());
    let lines: Vec<u32> = p.malformed.iter().map(|m| m.line).collect();
    assert_eq!(lines, vec![3, 5, 7, 9, 11, 13, 15, 17, 19]);
    for m in &p.malformed {
        assert_eq!(m.reason, "key data is not valid base64", "line {}", m.line);
    }
    assert!(
        p.malformed[8]
            .text
            .starts_with("cert-authority,no-touch-required,principals=\"user_a\"")
    );
}

#[test]
fn every_fixture_pubkey_matches_ssh_keygen() {
    // Read by hand from `ssh-keygen -lf` on each file (the oracle test
    // below also runs it live).
    let cases: &[(&str, &str, u32, &str)] = &[
        (
            "openssh-ecdsa_1.pub",
            "ECDSA",
            256,
            "SHA256:8ty77fOpABat1y88aNdclQTfU+lVvWe7jYZGw8VYtfg",
        ),
        (
            "openssh-ecdsa_sk1.pub",
            "ECDSA-SK",
            256,
            "SHA256:Go7HO0CVPYG+BSDSk9ZUJBKGSrtBExp6obTa9iqzIUo",
        ),
        (
            "openssh-ed25519_1-cert.pub",
            "ED25519-CERT",
            256,
            "SHA256:L3k/oJubblSY0lB9Ulsl7emDMnRPKm/8udf2ccwk560",
        ),
        (
            "openssh-ed25519_1.pub",
            "ED25519",
            256,
            "SHA256:L3k/oJubblSY0lB9Ulsl7emDMnRPKm/8udf2ccwk560",
        ),
        (
            "openssh-ed25519_sk1.pub",
            "ED25519-SK",
            256,
            "SHA256:6WZVJ44bqhAWLVP4Ns0TDkoSQSsZo/h2K+mEvOaNFbw",
        ),
        (
            "openssh-id_dsa.pub",
            "DSA",
            1024,
            "SHA256:QMKu4jNQT2KdrzmTzyXIa1RFG8Kx6yqsoRCbuZQJXsc",
        ),
        (
            "openssh-rsa_1.pub",
            "RSA",
            1024,
            "SHA256:l6itGumSMcRBBAFteCgmjQBIXqLK/jFGUH3viHX1RmE",
        ),
        (
            "rustcrypto-id_ecdsa_p384.pub",
            "ECDSA",
            384,
            "SHA256:nkGE8oV7pHvOiPKHtQRs67WUPiVLRxbNu//gV/k4Vjw",
        ),
        (
            "rustcrypto-id_ecdsa_p521.pub",
            "ECDSA",
            521,
            "SHA256:l3AUUMK6Q2BbuiqvMx2fs97f8LUYq7sWCAx7q5m3S6M",
        ),
        (
            "rustcrypto-id_rsa_4096-cert.pub",
            "RSA-CERT",
            4096,
            "SHA256:FKAyeywtQNZLl1YTzIzCV/ThadBlnWMaD7jHQYDseEY",
        ),
        (
            "rustcrypto-id_sk_ecdsa_p256.pub",
            "ECDSA-SK",
            256,
            "SHA256:UINe2WXFh3SiqwLxsBv34fBO2ei+g7uOeJJXVEK95iE",
        ),
        (
            "rustcrypto-id_sk_ed25519.pub",
            "ED25519-SK",
            256,
            "SHA256:6WZVJ44bqhAWLVP4Ns0TDkoSQSsZo/h2K+mEvOaNFbw",
        ),
    ];
    for (file, label, bits, fp) in cases {
        let p = parse(&fixture(&format!("ssh/pubkeys/{file}")));
        assert!(p.malformed.is_empty(), "{file}: {:?}", p.malformed);
        assert_eq!(p.keys.len(), 1, "{file}");
        let k = &p.keys[0];
        assert_eq!(
            (k.label.as_str(), k.bits, k.fingerprint.as_str()),
            (*label, *bits, *fp),
            "{file}"
        );
    }
}

#[test]
fn certificates_report_key_id_principals_and_validity() {
    let p = parse(&fixture("ssh/pubkeys/openssh-ed25519_1-cert.pub"));
    let k = &p.keys[0];
    assert_eq!(k.key_type, "ssh-ed25519-cert-v01@openssh.com");
    assert_eq!(k.comment, "ED25519 test key #1");
    let c = k.certificate.as_ref().expect("certificate info");
    // Values as `ssh-keygen -Lf` shows them for this certificate.
    assert_eq!(c.key_id, "julius");
    assert_eq!(c.principals, vec!["host1".to_string(), "host2".to_string()]);
    assert_eq!(c.cert_type, "host");
    assert_eq!(c.serial, 8);
    assert!(c.valid_after < c.valid_before);
    // Self-signed: the CA is the key itself.
    assert_eq!(
        c.ca_fingerprint,
        "SHA256:L3k/oJubblSY0lB9Ulsl7emDMnRPKm/8udf2ccwk560"
    );
    let p = parse(&fixture("ssh/pubkeys/rustcrypto-id_rsa_4096-cert.pub"));
    let c = p.keys[0].certificate.as_ref().unwrap();
    assert_eq!(
        (c.key_id.as_str(), c.cert_type.as_str(), c.serial),
        ("rsa", "user", 0)
    );
    assert!(c.principals.is_empty());
    assert_eq!(
        c.ca_fingerprint,
        "SHA256:UCUiLr7Pjs9wFFJMDByLgc3NrtdU344OgUM45wZPcIQ"
    );
    assert!(
        parse(&fixture("ssh/pubkeys/openssh-ed25519_1.pub")).keys[0]
            .certificate
            .is_none()
    );
}

#[test]
fn unknown_key_type_is_malformed() {
    let p = parse(&fixture("ssh/pubkeys/rustcrypto-id_opaque.pub"));
    assert!(p.keys.is_empty());
    assert_eq!(p.malformed.len(), 1);
    assert_eq!(p.malformed[0].line, 1);
    assert_eq!(
        p.malformed[0].reason,
        "unknown key type \"name@example.com\""
    );
    // Behind options too.
    let p = parse(
        "restrict name@example.com AAAAEG5hbWVAZXhhbXBsZS5jb20AAAAgiI8k7het/tAJHmfkhfuYRM/tYHLKwdBjkOQAX1AVtE8=\n",
    );
    assert_eq!(
        p.malformed[0].reason,
        "unknown key type \"name@example.com\""
    );
}

const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

#[test]
fn crlf_leading_space_comments_blank_and_bad_lines() {
    let text = format!(
        "# c\r\n\r\n   \t ssh-ed25519 {ED} a b \r\n  # indented comment\n\
         command=\"unterminated ssh-ed25519 {ED}\r\n\
         ssh-ed25519\n\
         ssh-foo {ED}\n\
         \u{0}\u{1}garbage\u{fffd}\n\
         bogus,restrict ssh-ed25519 {ED} x\n\
         ssh-ed25519 {ED}"
    );
    let p = parse(&text);
    assert_eq!(p.keys.len(), 3);
    assert_eq!(p.keys[0].line, 3);
    assert_eq!(p.keys[0].comment, "a b");
    assert_eq!(p.keys[0].byte_offset, 7);
    // The range covers the leading whitespace but not the CRLF.
    assert_eq!(
        p.keys[0].byte_len as usize,
        format!("   \t ssh-ed25519 {ED} a b ").len()
    );
    assert_eq!(p.keys[1].line, 9);
    assert_eq!(p.keys[1].problems.len(), 1);
    assert!(p.keys[1].problems[0].contains("\"bogus\""));
    // Last line without a newline still counts.
    assert_eq!(p.keys[2].line, 10);
    assert_eq!(
        (p.keys[2].byte_offset + p.keys[2].byte_len) as usize,
        text.len()
    );
    let m: Vec<(u32, &str)> = p
        .malformed
        .iter()
        .map(|m| (m.line, m.reason.as_str()))
        .collect();
    assert_eq!(m.len(), 4, "{m:?}");
    assert_eq!(m[0].0, 5);
    assert!(m[0].1.contains("unterminated"), "{}", m[0].1);
    assert_eq!(m[1], (6, "ssh-ed25519: no key data"));
    assert_eq!(m[2], (7, "unknown key type \"ssh-foo\""));
    assert_eq!(m[3].0, 8);
}

#[test]
fn cert_authority_principals_and_fido_options() {
    let sk = fixture("ssh/pubkeys/openssh-ecdsa_sk1.pub");
    let text = format!(
        "cert-authority,no-touch-required,principals=\"user_a,user_b\" ssh-ed25519 {ED} ca\n\
         verify-required,environment=\"A=b c\" {}",
        sk.trim_end()
    );
    let p = parse(&text);
    assert!(p.malformed.is_empty(), "{:?}", p.malformed);
    assert_eq!(
        opts(&p.keys[0]),
        vec![
            ("cert-authority", ""),
            ("no-touch-required", ""),
            ("principals", "user_a,user_b")
        ]
    );
    assert_eq!(
        opts(&p.keys[1]),
        vec![("verify-required", ""), ("environment", "A=b c")]
    );
    assert_eq!(p.keys[1].label, "ECDSA-SK");
    assert!(p.keys.iter().all(|k| k.problems.is_empty()));
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    // A cheap fuzz: every prefix of a tricky line, and shuffled bytes.
    let line =
        format!("from=\"a,b\",command=\"x \\\"y\\\"\" ssh-rsa-cert-v01@openssh.com {ED}= c\n");
    for i in 0..line.len() {
        if line.is_char_boundary(i) {
            let _ = parse(&line[..i]);
        }
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.usize(0..80))
            .map(|_| *rng.choice(b"AQ=\"\\, \t\r\nssh-rsa#@".iter()).unwrap())
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn fixtures_dir_has_every_ssh_file_covered() {
    // A new fixture must get a test: fail when the corpus grows.
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir().join("ssh/pubkeys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // 24: every one goes through ssh-keygen -lf (oracle.rs), and those
    // from OpenSSH's test data also through the fingerprint OpenSSH
    // recorded for it (pubkeys-fp/).
    assert_eq!(names.len(), 24, "{names:?}");
}

mod certs;
mod oracle;
