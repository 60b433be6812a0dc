//! The sweep's own reading of a key file: streamed line by line under a
//! bound far above the collection's, so a file padded past the snapshot's
//! 1 MiB cannot hide a key from a sweep. A file that cannot be read to its
//! end is no proof the key is absent: it is reported, never passed over.

use std::os::unix::fs::MetadataExt;

use driftwatch_common::proto::KeySelector;

use super::matches;
use crate::collect::ssh_keys::{KeyFileTarget, split_anchor};
use crate::hostfs::{FsError, HostFs, for_each_line};
use crate::parse::authorized_keys;

/// The most a sweep reads of one key file. sshd reads any size; past this
/// the host's sweep fails with the reason instead of guessing.
pub const MAX_SWEEP_FILE_BYTES: u64 = 64 << 20;

/// The fingerprint of the selected key when `line` (raw bytes, with its
/// terminator) holds it. Lossy decoding of one line keeps its number.
pub fn line_match(line: &[u8], sel: &KeySelector) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    authorized_keys::parse(&text)
        .keys
        .into_iter()
        .find(|k| matches(k, sel))
        .map(|k| k.fingerprint)
}

/// What the sweep found in one key file.
#[derive(Debug)]
pub enum FileScan {
    /// The file does not exist: sshd reads nothing there.
    Absent,
    /// A link in the home was refused: sshd may follow it, we do not.
    Refused(String),
    /// Unreadable, not a regular file, or larger than the bound.
    Failed(String),
    /// Read to its end: the lines holding the key (and which key each).
    Read {
        lines: Vec<u32>,
        fingerprints: Vec<String>,
        mode: u32,
        owner_uid: u32,
    },
}

pub fn scan_file(fs: &HostFs, t: &KeyFileTarget, sel: &KeySelector, max: u64) -> FileScan {
    let (anchor, rel, _) = split_anchor(&t.account.home, &t.path);
    let (file, meta) = match fs.open_user_file(&anchor, &rel) {
        Ok(x) => x,
        Err(e) if e.is_not_found() => return FileScan::Absent,
        Err(e @ (FsError::Symlink { .. } | FsError::SymlinkLoop { .. })) => {
            return FileScan::Refused(e.to_string());
        }
        Err(e) => return FileScan::Failed(e.to_string()),
    };
    let mut lines = Vec::new();
    let mut fingerprints = Vec::new();
    let complete = for_each_line(&file, max, |n, line| {
        if let Some(fp) = line_match(line, sel) {
            lines.push(n);
            fingerprints.push(fp);
        }
    });
    match complete {
        Ok(true) => FileScan::Read {
            lines,
            fingerprints,
            mode: meta.mode() & 0o7777,
            owner_uid: meta.uid(),
        },
        Ok(false) => FileScan::Failed(format!(
            "{}: larger than the sweep's bound of {max} bytes ({} bytes); not read to its end, so the key may still be in it",
            t.path,
            meta.len()
        )),
        Err(e) => FileScan::Failed(format!("{}: read failed: {e}", t.path)),
    }
}
