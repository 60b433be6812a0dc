use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::testutil::fixture;

fn write(root: &std::path::Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Debian's sudoers with drop-ins: the ones sudo reads are parsed, the
/// ones it skips (a '.' in the name, a trailing '~') are not, and a
/// world-writable one is refused and reported.
#[test]
fn includes_are_followed_as_sudo_follows_them() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(
        root,
        "etc/sudoers",
        &fixture("sudoers/debian12-sudoers"),
        0o440,
    );
    write(
        root,
        "etc/sudoers.d/ops",
        "alice ALL=(ALL) NOPASSWD: ALL\n@include extra.inc\n",
        0o440,
    );
    write(
        root,
        "etc/sudoers.d/extra.inc",
        "bob ALL = /usr/bin/systemctl restart nginx\n",
        0o440,
    );
    write(root, "etc/sudoers.d/README", "# a comment only\n", 0o440);
    write(
        root,
        "etc/sudoers.d/skip.conf",
        "mallory ALL=(ALL) ALL\n",
        0o440,
    );
    write(root, "etc/sudoers.d/ops~", "mallory ALL=(ALL) ALL\n", 0o440);
    write(
        root,
        "etc/sudoers.d/open",
        "eve ALL=(ALL) NOPASSWD: ALL\n",
        0o666,
    );
    let s = collect_sudoers(&HostFs::new(root), MAX_CONFIG_BYTES).unwrap();
    let who: Vec<(&str, &str, bool, bool)> = s
        .rules
        .iter()
        .map(|r| {
            (
                r.principal.as_str(),
                r.command.as_str(),
                r.nopasswd,
                r.grants_root,
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("root", "ALL", false, true),
            ("%sudo", "ALL", false, true),
            ("alice", "ALL", true, true),
            ("bob", "/usr/bin/systemctl restart nginx", false, false),
        ]
    );
    let open = s
        .files
        .iter()
        .find(|f| f.path == "/etc/sudoers.d/open")
        .unwrap();
    assert!(open.refused.contains("world-writable"), "{open:?}");
    assert!(
        !s.files
            .iter()
            .any(|f| f.path.contains("skip") || f.path.ends_with('~'))
    );
    let extra = s
        .files
        .iter()
        .find(|f| f.path == "/etc/sudoers.d/extra.inc")
        .unwrap();
    assert_eq!(extra.included_from, "/etc/sudoers.d/ops");
    assert!(s.valid, "{:?}", s.problems);
}

#[test]
fn a_syntax_error_makes_the_section_invalid_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "etc/sudoers",
        "root ALL=(ALL) ALL\nalice ALL = ls\n",
        0o440,
    );
    let s = collect_sudoers(&HostFs::new(d.path()), MAX_CONFIG_BYTES).unwrap();
    assert!(!s.valid);
    assert_eq!(
        (s.problems[0].file.as_str(), s.problems[0].line),
        (SUDOERS, 2)
    );
    assert_eq!(s.rules.len(), 1);
}

#[test]
fn includes_nested_too_deep_are_reported() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "etc/sudoers", "@include /etc/s1\n", 0o440);
    for i in 1..=MAX_INCLUDE_DEPTH + 2 {
        write(
            d.path(),
            &format!("etc/s{i}"),
            &format!("@include /etc/s{}\n", i + 1),
            0o440,
        );
    }
    let s = collect_sudoers(&HostFs::new(d.path()), MAX_CONFIG_BYTES).unwrap();
    assert!(
        s.problems
            .iter()
            .any(|p| p.message.contains("nested deeper than")),
        "{:?}",
        s.problems
    );
    assert_eq!(s.files.len(), MAX_INCLUDE_DEPTH + 1);
}

#[test]
fn no_sudoers_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(
        collect_sudoers(&HostFs::new(d.path()), MAX_CONFIG_BYTES),
        Err(SectionError::Unsupported(_))
    ));
}
