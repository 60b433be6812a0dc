//! raid collector tests: fake roots for mdstat, fake tools on a private PATH
//! for storcli/MegaCli.

use std::fs;
use std::path::Path;

use super::*;
use crate::hostfs::HostFs;
use crate::testutil::fixtures_dir;

fn ctx(root: &Path) -> Context {
    Context {
        fs: HostFs::new(root),
    }
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn mdstat_root(content: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "proc/mdstat", content);
    d
}

fn fixture_bytes(rel: &str) -> Vec<u8> {
    fs::read(fixtures_dir().join(rel)).unwrap()
}

/// A collector that would find fake tools in `bin` (it must still not run
/// them for a root other than "/").
fn collector(bin: &Path) -> RaidCollector {
    RaidCollector {
        search_path: bin.as_os_str().to_owned(),
        timeout: Duration::from_secs(10),
    }
}

fn section(r: Result<Body, SectionError>) -> RaidSection {
    match r {
        Ok(Body::Raid(s)) => s,
        Ok(_) => panic!("wrong body"),
        Err(e) => panic!("unexpected {e}"),
    }
}

/// Writes an executable shell script `name` into `dir`.
fn tool(dir: &Path, name: &str, script: &str) {
    crate::testutil::write_script(&dir.join(name), script);
}

#[test]
fn mdstat_under_a_fake_root() {
    let root = mdstat_root(&fixture_bytes("mdstat/procfs-combined-18-arrays.txt"));
    let bin = tempfile::tempdir().unwrap();
    tool(bin.path(), "storcli64", "echo should-not-run; exit 9");
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert_eq!(s.md_arrays.len(), 18);
    assert_eq!(s.md_personalities.len(), 8);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // md4 is inactive.
    assert_eq!(s.verdict, "failed");
    // Not the real root: the tool is never run.
    assert_eq!(s.megaraid_tool, "");
    assert!(s.controllers.is_empty());
    // Sorted by name, shortest first.
    assert_eq!(s.md_arrays[0].name, "md0");
    assert_eq!(s.md_arrays.last().unwrap().name, "md219");
}

#[test]
fn no_md_driver_and_no_tool_is_unsupported() {
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    match collector(bin.path()).collect(&ctx(root.path())) {
        Err(SectionError::Unsupported(why)) => assert!(why.contains("/proc/mdstat"), "{why}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn md_driver_without_arrays_is_ok_and_healthy() {
    let root = mdstat_root(&fixture_bytes("mdstat/checkraid-no-arrays.txt"));
    let bin = tempfile::tempdir().unwrap();
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert!(s.md_arrays.is_empty());
    assert_eq!(s.verdict, "healthy");
}

#[test]
fn garbage_and_unreadable_mdstat() {
    let bin = tempfile::tempdir().unwrap();
    let mut bytes = vec![0u8, 0xff, 0xfe, b'\n'];
    bytes.extend_from_slice(b"\x89PNG\r\n\x1a\n binary garbage \xc3\x28\n");
    let root = mdstat_root(&bytes);
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert!(s.md_arrays.is_empty());
    assert_eq!(s.verdict, "warning");
    assert!(
        s.problems.iter().any(|p| p.message.contains("not UTF-8")),
        "{:?}",
        s.problems
    );
    assert!(
        s.problems.iter().any(|p| p.source == "/proc/mdstat"
            && p.line == 1
            && p.message.contains("not /proc/mdstat")),
        "{:?}",
        s.problems
    );

    // There but not a file: the section fails with the reason.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("proc/mdstat")).unwrap();
    match collector(bin.path()).collect(&ctx(root.path())) {
        Err(SectionError::Failed(why)) => assert!(why.contains("/proc/mdstat"), "{why}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn storcli_on_path_is_run_and_merged() {
    let bin = tempfile::tempdir().unwrap();
    let fx = fixtures_dir().join("megaraid");
    tool(
        bin.path(),
        "storcli64",
        &format!(
            "case \"$1\" in\n/call) cat '{}';;\n/call/eall/sall) cat '{}';;\n*) exit 2;;\nesac",
            fx.join("storcli-call-show-all-j-m5015-raid6-optimal.json")
                .display(),
            fx.join("storcli-call-eall-sall-show-all-j-6-online.json")
                .display()
        ),
    );
    // MegaCli is there too, but storcli is preferred.
    tool(bin.path(), "MegaCli64", "exit 1");
    let mut s = RaidSection::default();
    let used = megaraid(
        &bin.path().as_os_str().to_owned(),
        Duration::from_secs(10),
        &mut s,
    );
    assert_eq!(used.as_deref(), Some("storcli64"));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.controllers.len(), 1);
    let c = &s.controllers[0];
    assert_eq!(c.verdict, "healthy");
    assert_eq!(c.physical_drives.len(), 6);
    assert!(c.physical_drives.iter().all(|p| p.counters_known));
    assert_eq!(c.batteries[0].model, "iBBU08");
}

#[test]
fn broken_and_slow_tools_become_problems() {
    let bin = tempfile::tempdir().unwrap();
    let fx = fixtures_dir().join("megaraid/storcli-call-show-all-j-m5015-raid6-optimal.json");
    // Truncated JSON for the controller view; the drive view hangs.
    tool(
        bin.path(),
        "storcli",
        &format!(
            "case \"$1\" in\n/call) head -c 3000 '{}';;\n*) sleep 5;;\nesac",
            fx.display()
        ),
    );
    let mut s = RaidSection::default();
    // Long enough for the good call to finish on a loaded machine; the
    // `sleep 5` call still runs into it.
    let used = megaraid(
        &bin.path().as_os_str().to_owned(),
        Duration::from_secs(2),
        &mut s,
    );
    assert_eq!(used.as_deref(), Some("storcli"));
    assert!(s.controllers.is_empty());
    let msgs: Vec<&str> = s.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].starts_with("not valid JSON at line"), "{msgs:?}");
    assert!(msgs[1].contains("timed out"), "{msgs:?}");
    assert_eq!(s.problems[0].source, "storcli /call show all J nolog");
    assert_eq!(overall(&s), Verdict::Warning);
}

#[test]
fn megacli_commands_are_combined() {
    let bin = tempfile::tempdir().unwrap();
    let fx = fixtures_dir().join("megaraid");
    let f = |n: &str| fx.join(n).display().to_string();
    tool(
        bin.path(),
        "MegaCli64",
        &format!(
            "case \"$1\" in\n-AdpAllInfo) cat '{}';;\n-LDInfo) cat '{}';;\n-PDList) cat '{}';;\n-AdpBbuCmd) cat '{}'; exit 34;;\nesac",
            f("megacli-adpallinfo-perc6i.txt"),
            f("megacli-ldinfo-raid5-optimal.txt"),
            f("megacli-pdlist-online-hotspare-unconfigured-bad.txt"),
            f("megacli-adpbbucmd-get-bbu-status-failed.txt"),
        ),
    );
    let mut s = RaidSection::default();
    let used = megaraid(
        &bin.path().as_os_str().to_owned(),
        Duration::from_secs(10),
        &mut s,
    );
    assert_eq!(used.as_deref(), Some("MegaCli64"));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let c = &s.controllers[0];
    assert_eq!(c.model, "PERC 6/i Integrated");
    assert_eq!(c.virtual_drives.len(), 1);
    assert_eq!(c.physical_drives.len(), 12);
    assert!(!c.batteries[0].present);
    assert_eq!(c.verdict, "warning");
    assert_eq!(overall(&s), Verdict::Warning);
}

#[test]
fn an_oversized_mdstat_is_read_in_part_and_flagged() {
    let mut text = fixture_bytes("mdstat/procfs-raid1-degraded-recovery-failed-spare.txt");
    text.extend(std::iter::repeat_n(b'\n', 2 << 20));
    let root = mdstat_root(&text);
    let bin = tempfile::tempdir().unwrap();
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert_eq!(s.md_arrays.len(), 1);
    assert_eq!(s.md_arrays[0].verdict, "rebuilding");
    assert!(
        s.problems[0]
            .message
            .starts_with("larger than 1048576 bytes"),
        "{:?}",
        s.problems
    );
    // The problem raises the overall verdict to at least warning; the
    // recovering array is worse.
    assert_eq!(s.verdict, "rebuilding");
}

#[test]
fn sysfs_names_the_operation_a_delayed_line_hides() {
    // checkraid pr77: md1 waits behind md0's check. mdstat says
    // resync=DELAYED (rebuilding); sysfs says it is a check (healthy).
    let root = mdstat_root(&fixture_bytes(
        "mdstat/checkraid-raid1-resync-delayed-and-check-bitmap.txt",
    ));
    let bin = tempfile::tempdir().unwrap();
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert_eq!(s.md_arrays[1].name, "md1");
    assert_eq!(s.md_arrays[1].verdict, "rebuilding");
    assert_eq!(s.verdict, "rebuilding");

    write(root.path(), "sys/block/md1/md/sync_action", b"check\n");
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    let md1 = &s.md_arrays[1];
    let sync = md1.sync.as_ref().unwrap();
    assert_eq!(
        (sync.action.as_str(), sync.state.as_str()),
        ("check", "delayed")
    );
    assert_eq!(md1.verdict, "healthy");
    assert_eq!(s.verdict, "healthy");

    // A real resync stays a resync.
    write(root.path(), "sys/block/md1/md/sync_action", b"resync\n");
    let s = section(collector(bin.path()).collect(&ctx(root.path())));
    assert_eq!(s.md_arrays[1].verdict, "rebuilding");
}
