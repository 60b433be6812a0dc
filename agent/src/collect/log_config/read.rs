//! Reading config files for the log_config collector: bounded reads through
//! [`HostFs`], per-file issues, and include bookkeeping (depth, loops).

use std::collections::HashSet;

use driftwatch_common::proto::{LogConfigFile, LogConfigIssue};

use crate::hostfs::{HostFs, MAX_CONFIG_BYTES};

pub(super) struct Reader {
    fs: HostFs,
    files: Vec<LogConfigFile>,
    /// Files being read, outermost first: an include of one of them is a loop.
    chain: Vec<String>,
    seen: HashSet<String>,
}

impl Reader {
    pub fn new(fs: &HostFs) -> Self {
        Reader {
            fs: fs.clone(),
            files: Vec::new(),
            chain: Vec::new(),
            seen: HashSet::new(),
        }
    }

    pub fn fs(&self) -> &HostFs {
        &self.fs
    }

    pub fn into_files(self) -> Vec<LogConfigFile> {
        self.files
    }

    /// Reads a config file and lists it. On success the file is on the
    /// include chain until [`Reader::leave`]; None when it cannot be parsed
    /// at all (the reason is in its entry).
    pub fn read(&mut self, path: &str, daemon: &str) -> Option<(usize, String)> {
        self.seen.insert(path.to_string());
        let idx = self.files.len();
        self.files.push(LogConfigFile {
            path: path.to_string(),
            daemon: daemon.to_string(),
            ..LogConfigFile::default()
        });
        let t = match self.fs.read_file(path, MAX_CONFIG_BYTES) {
            Ok(t) => t,
            Err(e) => {
                self.files[idx].error = e.to_string();
                return None;
            }
        };
        if t.text.contains('\0') {
            self.files[idx].error =
                "binary content (NUL bytes): not a text config file, not parsed".into();
            return None;
        }
        let mut text = t.text;
        if t.lossy {
            self.issue(
                idx,
                0,
                "not valid UTF-8: invalid bytes replaced with U+FFFD".into(),
            );
        }
        if t.truncated {
            self.issue(
                idx,
                0,
                format!(
                    "file is {} bytes, over the {} byte bound: only the start was parsed",
                    t.size, MAX_CONFIG_BYTES
                ),
            );
            // The last line is cut; parsing half of it would invent errors.
            let keep = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
            text.truncate(keep);
        }
        self.chain.push(path.to_string());
        Some((idx, text))
    }

    /// Ends the file [`Reader::read`] put on the chain.
    pub fn leave(&mut self) {
        self.chain.pop();
    }

    pub fn issue(&mut self, idx: usize, line: u32, reason: String) {
        self.files[idx].issues.push(LogConfigIssue { line, reason });
    }

    pub fn add_issues(&mut self, idx: usize, issues: Vec<LogConfigIssue>) {
        self.files[idx].issues.extend(issues);
    }

    /// Whether an include of `target` (from file `idx`, line `line`) should
    /// be followed; reports loops, repeats and excessive depth.
    pub fn enter(&mut self, idx: usize, line: u32, target: &str, depth: usize, max: usize) -> bool {
        if self.chain.iter().any(|c| c == target) {
            let chain = self.chain.join(" -> ");
            self.issue(
                idx,
                line,
                format!("include loop: {target} is already being read ({chain} -> {target}); not followed"),
            );
            return false;
        }
        if self.seen.contains(target) {
            self.issue(
                idx,
                line,
                format!("{target} was already read; not read twice"),
            );
            return false;
        }
        if depth + 1 > max {
            self.issue(
                idx,
                line,
                format!("includes nested deeper than {max}: {target} not read"),
            );
            return false;
        }
        true
    }
}

fn is_file(fs: &HostFs, p: &str) -> bool {
    fs.resolve(p).map(|r| r.is_file()).unwrap_or(false)
}

fn is_dir(fs: &HostFs, p: &str) -> bool {
    fs.resolve(p).map(|r| r.is_dir()).unwrap_or(false)
}

/// Files a pattern names: a glob's regular-file matches, every file in a
/// directory, or the path itself; sorted (the order daemons read them in).
pub(super) fn expand(fs: &HostFs, pattern: &str) -> Vec<String> {
    if pattern.contains(['*', '?', '[']) {
        return fs
            .glob(pattern)
            .into_iter()
            .filter(|p| is_file(fs, p))
            .collect();
    }
    if is_dir(fs, pattern) {
        let dir = pattern.trim_end_matches('/');
        return fs
            .read_dir(dir)
            .unwrap_or_default()
            .into_iter()
            .map(|n| format!("{dir}/{n}"))
            .filter(|p| is_file(fs, p))
            .collect();
    }
    if is_file(fs, pattern) {
        vec![pattern.to_string()]
    } else {
        Vec::new()
    }
}

/// The files a logrotate stanza's pattern names: a glob's matches that are
/// not directories, or the path itself when it is a file (logrotate never
/// takes a directory's contents here).
pub(super) fn expand_files(fs: &HostFs, pattern: &str) -> Vec<String> {
    if pattern.contains(['*', '?', '[']) || !is_dir(fs, pattern) {
        expand(fs, pattern)
    } else {
        Vec::new()
    }
}

/// logrotate's default `tabooext`: package-manager leftovers it skips when
/// including a directory.
const TABOO: &[&str] = &[
    ",v",
    ".cfsaved",
    ".disabled",
    ".dpkg-bak",
    ".dpkg-del",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".swp",
    ".ucf-dist",
    ".ucf-new",
    ".ucf-old",
    "~",
];

/// The files a logrotate `include` reads, reporting one that is missing.
pub(super) fn logrotate_include(r: &mut Reader, idx: usize, line: u32, inc: &str) -> Vec<String> {
    let fs = r.fs().clone();
    let files: Vec<String> = expand(&fs, inc)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or("");
            !name.starts_with('.') && !TABOO.iter().any(|t| name.ends_with(t))
        })
        .collect();
    if files.is_empty() && !fs.exists(inc) && !inc.contains(['*', '?', '[']) {
        r.issue(idx, line, format!("include {inc}: not found"));
    }
    files
}
