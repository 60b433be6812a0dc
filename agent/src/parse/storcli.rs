//! storcli JSON (`storcli64 /call show all J` and
//! `/call/eall/sall show all J`): controllers, virtual drives, physical
//! drives with their error counters, and the BBU or CacheVault.
//!
//! storcli's JSON is a printout turned into objects: keys carry spaces and
//! drive names (`"Drive /c0/e252/s0 - Detailed Information"`), numbers are
//! sometimes strings ("N/A"), and sections appear or not by controller kind
//! (an HBA lists drives under "Physical Device Information" and has no VD
//! LIST). So the parser walks `serde_json::Value` and tolerates any missing
//! field; what it needs and cannot find is simply left empty.

use driftwatch_common::proto::{RaidBattery, RaidController, RaidPhysicalDrive, RaidVirtualDrive};
use serde_json::{Map, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StorcliError {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("no \"Controllers\" array: not storcli JSON output")]
    NotStorcli,
}

/// What one storcli command said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Storcli {
    /// Not yet assessed: call [`super::megaraid::assess_controller`] once
    /// everything is merged.
    pub controllers: Vec<RaidController>,
    /// Controllers whose command failed: (controller id, description).
    pub problems: Vec<(String, String)>,
}

fn root(text: &str) -> Result<Vec<Value>, StorcliError> {
    let v: Value = serde_json::from_str(text).map_err(|e| StorcliError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    match v.get("Controllers") {
        Some(Value::Array(cs)) => Ok(cs.clone()),
        _ => Err(StorcliError::NotStorcli),
    }
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A counter: a number, a numeric string, or "N/A" (None).
fn count(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Each controller's id and "Response Data", with failed commands noted.
fn responses(cs: Vec<Value>, out: &mut Storcli) -> Vec<(String, Map<String, Value>)> {
    let mut res = Vec::new();
    for c in cs {
        let status = c.get("Command Status");
        let id = s(status.and_then(|st| st.get("Controller")));
        let ok = s(status.and_then(|st| st.get("Status")));
        if !ok.eq_ignore_ascii_case("success") {
            let why = s(status.and_then(|st| st.get("Description")));
            out.problems.push((
                id.clone(),
                format!("command status {ok:?}: {why}")
                    .trim_end_matches(": ")
                    .to_string(),
            ));
        }
        if let Some(Value::Object(data)) = c.get("Response Data") {
            res.push((id, data.clone()));
        }
    }
    res
}

/// `storcli /call show all J`.
pub fn parse_controllers(text: &str) -> Result<Storcli, StorcliError> {
    let mut out = Storcli::default();
    for (id, data) in responses(root(text)?, &mut out) {
        let basics = data.get("Basics");
        let mut c = RaidController {
            id: if id.is_empty() {
                s(basics.and_then(|b| b.get("Controller")))
            } else {
                id
            },
            model: s(basics.and_then(|b| b.get("Model"))),
            serial: s(basics.and_then(|b| b.get("Serial Number"))),
            status: s(data
                .get("Status")
                .and_then(|st| st.get("Controller Status"))),
            ..Default::default()
        };
        let pds = list(&data, "PD LIST");
        for v in list(&data, "VD LIST") {
            let id = s(v.get("DG/VD"));
            let dg = id.split('/').next().unwrap_or("").to_string();
            c.virtual_drives.push(RaidVirtualDrive {
                name: s(v.get("Name")),
                raid_level: s(v.get("TYPE")),
                state: s(v.get("State")),
                size: s(v.get("Size")),
                drives: pds.iter().filter(|p| s(p.get("DG")) == dg).count() as u32,
                cache_policy: s(v.get("Cache")),
                id,
                ..Default::default()
            });
        }
        for p in &pds {
            c.physical_drives.push(summary_pd(p));
        }
        if let Some(Value::Object(devs)) = data.get("Physical Device Information") {
            c.physical_drives.extend(drives_from(devs));
        }
        for (key, kind) in [("BBU_Info", "bbu"), ("Cachevault_Info", "cachevault")] {
            for b in list(&data, key) {
                c.batteries.push(RaidBattery {
                    kind: kind.into(),
                    model: s(b.get("Model")),
                    state: s(b.get("State")),
                    present: true,
                    ..Default::default()
                });
            }
        }
        out.controllers.push(c);
    }
    Ok(out)
}

/// `storcli /call/eall/sall show all J`: drives only, per controller.
pub fn parse_drives(text: &str) -> Result<Storcli, StorcliError> {
    let mut out = Storcli::default();
    for (id, data) in responses(root(text)?, &mut out) {
        out.controllers.push(RaidController {
            id,
            physical_drives: drives_from(&data),
            ..Default::default()
        });
    }
    Ok(out)
}

/// Puts the detailed drives of `drives` into the matching controllers,
/// replacing the PD LIST summaries (which carry no error counters).
pub fn merge_drives(controllers: &mut Vec<RaidController>, drives: Storcli) {
    for d in drives.controllers {
        match controllers.iter_mut().find(|c| c.id == d.id) {
            Some(c) => {
                for pd in d.physical_drives {
                    match c.physical_drives.iter_mut().find(|p| p.id == pd.id) {
                        Some(p) => *p = pd,
                        None => c.physical_drives.push(pd),
                    }
                }
            }
            None => controllers.push(d),
        }
    }
}

fn list<'a>(data: &'a Map<String, Value>, key: &str) -> Vec<&'a Value> {
    match data.get(key) {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    }
}

/// One row of a PD LIST / drive summary.
fn summary_pd(p: &Value) -> RaidPhysicalDrive {
    let dg = s(p.get("DG"));
    RaidPhysicalDrive {
        id: s(p.get("EID:Slt")).replace(' ', ""),
        state: s(p.get("State")),
        drive_group: if dg == "-" { String::new() } else { dg },
        model: s(p.get("Model")),
        size: s(p.get("Size")),
        media: s(p.get("Med")),
        interface: s(p.get("Intf")),
        ..Default::default()
    }
}

/// The `"Drive /cX/eY/sZ": [summary]` + `"… - Detailed Information"` pairs.
fn drives_from(devs: &Map<String, Value>) -> Vec<RaidPhysicalDrive> {
    let mut out = Vec::new();
    for (name, v) in devs {
        if !name.starts_with("Drive /") || name.ends_with("Detailed Information") {
            continue;
        }
        let Some(row) = v.as_array().and_then(|a| a.first()) else {
            continue;
        };
        let mut pd = summary_pd(row);
        let detail = devs.get(&format!("{name} - Detailed Information"));
        if let Some(st) = detail.and_then(|d| d.get(format!("{name} State"))) {
            let media = count(st.get("Media Error Count"));
            let other = count(st.get("Other Error Count"));
            let pred = count(st.get("Predictive Failure Count"));
            pd.counters_known = media.is_some() || pred.is_some();
            pd.media_errors = media.unwrap_or(0);
            pd.other_errors = other.unwrap_or(0);
            pd.predictive_failures = pred.unwrap_or(0);
            pd.smart_alert =
                s(st.get("S.M.A.R.T alert flagged by drive")).eq_ignore_ascii_case("yes");
        }
        out.push(pd);
    }
    out
}

#[cfg(test)]
#[path = "storcli_tests.rs"]
mod tests;
