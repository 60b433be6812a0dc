use std::fs;
use std::path::Path;

use super::*;

fn put(root: &Path, path: &str, content: impl AsRef<[u8]>) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn good_host() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "/etc/rsyslog.conf",
        "module(load=\"imuxsock\")\n$IncludeConfig /etc/rsyslog.d/*.conf\n*.* @@logs.example.com:6514\n#*.* @old.example.com\n",
    );
    put(
        r,
        "/etc/rsyslog.d/10-fwd.conf",
        "if $syslogfacility-text == 'auth' then {\n  action(type=\"omfwd\"\n         target=\"siem.example.com\" port=\"514\"\n         protocol=\"tcp\")\n}\n",
    );
    put(
        r,
        "/etc/rsyslog.d/50-default.conf",
        "auth,authpriv.*\t/var/log/auth.log\n*.*;auth,authpriv.none\t-/var/log/syslog\nlocal0.*\t/var/log/app/custom.out\n",
    );
    put(
        r,
        "/etc/rsyslog.d/README",
        "not a .conf: not included\n*.* @@readme.example.com\n",
    );
    put(
        r,
        "/etc/logrotate.conf",
        "weekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n/var/log/wtmp {\n    monthly\n    rotate 1\n    create 0664 root utmp\n}\n",
    );
    put(
        r,
        "/etc/logrotate.d/rsyslog",
        "/var/log/syslog\n/var/log/auth.log\n{\n  daily\n  rotate 7\n  compress\n  delaycompress\n  missingok\n  postrotate\n    /usr/lib/rsyslog/rsyslog-rotate\n  endscript\n}\n",
    );
    put(
        r,
        "/etc/logrotate.d/app",
        "/var/log/app/*.log {\n  size 10M\n  rotate 5\n  copytruncate\n  su app app\n}\n",
    );
    // Package-manager leftovers are skipped like logrotate skips them.
    put(
        r,
        "/etc/logrotate.d/app.dpkg-old",
        "/var/log/unrotated.log {\n}\n",
    );
    put(
        r,
        "/etc/systemd/journald.conf",
        "[Journal]\nStorage=volatile\nSystemMaxUse=1G\nForwardToSyslog=no\n",
    );
    put(
        r,
        "/etc/systemd/journald.conf.d/50-persist.conf",
        "[Journal]\nStorage=persistent\nMaxRetentionSec=1month\n",
    );
    // Shadowed by the /etc drop-in of the same name.
    put(
        r,
        "/usr/lib/systemd/journald.conf.d/50-persist.conf",
        "[Journal]\nStorage=none\n",
    );
    put(
        r,
        "/usr/lib/systemd/journald.conf.d/10-vendor.conf",
        "[Journal]\nCompress=no\n",
    );
    for (p, n) in [
        ("/var/log/syslog", 100),
        ("/var/log/syslog.1", 10),
        ("/var/log/syslog.2.gz", 10),
        ("/var/log/auth.log", 20),
        ("/var/log/auth.log-20250101", 5),
        ("/var/log/wtmp", 7),
        ("/var/log/app/a.log", 3),
        ("/var/log/app/b.log", 3),
        ("/var/log/app/a.log.1", 1),
        ("/var/log/app/a.log-20250101.gz", 1),
        ("/var/log/app/custom.out", 40),
        ("/var/log/unrotated.log", 50),
        ("/var/log/old.log.1", 2),
        ("/var/log/journal/0123/system.journal", 1000),
        ("/var/log/lastlog", 9),
    ] {
        put(r, p, vec![b'x'; n]);
    }
    d
}

#[test]
fn fake_host_is_read_field_by_field() {
    let d = good_host();
    let s = read_log_config(&HostFs::new(d.path())).unwrap();
    assert_eq!(s.daemons, ["rsyslog", "journald", "logrotate"]);
    assert_eq!(s.rsyslog_modules, ["imuxsock"]);

    let fw: Vec<(&str, u32, &str, &str, &str, u32, bool)> = s
        .forwards
        .iter()
        .map(|f| {
            (
                f.target.as_str(),
                f.port,
                f.protocol.as_str(),
                f.selector.as_str(),
                f.file.as_str(),
                f.line,
                f.commented,
            )
        })
        .collect();
    assert_eq!(
        fw,
        [
            (
                "logs.example.com",
                6514,
                "tcp",
                "*.*",
                "/etc/rsyslog.conf",
                3,
                false
            ),
            (
                "old.example.com",
                0,
                "udp",
                "*.*",
                "/etc/rsyslog.conf",
                4,
                true
            ),
            (
                "siem.example.com",
                514,
                "tcp",
                "if $syslogfacility-text == 'auth'",
                "/etc/rsyslog.d/10-fwd.conf",
                2,
                false
            ),
        ]
    );
    let outs: Vec<(&str, bool, &str)> = s
        .outputs
        .iter()
        .map(|o| (o.path.as_str(), o.no_sync, o.file.as_str()))
        .collect();
    assert_eq!(
        outs,
        [
            ("/var/log/auth.log", false, "/etc/rsyslog.d/50-default.conf"),
            ("/var/log/syslog", true, "/etc/rsyslog.d/50-default.conf"),
            (
                "/var/log/app/custom.out",
                false,
                "/etc/rsyslog.d/50-default.conf"
            ),
        ]
    );

    let j = s.journald.as_ref().unwrap();
    assert_eq!(j.storage, "persistent");
    assert_eq!(j.system_max_use, "1G");
    assert_eq!(j.max_retention_sec, "1month");
    assert_eq!(j.forward_to_syslog, "no");
    assert_eq!(j.compress, "no");
    assert_eq!(j.runtime_max_use, "");
    assert_eq!(
        j.files,
        [
            "/etc/systemd/journald.conf",
            "/usr/lib/systemd/journald.conf.d/10-vendor.conf",
            "/etc/systemd/journald.conf.d/50-persist.conf",
        ]
    );

    let rules: Vec<(&[String], &str, u32)> = s
        .rotation
        .iter()
        .map(|r| (r.patterns.as_slice(), r.file.as_str(), r.line))
        .collect();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert_eq!(
        rules[0],
        (
            &["/var/log/app/*.log".to_string()][..],
            "/etc/logrotate.d/app",
            1
        )
    );
    assert_eq!(rules[1].1, "/etc/logrotate.d/rsyslog");
    assert_eq!(
        rules[2],
        (&["/var/log/wtmp".to_string()][..], "/etc/logrotate.conf", 5)
    );
    let app = &s.rotation[0];
    assert_eq!(app.matched, ["/var/log/app/a.log", "/var/log/app/b.log"]);
    let p = app.policy.as_ref().unwrap();
    assert_eq!(p.frequency, "weekly", "inherited from logrotate.conf");
    assert_eq!(p.rotate, Some(5));
    assert_eq!(p.size_bytes, Some(10 << 20));
    assert!(p.copytruncate);
    assert_eq!(p.su, "app app");
    assert_eq!(p.create, "default");
    let rs = s.rotation[1].policy.as_ref().unwrap();
    assert_eq!(
        s.rotation[1].matched,
        ["/var/log/auth.log", "/var/log/syslog"]
    );
    assert_eq!((rs.frequency.as_str(), rs.rotate), ("daily", Some(7)));
    assert!(rs.compress && rs.delaycompress && rs.missingok);
    assert_eq!(rs.scripts, ["postrotate"]);
    let wtmp = s.rotation[2].policy.as_ref().unwrap();
    assert_eq!(wtmp.create, "0664 root utmp");
    assert_eq!(wtmp.rotate, Some(1));

    let unrot: Vec<(&str, u64)> = s
        .unrotated
        .iter()
        .map(|u| (u.path.as_str(), u.size_bytes))
        .collect();
    assert_eq!(
        unrot,
        [
            ("/var/log/app/custom.out", 40),
            ("/var/log/old.log.1", 2),
            ("/var/log/unrotated.log", 50),
        ]
    );
    assert_eq!(
        s.var_log_bytes,
        100 + 10 + 10 + 20 + 5 + 7 + 3 + 3 + 1 + 1 + 40 + 50 + 2 + 1000 + 9
    );
    assert!(!s.var_log_partial);

    let files: Vec<&str> = s.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        files,
        [
            "/etc/rsyslog.conf",
            "/etc/rsyslog.d/10-fwd.conf",
            "/etc/rsyslog.d/50-default.conf",
            "/etc/systemd/journald.conf",
            "/usr/lib/systemd/journald.conf.d/10-vendor.conf",
            "/etc/systemd/journald.conf.d/50-persist.conf",
            "/etc/logrotate.conf",
            "/etc/logrotate.d/app",
            "/etc/logrotate.d/rsyslog",
        ]
    );
    assert!(
        s.files
            .iter()
            .all(|f| f.error.is_empty() && f.issues.is_empty()),
        "{:?}",
        s.files
    );
}

#[test]
fn broken_files_are_flagged_and_the_rest_still_reports() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "/etc/rsyslog.conf",
        "$IncludeConfig /etc/rsyslog.d/*.conf\n*.* @central.example.com:514\n",
    );
    put(
        r,
        "/etc/rsyslog.d/a.conf",
        "$IncludeConfig /etc/rsyslog.conf\n*.* @@a.example.com\n",
    );
    put(
        r,
        "/etc/rsyslog.d/bin.conf",
        b"\x7fELF\x02\x01\x01\x00\x00\x00garbage\xff\xfe",
    );
    put(
        r,
        "/etc/rsyslog.d/latin1.conf",
        b"*.* @h\xe9st.example.com:514\n",
    );
    let mut huge = String::from("*.* @@early.example.com:1\n");
    while huge.len() < 2 * 1024 * 1024 {
        huge.push_str("# filler comment line to push the file over the bound\n");
    }
    huge.push_str("*.* @@late.example.com:2\n");
    put(r, "/etc/rsyslog.d/zz-huge.conf", huge);
    put(
        r,
        "/etc/logrotate.conf",
        "weekly\ninclude /etc/logrotate.d\n",
    );
    put(r, "/etc/logrotate.d/loop", "include /etc/logrotate.conf\n");
    put(
        r,
        "/etc/logrotate.d/broken",
        "/var/log/x.log\n  rotate 2\n}\n",
    );
    fs::create_dir_all(r.join("etc/systemd/journald.conf.d/dir.conf")).unwrap();
    put(
        r,
        "/etc/systemd/journald.conf.d/ok.conf",
        "[Journal]\nStorage=auto\n",
    );

    let s = read_log_config(&HostFs::new(r)).unwrap();
    let targets: Vec<&str> = s.forwards.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "central.example.com",
            "a.example.com",
            "h\u{fffd}st.example.com",
            "early.example.com"
        ]
    );
    let file = |p: &str| s.files.iter().find(|f| f.path == p).unwrap();
    let loop_issue = &file("/etc/rsyslog.d/a.conf").issues;
    assert_eq!(loop_issue.len(), 1, "{loop_issue:?}");
    assert_eq!(loop_issue[0].line, 1);
    assert!(
        loop_issue[0].reason.contains("include loop"),
        "{}",
        loop_issue[0].reason
    );
    assert!(file("/etc/rsyslog.d/bin.conf").error.contains("binary"));
    let latin = &file("/etc/rsyslog.d/latin1.conf").issues;
    assert_eq!(
        (latin[0].line, latin[0].reason.contains("UTF-8")),
        (0, true)
    );
    let huge = &file("/etc/rsyslog.d/zz-huge.conf").issues;
    assert_eq!(huge.len(), 1, "{huge:?}");
    assert!(huge[0].reason.contains("bound"), "{}", huge[0].reason);
    assert!(
        file("/etc/logrotate.d/loop").issues[0]
            .reason
            .contains("include loop")
    );
    let broken = &file("/etc/logrotate.d/broken").issues;
    assert_eq!(
        (broken[0].line, broken[0].reason.contains("without `{`")),
        (1, true)
    );
    assert!(
        file("/etc/systemd/journald.conf.d/dir.conf")
            .error
            .contains("not a regular file"),
        "{:?}",
        s.files
    );
    assert_eq!(s.journald.as_ref().unwrap().storage, "auto");
    // logrotate refuses a path without `{` (and the file with it): no rule.
    assert_eq!(s.rotation.len(), 0, "{:?}", s.rotation);
    assert_eq!(issues_of(&s, "/etc/rsyslog.conf").len(), 0);
}

#[test]
fn a_host_without_any_log_config_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    put(d.path(), "/var/log/syslog", "x");
    assert!(matches!(
        read_log_config(&HostFs::new(d.path())),
        Err(SectionError::Unsupported(_))
    ));
    // One daemon alone is enough; the others are simply absent.
    put(d.path(), "/etc/logrotate.conf", "/var/log/syslog {\n}\n");
    let s = read_log_config(&HostFs::new(d.path())).unwrap();
    assert_eq!(s.daemons, ["logrotate"]);
    assert!(s.journald.is_none() && s.forwards.is_empty() && s.unrotated.is_empty());
    assert_eq!(s.var_log_bytes, 1);
}

#[test]
fn syslog_ng_with_an_include_dir() {
    let d = tempfile::tempdir().unwrap();
    put(
        d.path(),
        "/etc/syslog-ng/syslog-ng.conf",
        "@version: 4.0\n@include \"scl.conf\"\n@include \"/etc/syslog-ng/conf.d/*.conf\"\n",
    );
    put(
        d.path(),
        "/etc/syslog-ng/conf.d/remote.conf",
        "destination d_siem { network(\"siem.example.com\" port(6514) transport(\"tls\")); };\n",
    );
    let s = read_log_config(&HostFs::new(d.path())).unwrap();
    assert_eq!(s.daemons, ["syslog-ng"]);
    let f = &s.forwards[0];
    assert_eq!(
        (
            f.target.as_str(),
            f.port,
            f.protocol.as_str(),
            f.file.as_str(),
            f.line
        ),
        (
            "siem.example.com",
            6514,
            "tls",
            "/etc/syslog-ng/conf.d/remote.conf",
            1
        )
    );
    // scl.conf is on syslog-ng's include path, not missing.
    assert!(s.files.iter().all(|f| f.issues.is_empty()), "{:?}", s.files);
}

#[test]
fn rotated_copies_are_recognised() {
    use varlog::rotated_from;
    for (p, base) in [
        ("/var/log/syslog.1", "/var/log/syslog"),
        ("/var/log/syslog.2.gz", "/var/log/syslog"),
        ("/var/log/app.log-20250101", "/var/log/app.log"),
        ("/var/log/app.log-20250101.gz", "/var/log/app.log"),
        ("/var/log/app.log-2025-01-01", "/var/log/app.log"),
        ("/var/log/app.log.old", "/var/log/app.log"),
        ("/var/log/x.log-1735689600.zst", "/var/log/x.log"),
        ("/var/log/x.log.xz", "/var/log/x.log"),
    ] {
        assert_eq!(rotated_from(p, &[]).as_deref(), Some(base), "{p}");
    }
    for p in [
        "/var/log/Xorg.0.log",
        "/var/log/dpkg.log",
        "/var/log/sa/sa20",
        "/var/log/.1",
    ] {
        assert_eq!(rotated_from(p, &[]), None, "{p}");
    }
    assert_eq!(
        rotated_from("/var/log/a.log.1.lz", &[".lz"]).as_deref(),
        Some("/var/log/a.log")
    );
}

#[test]
fn include_depth_and_var_log_walk_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // A directory include (`$IncludeConfig dir/`) and a chain ten deep.
    put(r, "/etc/rsyslog.conf", "$IncludeConfig /etc/rsyslog.d/\n");
    put(
        r,
        "/etc/rsyslog.d/0.conf",
        "$IncludeConfig /etc/chain/1.conf\n",
    );
    for i in 1..10 {
        put(
            r,
            &format!("/etc/chain/{i}.conf"),
            format!("$IncludeConfig /etc/chain/{}.conf\n*.* @host{i}\n", i + 1),
        );
    }
    let mut deep = String::from("/var/log");
    for i in 0..10 {
        deep.push_str(&format!("/d{i}"));
    }
    put(r, &format!("{deep}/deep.log"), "x");
    put(r, "/var/log/top.log", "xy");
    let s = read_log_config(&HostFs::new(r)).unwrap();
    // rsyslog.conf is depth 0, 0.conf 1, then chain 1..=7 fit in 8 levels.
    let targets: Vec<&str> = s.forwards.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "host1", "host2", "host3", "host4", "host5", "host6", "host7"
        ]
    );
    let last = &s.files.last().unwrap();
    assert_eq!(last.path, "/etc/chain/7.conf");
    assert!(
        last.issues[0].reason.contains("nested deeper than 8"),
        "{:?}",
        last.issues
    );
    assert!(s.var_log_partial);
    assert_eq!(s.var_log_bytes, 2);
    assert_eq!(s.unrotated.len(), 1);
}

#[test]
fn copies_in_an_olddir_are_not_unrotated() {
    let rule = |pattern: &str, olddir: &str| RotationRule {
        patterns: vec![pattern.into()],
        matched: vec![pattern.into()],
        policy: Some(RotationPolicy {
            olddir: olddir.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rules = [
        rule("/var/log/app/a.log", "old"),
        rule("/var/log/b.log", "/var/log/archive/"),
    ];
    let files: Vec<(String, u64)> = [
        "/var/log/app/a.log",
        "/var/log/app/old/a.log.1.gz",
        "/var/log/b.log",
        "/var/log/archive/b.log-20250101",
        "/var/log/archive/c.log.1",
    ]
    .iter()
    .map(|p| (p.to_string(), 1))
    .collect();
    let u: Vec<String> = varlog::unrotated(&files, &rules)
        .into_iter()
        .map(|u| u.path)
        .collect();
    assert_eq!(u, ["/var/log/archive/c.log.1"]);
}
