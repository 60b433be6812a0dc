use super::*;
use crate::testutil::fixture;

fn no_includes(_: &str) -> Vec<Loaded> {
    Vec::new()
}

fn eval(path: &str, text: &str) -> SshdSettings {
    evaluate(path, text, &mut no_includes)
}

/// (value, line) of a setting; line 0 is sshd's default.
fn v(s: &Option<SshdSetting>) -> (&str, u32) {
    let s = s.as_ref().expect("setting");
    (s.value.as_str(), s.line)
}

#[test]
fn openssh_default_config() {
    let s = eval(
        "/etc/ssh/sshd_config",
        &fixture("ssh/sshd_config-openssh-portable-default.txt"),
    );
    assert_eq!(v(&s.authorized_keys_file), (".ssh/authorized_keys", 42));
    assert_eq!(s.authorized_keys_patterns, vec![".ssh/authorized_keys"]);
    // Commented out: not set, and the commented Match is no block.
    assert!(s.authorized_keys_command.is_none());
    assert!(s.authorized_keys_command_user.is_none());
    assert!(s.trusted_user_ca_keys.is_none());
    assert!(s.match_blocks.is_empty());
    assert_eq!(v(&s.password_authentication), ("yes", 0));
    assert_eq!(v(&s.permit_root_login), ("prohibit-password", 0));
    assert_eq!(v(&s.pubkey_authentication), ("yes", 0));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.config_files, vec!["/etc/ssh/sshd_config"]);
}

#[test]
fn rhel_config_with_includes_and_match_blocks() {
    let s = eval(
        "/etc/ssh/sshd_config",
        &fixture("ssh/sshd_config-jc-rhel-include-and-match-blocks.txt"),
    );
    let inc: Vec<(&str, u32)> = s
        .includes
        .iter()
        .map(|i| (i.value.as_str(), i.line))
        .collect();
    assert_eq!(
        inc,
        vec![
            ("/etc/ssh/foo/bar", 1),
            ("/etc/ssh/foo/baz", 1),
            ("/etc/ssh/foo/buz", 2)
        ]
    );
    // Tab-separated, and the junk inside the Match blocks changes nothing global.
    assert_eq!(v(&s.authorized_keys_file), (".ssh/authorized_keys", 63));
    assert_eq!(v(&s.password_authentication), ("yes", 81));
    assert_eq!(v(&s.permit_root_login), ("prohibit-password", 0));
    let blocks: Vec<(&str, u32, Vec<u32>)> = s
        .match_blocks
        .iter()
        .map(|b| {
            (
                b.criteria.as_str(),
                b.line,
                b.settings.iter().map(|x| x.line).collect(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        vec![
            ("group chroot", 25, vec![26, 27, 29]),
            // `Match all` is a block to sshd (what follows overrides global
            // values, sshd -T -C shows it); its settings also stand as the
            // global view, since they apply to every connection.
            ("all", 30, vec![32, 34]),
            ("group anything", 36, vec![37, 38]),
            (
                "all",
                39,
                vec![
                    41, 48, 63, 81, 85, 95, 96, 112, 117, 142, 143, 144, 145, 148
                ]
            )
        ]
    );
    assert_eq!(s.match_blocks[0].settings[0].keyword, "this");
    assert_eq!(s.match_blocks[0].settings[0].value, "should be ignored");
    // `don't` is a (bad) keyword to sshd too: the quote is no quote there.
    assert_eq!(s.match_blocks[2].settings[1].keyword, "don't");
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

#[test]
fn gitlab_config_with_tokens() {
    let s = eval(
        "/etc/ssh/sshd_config",
        &fixture("ssh/sshd_config-gitlab-omnibus-docker.txt"),
    );
    assert_eq!(
        s.authorized_keys_patterns,
        vec![
            "%h/.ssh/authorized_keys",
            "/gitlab-data/ssh/authorized_keys"
        ]
    );
    assert_eq!(v(&s.permit_root_login), ("no", 7));
    assert_eq!(v(&s.password_authentication), ("no", 8));
    assert_eq!(v(&s.pubkey_authentication), ("yes", 13));
    let home = "/var/opt/gitlab";
    let got: Vec<String> = s
        .authorized_keys_patterns
        .iter()
        .map(|p| expand_authorized_keys(p, "git", 998, home).unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            "/var/opt/gitlab/.ssh/authorized_keys",
            "/gitlab-data/ssh/authorized_keys"
        ]
    );
}

#[test]
fn sshd_t_effective_config() {
    let s = eval("sshd -T", &fixture("ssh/sshd-T-effective-config-jc.txt"));
    assert_eq!(
        v(&s.authorized_keys_file),
        (".ssh/authorized_keys .ssh/authorized_keys2", 11)
    );
    assert_eq!(s.authorized_keys_patterns.len(), 2);
    assert_eq!(v(&s.authorized_keys_command), ("none", 9));
    assert_eq!(v(&s.authorized_keys_command_user), ("none", 10));
    assert_eq!(v(&s.trusted_user_ca_keys).0, "none");
    assert_eq!(v(&s.password_authentication).0, "yes");
    assert_eq!(v(&s.permit_root_login).0, "without-password");
    assert_eq!(v(&s.pubkey_authentication).0, "yes");
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

#[test]
fn first_value_wins_case_and_equals_separator() {
    let s = eval(
        "/c",
        "permitrootlogin=No\nPERMITROOTLOGIN yes\nPasswordAuthentication = NO # trailing\n\
         AuthorizedKeysFile none\nAuthorizedKeysFile .ssh/x\n\
         AuthorizedKeysCommand \"/usr/bin/get keys\" %u\nPubkeyAuthentication\n\
         TrustedUserCAKeys \"/etc/ssh/ca keys\n",
    );
    assert_eq!(v(&s.permit_root_login), ("no", 1));
    assert_eq!(v(&s.password_authentication), ("no", 3));
    assert!(s.authorized_keys_patterns.is_empty());
    assert_eq!(v(&s.authorized_keys_file), ("none", 4));
    assert_eq!(v(&s.authorized_keys_command), ("/usr/bin/get keys %u", 6));
    assert_eq!(s.problems.len(), 2);
    assert_eq!(s.problems[0].line, 7);
    assert!(s.problems[0].reason.contains("no argument"));
    assert_eq!(s.problems[1].line, 8);
    assert_eq!(
        s.problems[1].reason,
        "TrustedUserCAKeys: unterminated quote"
    );
    assert!(s.trusted_user_ca_keys.is_none());
}

#[test]
fn includes_are_followed_in_place_and_inside_match() {
    let mut seen = Vec::new();
    let mut load = |p: &str| {
        seen.push(p.to_string());
        match p {
            "/etc/ssh/sshd_config.d/*.conf" => vec![
                Loaded {
                    path: "/etc/ssh/sshd_config.d/10-a.conf".into(),
                    text: Ok(
                        "PasswordAuthentication no\nMatch User x\nPermitRootLogin yes\n".into(),
                    ),
                    note: Some("holds bytes that are not UTF-8".into()),
                },
                Loaded {
                    path: "/etc/ssh/sshd_config.d/20-b.conf".into(),
                    text: Err("not a regular file".into()),
                    note: None,
                },
            ],
            "/etc/ssh/cond.conf" => vec![Loaded {
                path: p.into(),
                text: Ok("PubkeyAuthentication no\n".into()),
                note: None,
            }],
            "/etc/ssh/loop.conf" => vec![Loaded {
                path: p.into(),
                text: Ok("Include loop.conf\n".into()),
                note: None,
            }],
            _ => vec![],
        }
    };
    let s = evaluate(
        "/etc/ssh/sshd_config",
        "Include sshd_config.d/*.conf\nPasswordAuthentication yes\nPermitRootLogin no\n\
         Match Group admins\nInclude cond.conf\nMatch all\nInclude loop.conf\n",
        &mut load,
    );
    // The included file came first, so its value wins; the Match inside it
    // ended with that file.
    assert_eq!(
        s.password_authentication.as_ref().unwrap().file,
        "/etc/ssh/sshd_config.d/10-a.conf"
    );
    assert_eq!(v(&s.password_authentication), ("no", 1));
    assert_eq!(v(&s.permit_root_login), ("no", 3));
    assert_eq!(v(&s.pubkey_authentication), ("yes", 0));
    let blocks: Vec<(&str, &str, Vec<&str>)> = s
        .match_blocks
        .iter()
        .map(|b| {
            (
                b.criteria.as_str(),
                b.file.as_str(),
                b.settings.iter().map(|x| x.keyword.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        vec![
            (
                "User x",
                "/etc/ssh/sshd_config.d/10-a.conf",
                vec!["PermitRootLogin"]
            ),
            (
                "Group admins",
                "/etc/ssh/sshd_config",
                vec!["PubkeyAuthentication"]
            ),
            ("all", "/etc/ssh/sshd_config", vec![]),
        ]
    );
    assert!(
        s.problems
            .iter()
            .any(|p| p.file.ends_with("20-b.conf") && p.reason == "not a regular file")
    );
    assert!(
        s.problems
            .iter()
            .any(|p| p.reason.contains("nested more than 16"))
    );
    assert_eq!(s.config_files.len(), 2 + 1 + MAX_INCLUDE_DEPTH);
}

#[test]
fn token_expansion() {
    let e = |p: &str| expand_authorized_keys(p, "bob", 1001, "/srv/bob/");
    assert_eq!(
        e(".ssh/authorized_keys").unwrap(),
        "/srv/bob/.ssh/authorized_keys"
    );
    assert_eq!(e("/etc/ssh/keys/%u.%U").unwrap(), "/etc/ssh/keys/bob.1001");
    assert_eq!(e("%h/k%%").unwrap(), "/srv/bob//k%");
    assert!(e("%d/x").unwrap_err().contains("unknown token %d"));
    assert!(e("x%").is_err());
}

#[test]
fn never_panics() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..2000 {
        let t: String = (0..rng.usize(0..60))
            .map(|_| {
                *rng.choice(['a', '=', '"', '\'', '\\', ' ', '\t', '\n', '#', 'M', '%'].iter())
                    .unwrap()
            })
            .collect();
        let _ = eval("/x", &t);
        let _ = expand_authorized_keys(&t, "u", 1, "/h");
    }
}

#[test]
fn match_user_criteria() {
    let m = match_may_apply_to;
    assert!(m("User git", "git"));
    assert!(!m("User git", "alice"));
    assert!(m("User git*,ad?in", "admin"));
    assert!(!m("User *,!root", "root"));
    assert!(m("User *,!root", "bob"));
    assert!(!m("user GIT", "git"), "user names are case-sensitive");
    // Not judged: assumed to apply.
    assert!(m("Group admins", "alice"));
    assert!(m("Address 10.0.0.0/8 User alice", "alice"));
    assert!(!m("Address 10.0.0.0/8 User alice", "bob"));
    assert!(m("User", "x"));
}

#[test]
fn a_self_including_file_with_many_include_lines_reads_a_bounded_number_of_files() {
    let text = "Include /etc/ssh/loop.conf\n".repeat(50);
    let mut loads = 0;
    let mut load = |p: &str| {
        loads += 1;
        vec![Loaded {
            path: p.to_string(),
            text: Ok(text.clone()),
            note: None,
        }]
    };
    let s = evaluate("/etc/ssh/sshd_config", &text, &mut load);
    assert_eq!(s.config_files.len(), MAX_CONFIG_FILES);
    assert!(
        loads < MAX_CONFIG_FILES,
        "{loads} loads for {MAX_CONFIG_FILES} files"
    );
    assert!(
        s.problems
            .iter()
            .any(|p| p.reason.contains("config files included")),
        "{:?}",
        s.problems.first()
    );
}
