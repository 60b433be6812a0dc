use super::*;
use crate::testutil::fixture;

#[test]
fn rhel10_defaults_are_all_unset_and_empty_audit_is_not_an_error() {
    let p = parse(&fixture("logconfig/journald.conf-rhel10-audit-empty.conf"));
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(p.assignments.is_empty(), "{:?}", p.assignments);
    let mut s = JournaldSettings::default();
    apply(&mut s, "/etc/systemd/journald.conf", &p);
    assert_eq!(s.storage, "");
    assert_eq!(s.system_max_use, "");
    assert_eq!(s.max_retention_sec, "");
    assert_eq!(s.forward_to_syslog, "");
    assert_eq!(s.files, ["/etc/systemd/journald.conf"]);
}

#[test]
fn early_systemd_legacy_keys_all_commented() {
    let p = parse(&fixture(
        "logconfig/journald.conf-systemd-early-legacy-keys.conf",
    ));
    assert!(p.issues.is_empty(), "{:?}", p.issues);
    assert!(p.assignments.is_empty(), "{:?}", p.assignments);
}

#[test]
fn later_files_override_and_empty_resets() {
    let main =
        parse("[Journal]\nStorage=volatile\nSystemMaxUse=1G\nForwardToSyslog=yes\nCompress=no\n");
    let drop = parse(
        "# local\n[Journal]\nStorage=persistent\nSystemMaxUse=\nMaxRetentionSec=1month\nRuntimeMaxUse=64M\n",
    );
    assert!(main.issues.is_empty() && drop.issues.is_empty());
    let mut s = JournaldSettings::default();
    apply(&mut s, "/etc/systemd/journald.conf", &main);
    apply(&mut s, "/etc/systemd/journald.conf.d/10-local.conf", &drop);
    assert_eq!(s.storage, "persistent");
    assert_eq!(s.system_max_use, "");
    assert_eq!(s.max_retention_sec, "1month");
    assert_eq!(s.forward_to_syslog, "yes");
    assert_eq!(s.compress, "no");
    assert_eq!(s.runtime_max_use, "64M");
    assert_eq!(s.files.len(), 2);
}

#[test]
fn other_sections_are_ignored_and_bad_lines_reported() {
    let p = parse(
        "Storage=none\n[Other]\nStorage=auto\n[Journal\n[Journal]\nnonsense\nStorage=sometimes\nForwardToSyslog=maybe\nStorage=\"auto\"\n",
    );
    let lines: Vec<u32> = p.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 4, 6, 7, 8], "{:?}", p.issues);
    assert_eq!(
        p.assignments,
        [Assignment {
            key: "Storage".into(),
            value: "auto".into(),
            line: 9
        }]
    );
}
