//! Rewriting a key file in a user's home as root, without ever following a
//! link the user could have planted.
//!
//! The directories from the home down to the file are opened one by one
//! with O_NOFOLLOW and every later step works relative to the last of them
//! (openat/renameat/unlinkat), so swapping `.ssh` for a symlink between a
//! check and the write cannot redirect the write. The new content goes to a
//! temp file in the same directory (owner, mode and SELinux label of the
//! original, fsync'd), the previous content to a backup beside it, then a
//! rename replaces the file and the directory is fsync'd.
//!
//! SELinux: the `security.selinux` extended attribute is copied with
//! fgetxattr/fsetxattr from libc (no crate needed for one attribute); a
//! filesystem without xattrs (ENOTSUP) or a file without a label (ENODATA)
//! simply has none to copy.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use thiserror::Error;

use crate::hostfs::{FsError, HostFs};

/// Backups kept beside a key file; older ones are removed.
pub const KEEP_BACKUPS: usize = 5;
const BACKUP_INFIX: &str = ".driftwatch-bak-";
const SELINUX_XATTR: &[u8] = b"security.selinux\0";

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

fn selinux_label(f: &File) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid fd, NUL-terminated name, buffer of buf.len() bytes.
        let n = unsafe {
            libc::fgetxattr(
                f.as_raw_fd(),
                SELINUX_XATTR.as_ptr().cast(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Some(buf);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 65536 => buf.resize(buf.len() * 4, 0),
            // ENODATA (no label), ENOTSUP (no xattrs on this filesystem).
            _ => return None,
        }
    }
}

fn set_selinux_label(f: &File, label: &[u8], path: &str) -> Result<(), RewriteError> {
    // SAFETY: valid fd, NUL-terminated name, label.len() readable bytes.
    let rc = unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            SELINUX_XATTR.as_ptr().cast(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    if rc < 0 { Err(last_err(path)) } else { Ok(()) }
}

struct Attrs {
    uid: u32,
    gid: u32,
    mode: u32,
    label: Option<Vec<u8>>,
}

/// Creates `name` in `dir` (never existing before, never a link) holding
/// `bytes` with the original's owner, mode and label, fsync'd.
fn write_new(
    dir: &OwnedFd,
    name: &CString,
    bytes: &[u8],
    attrs: &Attrs,
    shown: &str,
) -> Result<(), RewriteError> {
    let fd = openat(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0o600,
    )
    .map_err(|source| RewriteError::Io {
        path: shown.into(),
        source,
    })?;
    let mut f = File::from(fd);
    let io = |source| RewriteError::Io {
        path: shown.into(),
        source,
    };
    f.write_all(bytes).map_err(io)?;
    // SAFETY: valid fd; plain integer arguments.
    if unsafe { libc::fchown(f.as_raw_fd(), attrs.uid, attrs.gid) } < 0 {
        return Err(last_err(shown));
    }
    // After chown: chown may clear set-id bits, the mode must be the original's.
    // SAFETY: valid fd; plain integer arguments.
    if unsafe { libc::fchmod(f.as_raw_fd(), attrs.mode as libc::mode_t) } < 0 {
        return Err(last_err(shown));
    }
    if let Some(label) = &attrs.label {
        set_selinux_label(&f, label, shown)?;
    }
    f.sync_all().map_err(io)
}

fn unlink_at(dir: &OwnedFd, name: &CString) {
    // SAFETY: valid fd, NUL-terminated name. Failure leaves a stray file,
    // which is only untidy.
    unsafe {
        libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0);
    }
}

/// Rewrites the key file `rel` below `anchor` (a home, or the file's own
/// directory for system paths) with `edit`, which gets the current bytes
/// and returns the new ones, or None to leave the file alone.
pub fn rewrite(
    fs: &HostFs,
    anchor: &str,
    rel: &str,
    max: u64,
    now_ms: i64,
    edit: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<Option<Rewritten>, RewriteError> {
    let display = format!("{}/{}", anchor.trim_end_matches('/'), rel);
    let (dir, name, parent_shown) = open_parent(fs, anchor, rel, &display)?;
    let fd = openat(
        &dir,
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
    )
    .map_err(|source| match source.raw_os_error() {
        Some(libc::ELOOP) => RewriteError::Symlink {
            path: display.clone(),
        },
        _ => RewriteError::Io {
            path: display.clone(),
            source,
        },
    })?;
    let mut file = File::from(fd);
    let io = |source| RewriteError::Io {
        path: display.clone(),
        source,
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(RewriteError::NotRegular { path: display });
    }
    let mut old = Vec::new();
    (&mut file)
        .take(max + 1)
        .read_to_end(&mut old)
        .map_err(io)?;
    if old.len() as u64 > max {
        return Err(RewriteError::TooLarge { path: display, max });
    }
    let Some(new) = edit(&old) else {
        return Ok(None);
    };
    let attrs = Attrs {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
        label: selinux_label(&file),
    };
    let base = name.to_string_lossy().into_owned();
    let backup_name = format!("{base}{BACKUP_INFIX}{now_ms}");
    let backup_c = CString::new(backup_name.clone()).expect("no NUL");
    let backup_shown = format!("{parent_shown}/{backup_name}");
    write_new(&dir, &backup_c, &old, &attrs, &backup_shown)?;
    let tmp_name = format!(
        ".{base}.driftwatch-tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    );
    let tmp_c = CString::new(tmp_name).expect("no NUL");
    if let Err(e) = write_new(&dir, &tmp_c, &new, &attrs, &display) {
        unlink_at(&dir, &tmp_c);
        return Err(e);
    }
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
    prune_backups(fs, &dir, &parent_shown, &base);
    Ok(Some(Rewritten {
        backup: backup_shown,
        mode: attrs.mode,
        uid: attrs.uid,
        gid: attrs.gid,
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
    let mut backups: Vec<(i64, String)> = names
        .into_iter()
        .filter_map(|n| {
            let ms = n.strip_prefix(&prefix)?.parse::<i64>().ok()?;
            Some((ms, n))
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

    fn home() -> (tempfile::TempDir, HostFs) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("home/bob/.ssh")).unwrap();
        let hf = HostFs::new(d.path());
        (d, hf)
    }

    #[test]
    fn rewrites_keeping_mode_and_backs_up_boundedly() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        fs::write(&p, b"a\nb\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        for i in 0..(KEEP_BACKUPS as i64 + 3) {
            let r = rewrite(
                &hf,
                "/home/bob",
                ".ssh/authorized_keys",
                1 << 20,
                1000 + i,
                |old| {
                    let mut v = old.to_vec();
                    v.extend_from_slice(b"c\n");
                    Some(v)
                },
            )
            .unwrap()
            .unwrap();
            assert_eq!(r.mode, 0o640);
            assert!(r.backup.ends_with(&format!(".driftwatch-bak-{}", 1000 + i)));
        }
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        let backups: Vec<_> = fs::read_dir(d.path().join("home/bob/.ssh"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(BACKUP_INFIX))
            .collect();
        assert_eq!(backups.len(), KEEP_BACKUPS);
        assert!(
            fs::read_dir(d.path().join("home/bob/.ssh"))
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().contains("tmp")),
            "no temp file left"
        );
        // None from the edit: untouched, no backup.
        let before = fs::read(&p).unwrap();
        assert!(
            rewrite(
                &hf,
                "/home/bob",
                ".ssh/authorized_keys",
                1 << 20,
                5000,
                |_| None
            )
            .unwrap()
            .is_none()
        );
        assert_eq!(fs::read(&p).unwrap(), before);
    }

    /// The label is copied to the new file and the backup. Setting
    /// security.selinux needs root and a filesystem with security xattrs
    /// (ext4, xfs, tmpfs), not an SELinux kernel: the tests run as root.
    #[test]
    fn selinux_label_is_kept() {
        let (d, hf) = home();
        let p = d.path().join("home/bob/.ssh/authorized_keys");
        fs::write(&p, b"a\n").unwrap();
        let label = b"unconfined_u:object_r:ssh_home_t:s0";
        let f = File::open(&p).unwrap();
        set_selinux_label(&f, label, "test").expect("security.selinux settable (run as root)");
        drop(f);
        let r = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 100, 7, |_| {
            Some(b"b\n".to_vec())
        })
        .unwrap()
        .unwrap();
        let new = File::open(&p).unwrap();
        assert_eq!(selinux_label(&new).as_deref(), Some(&label[..]));
        let backup = File::open(d.path().join(r.backup.trim_start_matches('/'))).unwrap();
        assert_eq!(selinux_label(&backup).as_deref(), Some(&label[..]));
        // Whatever label another file has (none without SELinux, the
        // policy's default with it), its rewrite has the same.
        let q = d.path().join("home/bob/.ssh/other");
        fs::write(&q, b"x\n").unwrap();
        let before = selinux_label(&File::open(&q).unwrap());
        rewrite(&hf, "/home/bob", ".ssh/other", 100, 8, |_| Some(vec![])).unwrap();
        assert_eq!(selinux_label(&File::open(&q).unwrap()), before);
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
        let e = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 100, 1, |_| {
            Some(vec![])
        })
        .unwrap_err();
        assert!(matches!(e, RewriteError::Symlink { .. }), "{e}");
        fs::create_dir_all(d.path().join("home/eve")).unwrap();
        symlink("/etc/target", d.path().join("home/eve/.ssh")).unwrap();
        let e = rewrite(&hf, "/home/eve", ".ssh/keys", 100, 1, |_| Some(vec![])).unwrap_err();
        assert!(
            matches!(e, RewriteError::Symlink { ref path } if path == "/home/eve/.ssh"),
            "{e}"
        );
        assert_eq!(fs::read(d.path().join("etc/target/keys")).unwrap(), b"x\n");
        let e = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 1, 1, |_| None).unwrap_err();
        assert!(matches!(e, RewriteError::Symlink { .. }), "{e}");
    }

    #[test]
    fn refuses_oversized_files() {
        let (d, hf) = home();
        fs::write(
            d.path().join("home/bob/.ssh/authorized_keys"),
            vec![b'a'; 50],
        )
        .unwrap();
        let e = rewrite(&hf, "/home/bob", ".ssh/authorized_keys", 10, 1, |_| {
            Some(vec![])
        })
        .unwrap_err();
        assert!(matches!(e, RewriteError::TooLarge { .. }), "{e}");
    }
}
