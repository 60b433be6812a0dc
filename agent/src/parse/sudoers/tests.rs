use super::expand::expand;
use super::*;
use crate::testutil::fixture;

fn rules_of(text: &str) -> Vec<String> {
    let p = parse(text);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let entries: Vec<(String, Entry)> = p
        .entries
        .into_iter()
        .map(|e| ("f".to_string(), e))
        .collect();
    let x = expand(&entries);
    assert!(x.errors.is_empty(), "{:?}", x.errors);
    x.rules
        .iter()
        .map(|r| {
            format!(
                "{} {}=({}:{}) {}{}{}",
                r.principal,
                r.hosts.join(","),
                r.runas_users.join(","),
                r.runas_groups.join(","),
                if r.nopasswd { "NOPASSWD " } else { "" },
                r.command,
                if r.grants_root { " [root]" } else { "" }
            )
        })
        .collect()
}

fn errors_of(text: &str) -> Vec<usize> {
    parse(text).errors.iter().map(|e| e.0).collect()
}

#[test]
fn debian_default_sudoers() {
    let text = fixture("sudoers/debian12-sudoers");
    let p = parse(&text);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let includes: Vec<&Entry> = p
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Include { .. }))
        .collect();
    assert_eq!(
        includes,
        vec![&Entry::Include {
            line: 54,
            path: "/etc/sudoers.d".into(),
            dir: true
        }]
    );
    assert_eq!(
        rules_of(&text),
        vec![
            "root ALL=(ALL:ALL) ALL [root]",
            "%sudo ALL=(ALL:ALL) ALL [root]"
        ]
    );
    let Entry::Defaults { settings, .. } = &p.entries[2] else {
        panic!("{:?}", p.entries[2])
    };
    assert_eq!(
        settings,
        &vec![(
            "secure_path".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
        )]
    );
}

/// sudo's regression file for tags: each continued line is one rule with
/// two host parts, tags carried per part.
#[test]
fn tags_and_continuations_of_sudo_regress_test1() {
    let r = rules_of(&fixture("sudoers/sudo-regress-test1.sudoers"));
    assert_eq!(r.len(), 8, "{r:?}");
    assert_eq!(r[0], "user1 ALL=(root:) /usr/bin/su - [root]");
    assert_eq!(r[2], "user2 ALL=(root:) NOPASSWD /usr/bin/vi");
    assert_eq!(r[3], "user2 ALL=(root:) /usr/bin/echo");
    assert_eq!(r[6], "user4 ALL=(root:) sudoedit /etc/motd");
}

#[test]
fn runas_groups_netgroups_and_uids() {
    let r = rules_of(&fixture("sudoers/sudo-regress-test27.sudoers"));
    assert_eq!(
        r,
        vec![
            "root ALL=(root:wheel) ALL [root]",
            "millert ALL=(:wheel) ALL",
            "%sudo ALL=(:ALL) ALL",
            "operator ALL=(%wheel:) ALL",
            "+netusers +nethosts=(+netrunas:) ALL",
        ]
    );
    let r = rules_of(&fixture("sudoers/sudo-regress-test6.sudoers"));
    assert_eq!(r[0], "#0 ALL=(root:) ALL [root]");
    assert_eq!(r[1], "#0 ALL=(#0:#0) ALL [root]");
    assert_eq!(r[4], "%#0 ALL=(root:) ALL [root]");
}

#[test]
fn digests_regexes_and_quoted_names() {
    let r = rules_of(&fixture("sudoers/sudo-regress-test14.sudoers"));
    assert_eq!(r[0], "millert ALL=(root:) /bin/ls");
    assert_eq!(r[1], "millert ALL=(root:) /bin/sh [root]");
    assert_eq!(r[2], "millert ALL=(root:) /bin/kill");
    assert_eq!(r[3], "operator ALL=(root:) ALL [root]");
    let r = rules_of(&fixture("sudoers/sudo-regress-test28.sudoers"));
    assert_eq!(r[0], "user ALL=(root:) /bin/ls ^/etc/(hosts|motd|issue)$");
    assert_eq!(
        r[6],
        "user ALL=(root:) ^/usr/bin/(who|w|id|whoami)$ ^(-[ahi] ?)+$"
    );
    let r = rules_of(&fixture("sudoers/sudo-regress-test2.sudoers"));
    assert_eq!(r[0], "foo hosta=(root:) ALL [root]");
    assert_eq!(r[2], "foo\" hostc=(root:) ALL [root]");
    assert_eq!(r[7], "%:C/non UNIX 0 c hostc=(root:) ALL [root]");
}

#[test]
fn aliases_resolve_and_nopasswd_comes_from_tags_or_authenticate() {
    let text = "User_Alias OPS = alice, bob : DEVS = carol\n\
                Runas_Alias WEB = www-data\n\
                Host_Alias WEBHOSTS = web-1, web-2\n\
                Cmnd_Alias RESTART = /usr/bin/systemctl restart nginx, \\\n\
                \t/usr/bin/systemctl reload nginx\n\
                Defaults:DEVS !authenticate\n\
                OPS WEBHOSTS = (WEB) NOPASSWD: RESTART, PASSWD: /usr/bin/less /var/log/nginx/*\n\
                DEVS ALL = (ALL) ALL, !/usr/bin/su # no su\n\
                alice ALL = NOPASSWD: ALL\n";
    assert_eq!(
        rules_of(text),
        vec![
            "alice web-1,web-2=(www-data:) NOPASSWD /usr/bin/systemctl restart nginx",
            "alice web-1,web-2=(www-data:) NOPASSWD /usr/bin/systemctl reload nginx",
            "bob web-1,web-2=(www-data:) NOPASSWD /usr/bin/systemctl restart nginx",
            "bob web-1,web-2=(www-data:) NOPASSWD /usr/bin/systemctl reload nginx",
            "alice web-1,web-2=(www-data:) /usr/bin/less /var/log/nginx/*",
            "bob web-1,web-2=(www-data:) /usr/bin/less /var/log/nginx/*",
            "carol ALL=(ALL:) NOPASSWD ALL [root]",
            "carol ALL=(ALL:) NOPASSWD !/usr/bin/su",
            "alice ALL=(root:) NOPASSWD ALL [root]",
        ]
    );
    // Global !authenticate, then a user put back: the narrower wins.
    assert_eq!(
        rules_of("Defaults !authenticate\nDefaults:bob authenticate\nalice ALL=ALL\nbob ALL=ALL\n"),
        vec![
            "alice ALL=(root:) NOPASSWD ALL [root]",
            "bob ALL=(root:) ALL [root]"
        ]
    );
}

/// Rejected regress files: the error is on the line visudo names.
#[test]
fn syntax_errors_are_named_by_line() {
    for (name, lines) in [
        ("sudo-regress-test5.sudoers", vec![2, 3]),
        ("sudo-regress-test7.sudoers", vec![2, 3, 4, 5, 6, 7]),
        ("sudo-regress-test8.sudoers", vec![8]),
        ("sudo-regress-test11.sudoers", vec![1]),
        ("sudo-regress-test12.sudoers", vec![1]),
        ("sudo-regress-test18.sudoers", vec![4, 5, 6, 7, 8]),
        ("sudo-regress-test24.sudoers", vec![8, 10]),
        // The continued rule starts on line 3; visudo names line 4, where
        // the file ends.
        ("sudo-regress-test25.sudoers", vec![3]),
        ("sudo-regress-test29.sudoers", vec![5, 7, 9, 11]),
        ("sudo-regress-test31.sudoers", vec![5, 7]),
    ] {
        assert_eq!(
            errors_of(&fixture(&format!("sudoers/{name}"))),
            lines,
            "{name}"
        );
    }
    // Defined twice: an error of the expansion, as visudo's.
    let p = parse(&fixture("sudoers/sudo-regress-test4.sudoers"));
    assert_eq!(
        errors_of(&fixture("sudoers/sudo-regress-test4.sudoers")),
        vec![6]
    );
    let entries: Vec<(String, Entry)> = p
        .entries
        .into_iter()
        .map(|e| ("f".to_string(), e))
        .collect();
    let x = expand(&entries);
    assert_eq!(x.errors.len(), 0, "FOO and BAR of line 2 are defined once");
}

#[test]
fn an_alias_defined_twice_is_an_error() {
    let p = parse("User_Alias A = x\nUser_Alias A = y\nRunas_Alias A = z\n");
    let entries: Vec<(String, Entry)> = p
        .entries
        .into_iter()
        .map(|e| ("f".to_string(), e))
        .collect();
    let x = expand(&entries);
    assert_eq!(
        x.errors,
        vec![(
            "f".to_string(),
            2,
            "Alias \"A\" already defined".to_string()
        )]
    );
}

#[test]
fn timeouts() {
    for (v, ok) in [
        ("45", true),
        ("30s", true),
        ("10m30s", true),
        ("7D4H10M30S", true),
        ("7dd4h", false),
        ("15f", false),
        ("4hg10m", false),
        ("10m30ss", false),
        ("m", false),
    ] {
        assert_eq!(valid_timeout(v), ok, "{v}");
    }
}
