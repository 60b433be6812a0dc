//! The agent side of an offboarding sweep: re-scan the live key files (never
//! the last snapshot), and either list the lines holding the key (dry run)
//! or remove exactly those lines, then scan again to prove they are gone.

pub mod rewrite;

use driftwatch_common::proto::{
    AuthorizedKey, AuthorizedKeysFile, CommandResult, KeySelector, SweepCommand, SweepFile,
};
use driftwatch_common::time::now_ms;

use crate::collect::ssh_keys::{MAX_KEY_FILE_BYTES, collect_ssh_keys, split_anchor};
use crate::hostfs::HostFs;
use crate::parse::authorized_keys;

/// Does this key line hold a selected key (any of the selector's set)? A
/// certificate matches when it certifies the key (its fingerprint is the
/// certified key's).
pub fn matches(key: &AuthorizedKey, sel: &KeySelector) -> bool {
    driftwatch_common::keysel::matches(sel, &key.fingerprint, &key.comment)
}

/// The fingerprint of each line of `lines` among `keys`, in order.
fn fingerprints_of(keys: &[AuthorizedKey], lines: &[u32]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            keys.iter()
                .find(|k| k.line == *l)
                .map(|k| k.fingerprint.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// The bytes without the lines (1-based) in `drop`; every other byte,
/// terminators included, stays as it was.
pub fn without_lines(bytes: &[u8], drop: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if !drop.contains(&n) {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Lines of `bytes` holding the key, matched afresh on the bytes about to
/// be edited (the offsets of a scan may be stale, or count U+FFFD
/// replacements in a non-UTF-8 file). Lossy decoding keeps every `\n`, so
/// line numbers are those of the raw bytes.
pub fn matching_lines(bytes: &[u8], sel: &KeySelector) -> Vec<u32> {
    let text = String::from_utf8_lossy(bytes);
    authorized_keys::parse(&text)
        .keys
        .iter()
        .filter(|k| matches(k, sel))
        .map(|k| k.line)
        .collect()
}

fn file_result(
    f: &AuthorizedKeysFile,
    status: &str,
    lines: Vec<u32>,
    message: String,
) -> SweepFile {
    SweepFile {
        user: f.user.clone(),
        path: f.path.clone(),
        status: status.into(),
        lines,
        message,
        mode: f.mode,
        owner_uid: f.owner_uid,
        ..Default::default()
    }
}

/// Runs one sweep command against the host under `fs`.
pub fn run(fs: &HostFs, id: &str, cmd: &SweepCommand) -> CommandResult {
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
    let section = match collect_ssh_keys(fs) {
        Ok(s) => s,
        Err(e) => {
            result.status = "failed".into();
            result.message = format!("cannot scan key files: {e}");
            return result;
        }
    };
    let mut removed_paths = Vec::new();
    for f in &section.files {
        if !f.error.is_empty() {
            // A file we may not read could hold the key: no proof either way.
            let status = if f.flags.iter().any(|x| x == "symlink_refused") {
                "refused"
            } else {
                "failed"
            };
            result
                .files
                .push(file_result(f, status, vec![], f.error.clone()));
            continue;
        }
        let lines: Vec<u32> = f
            .keys
            .iter()
            .filter(|k| matches(k, &sel))
            .map(|k| k.line)
            .collect();
        if lines.is_empty() {
            continue;
        }
        if !cmd.remove {
            let mut r = file_result(f, "would_remove", lines, String::new());
            r.line_fingerprints = fingerprints_of(&f.keys, &r.lines);
            result.files.push(r);
            continue;
        }
        let (anchor, rel, _) = split_anchor(&f.home, &f.path);
        let mut live_lines = Vec::new();
        let mut live_fps = Vec::new();
        let outcome = rewrite::rewrite(fs, &anchor, &rel, MAX_KEY_FILE_BYTES, now_ms(), |old| {
            let keys = authorized_keys::parse(&String::from_utf8_lossy(old)).keys;
            live_lines = matching_lines(old, &sel);
            live_fps = fingerprints_of(&keys, &live_lines);
            (!live_lines.is_empty()).then(|| without_lines(old, &live_lines))
        });
        match outcome {
            Ok(Some(w)) => {
                let mut r = file_result(f, "removed", live_lines, String::new());
                r.line_fingerprints = live_fps;
                r.backup = w.backup;
                result.files.push(r);
                removed_paths.push(f.path.clone());
            }
            Ok(None) => {} // gone since the scan: nothing to do.
            Err(e) => {
                let status = if matches!(e, rewrite::RewriteError::Symlink { .. }) {
                    "refused"
                } else {
                    "failed"
                };
                let mut r = file_result(f, status, lines, e.to_string());
                r.line_fingerprints = fingerprints_of(&f.keys, &r.lines);
                result.files.push(r);
            }
        }
    }
    if !removed_paths.is_empty() {
        verify(fs, &sel, &mut result);
    }
    result
        .files
        .sort_by(|a, b| (&a.path, &a.user).cmp(&(&b.path, &b.user)));
    let bad = result
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
    result.status = if bad > 0 { "failed" } else { "done" }.into();
    let verb = if cmd.remove {
        "removed"
    } else {
        "would remove"
    };
    result.message = format!("{verb} {lines} line(s)");
    if bad > 0 {
        result.message += &format!("; {bad} key file(s) could not be checked or changed");
    }
    result
}

/// Scans again: a removed file that still holds the key is a failure.
fn verify(fs: &HostFs, sel: &KeySelector, result: &mut CommandResult) {
    let after = match collect_ssh_keys(fs) {
        Ok(s) => s,
        Err(e) => {
            for f in result.files.iter_mut().filter(|f| f.status == "removed") {
                f.status = "failed".into();
                f.message = format!("removed, but the re-scan failed: {e}");
            }
            return;
        }
    };
    for f in result.files.iter_mut().filter(|f| f.status == "removed") {
        if let Some(now) = after
            .files
            .iter()
            .find(|a| a.path == f.path && a.user == f.user)
            && now.keys.iter().any(|k| matches(k, sel))
        {
            f.status = "failed".into();
            f.message = "the key is still there after the rewrite".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn removes_only_the_named_lines_byte_for_byte() {
        let b = b"a\r\nb\nc\xff\nd";
        assert_eq!(without_lines(b, &[2]), b"a\r\nc\xff\nd");
        assert_eq!(without_lines(b, &[4]), b"a\r\nb\nc\xff\n");
        assert_eq!(without_lines(b, &[]), b.to_vec());
    }
}
