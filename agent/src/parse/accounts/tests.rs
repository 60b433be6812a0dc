use super::*;
use crate::testutil::fixture;

#[test]
fn groups_parse_with_members_and_bad_lines_by_number() {
    let (groups, bad) = parse_group(&fixture("accounts/malformed/etc/group"));
    let names: Vec<(&str, u32, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.gid,
                g.members.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("root", 0, vec![]),
            ("daemon", 1, vec![]),
            ("bin", 2, vec![]),
            ("sudo", 27, vec!["erin", "toor"]),
        ]
    );
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4]);
    assert!(
        bad[0].1.contains("4 ':'-separated fields, found 3"),
        "{bad:?}"
    );
}

#[test]
fn debian_base_passwd_groups_all_parse() {
    let (groups, bad) = parse_group(&fixture("accounts/base-passwd/etc/group"));
    assert!(bad.is_empty(), "{bad:?}");
    let sudo = groups.iter().find(|g| g.name == "sudo").unwrap();
    assert_eq!((sudo.gid, sudo.members.len()), (27, 0));
    assert_eq!(
        groups.iter().find(|g| g.name == "nogroup").unwrap().gid,
        65534
    );
}

/// What shadow-utils itself wrote (SOURCES.md: useradd, chpasswd, usermod
/// -L, chage, passwd -d), read back as states.
#[test]
fn shadow_states_of_real_tool_output() {
    let (states, bad) = shadow_states(&fixture("accounts/debian12-useradd/etc/shadow"));
    assert!(bad.is_empty(), "{bad:?}");
    let get = |n: &str| states.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(get("root").password_state, "disabled");
    assert_eq!(get("sshd").password_state, "locked");
    let alice = get("alice");
    assert_eq!(alice.password_state, "set");
    // chage -M 90 -d 2025-06-01: 20240 + 90.
    assert_eq!(alice.password_expires_day, Some(20_330));
    assert_eq!(date_of_day(20_330), "2025-08-30");
    assert_eq!(get("bob").password_state, "locked");
    let carol = get("carol");
    assert_eq!(carol.password_state, "set");
    assert_eq!(
        carol.expires_day.map(date_of_day).as_deref(),
        Some("2020-01-31")
    );
    assert_eq!(carol.password_expires_day, None);
    assert_eq!(get("dave").password_state, "empty");
    // chage -d 0: a change is forced at the next login.
    assert_eq!(get("erin").password_expires_day, Some(0));
}

#[test]
fn malformed_shadow_lines_are_named_by_number_without_their_content() {
    let (states, bad) = shadow_states(&fixture("accounts/malformed/etc/shadow"));
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5]);
    for (_, why) in &bad {
        assert!(!why.contains('$') && !why.contains("abc"), "{why}");
        assert!(!why.contains("half") && !why.contains("zero"), "{why}");
    }
    assert_eq!(states.len(), 5);
}

#[test]
fn password_fields_become_states() {
    for (field, state) in [
        ("", "empty"),
        ("!", "locked"),
        ("!!", "locked"),
        ("!$6$salt$hash", "locked"),
        ("*", "disabled"),
        ("x", "disabled"),
        ("$y$j9T$abc$def", "set"),
        ("abJnggxhB/yWI", "set"),
    ] {
        assert_eq!(password_state(field), state, "{field:?}");
    }
}

#[test]
fn login_shells_are_told_from_refusing_ones() {
    for (shell, login) in [
        ("/bin/bash", true),
        ("/usr/bin/zsh", true),
        ("", true),
        ("/usr/sbin/nologin", false),
        ("/sbin/nologin", false),
        ("/bin/false", false),
        ("/bin/sync", false),
    ] {
        assert_eq!(is_login_shell(shell), login, "{shell:?}");
    }
}

#[test]
fn days_are_dates() {
    for (d, date) in [
        (0, "1970-01-01"),
        (18_292, "2020-01-31"),
        (19_782, "2024-02-29"),
        (-1, "1969-12-31"),
        (2_932_896, "9999-12-31"),
    ] {
        assert_eq!(date_of_day(d), date, "{d}");
    }
}
