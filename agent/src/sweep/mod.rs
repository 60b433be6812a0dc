//! The agent side of an offboarding sweep: re-scan the live key files (never
//! the last snapshot), and either list the lines holding the key (dry run)
//! or remove exactly those lines, then scan again to prove they are gone.

pub mod rewrite;
pub mod scan;

use driftwatch_common::proto::{
    AuthorizedKey, CommandResult, KeySelector, SweepCommand, SweepFile,
};
use driftwatch_common::time::now_ms;

use crate::collect::ssh_keys::{KeyFileTarget, scan_plan, split_anchor};
use crate::hostfs::HostFs;
use scan::{FileScan, MAX_SWEEP_FILE_BYTES, line_match, scan_file};

/// Does this key line hold a selected key (any of the selector's set)? A
/// certificate matches when it certifies the key (its fingerprint is the
/// certified key's).
pub fn matches(key: &AuthorizedKey, sel: &KeySelector) -> bool {
    driftwatch_common::keysel::matches(sel, &key.fingerprint, &key.comment)
}

fn file_result(t: &KeyFileTarget, status: &str, lines: Vec<u32>, message: String) -> SweepFile {
    SweepFile {
        user: t.account.name.clone(),
        path: t.path.clone(),
        status: status.into(),
        lines,
        message,
        ..Default::default()
    }
}

/// Runs one sweep command against the host under `fs`.
///
/// "done" means every key file sshd would consult for every account was
/// read to its end and holds no line with the key any more; a file that
/// could not be (too large, unreadable, a link refused) fails the host.
pub fn run(fs: &HostFs, id: &str, cmd: &SweepCommand) -> CommandResult {
    run_bounded(fs, id, cmd, MAX_SWEEP_FILE_BYTES)
}

pub fn run_bounded(fs: &HostFs, id: &str, cmd: &SweepCommand, max: u64) -> CommandResult {
    let sel = cmd.selector.clone().unwrap_or_default();
    let mut result = CommandResult {
        command_id: id.to_string(),
        ..Default::default()
    };
    if driftwatch_common::keysel::is_empty(&sel) {
        result.status = "failed".into();
        result.message = "the sweep names no key".into();
        return result;
    }
    let plan = match scan_plan(fs) {
        Ok(s) => s,
        Err(e) => {
            result.status = "failed".into();
            result.message = format!("cannot scan key files: {e}");
            return result;
        }
    };
    let mut removed = Vec::new();
    for t in &plan.targets {
        let (lines, fingerprints, mode, owner_uid) = match scan_file(fs, t, &sel, max) {
            FileScan::Absent => continue,
            // A file we may not read could hold the key: no proof either way.
            FileScan::Refused(why) => {
                result.files.push(file_result(t, "refused", vec![], why));
                continue;
            }
            FileScan::Failed(why) => {
                result.files.push(file_result(t, "failed", vec![], why));
                continue;
            }
            FileScan::Read {
                lines,
                fingerprints,
                mode,
                owner_uid,
            } => (lines, fingerprints, mode, owner_uid),
        };
        if lines.is_empty() {
            continue;
        }
        if !cmd.remove {
            let mut r = file_result(t, "would_remove", lines, String::new());
            r.line_fingerprints = fingerprints;
            r.mode = mode;
            r.owner_uid = owner_uid;
            result.files.push(r);
            continue;
        }
        let (anchor, rel, _) = split_anchor(&t.account.home, &t.path);
        let outcome = rewrite::rewrite(fs, &anchor, &rel, max, now_ms(), |line| {
            line_match(line, &sel)
        });
        match outcome {
            Ok(Some(w)) => {
                let mut r = file_result(t, "removed", w.lines, String::new());
                r.line_fingerprints = w.fingerprints;
                r.backup = w.backup;
                r.mode = w.mode;
                r.owner_uid = w.uid;
                result.files.push(r);
                removed.push(t.clone());
            }
            // Gone between the scan and the lock: another sweep (a shared
            // home, a second command) removed it. The key is not there.
            Ok(None) => {
                let mut r = file_result(
                    t,
                    "absent",
                    vec![],
                    "already removed by another writer before this sweep took the file's lock"
                        .into(),
                );
                r.mode = mode;
                r.owner_uid = owner_uid;
                result.files.push(r);
                removed.push(t.clone());
            }
            Err(e) => {
                let status = if matches!(e, rewrite::RewriteError::Symlink { .. }) {
                    "refused"
                } else {
                    "failed"
                };
                let mut r = file_result(t, status, lines, e.to_string());
                r.line_fingerprints = fingerprints;
                result.files.push(r);
            }
        }
    }
    if !removed.is_empty() {
        verify(fs, &sel, &removed, max, &mut result);
    }
    result
        .files
        .sort_by(|a, b| (&a.path, &a.user).cmp(&(&b.path, &b.user)));
    let mut bad = result
        .files
        .iter()
        .filter(|f| f.status == "refused" || f.status == "failed")
        .count();
    let lines: usize = result
        .files
        .iter()
        .filter(|f| f.status == "removed" || f.status == "would_remove")
        .map(|f| f.lines.len())
        .sum();
    let verb = if cmd.remove {
        "removed"
    } else {
        "would remove"
    };
    result.message = format!("{verb} {lines} line(s)");
    if bad > 0 {
        result.message += &format!("; {bad} key file(s) could not be checked or changed");
    }
    if let Some(why) = &plan.accounts_incomplete {
        bad += 1;
        result.message += &format!("; {why}");
    }
    result.status = if bad > 0 { "failed" } else { "done" }.into();
    result
}

/// Reads each changed file again, to its end: one that still holds the key
/// (or can no longer be read) is a failure.
fn verify(
    fs: &HostFs,
    sel: &KeySelector,
    changed: &[KeyFileTarget],
    max: u64,
    result: &mut CommandResult,
) {
    for t in changed {
        let why = match scan_file(fs, t, sel, max) {
            FileScan::Absent => continue,
            FileScan::Read { lines, .. } if lines.is_empty() => continue,
            FileScan::Read { lines, .. } => format!(
                "the key is still there after the rewrite (line(s) {})",
                lines
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            FileScan::Refused(e) | FileScan::Failed(e) => {
                format!("changed, but the re-scan could not read it: {e}")
            }
        };
        for f in result
            .files
            .iter_mut()
            .filter(|f| f.path == t.path && f.user == t.account.name)
        {
            f.status = "failed".into();
            f.message = why.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::ssh_keys::collect_ssh_keys;
    use crate::parse::authorized_keys;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJr3PHt5FWncy1NESBWmLjAjeouLelJ5pwqz4S6JAtX";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFGaZjV6L2nYF6/Dul1F5LFditV8mprXVyl8kGvOhIFk";

    fn sweep(remove: bool) -> SweepCommand {
        SweepCommand {
            sweep_id: "s".into(),
            selector: Some(KeySelector {
                comment: "leaver".into(),
                ..Default::default()
            }),
            remove,
        }
    }

    /// A non-UTF-8 file: the scan's offsets count U+FFFD replacements, so
    /// removal re-matches on the raw bytes and keeps the invalid ones.
    #[test]
    fn non_utf8_files_lose_only_the_matching_line() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, b: &[u8]| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        };
        w("etc/passwd", b"al:x:1000:1000::/home/al:/bin/sh\n");
        let mut body = b"# caf\xe9 \xff\xfe\n".to_vec();
        body.extend_from_slice(format!("{K1} leaver\n{K2} stays\n{K1} leaver").as_bytes());
        w("home/al/.ssh/authorized_keys", &body);
        let fs = HostFs::new(d.path());
        let dry = run(&fs, "s", &sweep(false));
        assert_eq!(dry.status, "done", "{dry:?}");
        assert_eq!(dry.files[0].lines, vec![2, 4]);
        let path = d.path().join("home/al/.ssh/authorized_keys");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            body,
            "dry run changed nothing"
        );
        let r = run(&fs, "s", &sweep(true));
        assert_eq!(r.status, "done", "{r:?}");
        assert_eq!(r.files[0].status, "removed");
        assert_eq!(r.files[0].lines, vec![2, 4]);
        let mut want = b"# caf\xe9 \xff\xfe\n".to_vec();
        want.extend_from_slice(format!("{K2} stays\n").as_bytes());
        assert_eq!(std::fs::read(&path).unwrap(), want);
        // Run again: nothing left to do, nothing touched.
        let again = run(&fs, "s", &sweep(true));
        assert!(
            again.files.is_empty() && again.status == "done",
            "{again:?}"
        );
    }

    /// A selector of several keys removes every one of them, and says
    /// which key each removed line held.
    #[test]
    fn a_set_of_keys_is_swept_together_line_by_line() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, b: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        };
        w("etc/passwd", "al:x:1000:1000::/home/al:/bin/sh\n");
        w(
            "home/al/.ssh/authorized_keys",
            &format!("{K1} one\nssh-rsa AAAA bad\n{K2} two\n"),
        );
        let fs = HostFs::new(d.path());
        let section = collect_ssh_keys(&fs).unwrap();
        let fps: Vec<String> = section.files[0]
            .keys
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect();
        assert_eq!(fps.len(), 2);
        let cmd = SweepCommand {
            sweep_id: "s".into(),
            selector: Some(KeySelector {
                fingerprints: fps.clone(),
                ..Default::default()
            }),
            remove: true,
        };
        let r = run(&fs, "s", &cmd);
        assert_eq!(r.status, "done", "{r:?}");
        assert_eq!(r.files[0].lines, vec![1, 3]);
        assert_eq!(r.files[0].line_fingerprints, fps);
        let left = std::fs::read_to_string(d.path().join("home/al/.ssh/authorized_keys")).unwrap();
        assert_eq!(left, "ssh-rsa AAAA bad\n");
    }

    /// The attack: 1,100 comment lines of ~1 KiB, then the key. The
    /// snapshot's 1 MiB read misses it and says so; the sweep reads to the
    /// end, removes it, and a file past the sweep's own bound fails the host.
    #[test]
    fn a_key_past_the_snapshot_bound_is_swept_or_the_host_fails() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, b: &[u8]| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        };
        w("etc/passwd", b"al:x:1000:1000::/home/al:/bin/sh\n");
        let pad = format!("# {}\n", "p".repeat(1021));
        let mut body = pad.repeat(1100);
        body += &format!("{K2} stays\n{K1} leaver\n");
        w("home/al/.ssh/authorized_keys", body.as_bytes());
        let fs = HostFs::new(d.path());
        let section = collect_ssh_keys(&fs).unwrap();
        let f = &section.files[0];
        assert!(f.keys.is_empty(), "{:?}", f.keys);
        assert!(f.incomplete.contains("larger than 1048576 bytes"), "{f:?}");

        let dry = run(&fs, "s", &sweep(false));
        assert_eq!(dry.status, "done", "{dry:?}");
        assert_eq!(dry.files[0].lines, vec![1102]);
        // Past the sweep's bound: no proof, the host fails and nothing changes.
        let small = run_bounded(&fs, "s", &sweep(true), 1 << 20);
        assert_eq!(small.status, "failed", "{small:?}");
        assert!(
            small.files[0].message.contains("not read to its end"),
            "{small:?}"
        );
        let r = run(&fs, "s", &sweep(true));
        assert_eq!(r.status, "done", "{r:?}");
        assert_eq!(r.files[0].status, "removed");
        assert_eq!(r.files[0].lines, vec![1102]);
        let left = std::fs::read_to_string(d.path().join("home/al/.ssh/authorized_keys")).unwrap();
        let keys = authorized_keys::parse(&left).keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].comment, "stays");
        assert_eq!(left.len(), body.len() - K1.len() - " leaver\n".len());
    }
}
