//! The `ssh_keys` section: every authorized_keys file sshd would read for
//! every account with a home (system accounts included), per the sshd
//! configuration, and the sshd settings that decide who logs in how.
//!
//! Key files are read with [`HostFs::read_user_file`]: a symlinked file or
//! `.ssh` is reported as a finding and never followed, and reads are bounded.

use driftwatch_common::section::SectionKind;
use std::path::Path;

use driftwatch_common::proto::{AuthorizedKeysFile, SshKeysSection, SshdSettings, section::Body};

use super::{Collector, Context, SectionError, passwd};
use crate::hostfs::{FileText, FsError, HostFs, MAX_CONFIG_BYTES, read_opened};
use crate::parse::{authorized_keys, sshd_config};

/// Larger key files are cut here and flagged `truncated`.
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

#[derive(Default)]
pub struct SshKeysCollector;

impl Collector for SshKeysCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::SshKeys
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        collect_ssh_keys(&ctx.fs).map(Body::SshKeys)
    }
}

/// One key file sshd would consult for one account.
#[derive(Debug, Clone)]
pub struct KeyFileTarget {
    pub account: passwd::Account,
    /// The pattern it came from, with its Match criteria when in a block.
    pub pattern: String,
    /// Host path after token expansion.
    pub path: String,
}

/// Every key file sshd would consult, for every account with a home.
pub struct ScanPlan {
    pub sshd: SshdSettings,
    pub targets: Vec<KeyFileTarget>,
    pub errors: Vec<String>,
    /// Set when not every account could be listed (/etc/passwd over its
    /// bound): a sweep has no proof for the accounts not seen.
    pub accounts_incomplete: Option<String>,
}

/// Lists the key files without reading them (the collection reads them
/// bounded, a sweep streams them with its own bound).
pub fn scan_plan(fs: &HostFs) -> Result<ScanPlan, SectionError> {
    let pw = fs
        .read_file("/etc/passwd", MAX_CONFIG_BYTES)
        .map_err(|e| SectionError::Failed(format!("cannot list users: {e}")))?;
    let (accounts, bad) = passwd::parse(&pw.text);
    let mut errors: Vec<String> = bad
        .into_iter()
        .map(|(line, why)| format!("/etc/passwd line {line}: {why}"))
        .collect();
    let mut accounts_incomplete = None;
    if pw.truncated {
        let why = format!(
            "/etc/passwd is larger than {MAX_CONFIG_BYTES} bytes: later accounts not checked"
        );
        errors.push(why.clone());
        accounts_incomplete = Some(why);
    }
    let mut sshd = read_sshd(fs);
    sshd.trusted_user_ca_file = trusted_ca_file(fs, &sshd);
    let patterns = key_patterns(&sshd);
    let mut targets = Vec::new();
    for acct in &accounts {
        if !acct.home.starts_with('/') {
            continue;
        }
        let mut seen: Vec<String> = Vec::new();
        for (pattern, criteria) in &patterns {
            if let Some(c) = criteria
                && !sshd_config::match_may_apply_to(c, &acct.name)
            {
                continue;
            }
            let path = match sshd_config::expand_authorized_keys(
                pattern, &acct.name, acct.uid, &acct.home,
            ) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(format!("AuthorizedKeysFile for {}: {e}", acct.name));
                    continue;
                }
            };
            if seen.contains(&path) {
                continue;
            }
            seen.push(path.clone());
            let shown = match criteria {
                Some(c) => format!("{pattern} (Match {c})"),
                None => pattern.clone(),
            };
            targets.push(KeyFileTarget {
                account: acct.clone(),
                pattern: shown,
                path,
            });
        }
    }
    Ok(ScanPlan {
        sshd,
        targets,
        errors,
        accounts_incomplete,
    })
}

pub fn collect_ssh_keys(fs: &HostFs) -> Result<SshKeysSection, SectionError> {
    let plan = scan_plan(fs)?;
    let mut files: Vec<AuthorizedKeysFile> = plan
        .targets
        .iter()
        .filter_map(|t| key_file(fs, &t.account, &t.pattern, &t.path))
        .collect();
    files.sort_by(|a, b| (&a.user, &a.path, a.uid).cmp(&(&b.user, &b.path, b.uid)));
    Ok(SshKeysSection {
        sshd: Some(plan.sshd),
        files,
        errors: plan.errors,
    })
}

/// The global AuthorizedKeysFile patterns, then those set inside Match
/// blocks with the block's criteria: sshd reads those for the connections
/// the block matches, so their keys log in too.
fn key_patterns(sshd: &SshdSettings) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = sshd
        .authorized_keys_patterns
        .iter()
        .map(|p| (p.clone(), None))
        .collect();
    for m in &sshd.match_blocks {
        for s in &m.settings {
            if s.keyword.eq_ignore_ascii_case("authorizedkeysfile")
                && !s.value.eq_ignore_ascii_case("none")
            {
                for p in s.value.split_whitespace() {
                    out.push((p.to_string(), Some(m.criteria.clone())));
                }
            }
        }
    }
    out
}

/// The CA keys sshd trusts for user certificates: a certificate any of
/// them signed logs in as its principals, so they are keys to audit too.
fn trusted_ca_file(fs: &HostFs, sshd: &SshdSettings) -> Option<AuthorizedKeysFile> {
    let path = sshd.trusted_user_ca_keys.as_ref()?.value.clone();
    if path.eq_ignore_ascii_case("none") {
        return None;
    }
    let mut f = AuthorizedKeysFile {
        path: path.clone(),
        pattern: "TrustedUserCAKeys".into(),
        ..Default::default()
    };
    match fs.read_file(&path, MAX_KEY_FILE_BYTES) {
        Ok(t) => {
            f.owner_uid = t.uid;
            f.owner_gid = t.gid;
            f.mode = t.mode;
            f.size_bytes = t.size;
            push_mode_flags(&mut f.flags, "file", t.mode, t.uid == 0);
            if t.truncated {
                f.flags.push("truncated".into());
                f.incomplete = truncated_reason(&t);
            }
            if t.lossy {
                f.flags.push("non_utf8".into());
            }
            f.flags.sort();
            let parsed = authorized_keys::parse(whole_lines(&t));
            f.keys = parsed.keys;
            f.malformed = parsed.malformed;
        }
        Err(e) => {
            f.flags.push(
                if matches!(e, FsError::NotRegular { .. }) {
                    "not_regular"
                } else {
                    "unreadable"
                }
                .into(),
            );
            f.error = e.to_string();
            f.incomplete = f.error.clone();
        }
    }
    Some(f)
}

fn truncated_reason(t: &FileText) -> String {
    format!(
        "larger than {MAX_KEY_FILE_BYTES} bytes ({} bytes): only lines in the first {MAX_KEY_FILE_BYTES} bytes read",
        t.size
    )
}

/// A cut file ends mid-line: only whole lines are parsed (the `truncated`
/// flag says why the rest is missing).
fn whole_lines(t: &FileText) -> &str {
    if t.truncated {
        t.text.rfind('\n').map_or("", |i| &t.text[..=i])
    } else {
        &t.text
    }
}

/// The effective sshd settings, or sshd's defaults with a note when the
/// config cannot be read.
fn read_sshd(fs: &HostFs) -> SshdSettings {
    let mut load = |pattern: &str| load_includes(fs, pattern);
    match fs.read_file(SSHD_CONFIG, MAX_CONFIG_BYTES) {
        Ok(t) => {
            let mut s = sshd_config::evaluate(SSHD_CONFIG, &t.text, &mut load);
            if let Some(why) = read_note(&t) {
                s.problems.insert(0, sshd_problem(SSHD_CONFIG, why));
            }
            s
        }
        Err(e) => {
            let mut s = sshd_config::evaluate(SSHD_CONFIG, "", &mut load);
            s.config_files.clear();
            let why = if e.is_not_found() {
                "not found: sshd's built-in defaults assumed".to_string()
            } else {
                format!("unreadable ({e}): sshd's built-in defaults assumed")
            };
            s.problems.push(sshd_problem(SSHD_CONFIG, why));
            s
        }
    }
}

fn sshd_problem(file: &str, reason: String) -> driftwatch_common::proto::SshdProblem {
    driftwatch_common::proto::SshdProblem {
        file: file.into(),
        line: 0,
        reason,
    }
}

fn read_note(t: &FileText) -> Option<String> {
    if t.truncated {
        Some(format!(
            "larger than {MAX_CONFIG_BYTES} bytes; the rest was not read"
        ))
    } else if t.lossy {
        Some("holds bytes that are not UTF-8".into())
    } else {
        None
    }
}

fn load_includes(fs: &HostFs, pattern: &str) -> Vec<sshd_config::Loaded> {
    fs.glob(pattern)
        .into_iter()
        .map(|path| {
            let (text, note) = match fs.read_file(&path, MAX_CONFIG_BYTES) {
                Ok(t) => {
                    let note = read_note(&t);
                    (Ok(t.text), note)
                }
                Err(e) => (Err(e.to_string()), None),
            };
            sshd_config::Loaded { path, text, note }
        })
        .collect()
}

/// Reads one key file; `None` when it does not exist (the common case).
fn key_file(
    fs: &HostFs,
    acct: &passwd::Account,
    pattern: &str,
    path: &str,
) -> Option<AuthorizedKeysFile> {
    let (anchor, rel, in_home) = split_anchor(&acct.home, path);
    let mut f = AuthorizedKeysFile {
        user: acct.name.clone(),
        uid: acct.uid,
        home: acct.home.clone(),
        path: path.to_string(),
        pattern: pattern.to_string(),
        ..Default::default()
    };
    let read = fs.open_user_file(&anchor, &rel).and_then(|(file, meta)| {
        if let Some((flag, why)) = not_the_users(&meta, acct) {
            return Ok(Err((meta, flag, why)));
        }
        read_opened(file, &meta, path, MAX_KEY_FILE_BYTES).map(Ok)
    });
    let t = match read {
        Ok(Ok(t)) => t,
        // Never parsed, so no line of it (a root-only file linked in) is sent.
        Ok(Err((meta, flag, why))) => {
            use std::os::unix::fs::MetadataExt;
            f.owner_uid = meta.uid();
            f.owner_gid = meta.gid();
            f.mode = meta.mode() & 0o7777;
            f.size_bytes = meta.len();
            f.flags.push(flag.into());
            f.flags.sort();
            f.error = format!("{path}: {why}");
            f.incomplete = f.error.clone();
            return Some(f);
        }
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            f.flags.push(
                match e {
                    FsError::Symlink { .. } | FsError::SymlinkLoop { .. } => "symlink_refused",
                    FsError::NotRegular { .. } => "not_regular",
                    _ => "unreadable",
                }
                .into(),
            );
            f.error = e.to_string();
            f.incomplete = f.error.clone();
            return Some(f);
        }
    };
    f.owner_uid = t.uid;
    f.owner_gid = t.gid;
    f.mode = t.mode;
    f.size_bytes = t.size;
    let ok_owner = |uid: u32| uid == acct.uid || uid == 0;
    push_mode_flags(&mut f.flags, "file", t.mode, ok_owner(t.uid));
    if t.truncated {
        f.flags.push("truncated".into());
        f.incomplete = truncated_reason(&t);
    }
    if t.lossy {
        f.flags.push("non_utf8".into());
    }
    dir_flags(fs, &anchor, &rel, in_home, &mut f.flags, &ok_owner);
    f.flags.sort();
    f.flags.dedup();
    let parsed = authorized_keys::parse(whole_lines(&t));
    f.keys = parsed.keys;
    f.malformed = parsed.malformed;
    Some(f)
}

/// Why a key file is not the account's own to parse: a hard link (its
/// text may be any file of the same filesystem, a root-only one included)
/// or an owner that is neither the user nor root (sshd's StrictModes
/// refuses it; its text is someone else's).
fn not_the_users(
    meta: &std::fs::Metadata,
    acct: &passwd::Account,
) -> Option<(&'static str, String)> {
    use std::os::unix::fs::MetadataExt;
    if meta.nlink() > 1 {
        return Some((
            "hard_linked",
            format!(
                "has {} hard links: not parsed and its text not sent (a hard link can put another file's content here); check which file it is (find -samefile)",
                meta.nlink()
            ),
        ));
    }
    if meta.uid() != acct.uid && meta.uid() != 0 {
        return Some((
            "file_bad_owner",
            format!(
                "owned by uid {}, neither {} (uid {}) nor root: not parsed and its text not sent (sshd's StrictModes refuses it)",
                meta.uid(),
                acct.name,
                acct.uid
            ),
        ));
    }
    None
}

/// Splits a key file path into the directory reads start from and the
/// part below it in which no symlink is followed: the home for files in
/// it, else the file's own directory (system paths such as
/// /etc/ssh/keys/%u are trusted up to there).
pub(crate) fn split_anchor(home: &str, path: &str) -> (String, String, bool) {
    let h = home.trim_end_matches('/');
    if let Some(rel) = path.strip_prefix(&format!("{h}/")) {
        let rel = rel.trim_start_matches('/');
        return (
            if h.is_empty() { "/".into() } else { h.into() },
            rel.into(),
            true,
        );
    }
    match path.rsplit_once('/') {
        Some((dir, file)) => (
            if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            },
            file.into(),
            false,
        ),
        None => ("/".into(), path.into(), false),
    }
}

fn push_mode_flags(flags: &mut Vec<String>, what: &str, mode: u32, ok_owner: bool) {
    if mode & 0o020 != 0 {
        flags.push(format!("{what}_group_writable"));
    }
    if mode & 0o002 != 0 {
        flags.push(format!("{what}_world_writable"));
    }
    if !ok_owner {
        flags.push(format!("{what}_bad_owner"));
    }
}

/// Mode and owner of the anchor (the home, when the file is in it) and of
/// every directory between it and the file, as sshd's StrictModes checks.
fn dir_flags(
    fs: &HostFs,
    anchor: &str,
    rel: &str,
    in_home: bool,
    flags: &mut Vec<String>,
    ok_owner: &dyn Fn(u32) -> bool,
) {
    use std::os::unix::fs::MetadataExt;
    // The anchor may itself be a link (homes on other mounts); its real
    // path has none, so plain lookups below it follow nothing.
    let Ok(real) = fs.resolve(anchor) else {
        return;
    };
    let Ok(under_root) = real.strip_prefix(fs.root()) else {
        return;
    };
    let mut host = format!("/{}", under_root.to_string_lossy());
    let check = |host: &str, what: &str, flags: &mut Vec<String>| {
        if let Ok(m) = fs.symlink_metadata(host) {
            push_mode_flags(flags, what, m.mode() & 0o7777, ok_owner(m.uid()));
        }
    };
    check(&host, if in_home { "home" } else { "dir" }, flags);
    let comps: Vec<_> = Path::new(rel).components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        host = format!(
            "{}/{}",
            host.trim_end_matches('/'),
            c.as_os_str().to_string_lossy()
        );
        check(&host, "dir", flags);
    }
}

#[cfg(test)]
mod tests;
