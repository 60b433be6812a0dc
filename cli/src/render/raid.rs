//! `host show --section raid`: arrays, controllers, drives and batteries,
//! each with its verdict. Anything not healthy is marked with a leading `!`
//! and its verdict in capitals so it cannot be skimmed past.

use driftwatch_common::proto::{MdArray, RaidController, RaidSection};

use super::table::{Table, clip};

/// "healthy", or "! DEGRADED".
fn verdict(v: &str) -> String {
    if v == "healthy" {
        v.to_string()
    } else {
        format!("! {}", v.to_ascii_uppercase())
    }
}

fn members(a: &MdArray) -> String {
    a.members
        .iter()
        .map(|m| {
            let mut s = m.device.clone();
            for (on, flag) in [
                (m.failed, "(F)"),
                (m.spare, "(S)"),
                (m.write_mostly, "(W)"),
                (m.replacement, "(R)"),
                (m.journal, "(J)"),
            ] {
                if on {
                    s.push_str(flag);
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn sync(a: &MdArray) -> String {
    match &a.sync {
        None => String::new(),
        Some(s) if s.state == "running" => {
            let mut out = format!("{} {:.1}%", s.action, s.percent);
            if !s.finish.is_empty() {
                out.push_str(&format!(" finish={}", s.finish));
            }
            out
        }
        Some(s) => format!("{}={}", s.action, s.state.to_ascii_uppercase()),
    }
}

pub fn render(s: &RaidSection) -> String {
    let mut out = format!("overall: {}\n", verdict(&s.verdict));
    let mut why: Vec<String> = Vec::new();
    if !s.md_arrays.is_empty() {
        let mut t = Table::new([
            "ARRAY", "LEVEL", "STATE", "SLOTS", "SYNC", "MEMBERS", "VERDICT",
        ]);
        for a in &s.md_arrays {
            let mut state = a.state.clone();
            if !a.access.is_empty() {
                state.push_str(&format!(" ({})", a.access));
            }
            let slots = if a.raid_disks > 0 {
                format!("[{}/{}] [{}]", a.raid_disks, a.working_disks, a.slot_map)
            } else {
                String::new()
            };
            t.row([
                a.name.clone(),
                a.level.clone(),
                state,
                slots,
                sync(a),
                clip(&members(a), 60),
                verdict(&a.verdict),
            ]);
            if a.verdict != "healthy" {
                why.push(format!("{}: {}", a.name, a.reasons.join("; ")));
            }
        }
        out.push_str("\nsoftware RAID (/proc/mdstat)\n");
        out.push_str(&t.render());
    } else {
        out.push_str("\nsoftware RAID: no md arrays\n");
    }
    for c in &s.controllers {
        out.push_str(&controller(c, &s.megaraid_tool, &mut why));
    }
    if !why.is_empty() {
        out.push_str("\nwhy:\n");
        for w in why {
            out.push_str(&format!("  ! {w}\n"));
        }
    }
    if !s.problems.is_empty() {
        out.push_str("\nproblems:\n");
        for p in &s.problems {
            let at = if p.line > 0 {
                format!("{}:{}", p.source, p.line)
            } else {
                p.source.clone()
            };
            out.push_str(&format!("  ! {at}: {}\n", p.message));
        }
    }
    out
}

fn controller(c: &RaidController, tool: &str, why: &mut Vec<String>) -> String {
    let mut out = format!(
        "\ncontroller {} {} (status {}, via {}): {}\n",
        c.id,
        c.model,
        if c.status.is_empty() { "?" } else { &c.status },
        if tool.is_empty() { "?" } else { tool },
        verdict(&c.verdict)
    );
    let name = format!("controller {}", c.id);
    if c.verdict != "healthy" && !c.reasons.is_empty() {
        why.push(format!("{name}: {}", c.reasons.join("; ")));
    }
    if !c.virtual_drives.is_empty() {
        let mut t = Table::new(["VD", "NAME", "LEVEL", "STATE", "SIZE", "DRIVES", "VERDICT"]);
        for v in &c.virtual_drives {
            t.row([
                v.id.clone(),
                v.name.clone(),
                clip(&v.raid_level, 30),
                v.state.clone(),
                v.size.clone(),
                v.drives.to_string(),
                verdict(&v.verdict),
            ]);
            if v.verdict != "healthy" {
                why.push(format!("{name} VD {}: {}", v.id, v.reasons.join("; ")));
            }
        }
        out.push_str(&t.render());
    }
    if !c.physical_drives.is_empty() {
        let mut t = Table::new([
            "DRIVE",
            "STATE",
            "DG",
            "MEDIA",
            "SIZE",
            "MODEL",
            "MEDIA ERR",
            "PRED FAIL",
            "SMART",
            "VERDICT",
        ]);
        for p in &c.physical_drives {
            let (media, pred) = if p.counters_known {
                (
                    p.media_errors.to_string(),
                    p.predictive_failures.to_string(),
                )
            } else {
                ("-".into(), "-".into())
            };
            t.row([
                p.id.clone(),
                p.state.clone(),
                p.drive_group.clone(),
                p.media.clone(),
                p.size.clone(),
                clip(&p.model, 30),
                media,
                pred,
                if p.smart_alert {
                    "ALERT".into()
                } else {
                    String::new()
                },
                verdict(&p.verdict),
            ]);
            if p.verdict != "healthy" {
                why.push(format!("{name} drive {}: {}", p.id, p.reasons.join("; ")));
            }
        }
        out.push_str(&t.render());
    }
    for b in &c.batteries {
        let state = if b.present {
            let mut s = format!("{} {}", b.model, b.state);
            if b.charge_percent > 0 {
                s.push_str(&format!(", {}% charged", b.charge_percent));
            }
            s
        } else {
            "not fitted".to_string()
        };
        out.push_str(&format!(
            "{}: {} {}\n",
            b.kind,
            state.trim(),
            verdict(&b.verdict)
        ));
        if b.verdict != "healthy" {
            why.push(format!("{name} {}: {}", b.kind, b.reasons.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::{
        MdMember, MdSync, RaidBattery, RaidPhysicalDrive, RaidProblem, RaidVirtualDrive,
    };

    use super::*;

    #[test]
    fn trouble_stands_out() {
        let s = RaidSection {
            verdict: "degraded".into(),
            md_arrays: vec![
                MdArray {
                    name: "md0".into(),
                    level: "raid1".into(),
                    state: "active".into(),
                    raid_disks: 2,
                    working_disks: 2,
                    slot_map: "UU".into(),
                    verdict: "healthy".into(),
                    sync: Some(MdSync {
                        action: "check".into(),
                        state: "running".into(),
                        percent: 98.3,
                        finish: "81.7min".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                MdArray {
                    name: "md6".into(),
                    level: "raid1".into(),
                    state: "active".into(),
                    raid_disks: 2,
                    working_disks: 1,
                    slot_map: "U_".into(),
                    members: vec![
                        MdMember {
                            device: "sda2".into(),
                            ..Default::default()
                        },
                        MdMember {
                            device: "sdb2".into(),
                            index: 2,
                            failed: true,
                            ..Default::default()
                        },
                    ],
                    verdict: "degraded".into(),
                    reasons: vec!["1 of 2 slots missing, nothing rebuilding".into()],
                    ..Default::default()
                },
            ],
            megaraid_tool: "storcli64".into(),
            controllers: vec![RaidController {
                id: "0".into(),
                model: "ServeRAID M5015".into(),
                status: "Optimal".into(),
                verdict: "warning".into(),
                virtual_drives: vec![RaidVirtualDrive {
                    id: "0/0".into(),
                    raid_level: "RAID6".into(),
                    state: "Optl".into(),
                    verdict: "healthy".into(),
                    ..Default::default()
                }],
                physical_drives: vec![RaidPhysicalDrive {
                    id: "252:1".into(),
                    state: "UBad".into(),
                    counters_known: true,
                    media_errors: 4,
                    verdict: "warning".into(),
                    reasons: vec!["drive is unconfigured-bad".into()],
                    ..Default::default()
                }],
                batteries: vec![RaidBattery {
                    kind: "bbu".into(),
                    present: false,
                    verdict: "healthy".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            problems: vec![RaidProblem {
                source: "/proc/mdstat".into(),
                line: 7,
                message: "md6: unrecognised line: foo".into(),
            }],
            ..Default::default()
        };
        let text = render(&s);
        assert!(text.starts_with("overall: ! DEGRADED\n"), "{text}");
        assert!(text.contains("check 98.3% finish=81.7min"), "{text}");
        assert!(text.contains("sda2 sdb2(F)"), "{text}");
        let md6 = text.lines().find(|l| l.starts_with("md6")).unwrap();
        assert!(md6.ends_with("! DEGRADED"), "{md6}");
        assert!(md6.contains("[2/1] [U_]"), "{md6}");
        let md0 = text.lines().find(|l| l.starts_with("md0")).unwrap();
        assert!(md0.ends_with("healthy"), "{md0}");
        assert!(
            text.contains(
                "controller 0 ServeRAID M5015 (status Optimal, via storcli64): ! WARNING"
            ),
            "{text}"
        );
        let pd = text.lines().find(|l| l.starts_with("252:1")).unwrap();
        assert!(pd.contains(" 4 ") && pd.ends_with("! WARNING"), "{pd}");
        assert!(text.contains("bbu: not fitted healthy"), "{text}");
        assert!(
            text.contains("  ! md6: 1 of 2 slots missing, nothing rebuilding"),
            "{text}"
        );
        assert!(
            text.contains("  ! controller 0 drive 252:1: drive is unconfigured-bad"),
            "{text}"
        );
        assert!(
            text.contains("  ! /proc/mdstat:7: md6: unrecognised line: foo"),
            "{text}"
        );
    }

    #[test]
    fn nothing_to_report() {
        let text = render(&RaidSection {
            verdict: "healthy".into(),
            ..Default::default()
        });
        assert_eq!(text, "overall: healthy\n\nsoftware RAID: no md arrays\n");
    }
}
