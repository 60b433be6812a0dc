//! The `log_config` section: where logs go (rsyslog, syslog-ng), how the
//! journal is kept (journald), how files are rotated (logrotate), and which
//! files under /var/log nothing rotates.
//!
//! Parsing is in `crate::parse`; this module reads files through [`HostFs`],
//! follows includes (glob-expanded, depth-bounded, loops reported) and
//! lists every file read with what went wrong in it. A broken file is an
//! entry in `files`, never a failure of the section.

mod read;
mod varlog;

use driftwatch_common::section::SectionKind;
use std::collections::{BTreeSet, HashMap};

use driftwatch_common::proto::{
    JournaldSettings, LogConfigFile, LogConfigIssue, LogConfigSection, RotationPolicy,
    RotationRule, section::Body,
};

use super::{Collector, Context, SectionError};
use crate::hostfs::HostFs;
use crate::parse::{journald, logrotate, rsyslog, syslog_ng};
use read::{Reader, expand, expand_files};

/// Includes nested deeper than this are not followed (and reported).
const MAX_INCLUDE_DEPTH: usize = 8;

#[derive(Default)]
pub struct LogConfigCollector;

impl Collector for LogConfigCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::LogConfig
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        read_log_config(&ctx.fs).map(Body::LogConfig)
    }
}

pub fn read_log_config(fs: &HostFs) -> Result<LogConfigSection, SectionError> {
    let mut r = Reader::new(fs);
    let mut s = LogConfigSection::default();
    let mut modules = BTreeSet::new();
    if fs.exists("/etc/rsyslog.conf") {
        s.daemons.push("rsyslog".into());
        rsyslog_file(&mut r, "/etc/rsyslog.conf", 0, &mut s, &mut modules);
    }
    if fs.exists("/etc/syslog-ng/syslog-ng.conf") {
        s.daemons.push("syslog-ng".into());
        syslog_ng_file(&mut r, "/etc/syslog-ng/syslog-ng.conf", 0, &mut s);
    }
    if let Some(j) = journald_settings(&mut r) {
        s.daemons.push("journald".into());
        s.journald = Some(j);
    }
    if fs.exists("/etc/logrotate.conf") {
        s.daemons.push("logrotate".into());
        let top = RotationPolicy::default();
        logrotate_file(
            &mut r,
            "/etc/logrotate.conf",
            &top,
            0,
            &mut s.rotation,
            &mut HashMap::new(),
        );
    }
    if s.daemons.is_empty() {
        return Err(SectionError::Unsupported(
            "no rsyslog, syslog-ng, journald or logrotate configuration found".into(),
        ));
    }
    s.rsyslog_modules = modules.into_iter().collect();
    let walk = varlog::walk(fs);
    s.var_log_bytes = walk.total_bytes;
    s.var_log_partial = walk.partial;
    s.unrotated = varlog::unrotated(&walk.files, &s.rotation);
    s.files = r.into_files();
    Ok(s)
}

fn rsyslog_file(
    r: &mut Reader,
    path: &str,
    depth: usize,
    s: &mut LogConfigSection,
    modules: &mut BTreeSet<String>,
) {
    let Some((idx, text)) = r.read(path, "rsyslog") else {
        return;
    };
    let p = rsyslog::parse(&text);
    r.add_issues(idx, p.issues);
    s.forwards.extend(p.forwards.into_iter().map(|mut f| {
        f.file = path.to_string();
        f
    }));
    s.outputs.extend(p.outputs.into_iter().map(|mut o| {
        o.file = path.to_string();
        o
    }));
    modules.extend(p.modules);
    for inc in p.includes {
        let pattern = absolute(&inc.pattern, "/");
        let targets = expand(r.fs(), &pattern);
        if targets.is_empty() && !inc.optional && !has_glob(&pattern) {
            r.issue(idx, inc.line, format!("include {pattern}: not found"));
        }
        for t in targets {
            if r.enter(idx, inc.line, &t, depth, MAX_INCLUDE_DEPTH) {
                rsyslog_file(r, &t, depth + 1, s, modules);
            }
        }
    }
    r.leave();
}

fn syslog_ng_file(r: &mut Reader, path: &str, depth: usize, s: &mut LogConfigSection) {
    let Some((idx, text)) = r.read(path, "syslog-ng") else {
        return;
    };
    let p = syslog_ng::parse(&text);
    r.add_issues(idx, p.issues);
    s.forwards.extend(p.forwards.into_iter().map(|mut f| {
        f.file = path.to_string();
        f
    }));
    s.outputs.extend(p.outputs.into_iter().map(|mut o| {
        o.file = path.to_string();
        o
    }));
    for (inc, line) in p.includes {
        let relative = !inc.starts_with('/');
        let pattern = absolute(&inc, "/etc/syslog-ng/");
        let targets = expand(r.fs(), &pattern);
        // Relative includes are searched on syslog-ng's include path too
        // (`scl.conf` lives in /usr/share); not finding them here is normal.
        if targets.is_empty() && !relative && !has_glob(&pattern) {
            r.issue(idx, line, format!("@include {pattern}: not found"));
        }
        for t in targets {
            if r.enter(idx, line, &t, depth, MAX_INCLUDE_DEPTH) {
                syslog_ng_file(r, &t, depth + 1, s);
            }
        }
    }
    r.leave();
}

/// Main file from the first directory that has one, then drop-ins by file
/// name, where /etc beats /run beats /usr/local/lib beats /usr/lib (systemd's
/// order). None when journald has no configuration here at all.
fn journald_settings(r: &mut Reader) -> Option<JournaldSettings> {
    const DIRS: [&str; 4] = ["/etc", "/run", "/usr/local/lib", "/usr/lib"];
    let fs = r.fs().clone();
    let main = DIRS
        .iter()
        .map(|d| format!("{d}/systemd/journald.conf"))
        .find(|p| fs.exists(p));
    let mut dropins: std::collections::BTreeMap<String, String> = Default::default();
    for d in DIRS.iter().rev() {
        let dir = format!("{d}/systemd/journald.conf.d");
        for name in fs.read_dir(&dir).unwrap_or_default() {
            if name.ends_with(".conf") {
                dropins.insert(name.clone(), format!("{dir}/{name}"));
            }
        }
    }
    if main.is_none() && dropins.is_empty() {
        return None;
    }
    let mut s = JournaldSettings::default();
    for path in main.into_iter().chain(dropins.into_values()) {
        let Some((idx, text)) = r.read(&path, "journald") else {
            continue;
        };
        let p = journald::parse(&text);
        journald::apply(&mut s, &path, &p);
        r.add_issues(idx, p.issues);
        r.leave();
    }
    Some(s)
}

fn logrotate_file(
    r: &mut Reader,
    path: &str,
    inherited: &RotationPolicy,
    depth: usize,
    rules: &mut Vec<RotationRule>,
    claimed: &mut HashMap<String, bool>,
) {
    let Some((idx, text)) = r.read(path, "logrotate") else {
        return;
    };
    let p = logrotate::parse(&text, inherited);
    r.add_issues(idx, p.issues);
    for item in p.items {
        match item {
            logrotate::Item::Rule(rule) => {
                let (matched, duplicates) = if rule.skipped.is_some() {
                    // logrotate drops a skipped stanza: it claims no file.
                    let mut m = BTreeSet::new();
                    for pat in rule.patterns.iter().filter(|p| p.starts_with('/')) {
                        m.extend(expand(r.fs(), pat));
                    }
                    (m.into_iter().collect(), Vec::new())
                } else {
                    claim(r.fs(), &rule, claimed)
                };
                rules.push(RotationRule {
                    patterns: rule.patterns,
                    matched,
                    file: path.to_string(),
                    line: rule.line,
                    policy: Some(rule.policy),
                    skipped: rule.skipped.unwrap_or_default(),
                    duplicates,
                });
            }
            logrotate::Item::Include {
                path: inc,
                line,
                globals,
            } => {
                let inc = absolute(&inc, "/etc/");
                for t in read::logrotate_include(r, idx, line, &inc) {
                    if r.enter(idx, line, &t, depth, MAX_INCLUDE_DEPTH) {
                        logrotate_file(r, &t, &globals, depth + 1, rules, claimed);
                    }
                }
            }
        }
    }
    r.leave();
}

/// The files a stanza gets, as logrotate hands them out: in pattern order,
/// each pattern's matches sorted; a file an earlier stanza (or an earlier
/// pattern of this one) already has is a "duplicate log entry", and
/// logrotate drops it with the rest of that pattern's matches, unless the
/// stanza that has it set `ignoreduplicates` (then only the file is left
/// out). `claimed`: file -> that stanza's ignoreduplicates.
fn claim(
    fs: &HostFs,
    rule: &logrotate::Rule,
    claimed: &mut HashMap<String, bool>,
) -> (Vec<String>, Vec<String>) {
    let mut matched = BTreeSet::new();
    let mut dups = Vec::new();
    for pat in rule.patterns.iter().filter(|p| p.starts_with('/')) {
        let files = expand_files(fs, pat);
        for (i, f) in files.iter().enumerate() {
            match claimed.get(f) {
                Some(true) => dups.push(f.clone()),
                Some(false) => {
                    dups.extend(files[i..].iter().cloned());
                    break;
                }
                None => {
                    claimed.insert(f.clone(), rule.policy.ignoreduplicates);
                    matched.insert(f.clone());
                }
            }
        }
    }
    (matched.into_iter().collect(), dups)
}

fn absolute(p: &str, base: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}{p}")
    }
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// The file's issue list, for tests and renderers.
pub fn issues_of<'a>(s: &'a LogConfigSection, path: &str) -> &'a [LogConfigIssue] {
    s.files
        .iter()
        .find(|f| f.path == path)
        .map(|f: &LogConfigFile| f.issues.as_slice())
        .unwrap_or(&[])
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
