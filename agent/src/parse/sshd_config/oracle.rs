//! The agent against `sshd -T -C user=U,host=H,addr=A`: sshd itself says
//! which settings are in force for a connection, Match blocks applied. For
//! the sshd_config fixtures and generated variants, every setting that
//! decides which keys log in (AuthorizedKeysFile, AuthorizedKeysCommand
//! and its user, TrustedUserCAKeys, PubkeyAuthentication) and
//! PasswordAuthentication must be what the agent's evaluation gives for
//! that user. The variants' Match blocks test only `User`, the one
//! criterion the agent judges (blocks on groups, addresses or hosts are
//! assumed to apply, deliberately: no key file may be missed).
//! sshd is a test dependency (openssh-server, scripts/ci-deps.sh).

use std::path::Path;
use std::process::Command;

use super::{SshdSettings, evaluate, match_may_apply_to};
use crate::testutil::fixture;

const KEYWORDS: &[&str] = &[
    "AuthorizedKeysFile",
    "AuthorizedKeysCommand",
    "AuthorizedKeysCommandUser",
    "TrustedUserCAKeys",
    "PubkeyAuthentication",
    "PasswordAuthentication",
];

const USERS: &[&str] = &["root", "git", "alice"];

/// sshd's effective value of each of [`KEYWORDS`] for `user`.
fn sshd_t(dir: &Path, conf: &str, user: &str) -> Vec<(String, String)> {
    // sshd -T refuses to run without its privilege separation directory,
    // which the package's service (not its install) creates.
    let _ = std::fs::create_dir_all("/run/sshd");
    let path = dir.join("sshd_config");
    std::fs::write(&path, conf).unwrap();
    let hostkey = dir.join("hostkey");
    if !hostkey.exists() {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&hostkey)
            .status()
            .expect("ssh-keygen must be installed (scripts/ci-deps.sh)");
        assert!(ok.success());
    }
    let out = Command::new("/usr/sbin/sshd")
        .arg("-T")
        .arg("-f")
        .arg(&path)
        .arg("-h")
        .arg(&hostkey)
        .arg("-C")
        .arg(format!("user={user},host=client.example,addr=192.0.2.7"))
        .output()
        .expect("sshd must be installed (openssh-server, scripts/ci-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sshd -T refused:\n{conf}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    KEYWORDS
        .iter()
        .map(|k| {
            let lower = k.to_ascii_lowercase();
            let v = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{lower} ")))
                .unwrap_or_else(|| panic!("sshd -T printed no {lower}:\n{text}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The agent's answer for `user`: a Match block that applies wins over the
/// global value (the first such block to set it), as in sshd.
fn agent(s: &SshdSettings, user: &str) -> Vec<(String, String)> {
    KEYWORDS
        .iter()
        .map(|k| {
            let from_match = s
                .match_blocks
                .iter()
                .filter(|b| match_may_apply_to(&b.criteria, user))
                .find_map(|b| {
                    b.settings
                        .iter()
                        .find(|x| x.keyword.eq_ignore_ascii_case(k))
                })
                .map(|x| x.value.clone());
            let global = match *k {
                "AuthorizedKeysFile" => s.authorized_keys_file.as_ref(),
                "AuthorizedKeysCommand" => s.authorized_keys_command.as_ref(),
                "AuthorizedKeysCommandUser" => s.authorized_keys_command_user.as_ref(),
                "TrustedUserCAKeys" => s.trusted_user_ca_keys.as_ref(),
                "PubkeyAuthentication" => s.pubkey_authentication.as_ref(),
                "PasswordAuthentication" => s.password_authentication.as_ref(),
                _ => unreachable!(),
            }
            .map(|x| x.value.clone());
            let v = from_match
                .or(global)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "none".into());
            (k.to_string(), v)
        })
        .collect()
}

fn check(dir: &Path, name: &str, conf: &str) {
    let s = evaluate("/etc/ssh/sshd_config", conf, &mut |_| Vec::new());
    for user in USERS {
        assert_eq!(
            agent(&s, user),
            sshd_t(dir, conf, user),
            "{name}, user {user}:\n{conf}"
        );
    }
}

#[test]
fn the_fixtures_agree_with_sshd_t() {
    let d = tempfile::tempdir().unwrap();
    let mut n = 0;
    // Not here: the RHEL sample (jc's test data) has invalid lines inside
    // its Match blocks, which sshd refuses outright; the agent reads on and
    // reports them (parse tests), since a refused config on disk does not
    // change what the running sshd does.
    for f in [
        "ssh/sshd_config-openssh-portable-default.txt",
        "ssh/sshd_config-gitlab-omnibus-docker.txt",
    ] {
        check(d.path(), f, &fixture(f));
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn generated_variants_agree_with_sshd_t() {
    let d = tempfile::tempdir().unwrap();
    let globals = [
        "",
        "AuthorizedKeysFile .ssh/authorized_keys\n",
        "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 /etc/ssh/keys/%u\n",
        "authorizedkeysfile=%h/.ssh/ak\nAuthorizedKeysFile /ignored/second\n",
        "AuthorizedKeysCommand /usr/bin/sss_ssh_authorizedkeys %u\nAuthorizedKeysCommandUser nobody\n",
        "TrustedUserCAKeys /etc/ssh/user_ca.pub\nPubkeyAuthentication no\nPasswordAuthentication no\n",
    ];
    let matches = [
        "",
        "Match User git\n  AuthorizedKeysFile /srv/git/%u/keys\n",
        "Match User git,alice\n  AuthorizedKeysCommand /bin/keys %u\n  AuthorizedKeysCommandUser nobody\n",
        "Match User *,!root\n  TrustedUserCAKeys /etc/ssh/other_ca.pub\n  PasswordAuthentication yes\n",
        "Match User al?ce\n  AuthorizedKeysFile none\nMatch User alice\n  AuthorizedKeysFile /not/first\n",
        "Match User git\n  PubkeyAuthentication no\nMatch all\nAuthorizedKeysFile /after/match/all\n",
    ];
    let mut n = 0;
    for g in globals {
        for m in matches {
            check(d.path(), &format!("variant {n}"), &format!("{g}{m}"));
            n += 1;
        }
    }
    assert_eq!(n, globals.len() * matches.len());
}
