//! storcli parser tests on the captured JSON fixtures.

use serde_json::{Value, json};

use super::*;
use crate::parse::megaraid::assess_controller;
use crate::parse::verdict::Assessment;
use crate::testutil::fixture;

fn load(file: &str) -> String {
    fixture(&format!("megaraid/{file}"))
}

fn assessed(mut s: Storcli) -> Vec<RaidController> {
    for c in &mut s.controllers {
        assess_controller(c, Assessment::default());
    }
    s.controllers
}

fn ids(c: &RaidController) -> Vec<(&str, &str, &str)> {
    c.physical_drives
        .iter()
        .map(|p| (p.id.as_str(), p.state.as_str(), p.verdict.as_str()))
        .collect()
}

#[test]
fn m5015_raid6_with_bbu_is_healthy() {
    let s = parse_controllers(&load("storcli-call-show-all-j-m5015-raid6-optimal.json")).unwrap();
    assert!(s.problems.is_empty());
    let cs = assessed(s);
    assert_eq!(cs.len(), 1);
    let c = &cs[0];
    assert_eq!(c.id, "0");
    assert_eq!(c.model, "ServeRAID M5015 SAS/SATA Controller");
    assert_eq!(c.status, "Optimal");
    assert_eq!(c.virtual_drives.len(), 1);
    let vd = &c.virtual_drives[0];
    assert_eq!(
        (
            vd.id.as_str(),
            vd.raid_level.as_str(),
            vd.state.as_str(),
            vd.size.as_str(),
            vd.name.as_str(),
            vd.drives,
            vd.verdict.as_str()
        ),
        ("0/0", "RAID6", "Optl", "58.207 TB", "Sluthub", 6, "healthy")
    );
    assert_eq!(c.physical_drives.len(), 6);
    assert!(c.physical_drives.iter().all(|p| p.state == "Onln"
        && p.verdict == "healthy"
        && p.drive_group == "0"
        && !p.counters_known));
    assert_eq!(c.batteries.len(), 1);
    let b = &c.batteries[0];
    assert_eq!(
        (
            b.kind.as_str(),
            b.model.as_str(),
            b.state.as_str(),
            b.verdict.as_str()
        ),
        ("bbu", "iBBU08", "Optimal", "healthy")
    );
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn drive_details_carry_counters_and_merge_into_the_controller() {
    let d = parse_drives(&load("storcli-call-eall-sall-show-all-j-6-online.json")).unwrap();
    assert_eq!(d.controllers.len(), 1);
    let pds = &d.controllers[0].physical_drives;
    assert_eq!(pds.len(), 6);
    assert!(pds.iter().all(|p| p.counters_known
        && p.media_errors == 0
        && p.other_errors == 0
        && p.predictive_failures == 0
        && !p.smart_alert
        && p.model == "ST16000NM001G-2KK103"));

    let mut cs = parse_controllers(&load("storcli-call-show-all-j-m5015-raid6-optimal.json"))
        .unwrap()
        .controllers;
    merge_drives(&mut cs, d);
    assess_controller(&mut cs[0], Assessment::default());
    assert_eq!(
        ids(&cs[0]),
        vec![
            ("252:0", "Onln", "healthy"),
            ("252:1", "Onln", "healthy"),
            ("252:3", "Onln", "healthy"),
            ("252:4", "Onln", "healthy"),
            ("252:5", "Onln", "healthy"),
            ("252:7", "Onln", "healthy"),
        ]
    );
    assert!(cs[0].physical_drives.iter().all(|p| p.counters_known));
    assert_eq!(cs[0].verdict, "healthy");
}

#[test]
fn ep420i_with_cachevault_is_healthy() {
    let cs = assessed(
        parse_controllers(&load(
            "storcli-call-show-all-j-ep420i-raid6-cachevault.json",
        ))
        .unwrap(),
    );
    let c = &cs[0];
    assert_eq!(c.status, "Optimal");
    assert!(c.model.contains("EP420i"), "{}", c.model);
    let vd = &c.virtual_drives[0];
    assert_eq!(
        (
            vd.id.as_str(),
            vd.raid_level.as_str(),
            vd.state.as_str(),
            vd.size.as_str()
        ),
        ("0/0", "RAID6", "Optl", "1.745 TB")
    );
    assert_eq!(
        ids(c).iter().map(|p| p.0).collect::<Vec<_>>(),
        vec!["252:0", "252:1", "252:4", "252:5"]
    );
    assert_eq!(c.batteries[0].kind, "cachevault");
    assert_eq!(c.batteries[0].model, "CVPM02");
    assert_eq!(c.batteries[0].verdict, "healthy");
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn hba_without_vds_lists_jbod_drives() {
    let cs = assessed(
        parse_controllers(&load("storcli-call-show-all-j-hba9500-jbod-no-vds.json")).unwrap(),
    );
    let c = &cs[0];
    assert_eq!(c.status, "OK");
    assert!(c.model.contains("9500-8i"), "{}", c.model);
    assert!(c.virtual_drives.is_empty());
    assert!(c.batteries.is_empty());
    assert_eq!(c.physical_drives.len(), 29);
    assert!(c.physical_drives.iter().all(|p| p.state == "JBOD"
        && p.verdict == "healthy"
        && !p.counters_known
        && p.drive_group.is_empty()));
    assert_eq!(c.physical_drives[0].id, "23:0");
    assert_eq!(c.verdict, "healthy");
}

#[test]
fn degraded_and_failing_states_from_an_edited_fixture() {
    // No real degraded sample exists (SOURCES.md, known gaps): edit one.
    let mut v: Value =
        serde_json::from_str(&load("storcli-call-show-all-j-m5015-raid6-optimal.json")).unwrap();
    let data = &mut v["Controllers"][0]["Response Data"];
    data["VD LIST"][0]["State"] = json!("Dgrd");
    data["PD LIST"][0]["State"] = json!("Rbld");
    data["PD LIST"][1]["State"] = json!("UBad");
    data["BBU_Info"][0]["State"] = json!("Dgd (Needs Attention)");
    data["Status"]["Controller Status"] = json!("Needs Attention");
    let cs = assessed(parse_controllers(&v.to_string()).unwrap());
    let c = &cs[0];
    assert_eq!(c.virtual_drives[0].verdict, "degraded");
    assert_eq!(c.physical_drives[0].verdict, "rebuilding");
    assert_eq!(c.physical_drives[1].verdict, "warning");
    assert_eq!(c.batteries[0].verdict, "warning");
    assert_eq!(c.verdict, "degraded");
    assert!(c.reasons.iter().any(|r| r.contains("Needs Attention")));

    let mut d: Value =
        serde_json::from_str(&load("storcli-call-eall-sall-show-all-j-6-online.json")).unwrap();
    let st = &mut d["Controllers"][0]["Response Data"]["Drive /c0/e252/s0 - Detailed Information"]
        ["Drive /c0/e252/s0 State"];
    st["Media Error Count"] = json!(12);
    st["S.M.A.R.T alert flagged by drive"] = json!("Yes");
    let cs = assessed(parse_drives(&d.to_string()).unwrap());
    let p = &cs[0].physical_drives[0];
    assert_eq!(
        (p.media_errors, p.smart_alert, p.verdict.as_str()),
        (12, true, "warning")
    );
}

#[test]
fn bad_json_is_a_clear_error() {
    let text = load("storcli-call-show-all-j-m5015-raid6-optimal.json");
    let cut = &text[..text.len() / 2];
    match parse_controllers(cut).unwrap_err() {
        StorcliError::Json { line, .. } => assert!(line > 100, "line {line}"),
        e => panic!("unexpected {e}"),
    }
    let e = parse_drives("\u{0}\u{fffd}garbage").unwrap_err();
    assert!(e.to_string().starts_with("not valid JSON at line 1"), "{e}");
    assert_eq!(
        parse_controllers("{\"x\": 1}").unwrap_err(),
        StorcliError::NotStorcli
    );
    // A failed command is a problem, not a crash.
    let s = parse_controllers(
        r#"{"Controllers":[{"Command Status":{"Controller":1,"Status":"Failure","Description":"Controller 1 not found"}}]}"#,
    )
    .unwrap();
    assert!(s.controllers.is_empty());
    assert_eq!(
        s.problems,
        vec![(
            "1".to_string(),
            "command status \"Failure\": Controller 1 not found".to_string()
        )]
    );
}
