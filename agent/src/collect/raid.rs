//! The `raid` section: Linux software RAID from /proc/mdstat, and MegaRAID
//! controllers through storcli (JSON, preferred) or MegaCli when one is on
//! PATH.
//!
//! Unsupported means neither exists: no /proc/mdstat (md driver not loaded)
//! and no MegaRAID tool. An mdstat that lists no arrays is `ok` with no
//! arrays: the driver is there, and "this host has no arrays" is a fact
//! worth tracking (an array that vanishes is drift).
//!
//! The MegaRAID tools run only when the root is the real `/`: they talk to
//! the controller of the machine the agent runs on, not to the tree under
//! `--root`, so with another root they would report the wrong host; and
//! running binaries found under a foreign root as root would execute
//! whatever that tree holds.

use driftwatch_common::section::SectionKind;
use std::ffi::OsString;
use std::time::Duration;

use driftwatch_common::proto::{MdArray, RaidController, RaidProblem, RaidSection, section::Body};

use super::{Collector, Context, SectionError};
use crate::hostfs::FsError;
use crate::parse::verdict::Verdict;
use crate::parse::{mdstat, megacli, storcli};
use crate::subprocess::{RunError, Spec, which_in};

const MDSTAT: &str = "/proc/mdstat";
/// mdstat is a few KiB even with dozens of arrays.
const MAX_MDSTAT_BYTES: u64 = 1 << 20;
/// Where vendors install the tools when they are not on PATH.
const EXTRA_DIRS: &str = "/opt/MegaRAID/storcli:/opt/MegaRAID/MegaCli:/opt/lsi/storcli";
/// storcli may scan every drive; a minute is generous and still bounded.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TOOL_OUTPUT: usize = 32 << 20;

pub struct RaidCollector {
    /// Where to look for the tools: the agent's PATH plus vendor dirs.
    search_path: OsString,
    timeout: Duration,
}

impl Default for RaidCollector {
    fn default() -> Self {
        let mut p = std::env::var_os("PATH").unwrap_or_default();
        p.push(":");
        p.push(EXTRA_DIRS);
        RaidCollector {
            search_path: p,
            timeout: TOOL_TIMEOUT,
        }
    }
}

impl Collector for RaidCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Raid
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let mut s = RaidSection::default();
        let md = read_mdstat(ctx, &mut s);
        let tool = if ctx.fs.is_real_root() {
            megaraid(&self.search_path, self.timeout, &mut s)
        } else {
            None
        };
        match (&md, &tool) {
            (Err(MdAbsent), None) => {
                return Err(SectionError::Unsupported(
                    "no /proc/mdstat (md driver not loaded) and no storcli/MegaCli on PATH".into(),
                ));
            }
            (Ok(false), None) => {
                return Err(SectionError::Failed(
                    s.problems
                        .first()
                        .map(|p| p.message.clone())
                        .unwrap_or_else(|| "/proc/mdstat unreadable".into()),
                ));
            }
            _ => {}
        }
        s.megaraid_tool = tool.unwrap_or_default();
        s.verdict = overall(&s).as_str().to_string();
        Ok(Body::Raid(s))
    }
}

/// /proc/mdstat does not exist.
struct MdAbsent;

/// Ok(true): read and parsed; Ok(false): there but unreadable (a problem
/// was recorded).
fn read_mdstat(ctx: &Context, s: &mut RaidSection) -> Result<bool, MdAbsent> {
    let t = match ctx.fs.read_file(MDSTAT, MAX_MDSTAT_BYTES) {
        Ok(t) => t,
        Err(FsError::NotFound { .. }) => return Err(MdAbsent),
        Err(e) => {
            problem(s, MDSTAT, 0, e.to_string());
            return Ok(false);
        }
    };
    if t.lossy {
        problem(s, MDSTAT, 0, "holds bytes that are not UTF-8".into());
    }
    if t.truncated {
        problem(
            s,
            MDSTAT,
            0,
            format!("larger than {MAX_MDSTAT_BYTES} bytes: read the start only"),
        );
    }
    let m = mdstat::parse(&t.text);
    s.md_personalities = m.personalities;
    s.md_arrays = m.arrays;
    for (line, msg) in m.problems {
        problem(s, MDSTAT, line, msg);
    }
    for a in &mut s.md_arrays {
        refine_waiting_sync(ctx, a);
    }
    Ok(true)
}

/// mdstat prints `resync=DELAYED`/`PENDING` whatever the waiting operation
/// is, so a scheduled check queued behind another array's check reads as a
/// resync. sysfs knows the real action: when it says check or repair the
/// array is not rebuilding, and the verdict is assessed again.
fn refine_waiting_sync(ctx: &Context, a: &mut MdArray) {
    let Some(sync) = a.sync.as_mut() else { return };
    if sync.state == "running" {
        return;
    }
    let path = format!("/sys/block/{}/md/sync_action", a.name);
    let Ok(t) = ctx.fs.read_file(&path, 64) else {
        return;
    };
    let action = match t.text.trim() {
        "check" => "check",
        "repair" => "repair",
        "recover" => "recovery",
        "reshape" => "reshape",
        _ => return,
    };
    if sync.action != action {
        sync.action = action.to_string();
        let r = mdstat::assess(a);
        a.verdict = r.verdict.as_str().to_string();
        a.reasons = r.reasons;
    }
}

/// Runs the first MegaRAID tool found; returns its name.
pub(crate) fn megaraid(path: &OsString, timeout: Duration, s: &mut RaidSection) -> Option<String> {
    for name in ["storcli64", "storcli"] {
        if which_in(name, path).is_some() {
            s.controllers = run_storcli(name, path, timeout, s);
            return Some(name.to_string());
        }
    }
    for name in ["MegaCli64", "megacli", "MegaCli"] {
        if which_in(name, path).is_some() {
            s.controllers = run_megacli(name, path, timeout, s);
            return Some(name.to_string());
        }
    }
    None
}

/// Output of a tool run; a non-zero exit still yields its stdout, since
/// both tools exit non-zero on partial answers ("no BBU") that still parse.
fn run(
    name: &str,
    args: &[&str],
    path: &OsString,
    timeout: Duration,
    s: &mut RaidSection,
) -> Option<String> {
    let source = format!("{name} {}", args.join(" "));
    let spec = Spec::new(name)
        .args(args)
        .search_path(path.clone())
        .timeout(timeout)
        .max_output(MAX_TOOL_OUTPUT);
    match spec.run() {
        Ok(out) => Some(out.stdout_lossy()),
        Err(RunError::Failed { stdout, .. }) if !stdout.is_empty() => {
            Some(String::from_utf8_lossy(&stdout).into_owned())
        }
        Err(e) => {
            problem(s, &source, 0, e.to_string());
            None
        }
    }
}

fn run_storcli(
    name: &str,
    path: &OsString,
    timeout: Duration,
    s: &mut RaidSection,
) -> Vec<RaidController> {
    const SHOW: [&str; 5] = ["/call", "show", "all", "J", "nolog"];
    const DRIVES: [&str; 5] = ["/call/eall/sall", "show", "all", "J", "nolog"];
    let mut controllers = Vec::new();
    if let Some(text) = run(name, &SHOW, path, timeout, s) {
        match storcli::parse_controllers(&text) {
            Ok(r) => {
                for (c, msg) in r.problems {
                    problem(s, &format!("{name} /c{c} show all"), 0, msg);
                }
                controllers = r.controllers;
            }
            Err(e) => problem(s, &format!("{name} {}", SHOW.join(" ")), 0, e.to_string()),
        }
    }
    if let Some(text) = run(name, &DRIVES, path, timeout, s) {
        match storcli::parse_drives(&text) {
            Ok(r) => {
                for (c, msg) in &r.problems {
                    problem(
                        s,
                        &format!("{name} /c{c}/eall/sall show all"),
                        0,
                        msg.clone(),
                    );
                }
                storcli::merge_drives(&mut controllers, r);
            }
            Err(e) => problem(s, &format!("{name} {}", DRIVES.join(" ")), 0, e.to_string()),
        }
    }
    for c in &mut controllers {
        crate::parse::megaraid::assess_controller(c, Default::default());
    }
    controllers
}

fn run_megacli(
    name: &str,
    path: &OsString,
    timeout: Duration,
    s: &mut RaidSection,
) -> Vec<RaidController> {
    let commands: [&[&str]; 4] = [
        &["-AdpAllInfo", "-aALL", "-NoLog"],
        &["-LDInfo", "-Lall", "-aALL", "-NoLog"],
        &["-PDList", "-aALL", "-NoLog"],
        &["-AdpBbuCmd", "-aALL", "-NoLog"],
    ];
    let mut all = megacli::Megacli::default();
    for args in commands {
        if let Some(text) = run(name, args, path, timeout, s) {
            let mut m = megacli::parse(&text);
            let source = format!("{name} {}", args.join(" "));
            for (line, msg) in std::mem::take(&mut m.problems) {
                problem(s, &source, line, msg);
            }
            all.merge(m);
        }
    }
    all.into_controllers()
}

fn problem(s: &mut RaidSection, source: &str, line: usize, message: String) {
    s.problems.push(RaidProblem {
        source: source.to_string(),
        line: line as u32,
        message,
    });
}

/// Worst of everything; something we could not read is never "healthy".
fn overall(s: &RaidSection) -> Verdict {
    let mut v = Verdict::Healthy;
    for a in &s.md_arrays {
        v = v.max(Verdict::from_word(&a.verdict));
    }
    for c in &s.controllers {
        v = v.max(Verdict::from_word(&c.verdict));
    }
    if !s.problems.is_empty() {
        v = v.max(Verdict::Warning);
    }
    v
}

#[cfg(test)]
#[path = "raid_tests.rs"]
mod tests;
