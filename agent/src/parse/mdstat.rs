//! `/proc/mdstat`: Linux software RAID arrays, their members, the background
//! operation and one health verdict per array.
//!
//! The format is the kernel's `md_seq_show`: a `Personalities :` line, then
//! one stanza per array (a header `mdN : active raid1 sda1[0] sdb1[1](F)`,
//! a status line with the block count, `[n/m]` and `[UU_]`, then optional
//! progress, `resync=DELAYED|PENDING` and `bitmap:` lines), then
//! `unused devices:`. Real files vary: status lines without indentation,
//! whitespace-only separators, no trailing newline, no footer.

use driftwatch_common::proto::{MdArray, MdMember, MdSync};

use super::verdict::{Assessment, Verdict};

/// Stop listing bad lines after this many: a garbage file must not turn
/// into a megabyte of problems.
const MAX_PROBLEMS: usize = 20;

const ACTIONS: [&str; 5] = ["resync", "recovery", "check", "repair", "reshape"];

/// A parsed mdstat file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mdstat {
    pub personalities: Vec<String>,
    /// Sorted by name, each with its verdict filled in.
    pub arrays: Vec<MdArray>,
    /// Lines that could not be understood: (1-based line, reason).
    pub problems: Vec<(usize, String)>,
}

/// Parses mdstat text. Never panics; lines it does not understand are
/// reported with their line number and the rest still parses.
pub fn parse(text: &str) -> Mdstat {
    let mut out = Mdstat::default();
    let mut current: Option<MdArray> = None;
    let mut saw_header = false;
    let mut dropped = 0usize;
    let mut problem = |out: &mut Mdstat, line: usize, msg: String| {
        if out.problems.len() < MAX_PROBLEMS {
            out.problems.push((line, msg));
        } else {
            dropped += 1;
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end_matches('\r');
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(rest) = t.strip_prefix("Personalities") {
            saw_header = true;
            let rest = rest.trim_start().trim_start_matches(':');
            out.personalities = rest
                .split_whitespace()
                .map(|p| p.trim_matches(|c| c == '[' || c == ']').to_string())
                .filter(|p| !p.is_empty())
                .collect();
            continue;
        }
        if t.starts_with("unused devices") {
            saw_header = true;
            out.arrays.extend(current.take());
            continue;
        }
        if let Some(array) = parse_header(t) {
            out.arrays.extend(current.take());
            current = Some(array);
            continue;
        }
        let Some(array) = current.as_mut() else {
            problem(
                &mut out,
                lineno,
                format!("not part of any array: {}", clip(t)),
            );
            continue;
        };
        if let Err(msg) = parse_body_line(array, t) {
            problem(&mut out, lineno, msg);
        }
    }
    out.arrays.extend(current.take());
    if !saw_header && out.arrays.is_empty() && !text.trim().is_empty() {
        out.problems.insert(
            0,
            (
                1,
                "not /proc/mdstat: no Personalities line and no arrays".into(),
            ),
        );
    }
    if dropped > 0 {
        out.problems
            .push((0, format!("{dropped} more unreadable lines not listed")));
    }
    for a in &mut out.arrays {
        a.members
            .sort_by(|x, y| (x.index, &x.device).cmp(&(y.index, &y.device)));
        a.external_container = is_external_container(a);
        let assessment = assess(a);
        a.verdict = assessment.verdict.as_str().to_string();
        a.reasons = assessment.reasons;
    }
    out.arrays
        .sort_by(|a, b| (a.name.len(), &a.name).cmp(&(b.name.len(), &b.name)));
    out
}

/// `md0 : active (auto-read-only) raid1 sda1[0] sdb1[1](F)`; None when the
/// line is not an array header.
fn parse_header(t: &str) -> Option<MdArray> {
    let (name, rest) = t.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace().peekable();
    let state = match words.next()? {
        s @ ("active" | "inactive") => s.to_string(),
        _ => return None,
    };
    let mut a = MdArray {
        name: name.to_string(),
        state,
        ..Default::default()
    };
    if let Some(w) = words.peek()
        && w.starts_with('(')
    {
        a.access = w.trim_matches(|c| c == '(' || c == ')').to_string();
        words.next();
    }
    for w in words {
        match parse_member(w) {
            Some(m) => a.members.push(m),
            // A word without `[index]` is the personality.
            None if a.level.is_empty() => a.level = w.to_string(),
            None => {}
        }
    }
    Some(a)
}

/// `sdb2[2](F)`, `sdc[1](W)(F)`.
fn parse_member(w: &str) -> Option<MdMember> {
    let (dev, rest) = w.split_once('[')?;
    let (idx, flags) = rest.split_once(']')?;
    let mut m = MdMember {
        device: dev.to_string(),
        index: idx.parse().ok()?,
        ..Default::default()
    };
    for f in flags.split(')').map(|f| f.trim_start_matches('(')) {
        match f {
            "F" => m.failed = true,
            "S" => m.spare = true,
            "W" => m.write_mostly = true,
            "R" => m.replacement = true,
            "J" => m.journal = true,
            _ => {}
        }
    }
    m.role = if m.failed {
        "failed"
    } else if m.spare {
        "spare"
    } else if m.journal {
        "journal"
    } else if m.replacement {
        "replacement"
    } else {
        "active"
    }
    .to_string();
    Some(m)
}

fn parse_body_line(a: &mut MdArray, t: &str) -> Result<(), String> {
    if let Some(b) = t.strip_prefix("bitmap:") {
        a.bitmap = b.trim().to_string();
        return Ok(());
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if first.bytes().all(|b| b.is_ascii_digit()) && t.contains(" blocks") {
        return parse_status(a, t);
    }
    // `resync=DELAYED` / `resync=PENDING`
    if let Some((action, state)) = t.split_once('=')
        && ACTIONS.contains(&action.trim())
        && matches!(state.trim(), "DELAYED" | "PENDING")
    {
        a.sync = Some(MdSync {
            action: action.trim().to_string(),
            state: state.trim().to_ascii_lowercase(),
            ..Default::default()
        });
        return Ok(());
    }
    if let Some(sync) = parse_progress(t) {
        a.sync = Some(sync);
        return Ok(());
    }
    Err(format!("{}: unrecognised line: {}", a.name, clip(t)))
}

/// `5853468288 blocks super 1.2 level 6, 64k chunk, algorithm 2 [8/8] [UUUUUUUU]`
fn parse_status(a: &mut MdArray, t: &str) -> Result<(), String> {
    let mut words = t.split_whitespace();
    a.blocks = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("{}: block count out of range: {}", a.name, clip(t)))?;
    words.next(); // "blocks"
    let mut layout: Vec<&str> = Vec::new();
    let mut brackets: Vec<&str> = Vec::new();
    let mut words = words.peekable();
    while let Some(w) = words.next() {
        if w == "super" {
            a.metadata = words.next().unwrap_or("").to_string();
        } else if let Some(open) = w.strip_prefix('[') {
            let inner = open
                .strip_suffix(']')
                .ok_or_else(|| format!("{}: cut-off status line: {}", a.name, clip(t)))?;
            brackets.push(inner);
        } else {
            layout.push(w);
        }
    }
    a.layout = layout.join(" ");
    for b in brackets {
        if let Some((n, m)) = b.split_once('/') {
            let (Ok(n), Ok(m)) = (n.parse(), m.parse()) else {
                return Err(format!("{}: bad [n/m] counts: [{b}]", a.name));
            };
            a.raid_disks = n;
            a.working_disks = m;
        } else if !b.is_empty() && b.bytes().all(|c| c == b'U' || c == b'_') {
            a.slot_map = b.to_string();
        } else {
            return Err(format!("{}: bad slot map: [{b}]", a.name));
        }
    }
    if a.level.is_empty()
        && let Some(n) = a.layout.strip_prefix("level ")
    {
        // Inactive arrays may print the level only here.
        a.level = format!("raid{}", n.split(',').next().unwrap_or("").trim());
    }
    Ok(())
}

/// `[=>....]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec`
fn parse_progress(t: &str) -> Option<MdSync> {
    let body = match t.strip_prefix('[') {
        Some(r) => r.split_once(']')?.1,
        None => t,
    };
    let (action, rest) = body.split_once('=')?;
    let action = action.trim();
    if !ACTIONS.contains(&action) {
        return None;
    }
    let mut s = MdSync {
        action: action.to_string(),
        state: "running".into(),
        ..Default::default()
    };
    for w in rest.split_whitespace() {
        if let Some(p) = w.strip_suffix('%') {
            s.percent = p.parse().ok()?;
        } else if let Some(pos) = w.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
            let (done, total) = pos.split_once('/')?;
            s.done_blocks = done.parse().ok()?;
            s.total_blocks = total.parse().ok()?;
        } else if let Some(f) = w.strip_prefix("finish=") {
            s.finish = f.to_string();
        } else if let Some(sp) = w.strip_prefix("speed=") {
            s.speed_kib_s = sp
                .trim_end_matches("/sec")
                .trim_end_matches('K')
                .parse()
                .ok()?;
        }
    }
    Some(s)
}

/// An IMSM/DDF container: `super external:imsm` (members say
/// `external:/md127/0`, with the container's name after the slash).
fn is_external_container(a: &MdArray) -> bool {
    a.metadata
        .strip_prefix("external:")
        .is_some_and(|kind| !kind.starts_with('/') && !kind.starts_with('-'))
}

/// How many missing slots a level survives; None when unknown.
fn tolerance(level: &str, raid_disks: u32) -> Option<u32> {
    match level {
        "raid1" | "multipath" => Some(raid_disks.saturating_sub(1)),
        "raid4" | "raid5" => Some(1),
        "raid6" => Some(2),
        // Survives up to half only when the right halves go; more than half
        // missing is always fatal.
        "raid10" => Some(raid_disks / 2),
        "raid0" | "linear" => Some(0),
        _ => None,
    }
}

/// One verdict per array, as the fixtures' SOURCES.md maps it.
pub fn assess(a: &MdArray) -> Assessment {
    let mut r = Assessment::default();
    if a.access == "read-only" || a.access == "auto-read-only" {
        r.note(a.access.clone());
    }
    let failed: Vec<&str> = a
        .members
        .iter()
        .filter(|m| m.failed)
        .map(|m| m.device.as_str())
        .collect();
    if a.state == "inactive" {
        if is_external_container(a) {
            r.note(format!(
                "{} metadata container (inactive is normal)",
                a.metadata.trim_start_matches("external:")
            ));
        } else {
            r.raise(Verdict::Failed, "array is inactive (not running)");
        }
        if !failed.is_empty() {
            r.note(format!("failed: {}", failed.join(", ")));
        }
        return r;
    }
    let missing = if a.raid_disks > 0 {
        a.raid_disks.saturating_sub(a.working_disks)
    } else {
        a.slot_map.bytes().filter(|&c| c == b'_').count() as u32
    };
    let sync = a.sync.as_ref();
    let running = |actions: &[&str]| {
        sync.is_some_and(|s| s.state == "running" && actions.contains(&s.action.as_str()))
    };
    if matches!(a.level.as_str(), "raid0" | "linear") && !failed.is_empty() {
        r.raise(
            Verdict::Failed,
            format!(
                "{} has no redundancy and lost {}",
                a.level,
                failed.join(", ")
            ),
        );
    }
    if missing > 0 {
        let what = format!("{missing} of {} slots missing", a.raid_disks.max(missing));
        match tolerance(&a.level, a.raid_disks) {
            Some(t) if missing > t => r.raise(
                Verdict::Failed,
                format!("{what}, more than {} survives", a.level),
            ),
            _ if running(&["recovery"]) => r.raise(
                Verdict::Rebuilding,
                format!("{what}, recovery {:.1}%", sync.map_or(0.0, |s| s.percent)),
            ),
            _ => r.raise(Verdict::Degraded, format!("{what}, nothing rebuilding")),
        }
        if let Some(s) = sync.filter(|s| s.action != "recovery" || s.state != "running") {
            r.note(describe(s));
        }
    } else if let Some(s) = sync {
        match s.action.as_str() {
            // Until a resync ends the copies may differ.
            "resync" | "recovery" => r.raise(Verdict::Rebuilding, describe(s)),
            // A scheduled scrub or a reshape of a complete array does not
            // reduce redundancy.
            _ => r.note(describe(s)),
        }
    }
    if !failed.is_empty() && a.raid_disks > 0 {
        r.raise(
            Verdict::Warning,
            format!("failed device still attached: {}", failed.join(", ")),
        );
    }
    r
}

fn describe(s: &MdSync) -> String {
    match s.state.as_str() {
        "running" => format!("{} {:.1}%", s.action, s.percent),
        other => format!("{} {other}", s.action),
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(MAX).collect();
        c.push('…');
        c
    }
}

#[cfg(test)]
#[path = "mdstat_tests.rs"]
mod tests;
