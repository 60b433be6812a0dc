//! The `sudoers` section: /etc/sudoers and every file it includes, read
//! the way sudo reads them, parsed by `parse::sudoers`.
//!
//! Includes: `@include`/`#include` (a relative path is relative to the
//! including file's directory) and `@includedir`/`#includedir` (files
//! whose name has a `.` or ends in `~` are skipped, as sudo does, in
//! lexical order). Bounded: a file over 1 MiB, includes nested deeper
//! than 8 or more than 256 files are reported, never followed. A file
//! sudo would refuse (world-writable, group-writable by a group other
//! than root's, owned by anyone but root) is listed as refused and not
//! parsed: its rules do not apply.

use std::collections::BTreeSet;

use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{SudoersFile, SudoersProblem, SudoersSection};
use driftwatch_common::section::SectionKind;

use super::{Collector, Context, SectionError};
use crate::hostfs::{FsError, HostFs, MAX_CONFIG_BYTES};
use crate::parse::sudoers::{self as parse, Entry, expand};

pub const SUDOERS: &str = "/etc/sudoers";
pub const MAX_INCLUDE_DEPTH: usize = 8;
pub const MAX_FILES: usize = 256;

pub struct SudoersCollector;

impl Collector for SudoersCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Sudoers
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        collect_sudoers(&ctx.fs, MAX_CONFIG_BYTES).map(Body::Sudoers)
    }
}

struct Walk<'a> {
    fs: &'a HostFs,
    max: u64,
    s: SudoersSection,
    entries: Vec<(String, Entry)>,
    seen: BTreeSet<String>,
    syntax_ok: bool,
}

impl Walk<'_> {
    fn problem(&mut self, file: &str, line: usize, message: String) {
        self.s.problems.push(SudoersProblem {
            file: file.into(),
            line: line as u32,
            message,
        });
    }

    /// Why sudo would refuse a file with this owner and mode.
    fn refusal(uid: u32, gid: u32, mode: u32) -> Option<String> {
        if mode & 0o002 != 0 {
            Some(format!("world-writable (mode {:04o})", mode & 0o7777))
        } else if uid != 0 {
            Some(format!("owned by uid {uid}, not root"))
        } else if mode & 0o020 != 0 && gid != 0 {
            Some(format!(
                "writable by group {gid} (mode {:04o})",
                mode & 0o7777
            ))
        } else {
            None
        }
    }

    /// Reads and parses one file, following its includes in place.
    /// `required`: a missing file is an error (an `@include`), not a
    /// silence (an empty `@includedir` entry cannot be missing).
    fn file(&mut self, path: &str, from: &str, depth: usize, required: bool) {
        if depth > MAX_INCLUDE_DEPTH {
            self.problem(
                from,
                0,
                format!("{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}; not read"),
            );
            return;
        }
        if self.s.files.len() >= MAX_FILES {
            self.problem(
                from,
                0,
                format!("{path}: more than {MAX_FILES} sudoers files; not read"),
            );
            return;
        }
        if !self.seen.insert(path.to_string()) {
            self.problem(
                from,
                0,
                format!("{path}: included again (a loop); not read twice"),
            );
            return;
        }
        let t = match self.fs.read_file(path, self.max) {
            Ok(t) => t,
            Err(FsError::NotFound { .. }) if !required => return,
            Err(e) => {
                if required {
                    // visudo refuses a file whose include is missing.
                    self.syntax_ok = false;
                }
                self.problem(from, 0, format!("{e}"));
                return;
            }
        };
        let mut rec = SudoersFile {
            path: path.into(),
            mode: t.mode & 0o7777,
            uid: t.uid,
            refused: String::new(),
            included_from: from.into(),
        };
        if let Some(why) = Self::refusal(t.uid, t.gid, t.mode) {
            rec.refused = why.clone();
            self.s.files.push(rec);
            self.problem(
                path,
                0,
                format!("sudo refuses this file: {why}; its rules do not apply"),
            );
            return;
        }
        if t.truncated {
            rec.refused = format!("larger than {} bytes", self.max);
            self.s.files.push(rec);
            self.problem(
                path,
                0,
                format!("larger than {} bytes: not parsed", self.max),
            );
            return;
        }
        self.s.files.push(rec);
        let parsed = parse::parse(&t.text);
        for (line, why) in parsed.errors {
            self.syntax_ok = false;
            self.problem(path, line, why);
        }
        let dir = path
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d })
            .to_string();
        for e in parsed.entries {
            match e {
                Entry::Include {
                    path: inc,
                    dir: is_dir,
                    ..
                } => {
                    let inc = if inc.starts_with('/') {
                        inc
                    } else {
                        format!("{}/{inc}", dir.trim_end_matches('/'))
                    };
                    if is_dir {
                        self.dir(&inc, path, depth + 1);
                    } else {
                        self.file(&inc, path, depth + 1, true);
                    }
                }
                e => self.entries.push((path.to_string(), e)),
            }
        }
    }

    fn dir(&mut self, dir: &str, from: &str, depth: usize) {
        let names = match self.fs.read_dir(dir) {
            Ok(n) => n,
            Err(FsError::NotFound { .. }) => return,
            Err(e) => {
                self.problem(from, 0, e.to_string());
                return;
            }
        };
        for name in names
            .iter()
            .filter(|n| !n.contains('.') && !n.ends_with('~'))
        {
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            self.file(&path, from, depth, false);
        }
    }
}

/// The section for the tree under `fs`; unsupported without /etc/sudoers.
pub fn collect_sudoers(fs: &HostFs, max: u64) -> Result<SudoersSection, SectionError> {
    if !fs.exists(SUDOERS) {
        return Err(SectionError::Unsupported(format!(
            "no {SUDOERS} under the root (sudo not installed)"
        )));
    }
    let mut w = Walk {
        fs,
        max,
        s: SudoersSection::default(),
        entries: Vec::new(),
        seen: BTreeSet::new(),
        syntax_ok: true,
    };
    w.file(SUDOERS, "", 0, true);
    let x = expand::expand(&w.entries);
    for (file, line, why) in x.errors {
        w.syntax_ok = false;
        w.problem(&file, line, why);
    }
    let mut s = w.s;
    s.rules = x.rules;
    s.defaults = x.defaults;
    s.valid = w.syntax_ok;
    Ok(s)
}

#[cfg(test)]
#[path = "sudoers_tests.rs"]
mod tests;
