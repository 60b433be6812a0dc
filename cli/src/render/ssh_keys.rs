//! `host show --section ssh_keys`: the sshd settings, one row per key, then
//! what an operator must look at (flagged files, malformed lines), each
//! such line starting with `!`.

use driftwatch_common::proto::{
    AuthorizedKey, AuthorizedKeysFile, KeyOption, SshKeysSection, SshdSetting, SshdSettings,
};

use super::table::{Table, clip};

pub fn render(s: &SshKeysSection) -> String {
    let mut out = String::new();
    if let Some(sshd) = &s.sshd {
        out.push_str(&settings(sshd));
    }
    let files: Vec<&AuthorizedKeysFile> = s
        .sshd
        .as_ref()
        .and_then(|d| d.trusted_user_ca_file.as_ref())
        .into_iter()
        .chain(&s.files)
        .collect();
    out.push_str(&keys_table(&files));
    out.push_str(&findings(&files));
    for e in &s.errors {
        out.push_str(&format!("! {e}\n"));
    }
    out
}

fn origin(s: &SshdSetting) -> String {
    if s.file.is_empty() {
        "(default)".into()
    } else {
        format!("({}:{})", s.file, s.line)
    }
}

/// Says whether a setting's value is one an operator must notice.
type Loud = fn(&str) -> bool;

fn settings(sshd: &SshdSettings) -> String {
    let mut out = String::new();
    if sshd.config_files.is_empty() {
        out.push_str("sshd config: (none read)\n");
    } else {
        out.push_str(&format!("sshd config: {}\n", sshd.config_files.join(", ")));
    }
    let mut t = Table::new(["", "SETTING", "VALUE", "FROM"]);
    // (setting, does its value deserve attention)
    let rows: [(&Option<SshdSetting>, Loud); 7] = [
        (&sshd.permit_root_login, |v| v == "yes"),
        (&sshd.password_authentication, |v| v == "yes"),
        (&sshd.pubkey_authentication, |_| false),
        (&sshd.authorized_keys_file, |_| false),
        // Keys from a command or a CA never show up in the table below.
        (&sshd.authorized_keys_command, |v| v != "none"),
        (&sshd.authorized_keys_command_user, |_| false),
        (&sshd.trusted_user_ca_keys, |v| v != "none"),
    ];
    for (s, loud) in rows {
        if let Some(s) = s {
            let mark = if loud(&s.value) { "!" } else { "" };
            t.row([
                mark.to_string(),
                s.keyword.clone(),
                s.value.clone(),
                origin(s),
            ]);
        }
    }
    for i in &sshd.includes {
        t.row([String::new(), i.keyword.clone(), i.value.clone(), origin(i)]);
    }
    out.push_str(&t.render());
    for m in &sshd.match_blocks {
        let inner: Vec<String> = m
            .settings
            .iter()
            .map(|s| format!("{} {}", s.keyword, s.value))
            .collect();
        out.push_str(&format!(
            "  Match {} ({}:{}): {}\n",
            m.criteria,
            m.file,
            m.line,
            clip(&inner.join("; "), 120)
        ));
    }
    for p in &sshd.problems {
        let at = if p.line > 0 {
            format!("{}:{}", p.file, p.line)
        } else {
            p.file.clone()
        };
        out.push_str(&format!("! sshd config {at}: {}\n", p.reason));
    }
    out.push('\n');
    out
}

fn option_text(o: &KeyOption) -> String {
    if o.has_value {
        format!("{}=\"{}\"", o.name, o.value.replace('"', "\\\""))
    } else {
        o.name.clone()
    }
}

fn options_cell(k: &AuthorizedKey) -> String {
    let mut s: Vec<String> = k.options.iter().map(option_text).collect();
    if let Some(c) = &k.certificate {
        s.push(format!(
            "[cert id={} principals={}]",
            c.key_id,
            c.principals.join(",")
        ));
        if !c.undecoded.is_empty() {
            s.push(format!("[cert not decoded: {}]", c.undecoded.join("; ")));
        }
    }
    clip(&s.join(","), 80)
}

/// The user a file belongs to; the TrustedUserCAKeys file has none.
fn who(f: &AuthorizedKeysFile) -> &str {
    if f.user.is_empty() { "(CA)" } else { &f.user }
}

fn keys_table(files: &[&AuthorizedKeysFile]) -> String {
    let count: usize = files.iter().map(|f| f.keys.len()).sum();
    let mut t = Table::new([
        "USER",
        "FILE",
        "LINE",
        "TYPE",
        "BITS",
        "FINGERPRINT",
        "COMMENT",
        "OPTIONS",
    ]);
    for f in files {
        for k in &f.keys {
            // A key in a flagged file, or one sshd would refuse, is marked.
            let mark = if f.flags.is_empty() && k.problems.is_empty() {
                ""
            } else {
                "!"
            };
            t.row([
                format!("{mark}{}", who(f)),
                f.path.clone(),
                k.line.to_string(),
                k.label.clone(),
                k.bits.to_string(),
                k.fingerprint.clone(),
                clip(&k.comment, 40),
                options_cell(k),
            ]);
        }
    }
    format!(
        "{} in {}\n{}",
        super::count(count as u64, "key"),
        super::count(files.len() as u64, "file"),
        t.render()
    )
}

fn findings(files: &[&AuthorizedKeysFile]) -> String {
    let mut out = String::new();
    for f in files {
        if !f.flags.is_empty() {
            let detail = if f.error.is_empty() {
                format!("mode {:04o} owner {}:{}", f.mode, f.owner_uid, f.owner_gid)
            } else {
                f.error.clone()
            };
            out.push_str(&format!(
                "! {} ({}): {}: {}\n",
                f.path,
                who(f),
                f.flags.join(", "),
                detail
            ));
        }
        for k in &f.keys {
            for p in &k.problems {
                out.push_str(&format!("! {}:{} ({}): {p}\n", f.path, k.line, who(f)));
            }
        }
        for m in &f.malformed {
            out.push_str(&format!(
                "! {}:{} ({}): malformed: {}: {}\n",
                f.path,
                m.line,
                who(f),
                m.reason,
                clip(&m.text, 60)
            ));
        }
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{CertificateInfo, MalformedKeyLine};

    fn set(k: &str, v: &str, file: &str, line: u32) -> Option<SshdSetting> {
        Some(SshdSetting {
            keyword: k.into(),
            value: v.into(),
            file: file.into(),
            line,
        })
    }

    #[test]
    fn keys_settings_and_findings() {
        let key = AuthorizedKey {
            line: 3,
            key_type: "ssh-ed25519".into(),
            label: "ED25519".into(),
            bits: 256,
            fingerprint: "SHA256:abc".into(),
            comment: "alice@laptop".into(),
            options: vec![
                KeyOption {
                    name: "command".into(),
                    value: "echo \"a, b\"".into(),
                    has_value: true,
                },
                KeyOption {
                    name: "no-pty".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let cert = AuthorizedKey {
            line: 4,
            label: "ED25519-CERT".into(),
            bits: 256,
            fingerprint: "SHA256:def".into(),
            certificate: Some(CertificateInfo {
                key_id: "julius".into(),
                principals: vec!["host1".into()],
                ..Default::default()
            }),
            problems: vec!["unknown option \"bogus\": sshd ignores this whole line".into()],
            ..Default::default()
        };
        let s = SshKeysSection {
            sshd: Some(SshdSettings {
                config_files: vec!["/etc/ssh/sshd_config".into()],
                permit_root_login: set("PermitRootLogin", "yes", "/etc/ssh/sshd_config", 7),
                password_authentication: set(
                    "PasswordAuthentication",
                    "no",
                    "/etc/ssh/sshd_config",
                    8,
                ),
                pubkey_authentication: set("PubkeyAuthentication", "yes", "", 0),
                trusted_user_ca_file: Some(AuthorizedKeysFile {
                    path: "/etc/ssh/ca.pub".into(),
                    pattern: "TrustedUserCAKeys".into(),
                    keys: vec![AuthorizedKey {
                        line: 1,
                        label: "ED25519".into(),
                        bits: 256,
                        fingerprint: "SHA256:ca".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                authorized_keys_command: set(
                    "AuthorizedKeysCommand",
                    "/usr/bin/keys %u",
                    "/etc/ssh/sshd_config",
                    9,
                ),
                ..Default::default()
            }),
            files: vec![
                AuthorizedKeysFile {
                    user: "alice".into(),
                    path: "/srv/alice/.ssh/authorized_keys".into(),
                    keys: vec![key, cert],
                    malformed: vec![MalformedKeyLine {
                        line: 5,
                        reason: "key data is not valid base64".into(),
                        text: "ssh-rsa ...".into(),
                        ..Default::default()
                    }],
                    mode: 0o600,
                    ..Default::default()
                },
                AuthorizedKeysFile {
                    user: "bob".into(),
                    path: "/var/lib/bob/.ssh/authorized_keys".into(),
                    flags: vec!["symlink_refused".into()],
                    error: "/var/lib/bob/.ssh/authorized_keys: is a symbolic link; not followed"
                        .into(),
                    ..Default::default()
                },
            ],
            errors: vec!["/etc/passwd line 3: bad".into()],
        };
        let out = render(&s);
        assert!(out.contains("!  PermitRootLogin         yes"), "{out}");
        assert!(out.contains("   PasswordAuthentication  no"), "{out}");
        assert!(
            out.contains("PubkeyAuthentication    yes               (default)"),
            "{out}"
        );
        assert!(
            out.contains("!  AuthorizedKeysCommand   /usr/bin/keys %u"),
            "{out}"
        );
        assert!(out.contains("USER    FILE"), "{out}");
        assert!(out.contains(
            "alice   /srv/alice/.ssh/authorized_keys  3     ED25519       256   SHA256:abc   alice@laptop  command=\"echo \\\"a, b\\\"\",no-pty"
        ), "{out}");
        assert!(
            out.contains("!alice  /srv/alice/.ssh/authorized_keys  4     ED25519-CERT"),
            "{out}"
        );
        assert!(out.contains("[cert id=julius principals=host1]"), "{out}");
        assert!(out.contains("3 keys in 3 files"), "{out}");
        assert!(out.contains("(CA)    /etc/ssh/ca.pub"), "{out}");
        assert!(
            out.contains("! /srv/alice/.ssh/authorized_keys:4 (alice): unknown option"),
            "{out}"
        );
        assert!(out.contains(
            "! /srv/alice/.ssh/authorized_keys:5 (alice): malformed: key data is not valid base64: ssh-rsa ..."
        ), "{out}");
        assert!(
            out.contains(
                "! /var/lib/bob/.ssh/authorized_keys (bob): symlink_refused: /var/lib/bob"
            ),
            "{out}"
        );
        assert!(out.ends_with("! /etc/passwd line 3: bad\n"), "{out}");
    }
}
