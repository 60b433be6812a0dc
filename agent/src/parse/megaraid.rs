//! What MegaRAID state words mean, shared by the storcli (JSON) and MegaCli
//! (text) parsers: storcli abbreviates (`Onln`, `Dgrd`), MegaCli spells out
//! (`Online, Spun Up`, `Degraded`), and both must give the same verdicts.

use driftwatch_common::proto::{RaidBattery, RaidController, RaidPhysicalDrive, RaidVirtualDrive};

use super::verdict::{Assessment, Verdict};

/// The first word of a state, lowercased: "Online, Spun Up" -> "online".
fn key(state: &str) -> String {
    state
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A virtual drive's verdict from its state word.
pub fn assess_vd(vd: &mut RaidVirtualDrive) {
    let mut a = Assessment::default();
    let k = key(&vd.state);
    match k.as_str() {
        "optl" | "optimal" => {}
        "dgrd" | "degraded" | "pdgd" | "partially degraded" => {
            a.raise(Verdict::Degraded, format!("virtual drive {}", vd.state))
        }
        "rec" | "recovery" => a.raise(Verdict::Rebuilding, "virtual drive recovering"),
        "ofln" | "offline" | "failed" | "msng" | "missing" => {
            a.raise(Verdict::Failed, format!("virtual drive {}", vd.state))
        }
        "" => a.raise(Verdict::Warning, "virtual drive state not reported"),
        _ => a.raise(
            Verdict::Warning,
            format!("unknown virtual drive state {:?}", vd.state),
        ),
    }
    set(&mut vd.verdict, &mut vd.reasons, a);
}

/// A physical drive's verdict from its state and error counters. "Other
/// error" counts are not judged: link resets raise them on healthy disks.
pub fn assess_pd(pd: &mut RaidPhysicalDrive) {
    let mut a = Assessment::default();
    let k = key(&pd.state);
    match k.as_str() {
        "onln" | "online" | "ugood" | "unconfigured(good)" | "dhs" | "ghs" | "hotspare"
        | "jbod" => {}
        "cpybck" | "copyback" => a.note("copying back from a hot spare"),
        "rbld" | "rebuild" => a.raise(Verdict::Rebuilding, "drive rebuilding"),
        "ubad" | "unconfigured(bad)" => a.raise(Verdict::Warning, "drive is unconfigured-bad"),
        "offln" | "offline" | "failed" | "msng" | "missing" => {
            a.raise(Verdict::Failed, format!("drive {}", pd.state))
        }
        "" => a.raise(Verdict::Warning, "drive state not reported"),
        _ => a.raise(
            Verdict::Warning,
            format!("unknown drive state {:?}", pd.state),
        ),
    }
    if pd.media_errors > 0 {
        a.raise(
            Verdict::Warning,
            format!("{} media errors", pd.media_errors),
        );
    }
    if pd.predictive_failures > 0 {
        a.raise(
            Verdict::Warning,
            format!("{} predictive failures", pd.predictive_failures),
        );
    }
    if pd.smart_alert {
        a.raise(Verdict::Warning, "drive has flagged a SMART alert");
    }
    set(&mut pd.verdict, &mut pd.reasons, a);
}

/// A BBU or CacheVault: anything other than Optimal needs attention; an
/// absent battery is reported but is not a disk problem.
pub fn assess_battery(b: &mut RaidBattery) {
    let mut a = Assessment::default();
    if !b.present {
        a.note("no battery fitted (controller cache runs write-through)");
    } else {
        match key(&b.state).as_str() {
            "optimal" | "" => {}
            // A scheduled learn cycle is routine.
            "learning" | "charging" => a.note(format!("battery {}", b.state)),
            _ => a.raise(Verdict::Warning, format!("{} state {}", b.kind, b.state)),
        }
        if b.replacement_required {
            a.raise(Verdict::Warning, format!("{} needs replacing", b.kind));
        }
    }
    let extra = std::mem::take(&mut b.reasons);
    for r in extra {
        a.raise(Verdict::Warning, r);
    }
    set(&mut b.verdict, &mut b.reasons, a);
}

/// Assesses everything the controller holds and rolls it up: worst wins,
/// and a controller status other than Optimal/OK is itself a warning.
/// `pre` carries reasons found while parsing (counters from AdpAllInfo).
pub fn assess_controller(c: &mut RaidController, pre: Assessment) {
    let mut a = pre;
    match key(&c.status).as_str() {
        "" | "optimal" | "ok" => {}
        _ => a.raise(Verdict::Warning, format!("controller status {}", c.status)),
    }
    c.virtual_drives.sort_by_key(|x| natural(&x.id));
    c.physical_drives.sort_by_key(|x| natural(&x.id));
    let mut worst = a.verdict;
    for vd in &mut c.virtual_drives {
        assess_vd(vd);
        worst = worst.max(Verdict::from_word(&vd.verdict));
    }
    for pd in &mut c.physical_drives {
        assess_pd(pd);
        worst = worst.max(Verdict::from_word(&pd.verdict));
    }
    for b in &mut c.batteries {
        assess_battery(b);
        worst = worst.max(Verdict::from_word(&b.verdict));
    }
    a.verdict = worst;
    set(&mut c.verdict, &mut c.reasons, a);
}

fn set(verdict: &mut String, reasons: &mut Vec<String>, a: Assessment) {
    *verdict = a.verdict.as_str().to_string();
    *reasons = a.reasons;
}

/// Sort key for ids like "252:10" or "0/1": numbers compare as numbers.
fn natural(id: &str) -> Vec<(u64, String)> {
    id.split([':', '/'])
        .map(|p| (p.trim().parse().unwrap_or(u64::MAX), p.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pd(state: &str) -> String {
        let mut d = RaidPhysicalDrive {
            state: state.into(),
            ..Default::default()
        };
        assess_pd(&mut d);
        d.verdict
    }

    fn vd(state: &str) -> String {
        let mut d = RaidVirtualDrive {
            state: state.into(),
            ..Default::default()
        };
        assess_vd(&mut d);
        d.verdict
    }

    #[test]
    fn both_vocabularies_agree() {
        for (storcli, megacli, v) in [
            ("Onln", "Online, Spun Up", "healthy"),
            ("UGood", "Unconfigured(good), Spun Up", "healthy"),
            ("UBad", "Unconfigured(bad)", "warning"),
            ("Rbld", "Rebuild", "rebuilding"),
            ("Offln", "Offline", "failed"),
            ("GHS", "Hotspare, Spun down", "healthy"),
            ("JBOD", "JBOD", "healthy"),
        ] {
            assert_eq!(pd(storcli), v, "{storcli}");
            assert_eq!(pd(megacli), v, "{megacli}");
        }
        for (storcli, megacli, v) in [
            ("Optl", "Optimal", "healthy"),
            ("Dgrd", "Degraded", "degraded"),
            ("Pdgd", "Partially Degraded", "degraded"),
            ("OfLn", "Offline", "failed"),
            ("Rec", "Recovery", "rebuilding"),
        ] {
            assert_eq!(vd(storcli), v, "{storcli}");
            assert_eq!(vd(megacli), v, "{megacli}");
        }
        assert_eq!(pd("Weird"), "warning");
        assert_eq!(vd("???"), "warning");
    }

    #[test]
    fn counters_and_rollup() {
        let mut c = RaidController {
            status: "Optimal".into(),
            physical_drives: vec![
                RaidPhysicalDrive {
                    id: "252:10".into(),
                    state: "Onln".into(),
                    media_errors: 3,
                    ..Default::default()
                },
                RaidPhysicalDrive {
                    id: "252:9".into(),
                    state: "Onln".into(),
                    other_errors: 40,
                    ..Default::default()
                },
            ],
            virtual_drives: vec![RaidVirtualDrive {
                id: "0/0".into(),
                state: "Dgrd".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assess_controller(&mut c, Assessment::default());
        assert_eq!(c.physical_drives[0].id, "252:9");
        assert_eq!(c.physical_drives[0].verdict, "healthy");
        assert_eq!(c.physical_drives[1].verdict, "warning");
        assert_eq!(c.physical_drives[1].reasons, vec!["3 media errors"]);
        assert_eq!(c.verdict, "degraded");
    }
}
