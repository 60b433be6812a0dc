//! Rewriting a key file in a user's home as root, without ever following a
//! link the user could have planted.
//!
//! The directories from the home down to the file are opened one by one
//! with O_NOFOLLOW and every later step works relative to the last of them
//! (openat/renameat/unlinkat), so swapping `.ssh` for a symlink between a
//! check and the write cannot redirect the write. The file is locked
//! (flock, exclusive) before it is read, and the lock is only trusted once
//! the name still is the locked file: a second sweep of the same file (a
//! home shared over NFS, a second command) waits, then finds the key gone.
//! The file is streamed line by line under a bound, never read whole: the
//! previous content goes to a backup with a name no one else holds
//! (create-exclusive, retried), the new content to a temp file in the same
//! directory (owner, mode and every extended attribute of the original,
//! fsync'd), then a rename replaces the file and the directory is fsync'd.
//!
//! Extended attributes (POSIX ACLs as `system.posix_acl_access`, the
//! SELinux label, user.*, trusted.*) are listed and copied with
//! flistxattr/fgetxattr/fsetxattr from libc; a filesystem without xattrs
//! (ENOTSUP) has none to copy. One that cannot be copied fails the rewrite:
//! an ACL silently dropped is an access change nobody asked for.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use thiserror::Error;

use crate::hostfs::{FsError, HostFs, for_each_line};

/// Backups kept beside a key file; older ones are removed.
pub const KEEP_BACKUPS: usize = 5;
const BACKUP_INFIX: &str = ".driftwatch-bak-";
/// How long a sweep waits for another holder of the file's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum RewriteError {
    #[error(
        "{path}: is a symbolic link; not followed (the agent never writes through links in users' homes)"
    )]
    Symlink { path: String },
    #[error("{path}: not a regular file")]
    NotRegular { path: String },
    #[error("{path}: larger than {max} bytes; not edited")]
    TooLarge { path: String, max: u64 },
    #[error("{path}: replaced while being edited; left alone")]
    Raced { path: String },
    #[error(
        "{path}: still locked by another writer after {secs} s; not edited (run the sweep again)"
    )]
    Locked { path: String, secs: u64 },
    #[error("{path}: cannot copy extended attribute {name} to the new file: {source}; not edited")]
    Xattr {
        path: String,
        name: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What a rewrite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Host path of the backup holding the previous content.
    pub backup: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// 1-based lines removed (numbers of the file as it was) and the
    /// fingerprint each held.
    pub lines: Vec<u32>,
    pub fingerprints: Vec<String>,
}

fn cstr(name: &OsStr) -> CString {
    // Names come from path components, which hold no NUL.
    CString::new(name.as_bytes()).expect("path component without NUL")
}

fn last_err(path: &str) -> RewriteError {
    RewriteError::Io {
        path: path.into(),
        source: std::io::Error::last_os_error(),
    }
}

fn openat(dir: &OwnedFd, name: &CString, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: a valid directory fd and a NUL-terminated name; the returned
    // fd is owned by the OwnedFd.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    if fd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: fd was just returned by openat and is ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn lstat_at(dir: &OwnedFd, name: &CString) -> std::io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter for fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated name, pointer to a stat we own.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(st)
    }
}

fn is_link(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// The directory holding the file, opened component by component below
/// `anchor` without following links, and the file's name in it.
fn open_parent(
    fs: &HostFs,
    anchor: &str,
    rel: &str,
    display: &str,
) -> Result<(OwnedFd, CString, String), RewriteError> {
    let real = fs.resolve(anchor).map_err(|e| match e {
        FsError::Symlink { path } | FsError::SymlinkLoop { path } => RewriteError::Symlink { path },
        other => RewriteError::Io {
            path: display.into(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    let anchor_c = CString::new(real.as_os_str().as_bytes()).map_err(|_| RewriteError::Io {
        path: display.into(),
        source: std::io::Error::other("path holds NUL"),
    })?;
    // SAFETY: NUL-terminated path; the fd is wrapped at once.
    let fd = unsafe {
        libc::open(
            anchor_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_err(display));
    }
    // SAFETY: fd was just returned by open and is ours alone.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let comps: Vec<&OsStr> = Path::new(rel)
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(RewriteError::Symlink {
                path: display.into(),
            }),
        })
        .collect::<Result<_, _>>()?;
    let Some((file, dirs)) = comps.split_last() else {
        return Err(RewriteError::NotRegular {
            path: display.into(),
        });
    };
    let mut shown = anchor.trim_end_matches('/').to_string();
    for d in dirs {
        shown = format!("{shown}/{}", d.to_string_lossy());
        let name = cstr(d);
        let st = lstat_at(&dir, &name).map_err(|source| RewriteError::Io {
            path: shown.clone(),
            source,
        })?;
        if is_link(&st) {
            return Err(RewriteError::Symlink { path: shown });
        }
        dir = openat(
            &dir,
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => RewriteError::Symlink {
                path: shown.clone(),
            },
            _ => RewriteError::Io {
                path: shown.clone(),
                source,
            },
        })?;
    }
    let parent_shown = shown;
    Ok((dir, cstr(file), parent_shown))
}

/// Every extended attribute of `f`, name and value.
fn xattrs(f: &File, path: &str) -> Result<Vec<(CString, Vec<u8>)>, RewriteError> {
    let fd = f.as_raw_fd();
    let mut names = vec![0u8; 1024];
    let len = loop {
        // SAFETY: valid fd, buffer of names.len() bytes.
        let n = unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ERANGE) if names.len() < (1 << 20) => names.resize(names.len() * 4, 0),
            // No xattrs on this filesystem: nothing to keep.
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(last_err(path)),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c = CString::new(name).expect("split at NUL");
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: valid fd, NUL-terminated name, buffer of buf.len() bytes.
            let n = unsafe { libc::fgetxattr(fd, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                buf.truncate(n as usize);
                out.push((c, buf));
                break;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
                // Removed between list and get: nothing to copy.
                Some(libc::ENODATA) => break,
                _ => {
                    return Err(RewriteError::Xattr {
                        path: path.into(),
                        name: c.to_string_lossy().into_owned(),
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn set_xattr(f: &File, name: &CString, value: &[u8], path: &str) -> Result<(), RewriteError> {
    // SAFETY: valid fd, NUL-terminated name, value.len() readable bytes.
    let rc = unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        Err(RewriteError::Xattr {
            path: path.into(),
            name: name.to_string_lossy().into_owned(),
            source: std::io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

struct Attrs {
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// Creates `name` in `dir`; it must not exist (never a link, never
/// someone else's file).
fn create_excl(dir: &OwnedFd, name: &CString, shown: &str) -> Result<File, RewriteError> {
    openat(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0o600,
    )
    .map(File::from)
    .map_err(|source| RewriteError::Io {
        path: shown.into(),
        source,
    })
}

/// Gives a written file the original's owner, mode and extended
/// attributes, and fsyncs it.
fn finish(f: &File, attrs: &Attrs, shown: &str) -> Result<(), RewriteError> {
    // SAFETY: valid fd; plain integer arguments.
    if unsafe { libc::fchown(f.as_raw_fd(), attrs.uid, attrs.gid) } < 0 {
        return Err(last_err(shown));
    }
    // After chown: chown may clear set-id bits, the mode must be the original's.
    // SAFETY: valid fd; plain integer arguments.
    if unsafe { libc::fchmod(f.as_raw_fd(), attrs.mode as libc::mode_t) } < 0 {
        return Err(last_err(shown));
    }
    // Last: an ACL's mask is the group bits, as in the original.
    for (name, value) in &attrs.xattrs {
        set_xattr(f, name, value, shown)?;
    }
    f.sync_all().map_err(|source| RewriteError::Io {
        path: shown.into(),
        source,
    })
}

/// A backup named `NAME.driftwatch-bak-<ms>`, or with `-<n>` after it when
/// that name is taken (two sweeps in the same millisecond, a shared home).
fn create_backup(
    dir: &OwnedFd,
    base: &str,
    now_ms: i64,
    parent_shown: &str,
) -> Result<(File, String), RewriteError> {
    for n in 0..100u32 {
        let name = if n == 0 {
            format!("{base}{BACKUP_INFIX}{now_ms}")
        } else {
            format!("{base}{BACKUP_INFIX}{now_ms}-{n}")
        };
        let shown = format!("{parent_shown}/{name}");
        let c = CString::new(name).expect("no NUL");
        match create_excl(dir, &c, &shown) {
            Ok(f) => return Ok((f, shown)),
            Err(RewriteError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(RewriteError::Io {
        path: format!("{parent_shown}/{base}{BACKUP_INFIX}{now_ms}"),
        source: std::io::Error::other("100 backup names taken in one millisecond"),
    })
}

fn unlink_at(dir: &OwnedFd, name: &CString) {
    // SAFETY: valid fd, NUL-terminated name. Failure leaves a stray file,
    // which is only untidy.
    unsafe {
        libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0);
    }
}

/// Opens the file and takes its exclusive lock; returns once the name is
/// still the locked file (another sweep may have renamed a new one over it
/// while we waited: then that one is locked instead).
fn open_locked(
    dir: &OwnedFd,
    name: &CString,
    display: &str,
) -> Result<(File, std::fs::Metadata), RewriteError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let fd = openat(
            dir,
            name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
        )
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => RewriteError::Symlink {
                path: display.into(),
            },
            _ => RewriteError::Io {
                path: display.into(),
                source,
            },
        })?;
        let file = File::from(fd);
        let io = |source| RewriteError::Io {
            path: display.into(),
            source,
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(RewriteError::NotRegular {
                path: display.into(),
            });
        }
        loop {
            // SAFETY: valid fd; plain integer arguments.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(e));
            }
            if std::time::Instant::now() >= deadline {
                return Err(RewriteError::Locked {
                    path: display.into(),
                    secs: LOCK_WAIT.as_secs(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let now = lstat_at(dir, name).map_err(io)?;
        if now.st_ino == meta.ino() && now.st_dev == meta.dev() {
            return Ok((file, meta));
        }
        if is_link(&now) {
            return Err(RewriteError::Symlink {
                path: display.into(),
            });
        }
        if std::time::Instant::now() >= deadline {
            return Err(RewriteError::Raced {
                path: display.into(),
            });
        }
    }
}

/// Rewrites the key file `rel` below `anchor` (a home, or the file's own
/// directory for system paths) without the lines `pick` names (it returns
/// the fingerprint of a line to drop). `None` when no line is picked: the
/// file is left alone. The file is streamed under `max` bytes; a larger one
/// is refused, never cut.
pub fn rewrite(
    fs: &HostFs,
    anchor: &str,
    rel: &str,
    max: u64,
    now_ms: i64,
    mut pick: impl FnMut(&[u8]) -> Option<String>,
) -> Result<Option<Rewritten>, RewriteError> {
    let display = format!("{}/{}", anchor.trim_end_matches('/'), rel);
    let (dir, name, parent_shown) = open_parent(fs, anchor, rel, &display)?;
    let (mut file, meta) = open_locked(&dir, &name, &display)?;
    let io = |source| RewriteError::Io {
        path: display.clone(),
        source,
    };
    let mut any = false;
    let complete = for_each_line(&file, max, |_, line| {
        any = any || pick(line).is_some();
    })
    .map_err(io)?;
    if !complete {
        return Err(RewriteError::TooLarge { path: display, max });
    }
    if !any {
        return Ok(None);
    }
    let attrs = Attrs {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
        xattrs: xattrs(&file, &display)?,
    };
    let base = name.to_string_lossy().into_owned();
    let (backup, backup_shown) = create_backup(&dir, &base, now_ms, &parent_shown)?;
    let backup_c =
        CString::new(backup_shown.rsplit('/').next().unwrap_or_default()).expect("no NUL");
    let tmp_name = format!(
        ".{base}.driftwatch-tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    );
    let tmp_c = CString::new(tmp_name).expect("no NUL");
    let copied = (|| {
        let tmp = create_excl(&dir, &tmp_c, &display)?;
        file.rewind().map_err(io)?;
        let (mut b, mut t) = (BufWriter::new(&backup), BufWriter::new(&tmp));
        let mut lines = Vec::new();
        let mut fingerprints = Vec::new();
        let mut failed: Option<std::io::Error> = None;
        // The lock is held: what is matched now is what was checked.
        let complete = for_each_line(&file, max, |n, line| {
            if failed.is_some() {
                return;
            }
            let r = b.write_all(line).and_then(|()| match pick(line) {
                Some(fp) => {
                    lines.push(n);
                    fingerprints.push(fp);
                    Ok(())
                }
                None => t.write_all(line),
            });
            failed = r.err();
        })
        .map_err(io)?;
        if let Some(e) = failed {
            return Err(io(e));
        }
        if !complete {
            return Err(RewriteError::TooLarge {
                path: display.clone(),
                max,
            });
        }
        b.flush().map_err(io)?;
        t.flush().map_err(io)?;
        drop((b, t));
        finish(&backup, &attrs, &backup_shown)?;
        finish(&tmp, &attrs, &display)?;
        Ok((lines, fingerprints))
    })();
    let (lines, fingerprints) = match copied {
        Ok(x) => x,
        Err(e) => {
            unlink_at(&dir, &tmp_c);
            unlink_at(&dir, &backup_c);
            return Err(e);
        }
    };
    // The name must still be the file we read: if someone replaced it in
    // between, their version wins and we report instead of clobbering it.
    let still = lstat_at(&dir, &name).map_err(io)?;
    if still.st_ino != meta.ino() || still.st_dev != meta.dev() {
        unlink_at(&dir, &tmp_c);
        return Err(RewriteError::Raced { path: display });
    }
    // SAFETY: valid directory fd (twice) and NUL-terminated names.
    let rc = unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            tmp_c.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
        )
    };
    if rc < 0 {
        let e = last_err(&display);
        unlink_at(&dir, &tmp_c);
        return Err(e);
    }
    File::from(dir.try_clone().map_err(io)?)
        .sync_all()
        .map_err(io)?;
    // The lock on the old inode is released only now, after the rename:
    // a waiting sweep then sees the name moved and locks the new file.
    drop(file);
    prune_backups(fs, &dir, &parent_shown, &base);
    Ok(Some(Rewritten {
        backup: backup_shown,
        mode: attrs.mode,
        uid: attrs.uid,
        gid: attrs.gid,
        lines,
        fingerprints,
    }))
}

/// Keeps the newest [`KEEP_BACKUPS`] backups of `base`. Names are listed
/// through the host path, but removed relative to the directory we hold,
/// so a swapped directory cannot make us delete elsewhere.
fn prune_backups(fs: &HostFs, dir: &OwnedFd, parent_shown: &str, base: &str) {
    let Ok(names) = fs.read_dir(parent_shown) else {
        return;
    };
    let prefix = format!("{base}{BACKUP_INFIX}");
    let mut backups: Vec<((i64, u32), String)> = names
        .into_iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(&prefix)?;
            let (ms, seq) = rest.split_once('-').unwrap_or((rest, "0"));
            Some(((ms.parse::<i64>().ok()?, seq.parse::<u32>().ok()?), n))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(KEEP_BACKUPS);
    for (_, n) in backups.into_iter().take(excess) {
        unlink_at(dir, &CString::new(n).expect("no NUL"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::process::Command;

    fn home() -> (tempfile::TempDir, HostFs) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("home/bob/.ssh")).unwrap();
        let hf = HostFs::new(d.path());
        (d, hf)
    }

    /// Drops lines that are exactly `x`.
    fn drop_x(line: &[u8]) -> Option<String> {
        (line.strip_suffix(b"\n").unwrap_or(line) == b"x").then(|| "fp".to_string())
    }

    fn backups(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(BACKUP_INFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rewrites_keeping_mode_and_backs_up_boundedly() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        fs::write(&p, b"a\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        for i in 0..(KEEP_BACKUPS as i64 + 3) {
            let mut body = fs::read(&p).unwrap();
            body.extend_from_slice(b"x\nb\r\nx");
            fs::write(&p, &body).unwrap();
            let r = rewrite(
                &hf,
                "/home/bob",
                ".ssh/authorized_keys",
                1 << 20,
                1000 + i,
                drop_x,
            )
            .unwrap()
            .unwrap();
            assert_eq!(r.mode, 0o640);
            assert_eq!(r.lines.len(), 2);
            assert!(r.backup.ends_with(&format!(".driftwatch-bak-{}", 1000 + i)));
            let backup = d.path().join(r.backup.trim_start_matches('/'));
            assert_eq!(
                fs::read(backup).unwrap(),
                body,
                "the backup is the old file"
            );
        }
        // Every other byte kept, \r\n included.
        assert_eq!(
            fs::read(&p).unwrap(),
            b"a\n"
                .iter()
                .chain(&b"b\r\n".repeat(KEEP_BACKUPS + 3))
                .copied()
                .collect::<Vec<u8>>()
        );
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(backups(&d.path().join("home/bob/.ssh")).len(), KEEP_BACKUPS);
        assert!(
            fs::read_dir(d.path().join("home/bob/.ssh"))
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().contains("tmp")),
            "no temp file left"
        );
        // Nothing picked: untouched, no backup.
        let before = fs::read(&p).unwrap();
        assert!(
            rewrite(
                &hf,
                "/home/bob",
                ".ssh/authorized_keys",
                1 << 20,
                5000,
                drop_x
            )
            .unwrap()
            .is_none()
        );
        assert_eq!(fs::read(&p).unwrap(), before);
    }

    /// Two writers of one file at the same millisecond (a home shared by two
    /// hosts, two sweeps): the lock serialises them, the second finds
    /// nothing to do, and no backup name collides.
    #[test]
    fn concurrent_rewrites_lock_and_never_share_a_backup_name() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        for round in 0..20 {
            fs::write(&p, b"a\nx\nb\n").unwrap();
            let results: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            rewrite(
                                &hf,
                                "/home/bob",
                                ".ssh/authorized_keys",
                                1 << 20,
                                77,
                                drop_x,
                            )
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let done: Vec<_> = results
                .iter()
                .map(|r| r.as_ref().unwrap_or_else(|e| panic!("round {round}: {e}")))
                .collect();
            assert_eq!(done.iter().filter(|r| r.is_some()).count(), 1, "{done:?}");
            assert_eq!(fs::read(&p).unwrap(), b"a\nb\n");
        }
        // A backup name taken (same millisecond) gets a suffix.
        fs::write(&p, b"x\n").unwrap();
        let taken = d
            .path()
            .join("home/bob/.ssh/authorized_keys.driftwatch-bak-99");
        fs::write(&taken, b"someone else's").unwrap();
        let r = rewrite(
            &hf,
            "/home/bob",
            ".ssh/authorized_keys",
            1 << 20,
            99,
            drop_x,
        )
        .unwrap()
        .unwrap();
        assert!(r.backup.ends_with(".driftwatch-bak-99-1"), "{}", r.backup);
        assert_eq!(fs::read(&taken).unwrap(), b"someone else's");
    }

    fn run(cmd: &str, args: &[&str]) -> String {
        let out = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd} (packages acl, attr: scripts/ci-deps.sh): {e}"));
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Everything getfacl and getfattr show, without the file's name.
    fn all_attrs(p: &Path) -> String {
        let p = p.to_str().unwrap();
        let acl = run("getfacl", &["--absolute-names", "--omit-header", "-n", p]);
        let xattrs = run(
            "getfattr",
            &["--absolute-names", "-d", "-m", "-", "-e", "hex", p],
        );
        let xattrs: String = xattrs
            .lines()
            .filter(|l| !l.starts_with("# file:"))
            .collect();
        format!("{acl}\n{xattrs}")
    }

    /// A POSIX ACL and user.*, trusted.* and security.* attributes are on
    /// the rewritten file and the backup as on the original (setting
    /// trusted.* and security.* needs root: the tests run as root).
    #[test]
    fn every_extended_attribute_and_acl_is_kept() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        fs::write(&p, b"a\nx\n").unwrap();
        let ps = p.to_str().unwrap();
        run("setfacl", &["-m", "u:4242:r,g:4343:rw", ps]);
        run("setfattr", &["-n", "user.note", "-v", "kept", ps]);
        run("setfattr", &["-n", "trusted.mark", "-v", "0x00ff10", ps]);
        run(
            "setfattr",
            &[
                "-n",
                "security.selinux",
                "-v",
                "unconfined_u:object_r:ssh_home_t:s0",
                ps,
            ],
        );
        let before = all_attrs(&p);
        for want in [
            "user:4242:r--",
            "group:4343:rw-",
            "user.note",
            "trusted.mark",
            "security.selinux",
        ] {
            assert!(before.contains(want), "{want} in {before}");
        }
        let r = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 100, 7, drop_x)
            .unwrap()
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a\n");
        assert_eq!(all_attrs(&p), before);
        let backup = d.path().join(r.backup.trim_start_matches('/'));
        assert_eq!(all_attrs(&backup), before);
    }

    #[test]
    fn never_writes_through_links() {
        let (d, hf) = home();
        fs::create_dir_all(d.path().join("etc/target")).unwrap();
        fs::write(d.path().join("etc/target/keys"), b"x\n").unwrap();
        symlink(
            "/etc/target/keys",
            d.path().join("home/bob/.ssh/authorized_keys"),
        )
        .unwrap();
        let e = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 100, 1, drop_x).unwrap_err();
        assert!(matches!(e, RewriteError::Symlink { .. }), "{e}");
        fs::create_dir_all(d.path().join("home/eve")).unwrap();
        symlink("/etc/target", d.path().join("home/eve/.ssh")).unwrap();
        let e = rewrite(&hf, "/home/eve", ".ssh/keys", 100, 1, drop_x).unwrap_err();
        assert!(
            matches!(e, RewriteError::Symlink { ref path } if path == "/home/eve/.ssh"),
            "{e}"
        );
        assert_eq!(fs::read(d.path().join("etc/target/keys")).unwrap(), b"x\n");
    }

    #[test]
    fn refuses_oversized_files() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        fs::write(&p, b"aaaaaaaa\nx\n").unwrap();
        let e = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 10, 1, drop_x).unwrap_err();
        assert!(matches!(e, RewriteError::TooLarge { .. }), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"aaaaaaaa\nx\n");
        assert!(backups(&d.path().join("home/bob/.ssh")).is_empty());
    }
}
