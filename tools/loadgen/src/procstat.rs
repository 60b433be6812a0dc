//! What the collector process costs, read from /proc (no ptrace, no
//! privileges): CPU ticks, resident memory, and its data dir's size.

use std::fs;
use std::path::Path;

/// /proc reports CPU in USER_HZ ticks, which Linux fixes at 100 for
/// userspace whatever the kernel's HZ.
const TICKS_PER_S: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// Reads one sample; `None` when the process is gone or /proc is odd.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 overall (utime, stime) are 11 and 12 after the state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Sample {
        cpu_s: (utime + stime) / TICKS_PER_S,
        rss_bytes: rss_kb * 1024,
    })
}

/// The pid of the only process whose command is the collector's; `None`
/// when there are none or several (then `--collector-pid` must say which).
pub fn find_collector() -> Option<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // comm is cut at 15 bytes: "driftwatch-coll".
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "driftwatch-coll" {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Bytes in regular files under `dir` (allocated size is what a disk
/// fills with, but sled preallocates; the apparent size is the honest
/// figure for growth).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    for e in rd.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += dir_bytes(&e.path());
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}
