use std::fs;

use super::*;
use crate::testutil::fixtures_dir;

/// 2025-12-01: after carol's expiry (2020-01-31) and alice's password
/// age (2025-08-30).
const TODAY: i64 = 20_423;

fn root_of(name: &str) -> HostFs {
    HostFs::new(fixtures_dir().join("accounts").join(name))
}

fn user<'a>(s: &'a AccountsSection, name: &str) -> &'a LocalUser {
    s.users
        .iter()
        .find(|u| u.name == name)
        .unwrap_or_else(|| panic!("{name} in {:?}", s.users))
}

#[test]
fn a_debian_host_made_with_shadow_utils() {
    let s = collect_accounts(&root_of("debian12-useradd"), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert!(s.shadow_read);
    let alice = user(&s, "alice");
    assert_eq!(
        (
            alice.uid,
            alice.primary_group.as_str(),
            alice.shell.as_str()
        ),
        (1001, "alice", "/bin/bash")
    );
    assert_eq!(alice.groups, vec!["sudo"]);
    assert_eq!(alice.admin_groups, vec!["sudo"]);
    assert!(alice.login_shell && !alice.extra_root);
    assert_eq!(
        (
            alice.password_state.as_str(),
            alice.password_expires.as_str(),
            alice.password_expired
        ),
        ("set", "2025-08-30", true)
    );
    let carol = user(&s, "carol");
    assert_eq!(
        (carol.expires.as_str(), carol.expired),
        ("2020-01-31", true)
    );
    assert_eq!(carol.groups, vec!["wheel"]);
    assert_eq!(carol.admin_groups, vec!["wheel"]);
    // erin's primary group is wheel (useradd -g wheel): admin by it.
    let erin = user(&s, "erin");
    assert_eq!(
        (erin.primary_group.as_str(), erin.groups.len()),
        ("wheel", 0)
    );
    assert_eq!(erin.admin_groups, vec!["wheel"]);
    assert_eq!(erin.password_expires, "now");
    assert_eq!(user(&s, "bob").password_state, "locked");
    assert_eq!(user(&s, "dave").password_state, "empty");
    let svc = user(&s, "svc-backup");
    assert!(!svc.login_shell);
    let toor = user(&s, "toor");
    assert!(toor.extra_root && toor.uid == 0);
    assert!(!user(&s, "root").extra_root);
    assert_eq!(
        s.users.iter().filter(|u| u.extra_root).count(),
        1,
        "only toor is a second root"
    );
    // Sorted by uid: root and toor first.
    assert_eq!(s.users[0].uid, 0);
    let sudo = s.groups.iter().find(|g| g.name == "sudo").unwrap();
    assert!(sudo.admin && sudo.members == vec!["alice"]);
}

/// No field of the section, problems included, holds any part of a
/// password hash from the shadow file that was read.
#[test]
fn no_hash_text_leaves_the_shadow_reader() {
    for name in ["debian12-useradd", "malformed"] {
        let shadow = fs::read_to_string(
            fixtures_dir()
                .join("accounts")
                .join(name)
                .join("etc/shadow"),
        )
        .unwrap();
        let secrets: Vec<&str> = shadow
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|p| p.trim_start_matches('!'))
            .filter(|p| p.len() > 3)
            .collect();
        assert!(!secrets.is_empty(), "{name} holds hashes to look for");
        let s = collect_accounts(&root_of(name), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let debug = format!("{s:?}");
        for secret in &secrets {
            // Any 8-byte window of a hash (salts and digests alike).
            for w in secret.as_bytes().windows(8) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(
                    !json.contains(w) && !debug.contains(w),
                    "{name}: {w:?} leaked"
                );
            }
        }
    }
}

#[test]
fn malformed_lines_are_reported_with_file_and_line() {
    let s = collect_accounts(&root_of("malformed"), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
    let got: Vec<(&str, u32)> = s
        .problems
        .iter()
        .map(|p| (p.source.as_str(), p.line))
        .collect();
    assert_eq!(
        got,
        vec![
            (PASSWD, 4),
            (PASSWD, 5),
            (GROUP, 4),
            (SHADOW, 4),
            (SHADOW, 5)
        ]
    );
    // The good lines still count: toor is a second root and in sudo.
    let toor = user(&s, "toor");
    assert!(toor.extra_root);
    assert_eq!(toor.admin_groups, vec!["sudo"]);
}

/// No shadow (a base-passwd tree, whose password fields are `*`): the
/// state is what passwd's own field says; `x` without shadow is unknown,
/// not guessed.
#[test]
fn without_shadow_passwd_decides_or_the_state_is_unknown() {
    let s = collect_accounts(&root_of("base-passwd"), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
    assert!(!s.shadow_read);
    assert!(s.users.iter().all(|u| u.password_state == "disabled"));
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nopen::1000:1000::/home/open:/bin/sh\n",
    )
    .unwrap();
    let t = collect_accounts(&HostFs::new(d.path()), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
    assert_eq!(user(&t, "root").password_state, "unknown");
    assert_eq!(user(&t, "open").password_state, "empty");
    assert_eq!(user(&s, "nobody").uid, 65534);
}

#[test]
fn a_file_over_its_bound_is_cut_at_a_whole_line_and_said() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("u{i}:x:{}:100::/home/u{i}:/bin/sh\n", 2000 + i));
    }
    fs::write(d.path().join("etc/passwd"), &text).unwrap();
    let s = collect_accounts(&HostFs::new(d.path()), TODAY, 1000).unwrap();
    assert!(s.users.len() < 100 && !s.users.is_empty());
    assert!(
        s.problems
            .iter()
            .any(|p| p.source == PASSWD && p.message.contains("larger than 1000 bytes")),
        "{:?}",
        s.problems
    );
    // Cut at a line end: no half-read account is reported as malformed.
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
}

/// /etc/shadow as a link to a file outside the root: re-rooted, so the
/// file outside is never read.
#[test]
fn a_link_out_of_the_root_is_not_followed_out() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join("shadow"),
        "root:$6$outside$leak:1:0:99999:7:::\n",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path().join("shadow"), d.path().join("etc/shadow")).unwrap();
    let s = collect_accounts(&HostFs::new(d.path()), TODAY, MAX_ACCOUNT_FILE_BYTES).unwrap();
    assert!(!s.shadow_read);
    assert_eq!(user(&s, "root").password_state, "unknown");
}

#[test]
fn no_passwd_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    match collect_accounts(&HostFs::new(d.path()), TODAY, MAX_ACCOUNT_FILE_BYTES) {
        Err(SectionError::Unsupported(why)) => assert!(why.contains(PASSWD), "{why}"),
        other => panic!("{other:?}"),
    }
}
