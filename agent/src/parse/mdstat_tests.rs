//! mdstat parser tests: every fixture against the verdicts SOURCES.md gives
//! (its mapping decides where a hand-read word differs), then details.

use super::*;
use crate::testutil::fixture;

/// (array, level, verdict, operation): operation is "" for none,
/// "check 98.3" for a running one, "resync delayed" for a waiting one.
type Expect = (&'static str, &'static str, &'static str, &'static str);

const COMBINED: &[Expect] = &[
    ("md0", "raid1", "healthy", ""),
    ("md3", "raid6", "healthy", ""),
    ("md4", "raid1", "failed", ""),
    ("md6", "raid1", "rebuilding", "recovery 8.5"),
    ("md7", "raid6", "degraded", ""),
    ("md8", "raid1", "rebuilding", "resync 8.5"),
    ("md9", "raid1", "rebuilding", "resync delayed"),
    ("md00", "raid0", "healthy", ""),
    ("md10", "raid0", "healthy", ""),
    ("md11", "raid1", "rebuilding", "resync pending"),
    ("md12", "raid0", "healthy", ""),
    ("md42", "raid5", "degraded", "reshape 56.1"),
    ("md101", "raid0", "healthy", ""),
    ("md120", "linear", "healthy", ""),
    ("md126", "raid0", "healthy", ""),
    ("md127", "raid1", "healthy", ""),
    ("md201", "raid1", "healthy", "check 5.7"),
    ("md219", "", "healthy", ""),
];

const CASES: &[(&str, &[Expect])] = &[
    ("procfs-combined-18-arrays.txt", COMBINED),
    (
        "procfs-raid1-inactive-failed-and-spare.txt",
        &[("md4", "raid1", "failed", "")],
    ),
    (
        "procfs-raid1-degraded-recovery-failed-spare.txt",
        &[("md6", "raid1", "rebuilding", "recovery 8.5")],
    ),
    (
        "procfs-raid6-degraded-4of3-failed-bitmap.txt",
        &[("md7", "raid6", "degraded", "")],
    ),
    (
        "procfs-raid1-resync-delayed-failed-spare.txt",
        &[("md9", "raid1", "rebuilding", "resync delayed")],
    ),
    (
        "procfs-raid1-auto-read-only-resync-pending.txt",
        &[("md11", "raid1", "rebuilding", "resync pending")],
    ),
    (
        "procfs-raid0-read-only.txt",
        &[("md101", "raid0", "healthy", "")],
    ),
    ("procfs-linear.txt", &[("md120", "linear", "healthy", "")]),
    (
        "procfs-raid5-reshape-degraded-with-spare.txt",
        &[("md42", "raid5", "degraded", "reshape 56.1")],
    ),
    (
        "pymdstat-raid5-degraded-4of3-no-rebuild.txt",
        &[("md0", "raid5", "degraded", "")],
    ),
    (
        "pymdstat-raid5-degraded-recovery.txt",
        &[("md127", "raid5", "rebuilding", "recovery 12.6")],
    ),
    (
        "pymdstat-raid1-6of4-degraded-failed.txt",
        &[("md1", "raid1", "degraded", "")],
    ),
    (
        "pymdstat-raid5-inactive-with-level.txt",
        &[("md0", "raid5", "failed", "")],
    ),
    (
        "pymdstat-inactive-all-spares-plus-raid1.txt",
        &[
            ("md0", "raid1", "healthy", ""),
            ("md1", "raid1", "healthy", ""),
            ("md2", "", "failed", ""),
        ],
    ),
    (
        "pymdstat-raid4-reshape-degraded-loop.txt",
        &[("md127", "raid4", "degraded", "reshape 2.1")],
    ),
    (
        "pymdstat-raid6-raid1-unindented-lines.txt",
        &[
            ("md0", "raid1", "healthy", ""),
            ("md1", "raid1", "healthy", ""),
            ("md2", "raid6", "healthy", ""),
            ("md3", "raid6", "healthy", ""),
        ],
    ),
    (
        "pymdstat-raid5-truncated-no-footer.txt",
        &[("md1", "raid5", "healthy", "")],
    ),
    (
        "checkraid-raid1-failed-member-counters-full.txt",
        &[
            ("md0", "raid1", "healthy", ""),
            ("md1", "raid1", "warning", ""),
        ],
    ),
    (
        "checkraid-imsm-raid1-and-container.txt",
        &[
            ("md0", "", "healthy", ""),
            ("md127", "raid1", "healthy", ""),
        ],
    ),
    (
        "checkraid-raid6-double-degraded-recovery.txt",
        &[("md0", "raid6", "rebuilding", "recovery 19.6")],
    ),
    (
        "checkraid-raid6-reshape-degraded-with-spares.txt",
        &[("md0", "raid6", "degraded", "reshape 48.4")],
    ),
    (
        "checkraid-raid5-degraded-failed-empty-unused.txt",
        &[("md0", "raid5", "degraded", "")],
    ),
    ("checkraid-no-arrays.txt", &[]),
    (
        "checkraid-raid1-check-98pct.txt",
        &[
            ("md0", "raid1", "healthy", ""),
            ("md1", "raid1", "healthy", ""),
            ("md2", "raid1", "healthy", "check 98.3"),
        ],
    ),
    (
        // A degraded array whose recovery waits is not being rebuilt yet.
        "checkraid-raid1-recovery-and-resync-delayed.txt",
        &[
            ("md0", "raid1", "rebuilding", "recovery 3.9"),
            ("md1", "raid1", "degraded", "resync delayed"),
        ],
    ),
    (
        // The table reads md1 as healthy; the mapping says a delayed resync
        // of a complete array is rebuilding, and the mapping decides.
        "checkraid-raid1-resync-delayed-and-check-bitmap.txt",
        &[
            ("md0", "raid1", "healthy", "check 6.4"),
            ("md1", "raid1", "rebuilding", "resync delayed"),
        ],
    ),
    (
        "checkraid-raid1-two-resyncs.txt",
        &[
            ("md0", "raid1", "healthy", ""),
            ("md1", "raid1", "rebuilding", "resync 9.9"),
            ("md2", "raid1", "rebuilding", "resync 11.2"),
        ],
    ),
    (
        "checkraid-raid5-healthy-multiple-spares.txt",
        &[
            ("md1", "raid5", "healthy", ""),
            ("md2", "raid5", "healthy", ""),
        ],
    ),
    (
        "checkraid-raid1-recovery-29pct.txt",
        &[
            ("md125", "raid1", "healthy", ""),
            ("md126", "raid1", "rebuilding", "recovery 29.2"),
            ("md127", "raid1", "healthy", ""),
        ],
    ),
    (
        "libstorage-ddf-container-raid1-raid0.txt",
        &[
            ("md125", "raid1", "healthy", ""),
            ("md126", "raid0", "healthy", ""),
            ("md127", "", "healthy", ""),
        ],
    ),
    (
        "libstorage-nested-raid0-over-raid1.txt",
        &[
            ("md0", "raid0", "healthy", ""),
            ("md1", "raid1", "healthy", ""),
            ("md2", "raid1", "healthy", ""),
        ],
    ),
    (
        "linux-raid-raid10-near-nvme-resync-and-resync-pending.txt",
        &[
            ("md0", "raid10", "healthy", ""),
            ("md1", "raid10", "healthy", ""),
            ("md2", "raid10", "rebuilding", "resync pending"),
            ("md3", "raid10", "rebuilding", "resync 37.2"),
            ("md127", "raid10", "healthy", ""),
        ],
    ),
    (
        "linux-raid-raid10-far-copies-v090-with-raid6-raid1.txt",
        &[
            ("md0", "raid6", "healthy", ""),
            ("md1", "raid1", "healthy", ""),
            ("md2", "raid1", "healthy", ""),
            ("md3", "raid10", "healthy", ""),
        ],
    ),
];

fn op(a: &MdArray) -> String {
    match &a.sync {
        None => String::new(),
        Some(s) if s.state == "running" => format!("{} {:.1}", s.action, s.percent),
        Some(s) => format!("{} {}", s.action, s.state),
    }
}

fn load(file: &str) -> Mdstat {
    parse(&fixture(&format!("mdstat/{file}")))
}

fn array<'a>(m: &'a Mdstat, name: &str) -> &'a MdArray {
    m.arrays
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn every_fixture_gives_its_verdicts() {
    let listed: Vec<_> = std::fs::read_dir(crate::testutil::fixtures_dir().join("mdstat"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in &listed {
        assert!(
            CASES.iter().any(|(c, _)| c == f),
            "fixture {f} has no expectation"
        );
    }
    for (file, expected) in CASES {
        let m = load(file);
        assert!(m.problems.is_empty(), "{file}: {:?}", m.problems);
        let got: Vec<(String, String, String, String)> = m
            .arrays
            .iter()
            .map(|a| (a.name.clone(), a.level.clone(), a.verdict.clone(), op(a)))
            .collect();
        let want: Vec<(String, String, String, String)> = expected
            .iter()
            .map(|(n, l, v, o)| (n.to_string(), l.to_string(), v.to_string(), o.to_string()))
            .collect();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn combined_file_states_members_and_counts() {
    let m = load("procfs-combined-18-arrays.txt");
    assert_eq!(m.arrays.len(), 18);
    assert_eq!(m.personalities.len(), 8);
    assert_eq!(m.personalities[0], "linear");

    let md3 = array(&m, "md3");
    assert_eq!((md3.raid_disks, md3.working_disks), (8, 8));
    assert_eq!(md3.metadata, "1.2");
    assert_eq!(md3.layout, "level 6, 64k chunk, algorithm 2");
    assert_eq!(md3.members.iter().filter(|m| m.spare).count(), 2);
    // The fixture lists sdd1 twice (once as a spare); both are kept.
    assert_eq!(md3.members.iter().filter(|m| m.device == "sdd1").count(), 2);

    let md4 = array(&m, "md4");
    assert_eq!(md4.state, "inactive");
    assert_eq!(
        md4.members
            .iter()
            .map(|m| (m.device.as_str(), m.role.as_str()))
            .collect::<Vec<_>>(),
        vec![("sda3", "failed"), ("sdb3", "spare")]
    );

    let md6 = array(&m, "md6");
    assert_eq!(md6.slot_map, "U_");
    assert_eq!((md6.raid_disks, md6.working_disks), (2, 1));
    let s = md6.sync.as_ref().unwrap();
    assert_eq!((s.done_blocks, s.total_blocks), (16775552, 195310144));
    assert_eq!(s.finish, "17.0min");
    assert_eq!(s.speed_kib_s, 259783);
    assert!(md6.members.iter().any(|m| m.device == "sdb2" && m.failed));
    assert!(md6.members.iter().any(|m| m.device == "sdc" && m.spare));

    let md9 = array(&m, "md9");
    assert_eq!(
        md9.members.iter().filter(|m| m.failed).count(),
        2,
        "{md9:?}"
    );
    assert!(
        md9.reasons
            .iter()
            .any(|r| r == "failed device still attached: sde, sdf")
    );

    assert_eq!(array(&m, "md11").access, "auto-read-only");
    assert_eq!(array(&m, "md101").access, "read-only");
    assert_eq!(array(&m, "md126").metadata, "external:/md127/0");
    let md219 = array(&m, "md219");
    assert_eq!(md219.metadata, "external:imsm");
    assert_eq!(md219.state, "inactive");
    assert!(md219.reasons[0].contains("imsm"), "{:?}", md219.reasons);
    assert!(md219.external_container);
    // A member array of the container is not a container itself.
    assert!(!array(&m, "md126").external_container);
    assert!(!array(&m, "md3").external_container);
    assert_eq!(array(&m, "md120").layout, "0k rounding");
    assert_eq!(array(&m, "md7").bitmap, "0/30 pages [0KB], 65536KB chunk");
    assert_eq!(array(&m, "md42").members.len(), 3);
}

#[test]
fn imsm_and_ddf_containers_are_marked_and_their_members_are_not() {
    for (file, container, members) in [
        (
            "checkraid-imsm-raid1-and-container.txt",
            "md0",
            &["md127"][..],
        ),
        (
            "libstorage-ddf-container-raid1-raid0.txt",
            "md127",
            &["md125", "md126"][..],
        ),
    ] {
        let m = load(file);
        let c = array(&m, container);
        assert!(c.external_container, "{file}: {c:?}");
        assert_eq!(c.verdict, "healthy", "{file}");
        for n in members {
            assert!(!array(&m, n).external_container, "{file} {n}");
        }
    }
}

#[test]
fn ragged_files() {
    // No footer, no trailing newline: the last array is still there.
    let m = load("pymdstat-raid5-truncated-no-footer.txt");
    let md1 = array(&m, "md1");
    assert_eq!(md1.bitmap, "2/102 pages [8KB], 65536KB chunk");
    assert_eq!(md1.members.len(), 8);
    assert_eq!(md1.blocks, 95705752576);
    // Status lines at column 0.
    let m = load("pymdstat-raid6-raid1-unindented-lines.txt");
    assert_eq!(array(&m, "md3").blocks, 17581481472);
    assert_eq!(array(&m, "md1").slot_map, "UUUUUUUU");
    // `unused devices:` with no value, and an inactive array whose level
    // comes only from the header.
    let m = load("checkraid-raid5-degraded-failed-empty-unused.txt");
    assert_eq!(array(&m, "md0").slot_map, "U_U");
    let m = load("checkraid-no-arrays.txt");
    assert!(m.arrays.is_empty() && m.personalities.is_empty());
    // raid10 layouts.
    let m = load("linux-raid-raid10-far-copies-v090-with-raid6-raid1.txt");
    assert_eq!(array(&m, "md3").layout, "512K chunks 2 far-copies");
    assert_eq!(array(&m, "md1").metadata, "");
}

#[test]
fn flags_the_fixtures_lack() {
    let text = "Personalities : [raid1] [raid0]\n\
        md5 : active raid1 sdb1[2](W) sdc1[3](R) sdd1[1](W)(F) sda1[0] sde1[4](J)\n\
        \x20     1000 blocks super 1.2 [2/2] [UU]\n\
        \x20     [==>..]  repair = 12.0% (120/1000) finish=1.0min speed=100K/sec\n\
        md6 : active raid0 sdf[0] sdg[1](F)\n\
        \x20     2000 blocks 64k chunks\n\
        md7 : active raid5 sdh[0] sdi[1]\n\
        \x20     3000 blocks level 5, 64k chunk, algorithm 2 [4/2] [UU__]\n";
    let m = parse(text);
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    let md5 = array(&m, "md5");
    let roles: Vec<_> = md5
        .members
        .iter()
        .map(|m| (m.device.as_str(), m.role.as_str(), m.write_mostly))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("sda1", "active", false),
            ("sdd1", "failed", true),
            ("sdb1", "active", true),
            ("sdc1", "replacement", false),
            ("sde1", "journal", false),
        ]
    );
    // A scrub is not a rebuild, but the attached failed disk is a warning.
    assert_eq!(op(md5), "repair 12.0");
    assert_eq!(md5.verdict, "warning");
    // raid0 has nothing to lose.
    assert_eq!(array(&m, "md6").verdict, "failed");
    // Two of four slots gone is more than raid5 survives.
    assert_eq!(array(&m, "md7").verdict, "failed");
}

#[test]
fn garbage_is_reported_by_line_and_never_panics() {
    let m = parse("\u{0}\u{1}binary\u{fffd}\u{fffd}\nmore junk\n");
    assert!(m.arrays.is_empty());
    assert_eq!(m.problems[0].0, 1);
    assert!(
        m.problems[0].1.contains("not /proc/mdstat"),
        "{:?}",
        m.problems
    );

    // Non-UTF-8 read lossily, and a bad line inside a good file.
    let bytes = b"Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1]\n      100 blocks [2/2] [UU]\n      \xff\xfe what\nunused devices: <none>\n";
    let m = parse(&String::from_utf8_lossy(bytes));
    assert_eq!(m.arrays.len(), 1);
    assert_eq!(m.arrays[0].verdict, "healthy");
    assert_eq!(m.problems.len(), 1);
    assert_eq!(m.problems[0].0, 4);

    // A file cut in the middle of a status line.
    let m = parse(
        "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1]\n      100 blocks super 1.2 [2/",
    );
    assert_eq!(m.arrays.len(), 1);
    assert_eq!(m.problems.len(), 1, "{:?}", m.problems);

    // Lots of garbage: bounded problem list.
    let junk = "x y z\n".repeat(10_000);
    let m = parse(&format!("Personalities : \n{junk}"));
    assert_eq!(m.problems.len(), MAX_PROBLEMS + 1);

    // Every prefix of a real file parses without panicking.
    let text = fixture("mdstat/procfs-combined-18-arrays.txt");
    for cut in (0..text.len()).step_by(7) {
        if text.is_char_boundary(cut) {
            let _ = parse(&text[..cut]);
        }
    }
}
