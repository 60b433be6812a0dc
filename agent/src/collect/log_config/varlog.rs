//! The /var/log walk: total size and the files no rotation rule covers.

use std::collections::HashSet;

use driftwatch_common::proto::{RotationRule, UnrotatedFile};

use crate::hostfs::HostFs;

/// Bounds on the walk: a runaway tree (millions of files, deep nesting)
/// must not stall collection. Hitting one marks the result partial.
const MAX_DEPTH: usize = 8;
const MAX_ENTRIES: usize = 100_000;

pub(super) struct Walk {
    /// Regular files as host paths under /var/log, with their sizes.
    pub files: Vec<(String, u64)>,
    pub total_bytes: u64,
    pub partial: bool,
}

pub(super) fn walk(fs: &HostFs) -> Walk {
    let mut w = Walk {
        files: Vec::new(),
        total_bytes: 0,
        partial: false,
    };
    // /var/log may itself be a link (to a bigger disk): walk its real place
    // under root, but name files as /var/log/… since rules use those paths.
    let Ok(real) = fs.resolve("/var/log") else {
        return w;
    };
    let Ok(rel) = real.strip_prefix(fs.root()) else {
        return w;
    };
    let real_host = format!("/{}", rel.to_string_lossy());
    let mut entries = 0usize;
    let mut stack = vec![(real_host, "/var/log".to_string(), 0usize)];
    while let Some((dir, shown, depth)) = stack.pop() {
        let Ok(names) = fs.read_dir(&dir) else {
            continue;
        };
        for name in names {
            entries += 1;
            if entries > MAX_ENTRIES {
                w.partial = true;
                return w;
            }
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let shown_path = format!("{shown}/{name}");
            // Not following links: a link out of /var/log is not our log.
            let Ok(meta) = fs.symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    w.partial = true;
                } else {
                    stack.push((path, shown_path, depth + 1));
                }
            } else if meta.is_file() {
                w.total_bytes += meta.len();
                w.files.push((shown_path, meta.len()));
            }
        }
    }
    w.files.sort();
    w
}

/// Files that are not logs logrotate should handle: journald rotates its
/// own journal, and these are fixed-size databases, not growing logs.
fn exempt(path: &str) -> bool {
    path.starts_with("/var/log/journal/")
        || matches!(
            path,
            "/var/log/lastlog" | "/var/log/faillog" | "/var/log/tallylog"
        )
}

const COMPRESSED: &[&str] = &[
    ".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lzo", ".Z", ".zip",
];

/// The path a rotated copy was rotated from (`syslog.2.gz` -> `syslog`,
/// `app.log-20250101` -> `app.log`, `x.log.old` -> `x.log`), or None when
/// the name has no rotation suffix.
pub(super) fn rotated_from(path: &str, extra_ext: &[&str]) -> Option<String> {
    let mut p = path;
    let mut stripped = false;
    if let Some(ext) = COMPRESSED
        .iter()
        .chain(extra_ext.iter())
        .find(|e| !e.is_empty() && p.ends_with(*e))
    {
        p = &p[..p.len() - ext.len()];
        stripped = true;
    }
    if let Some(base) = p.strip_suffix(".old") {
        return Some(base.to_string());
    }
    // The longest tail of digits, `-` and `_` after a separator: `.1`,
    // `-20250101`, `-2025-01-01`, `-1735689600` (dateformat -%s).
    let name_start = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    let b = p.as_bytes();
    let mut cut = None;
    for i in (name_start + 1..b.len()).rev() {
        let c = b[i];
        if c.is_ascii_digit() || c == b'-' || c == b'_' || c == b'.' {
            if matches!(c, b'.' | b'-' | b'_')
                && i + 1 < b.len()
                && b[i + 1..].iter().any(u8::is_ascii_digit)
                && !b[i + 1..].contains(&b'.')
            {
                cut = Some(i);
            }
            if c == b'.' {
                // Only one `.N` segment: `x.1.2` is not a rotated copy.
                break;
            }
        } else {
            break;
        }
    }
    match cut {
        Some(i) => Some(p[..i].to_string()),
        None if stripped => Some(p.to_string()),
        None => None,
    }
}

/// The files under /var/log that no rule covers, minus rotated copies of
/// covered files and the exempt ones.
pub(super) fn unrotated(files: &[(String, u64)], rules: &[RotationRule]) -> Vec<UnrotatedFile> {
    // A stanza logrotate skips covers nothing; a file it leaves out as a
    // duplicate is covered only by the stanza that has it.
    let rules: Vec<&RotationRule> = rules.iter().filter(|r| r.skipped.is_empty()).collect();
    let matched: HashSet<&str> = rules
        .iter()
        .flat_map(|r| r.matched.iter().map(String::as_str))
        .collect();
    let dropped: HashSet<&str> = rules
        .iter()
        .flat_map(|r| r.duplicates.iter().map(String::as_str))
        .filter(|d| !matched.contains(d))
        .collect();
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let patterns: Vec<glob::Pattern> = rules
        .iter()
        .flat_map(|r| r.patterns.iter())
        .filter(|p| p.starts_with('/'))
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    let exts: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.policy.as_ref())
        .map(|p| p.compressext.as_str())
        .filter(|e| !e.is_empty())
        .collect();
    // With `olddir`, rotated copies live in another directory: remember
    // which (directory, name) pairs copies of covered files may have.
    let mut olddirs: HashSet<(String, String)> = HashSet::new();
    for r in &rules {
        let Some(dir) = r.policy.as_ref().map(|p| p.olddir.as_str()) else {
            continue;
        };
        if dir.is_empty() {
            continue;
        }
        for m in &r.matched {
            let (parent, name) = m.rsplit_once('/').unwrap_or(("", m));
            let abs = if dir.starts_with('/') {
                dir.trim_end_matches('/').to_string()
            } else {
                format!("{parent}/{}", dir.trim_end_matches('/'))
            };
            olddirs.insert((abs, name.to_string()));
        }
    }
    let in_olddir = |base: &str| {
        let (parent, name) = base.rsplit_once('/').unwrap_or(("", base));
        olddirs.contains(&(parent.to_string(), name.to_string()))
    };
    let covered = |p: &str| {
        matched.contains(p)
            || (!dropped.contains(p) && patterns.iter().any(|g| g.matches_with(p, opts)))
    };
    files
        .iter()
        .filter(|(p, _)| !exempt(p) && !covered(p))
        .filter(|(p, _)| {
            rotated_from(p, &exts).is_none_or(|base| !covered(&base) && !in_olddir(&base))
        })
        .map(|(p, size)| UnrotatedFile {
            path: p.clone(),
            size_bytes: *size,
        })
        .collect()
}
