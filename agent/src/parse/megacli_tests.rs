//! MegaCli parser tests on the captured text fixtures.

use super::*;
use crate::testutil::fixture;

fn load(file: &str) -> Megacli {
    parse(&fixture(&format!("megaraid/{file}")))
}

fn one(file: &str) -> RaidController {
    let m = load(file);
    assert!(m.problems.is_empty(), "{file}: {:?}", m.problems);
    let mut cs = m.into_controllers();
    assert_eq!(cs.len(), 1, "{file}");
    cs.remove(0)
}

#[test]
fn ldinfo_raid5_optimal() {
    let c = one("megacli-ldinfo-raid5-optimal.txt");
    assert_eq!(c.id, "0");
    assert_eq!(c.virtual_drives.len(), 1);
    let vd = &c.virtual_drives[0];
    assert_eq!(vd.id, "0");
    assert_eq!(
        vd.raid_level,
        "Primary-5, Secondary-0, RAID Level Qualifier-3"
    );
    assert_eq!(vd.size, "24.555 TB");
    assert_eq!(vd.drives, 10);
    assert_eq!(vd.state, "Optimal");
    assert_eq!(vd.verdict, "healthy");
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn ldinfo_old_format_and_no_vds() {
    let c = one("megacli-ldinfo-old-format-virtual-disk.txt");
    let vd = &c.virtual_drives[0];
    assert_eq!(
        (
            vd.id.as_str(),
            vd.size.as_str(),
            vd.drives,
            vd.state.as_str()
        ),
        ("0", "696960MB", 6, "Optimal")
    );
    assert!(
        vd.cache_policy.starts_with("WriteThrough"),
        "{}",
        vd.cache_policy
    );
    assert_eq!(vd.verdict, "healthy");

    let c = one("megacli-ldinfo-no-virtual-drives.txt");
    assert!(c.virtual_drives.is_empty());
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn pdlist_with_an_unconfigured_bad_disk_warns() {
    let c = one("megacli-pdlist-online-hotspare-unconfigured-bad.txt");
    assert_eq!(c.physical_drives.len(), 12);
    let by: Vec<(&str, &str)> = c
        .physical_drives
        .iter()
        .map(|p| (p.id.as_str(), p.verdict.as_str()))
        .collect();
    assert_eq!(by[0], ("15:1", "healthy"));
    assert_eq!(by[9], ("15:10", "warning"));
    assert_eq!(by[11], ("15:12", "healthy"));
    let online = c
        .physical_drives
        .iter()
        .filter(|p| p.state == "Online, Spun Up")
        .count();
    assert_eq!(online, 10);
    let spare = &c.physical_drives[10];
    assert_eq!(
        (spare.state.as_str(), spare.verdict.as_str()),
        ("Hotspare, Spun down", "healthy")
    );
    assert!(
        c.physical_drives
            .iter()
            .all(|p| p.counters_known && p.media_errors == 0 && p.predictive_failures == 0)
    );
    assert_eq!(
        c.physical_drives[9].reasons,
        vec!["drive is unconfigured-bad"]
    );
    assert_eq!(c.verdict, "warning");
}

#[test]
fn pdlist_jbod_is_healthy_despite_other_errors() {
    let c = one("megacli-pdlist-jbod.txt");
    assert_eq!(c.physical_drives.len(), 4);
    assert!(c.physical_drives.iter().all(|p| p.state == "JBOD"
        && p.other_errors == 2
        && p.media_errors == 0
        && p.verdict == "healthy"));
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn ldpdinfo_nests_drives_under_the_vd() {
    let c = one("megacli-ldpdinfo-raid10-8ssd-optimal.txt");
    assert_eq!(c.virtual_drives.len(), 1);
    let vd = &c.virtual_drives[0];
    assert_eq!(
        (
            vd.name.as_str(),
            vd.size.as_str(),
            vd.drives,
            vd.state.as_str()
        ),
        ("Virtual Disk 0", "3.491 TB", 8, "Optimal")
    );
    assert_eq!(c.physical_drives.len(), 8);
    assert!(
        c.physical_drives
            .iter()
            .all(|p| p.state == "Online, Spun Up"
                && p.drive_group == "0"
                && p.media == "SSD"
                && !p.smart_alert
                && p.verdict == "healthy")
    );
    assert_eq!(c.physical_drives[0].id, "32:0");
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn batteries() {
    let c = one("megacli-adpbbucmd-battery-replacement-required.txt");
    let b = &c.batteries[0];
    assert_eq!(
        (b.model.as_str(), b.present, b.replacement_required),
        ("iBBU", true, true)
    );
    assert_eq!(b.charge_percent, 97);
    assert_eq!(b.verdict, "warning");
    assert!(
        b.reasons.contains(&"remaining capacity low".to_string()),
        "{:?}",
        b.reasons
    );
    assert_eq!(c.verdict, "warning");

    // Exit code 0x22 here only means "no battery": not a problem.
    let c = one("megacli-adpbbucmd-get-bbu-status-failed.txt");
    let b = &c.batteries[0];
    assert!(!b.present);
    assert_eq!(b.verdict, "healthy");
    assert!(b.reasons[0].contains("no battery"), "{:?}", b.reasons);

    let c = one("megacli-adpbbucmd-ibbu08-optimal.txt");
    let b = &c.batteries[0];
    assert_eq!(
        (
            b.model.as_str(),
            b.state.as_str(),
            b.charge_percent,
            b.replacement_required
        ),
        ("iBBU08", "Optimal", 71, false)
    );
    assert_eq!(b.verdict, "healthy");
}

#[test]
fn adpallinfo_names_the_controller() {
    let c = one("megacli-adpallinfo-perc6i.txt");
    assert_eq!(c.model, "PERC 6/i Integrated");
    assert_eq!(c.serial, "1122334455667788");
    assert_eq!(c.verdict, "healthy");
    // The same counters with trouble in them.
    let text = fixture("megaraid/megacli-adpallinfo-perc6i.txt")
        .replace("  Degraded        : 0", "  Degraded        : 1")
        .replace("  Failed Disks    : 0", "  Failed Disks    : 2");
    let c = parse(&text).into_controllers().remove(0);
    assert_eq!(c.verdict, "degraded");
    assert_eq!(
        c.reasons,
        vec!["1 degraded virtual drives", "2 failed disks"]
    );
}

#[test]
fn outputs_of_one_host_merge() {
    let mut m = load("megacli-adpallinfo-perc6i.txt");
    m.merge(load("megacli-ldinfo-raid5-optimal.txt"));
    m.merge(load("megacli-pdlist-online-hotspare-unconfigured-bad.txt"));
    m.merge(load("megacli-adpbbucmd-ibbu08-optimal.txt"));
    let cs = m.into_controllers();
    assert_eq!(cs.len(), 1);
    let c = &cs[0];
    assert_eq!(c.model, "PERC 6/i Integrated");
    assert_eq!(
        (
            c.virtual_drives.len(),
            c.physical_drives.len(),
            c.batteries.len()
        ),
        (1, 12, 1)
    );
    assert_eq!(c.verdict, "warning");
}

#[test]
fn failing_states_and_bad_values() {
    let text = "Adapter #0\n\nVirtual Drive: 1 (Target Id: 1)\nState               : Degraded\n\nEnclosure Device ID: 8\nSlot Number: 3\nMedia Error Count: lots\nFirmware state: Rebuild\nEnclosure Device ID: 8\nSlot Number: 4\nMedia Error Count: 7\nFirmware state: Failed\n";
    let m = parse(text);
    assert_eq!(
        m.problems,
        vec![(8, "Media Error Count: not a number: \"lots\"".to_string())]
    );
    let c = m.into_controllers().remove(0);
    assert_eq!(c.virtual_drives[0].verdict, "degraded");
    assert_eq!(c.physical_drives[0].verdict, "rebuilding");
    assert_eq!(c.physical_drives[1].verdict, "failed");
    assert!(
        c.physical_drives[1]
            .reasons
            .contains(&"7 media errors".to_string())
    );
    assert_eq!(c.verdict, "failed");

    let m = parse("\u{0}\u{1}\u{fffd} binary: stuff\n");
    assert_eq!(m.problems[0].0, 1);
    assert!(m.problems[0].1.starts_with("not MegaCli output"));

    let m = parse("Adapter 0: something odd\n\nExit Code: 0x01\n");
    assert!(
        m.problems.iter().any(|p| p.1.contains("0x01")),
        "{:?}",
        m.problems
    );
}
