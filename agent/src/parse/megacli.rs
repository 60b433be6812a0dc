//! MegaCli text output: `-LDInfo -Lall -aALL`, `-LdPdInfo -aALL`,
//! `-PDList -aALL`, `-AdpBbuCmd -aALL` and `-AdpAllInfo -aALL`.
//!
//! All of them are `Key: Value` lines grouped under adapter markers
//! (`Adapter #0`, `Adapter 0 -- Virtual Drive Information:`, `BBU status for
//! Adapter: 0`), with a block starting at `Virtual Drive:`, `Enclosure Device
//! ID:` or `BatteryType:`. One reader handles every command; outputs of
//! several commands are combined with [`Megacli::merge`]. Keys it does not
//! need (MegaCli prints hundreds) are skipped; a value it needs but cannot
//! read is reported with its line number.

use std::collections::BTreeMap;

use driftwatch_common::proto::{RaidBattery, RaidController, RaidPhysicalDrive, RaidVirtualDrive};

use super::megaraid::assess_controller;
use super::verdict::{Assessment, Verdict};

/// What one or more MegaCli commands said, per adapter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Megacli {
    adapters: BTreeMap<u32, Adapter>,
    /// (1-based line, reason); line 0 when not tied to a line.
    pub problems: Vec<(usize, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Adapter {
    controller: RaidController,
    /// Findings from AdpAllInfo's counters, judged with the rest later.
    pre: Assessment,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Adapter,
    Vd,
    Pd,
    Bbu,
}

impl Megacli {
    /// Adds another command's output (the same adapters seen again are
    /// filled in, drives matched by enclosure:slot).
    pub fn merge(&mut self, other: Megacli) {
        for (n, a) in other.adapters {
            let mine = self.adapters.entry(n).or_default();
            let (c, o) = (&mut mine.controller, a.controller);
            if c.id.is_empty() {
                c.id = o.id;
            }
            for (dst, src) in [(&mut c.model, o.model), (&mut c.serial, o.serial)] {
                if dst.is_empty() {
                    *dst = src;
                }
            }
            c.virtual_drives.extend(o.virtual_drives);
            for pd in o.physical_drives {
                match c.physical_drives.iter_mut().find(|p| p.id == pd.id) {
                    // LdPdInfo and PDList describe the same disks.
                    Some(p) if p.drive_group.is_empty() || !pd.drive_group.is_empty() => *p = pd,
                    Some(_) => {}
                    None => c.physical_drives.push(pd),
                }
            }
            c.batteries.extend(o.batteries);
            mine.pre.verdict = mine.pre.verdict.max(a.pre.verdict);
            mine.pre.reasons.extend(a.pre.reasons);
        }
        self.problems.extend(other.problems);
    }

    /// The controllers, each assessed.
    pub fn into_controllers(self) -> Vec<RaidController> {
        self.adapters
            .into_values()
            .map(|a| {
                let mut c = a.controller;
                assess_controller(&mut c, a.pre);
                c
            })
            .collect()
    }
}

/// Parses the output of any of the supported MegaCli commands.
pub fn parse(text: &str) -> Megacli {
    let mut out = Megacli::default();
    let mut adapter: u32 = 0;
    let mut block = Block::Adapter;
    let mut recognised = false;
    let mut bbu_absent = false;
    let mut exit_code = String::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(n) = adapter_marker(t) {
            adapter = n;
            block = Block::Adapter;
            recognised = true;
            let a = out.adapters.entry(n).or_default();
            a.controller.id = n.to_string();
            if t.contains("Get BBU Status Failed") {
                bbu_absent = true;
                a.controller.batteries.push(RaidBattery {
                    kind: "bbu".into(),
                    present: false,
                    ..Default::default()
                });
            }
            continue;
        }
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "Exit Code" {
            exit_code = value.to_string();
            recognised = true;
            continue;
        }
        // Text before any adapter marker is a banner or a command echo.
        if !recognised
            && !matches!(
                key,
                "Virtual Drive" | "Virtual Disk" | "Enclosure Device ID" | "BatteryType"
            )
        {
            continue;
        }
        let a = out.adapters.entry(adapter).or_insert_with(|| Adapter {
            controller: RaidController {
                id: adapter.to_string(),
                ..Default::default()
            },
            ..Default::default()
        });
        let c = &mut a.controller;
        let mut bad = |what: &str| {
            out.problems
                .push((lineno, format!("{key}: {what} {value:?}")))
        };
        match key {
            "Virtual Drive" | "Virtual Disk" => {
                block = Block::Vd;
                recognised = true;
                c.virtual_drives.push(RaidVirtualDrive {
                    id: value.split_whitespace().next().unwrap_or("").to_string(),
                    ..Default::default()
                });
                continue;
            }
            "Enclosure Device ID" => {
                block = Block::Pd;
                recognised = true;
                c.physical_drives.push(RaidPhysicalDrive {
                    // Completed with ":slot" by "Slot Number".
                    id: value.to_string(),
                    ..Default::default()
                });
                continue;
            }
            "BatteryType" => {
                block = Block::Bbu;
                recognised = true;
                c.batteries.push(RaidBattery {
                    kind: "bbu".into(),
                    model: value.to_string(),
                    present: true,
                    ..Default::default()
                });
                continue;
            }
            _ => {}
        }
        match block {
            Block::Adapter => adapter_field(a, key, value, &mut bad),
            Block::Vd => {
                if let Some(vd) = c.virtual_drives.last_mut() {
                    vd_field(vd, key, value, &mut bad);
                }
            }
            Block::Pd => {
                if let Some(pd) = c.physical_drives.last_mut() {
                    pd_field(pd, key, value, &mut bad);
                }
            }
            Block::Bbu => {
                if let Some(b) = c.batteries.last_mut() {
                    bbu_field(b, key, value, &mut bad);
                }
            }
        }
    }
    if !recognised && !text.trim().is_empty() {
        out.problems.insert(
            0,
            (
                1,
                "not MegaCli output: no adapter, drive or exit code".into(),
            ),
        );
    } else if !exit_code.is_empty() && exit_code != "0x00" && !bbu_absent {
        out.problems
            .push((0, format!("MegaCli exited with code {exit_code}")));
    }
    out
}

/// `Adapter #0`, `Adapter 0 -- Virtual Drive Information:`,
/// `Adapter 0: No Virtual Drive Configured.`, `BBU status for Adapter: 0`.
fn adapter_marker(t: &str) -> Option<u32> {
    let rest = t
        .strip_prefix("Adapter #")
        .or_else(|| t.strip_prefix("Adapter "))
        .or_else(|| t.strip_prefix("BBU status for Adapter:"))?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn yes(v: &str) -> bool {
    v.eq_ignore_ascii_case("yes")
}

fn number(value: &str, bad: &mut impl FnMut(&str)) -> u64 {
    value
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            bad("not a number:");
            0
        })
}

fn adapter_field(a: &mut Adapter, key: &str, value: &str, bad: &mut impl FnMut(&str)) {
    match key {
        "Product Name" => a.controller.model = value.to_string(),
        "Serial No" => a.controller.serial = value.to_string(),
        // AdpAllInfo's "Device Present" counters.
        "Degraded" if number(value, bad) > 0 => a.pre.raise(
            Verdict::Degraded,
            format!("{value} degraded virtual drives"),
        ),
        "Offline" if number(value, bad) > 0 => a
            .pre
            .raise(Verdict::Failed, format!("{value} offline virtual drives")),
        "Critical Disks" if number(value, bad) > 0 => a
            .pre
            .raise(Verdict::Warning, format!("{value} critical disks")),
        "Failed Disks" if number(value, bad) > 0 => a
            .pre
            .raise(Verdict::Warning, format!("{value} failed disks")),
        _ => {}
    }
}

fn vd_field(vd: &mut RaidVirtualDrive, key: &str, value: &str, bad: &mut impl FnMut(&str)) {
    match key {
        "Name" => vd.name = value.to_string(),
        "RAID Level" => vd.raid_level = value.to_string(),
        "Size" => vd.size = value.to_string(),
        "State" => vd.state = value.to_string(),
        "Number Of Drives" => vd.drives = number(value, bad) as u32,
        "Current Cache Policy" => vd.cache_policy = value.to_string(),
        _ => {}
    }
}

fn pd_field(pd: &mut RaidPhysicalDrive, key: &str, value: &str, bad: &mut impl FnMut(&str)) {
    match key {
        "Slot Number" => pd.id = format!("{}:{value}", pd.id),
        "Firmware state" => pd.state = value.to_string(),
        "Media Error Count" => {
            pd.media_errors = number(value, bad);
            pd.counters_known = true;
        }
        "Other Error Count" => pd.other_errors = number(value, bad),
        "Predictive Failure Count" => pd.predictive_failures = number(value, bad),
        "Drive has flagged a S.M.A.R.T alert" => pd.smart_alert = yes(value),
        "PD Type" => pd.interface = value.to_string(),
        "Raw Size" => pd.size = value.split('[').next().unwrap_or("").trim().to_string(),
        "Inquiry Data" => pd.model = value.split_whitespace().collect::<Vec<_>>().join(" "),
        "Media Type" => {
            pd.media = match value {
                "Hard Disk Device" => "HDD".into(),
                "Solid State Device" => "SSD".into(),
                other => other.to_string(),
            }
        }
        // "DiskGroup: 0, Span: 0, Arm: 0"
        "Drive's position" => {
            pd.drive_group = value
                .strip_prefix("DiskGroup:")
                .and_then(|r| r.split(',').next())
                .unwrap_or("")
                .trim()
                .to_string()
        }
        _ => {}
    }
}

fn bbu_field(b: &mut RaidBattery, key: &str, value: &str, bad: &mut impl FnMut(&str)) {
    let k = key.to_ascii_lowercase();
    match k.as_str() {
        "battery state" => b.state = value.to_string(),
        "battery replacement required" | "pack is about to fail & should be replaced" => {
            b.replacement_required |= yes(value)
        }
        // Parsers leave findings as reasons; assess_battery makes them
        // warnings.
        "battery pack missing" if yes(value) => b.reasons.push("battery pack missing".into()),
        "remaining capacity low" if yes(value) => b.reasons.push("remaining capacity low".into()),
        "relative state of charge" if b.charge_percent == 0 => {
            b.charge_percent = number(value.trim_end_matches('%'), bad) as u32
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "megacli_tests.rs"]
mod tests;
