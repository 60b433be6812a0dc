use super::*;
use crate::testutil::fixture;

/// A fixture with logrotate's test-suite placeholder `&DIR&` filled in as
/// its harness does (an absolute directory).
fn parse_fixture(name: &str) -> Parsed {
    parse(
        &fixture(&format!("logconfig/{name}")).replace("&DIR&", "/t"),
        &RotationPolicy::default(),
    )
}

fn only_rules(p: &Parsed) -> Vec<&Rule> {
    p.rules().collect()
}

#[test]
fn upstream_main_file_sets_globals_and_includes_the_directory() {
    let p = parse_fixture("logrotate.conf-upstream-example");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert_eq!(p.globals.frequency, "weekly");
    assert_eq!(p.globals.rotate, Some(4));
    assert_eq!(p.globals.create, "default");
    assert!(p.globals.dateext);
    // `#compress` is commented out.
    assert!(!p.globals.compress);
    match &p.items[..] {
        [Item::Include { path, globals, .. }] => {
            assert_eq!(path, "/etc/logrotate.d");
            // The include sees the globals set before it.
            assert_eq!(globals.frequency, "weekly");
            assert_eq!(globals.rotate, Some(4));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ubuntu_rsyslog_stanza_has_six_paths_one_per_line() {
    let p = parse_fixture("logrotate.d-rsyslog-ubuntu-noble");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].patterns,
        [
            "/var/log/syslog",
            "/var/log/mail.log",
            "/var/log/kern.log",
            "/var/log/auth.log",
            "/var/log/user.log",
            "/var/log/cron.log"
        ]
    );
    assert_eq!(r[0].line, 1);
    let pol = &r[0].policy;
    assert_eq!(pol.rotate, Some(4));
    assert_eq!(pol.frequency, "weekly");
    assert!(pol.missingok && pol.notifempty && pol.compress && pol.delaycompress);
    assert!(pol.sharedscripts);
    assert!(!pol.copytruncate);
    assert_eq!(pol.scripts, ["postrotate"]);
}

#[test]
fn debian_syslog_ng_has_two_stanzas() {
    let p = parse_fixture("logrotate.d-syslog-ng-debian");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].patterns, ["/var/log/syslog"]);
    assert_eq!(r[0].policy.frequency, "daily");
    assert_eq!(r[0].policy.rotate, Some(7));
    assert!(!r[0].policy.sharedscripts);
    assert_eq!(r[0].policy.scripts, ["postrotate"]);
    assert_eq!(r[1].patterns.len(), 13);
    assert_eq!(r[1].patterns[0], "/var/log/mail.info");
    assert_eq!(r[1].patterns[12], "/var/log/error");
    assert_eq!(r[1].line, 14);
    assert_eq!(r[1].policy.frequency, "weekly");
    assert_eq!(r[1].policy.rotate, Some(4));
    assert!(r[1].policy.sharedscripts && r[1].policy.compress);
}

#[test]
fn global_options_are_inherited_by_the_stanza() {
    let p = parse_fixture("logrotate-test-global-opts-hourly-copytruncate-compresscmd.in");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].patterns, ["/t/test.log"]);
    let pol = &r[0].policy;
    assert_eq!(pol.frequency, "hourly");
    assert_eq!(pol.rotate, Some(60));
    assert!(pol.dateext);
    assert_eq!(pol.dateformat, "-%s");
    // From the globals above the stanza:
    assert!(pol.missingok && pol.copytruncate && pol.compress && pol.notifempty);
    assert_eq!(pol.create, "default");
    assert_eq!(pol.compressext, ".gz");
    assert!(!pol.sharedscripts);
}

#[test]
fn every_script_hook_is_skipped_but_noted() {
    let p = parse_fixture("logrotate-test-all-script-hooks.in");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    let hooks: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r.patterns[0].as_str(), r.policy.scripts[0].as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("/t/test-pre.log", "prerotate"),
            ("/t/test-post.log", "postrotate"),
            ("/t/test-shared-pre*.log", "prerotate"),
            ("/t/test-shared-post*.log", "postrotate"),
            ("/t/test-first.log", "firstaction"),
            ("/t/test-last.log", "lastaction"),
        ]
    );
    assert!(
        r.iter()
            .all(|r| r.policy.rotate == Some(3) && r.policy.create == "default")
    );
    assert!(r[2].policy.sharedscripts && r[3].policy.sharedscripts);
    assert!(!r[0].policy.sharedscripts);
}

#[test]
fn brace_on_its_own_line_opens_the_stanza() {
    let p = parse_fixture("logrotate-test-maxsize-brace-on-next-line.in");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].patterns, ["/t/test.log"]);
    assert_eq!(r[0].line, 4);
    assert_eq!(r[0].policy.maxsize_bytes, Some(4));
    assert_eq!(r[0].policy.frequency, "weekly");
    assert_eq!(r[0].policy.rotate, Some(1));
    assert_eq!(r[0].policy.create, "default");
}

#[test]
fn missing_open_brace_stops_the_file_as_logrotate_does() {
    // logrotate 3.21: "m.conf:4 unexpected } (missing previous '{')",
    // "Handling 0 logs" (the test suite's comment predates that).
    let p = parse_fixture("logrotate-test-malformed-missing-open-brace.in");
    assert_eq!(p.issues.len(), 1, "{:?}", p.issues);
    assert_eq!(p.issues[0].line, 4);
    assert!(
        p.issues[0].reason.contains("without `{`"),
        "{}",
        p.issues[0].reason
    );
    assert!(p.issues[0].reason.contains("stops reading"));
    assert_eq!(only_rules(&p).len(), 0);
    assert_eq!(p.globals.create, "default");
}

#[test]
fn one_line_stanzas_and_several_directives_on_a_line() {
    let p = parse(
        "/var/log/x.log { daily }\n/var/log/y.log { }\n/var/log/z.log { weekly compress notifempty\n}\n",
        &RotationPolicy::default(),
    );
    let r = only_rules(&p);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].policy.frequency, "daily");
    assert!(r[1].skipped.is_none() && r[1].policy.frequency.is_empty());
    // `weekly` takes the rest of its line (an optional weekday): logrotate
    // refuses `compress notifempty` as one and stops reading the file.
    assert!(r[2].skipped.is_some());
    assert_eq!(p.issues.len(), 1, "{:?}", p.issues);
    assert!(p.issues[0].reason.contains("bad weekly directive"));
}

#[test]
fn a_bad_value_skips_the_whole_stanza_and_an_unknown_word_only_its_line() {
    let text = "/var/log/a.log {\n  size 300x\n  rotate 2\n  postrotate\n    }\n  endscript\n}\n\
                /var/log/b.log {\n  frobnicate now\n  rotate 3\n}\n\
                /var/log/c.log { rotate 5 }\n/var/log/d.log {\n}\n";
    let p = parse(text, &RotationPolicy::default());
    let r = only_rules(&p);
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(
        r[0].skipped
            .as_deref()
            .unwrap()
            .contains("unknown unit `x`")
    );
    assert_eq!(r[1].skipped, None);
    assert_eq!(r[1].policy.rotate, Some(3));
    // `rotate 5 }` is a bad count; the skip then runs to the next `}`
    // (d.log's), so d.log is swallowed, as logrotate does.
    assert!(
        r[2].skipped
            .as_deref()
            .unwrap()
            .contains("bad rotation count `5 }`")
    );
    assert_eq!(r[2].patterns, ["/var/log/c.log"]);
    let lines: Vec<u32> = p.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [2, 9, 12], "{:?}", p.issues);
}

#[test]
fn a_bad_global_stops_the_file_and_sizes_follow_logrotate_units() {
    let p = parse(
        "/var/log/a.log { }\nrotate lots\n/var/log/b.log { }\n",
        &RotationPolicy::default(),
    );
    assert_eq!(only_rules(&p).len(), 1);
    assert_eq!(p.issues[0].line, 2);
    assert!(p.issues[0].reason.contains("stops reading"));
    assert_eq!(parse_size("10k"), Ok(10 << 10));
    assert_eq!(parse_size("0x10"), Ok(16));
    // Lower-case m and g are no units to logrotate.
    assert!(parse_size("10m").unwrap_err().contains("unknown unit"));
    assert!(parse_size("1.5G").unwrap_err().contains("bad size"));
}

#[test]
fn two_paths_on_one_line_and_no_final_newline() {
    let p = parse_fixture("logrotate-test-size-multiple-paths-sharedscripts.in");
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].patterns,
        ["/var/log/does_not_exist.log", "/t/test.log"]
    );
    let pol = &r[0].policy;
    assert_eq!(pol.rotate, Some(14));
    assert_eq!(pol.size_bytes, Some(2));
    assert!(pol.missingok && pol.sharedscripts);
    assert_eq!(pol.scripts, ["postrotate"]);
}

#[test]
fn sizes_units_create_su_and_inheritance_from_the_includer() {
    let inherited = RotationPolicy {
        frequency: "weekly".into(),
        rotate: Some(4),
        ..Default::default()
    };
    let text = "compress\n\"/var/log/my app.log\" /var/log/app/*.log\n{\n  size 100k\n  maxsize 10M\n  minsize 1G\n  create 0640 root adm\n  su root syslog\n  nocompress\n}\n/var/log/x.log {\n  daily\n}\n";
    let p = parse(text, &inherited);
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    let r = only_rules(&p);
    assert_eq!(r[0].patterns, ["/var/log/my app.log", "/var/log/app/*.log"]);
    assert_eq!(r[0].policy.size_bytes, Some(100 * 1024));
    assert_eq!(r[0].policy.maxsize_bytes, Some(10 << 20));
    assert_eq!(r[0].policy.minsize_bytes, Some(1 << 30));
    assert_eq!(r[0].policy.create, "0640 root adm");
    assert_eq!(r[0].policy.su, "root syslog");
    assert!(!r[0].policy.compress);
    assert_eq!(r[0].policy.frequency, "weekly");
    assert_eq!(r[1].policy.frequency, "daily");
    assert_eq!(r[1].policy.rotate, Some(4));
    assert!(r[1].policy.compress);
}

#[test]
fn malformed_lines_are_reported_with_line_numbers() {
    let text =
        "frobnicate\n/var/log/a.log {\n  size 12Q\n}\n/var/log/b.log {\n  postrotate\n    echo\n";
    let p = parse(text, &RotationPolicy::default());
    let lines: Vec<u32> = p.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 3, 6], "{:?}", p.issues);
    assert!(p.issues[0].reason.contains("frobnicate"));
    assert!(p.issues[1].reason.contains("unknown unit"));
    assert!(p.issues[2].reason.contains("endscript"));
    let r = only_rules(&p);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.skipped.is_some()));
}

#[test]
fn garbage_never_panics() {
    for t in [
        "{",
        "}",
        "{{{{",
        "\u{0}\u{1}{}",
        "a {\n}\n}",
        "size\n",
        "/x {\nrotate\n}",
    ] {
        let _ = parse(t, &RotationPolicy::default());
    }
}

#[test]
fn upstream_bad_unit_samples_skip_their_stanza_even_over_a_script_with_braces() {
    let p = parse_fixture("logrotate-test-bad-size-unit-skips-stanza.in");
    let r = only_rules(&p);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].skipped
            .as_deref()
            .unwrap()
            .contains("unknown unit `x`")
    );
    let p = parse_fixture("logrotate-test-bad-unit-script-with-braces.in");
    let r = only_rules(&p);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].skipped.is_some());
    assert_eq!(r[1].skipped, None);
    assert_eq!(r[1].policy.rotate, Some(1));
    assert_eq!(r[1].policy.scripts, ["firstaction"]);
    let p = parse_fixture("logrotate-test-ignoreduplicates-then-glob.in");
    let r = only_rules(&p);
    assert!(r[0].policy.ignoreduplicates && !r[1].policy.ignoreduplicates);
}
