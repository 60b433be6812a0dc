//! Reading a host's files as root, safely.
//!
//! Every path is host-absolute (`/etc/passwd`) and resolved under `root`
//! (`/` in production, a fake tree in tests, `/host` in a container), with
//! absolute symlinks re-rooted so they cannot escape it. Every read is
//! bounded. Files in users' homes are read with [`HostFs::read_user_file`],
//! which refuses symlinks in any component below the home.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Default bound for configuration files.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
const MAX_SYMLINK_HOPS: usize = 40;

#[derive(Debug, Error)]
pub enum FsError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: is a symbolic link; not followed (the agent runs as root and never follows links in users' homes)"
    )]
    Symlink { path: String },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: not a regular file")]
    NotRegular { path: String },
}

impl FsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::NotFound { .. })
    }
}

/// What a bounded read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// Content, with invalid UTF-8 replaced by U+FFFD.
    pub text: String,
    /// The file was larger than the bound; `text` holds the first part.
    pub truncated: bool,
    /// The file held bytes that are not UTF-8.
    pub lossy: bool,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub struct HostFs {
    root: PathBuf,
}

impl Default for HostFs {
    fn default() -> Self {
        HostFs::new("/")
    }
}

impl HostFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostFs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_real_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The real path of a host path, without resolving links.
    pub fn lexical(&self, host_path: &str) -> PathBuf {
        let mut p = self.root.clone();
        for c in Path::new(host_path).components() {
            if let Component::Normal(n) = c {
                p.push(n);
            }
        }
        p
    }

    /// Resolves a host path under root, following symlinks the way the host
    /// would but re-rooting absolute targets and clamping `..` at root.
    pub fn resolve(&self, host_path: &str) -> Result<PathBuf, FsError> {
        let mut pending: Vec<std::ffi::OsString> = Path::new(host_path)
            .components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut parts: Vec<std::ffi::OsString> = Vec::new();
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                parts.pop();
                continue;
            }
            let mut candidate = self.root.clone();
            candidate.extend(parts.iter());
            candidate.push(&name);
            match fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(FsError::SymlinkLoop {
                            path: host_path.into(),
                        });
                    }
                    let target = fs::read_link(&candidate).map_err(|source| FsError::Io {
                        path: host_path.into(),
                        source,
                    })?;
                    if target.is_absolute() {
                        parts.clear();
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => pending.push(n.to_os_string()),
                            Component::ParentDir => pending.push("..".into()),
                            _ => {}
                        }
                    }
                }
                Ok(_) => parts.push(name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FsError::NotFound {
                        path: host_path.into(),
                    });
                }
                Err(source) => {
                    return Err(FsError::Io {
                        path: host_path.into(),
                        source,
                    });
                }
            }
        }
        let mut out = self.root.clone();
        out.extend(parts.iter());
        Ok(out)
    }

    pub fn exists(&self, host_path: &str) -> bool {
        self.resolve(host_path).is_ok()
    }

    /// Reads a system file (links followed within root), at most `max` bytes.
    pub fn read_file(&self, host_path: &str, max: u64) -> Result<FileText, FsError> {
        let real = self.resolve(host_path)?;
        read_bounded(&real, host_path, max, false)
    }

    /// Opens a system file (links followed within root) for streaming, as
    /// bytes; the caller bounds the read.
    pub fn open_file(&self, host_path: &str) -> Result<(File, fs::Metadata), FsError> {
        let real = self.resolve(host_path)?;
        open_regular(&real, host_path, false)
    }

    /// Reads a file under a user's home: no component between `home` and the
    /// file may be a symlink, and the file itself is opened with O_NOFOLLOW.
    /// `home` itself may be a link (homes on other mounts are common); it is
    /// resolved like any system path.
    pub fn read_user_file(&self, home: &str, rel: &str, max: u64) -> Result<FileText, FsError> {
        let (p, display) = self.user_path(home, rel)?;
        read_bounded(&p, &display, max, true)
    }

    /// Opens a file under a user's home for streaming, with the same
    /// refusals as [`HostFs::read_user_file`]; the caller bounds the read.
    pub fn open_user_file(&self, home: &str, rel: &str) -> Result<(File, fs::Metadata), FsError> {
        let (p, display) = self.user_path(home, rel)?;
        open_regular(&p, &display, true)
    }

    /// The real path of `rel` below `home` after checking that no component
    /// below the home is a link, and how to name it in messages.
    fn user_path(&self, home: &str, rel: &str) -> Result<(PathBuf, String), FsError> {
        let real_home = self.resolve(home)?;
        let display = format!("{}/{}", home.trim_end_matches('/'), rel);
        let mut p = real_home;
        let comps: Vec<_> = Path::new(rel).components().collect();
        for (i, c) in comps.iter().enumerate() {
            match c {
                Component::Normal(n) => p.push(n),
                // A relative path that climbs out of the home is refused.
                _ => return Err(FsError::Symlink { path: display }),
            }
            let meta = fs::symlink_metadata(&p).map_err(|e| io_err(&display, e))?;
            if meta.file_type().is_symlink() {
                let shown = if i + 1 == comps.len() {
                    display.clone()
                } else {
                    p.strip_prefix(&self.root)
                        .map(|s| format!("/{}", s.display()))
                        .unwrap_or(display.clone())
                };
                return Err(FsError::Symlink { path: shown });
            }
        }
        Ok((p, display))
    }

    /// Entry names of a directory, sorted; links followed within root.
    pub fn read_dir(&self, host_path: &str) -> Result<Vec<String>, FsError> {
        let real = self.resolve(host_path)?;
        let rd = fs::read_dir(&real).map_err(|e| io_err(host_path, e))?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Metadata without following a final link.
    pub fn symlink_metadata(&self, host_path: &str) -> Result<fs::Metadata, FsError> {
        fs::symlink_metadata(self.lexical(host_path)).map_err(|e| io_err(host_path, e))
    }

    /// Host paths matching a glob pattern (`/etc/rsyslog.d/*.conf`), sorted.
    pub fn glob(&self, pattern: &str) -> Vec<String> {
        let root = self.root.to_string_lossy();
        let root_trim = root.trim_end_matches('/');
        let full = format!(
            "{}/{}",
            glob::Pattern::escape(root_trim),
            pattern.trim_start_matches('/')
        );
        let Ok(paths) = glob::glob(&full) else {
            return Vec::new();
        };
        let mut out: Vec<String> = paths
            .filter_map(Result::ok)
            .filter_map(|p| {
                p.strip_prefix(&self.root)
                    .ok()
                    .map(|rel| format!("/{}", rel.to_string_lossy()))
            })
            .collect();
        out.sort();
        out
    }
}

fn io_err(path: &str, e: std::io::Error) -> FsError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FsError::NotFound { path: path.into() }
    } else if e.raw_os_error() == Some(libc::ELOOP) {
        FsError::Symlink { path: path.into() }
    } else {
        FsError::Io {
            path: path.into(),
            source: e,
        }
    }
}

/// Calls `each` with every line of `r` (1-based number, bytes with their
/// terminator) until EOF, or until more than `max` bytes were seen: then it
/// returns `Ok(false)` and the line that crossed the bound is not passed.
/// Memory is one line, never the file.
pub fn for_each_line(
    r: impl Read,
    max: u64,
    mut each: impl FnMut(u32, &[u8]),
) -> std::io::Result<bool> {
    use std::io::BufRead;
    let mut rd = std::io::BufReader::new(r.take(max.saturating_add(1)));
    let mut buf = Vec::new();
    let mut total = 0u64;
    let mut n = 0u32;
    loop {
        buf.clear();
        let got = rd.read_until(b'\n', &mut buf)?;
        if got == 0 {
            return Ok(true);
        }
        total += got as u64;
        if total > max {
            return Ok(false);
        }
        n = n.saturating_add(1);
        each(n, &buf);
    }
}

fn open_regular(
    real: &Path,
    display: &str,
    nofollow: bool,
) -> Result<(File, fs::Metadata), FsError> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    // O_NONBLOCK: a FIFO planted where a config file should be must not hang us.
    let mut flags = libc::O_NONBLOCK;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    opts.custom_flags(flags);
    let file: File = opts.open(real).map_err(|e| io_err(display, e))?;
    let meta = file.metadata().map_err(|e| io_err(display, e))?;
    if !meta.file_type().is_file() {
        return Err(FsError::NotRegular {
            path: display.into(),
        });
    }
    Ok((file, meta))
}

fn read_bounded(real: &Path, display: &str, max: u64, nofollow: bool) -> Result<FileText, FsError> {
    let (file, meta) = open_regular(real, display, nofollow)?;
    read_opened(file, &meta, display, max)
}

/// Reads at most `max` bytes of a file opened with
/// [`HostFs::open_user_file`] (after its metadata was checked).
pub fn read_opened(
    file: File,
    meta: &fs::Metadata,
    display: &str,
    max: u64,
) -> Result<FileText, FsError> {
    let mut buf = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(display, e))?;
    let truncated = buf.len() as u64 > max;
    buf.truncate(max as usize);
    let (text, lossy) = match String::from_utf8(buf) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    Ok(FileText {
        text,
        truncated,
        lossy,
        size: meta.len(),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, HostFs) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("etc/alt")).unwrap();
        fs::write(d.path().join("etc/alt/real.conf"), "hello").unwrap();
        fs::create_dir_all(d.path().join("home/bob/.ssh")).unwrap();
        let fs_ = HostFs::new(d.path());
        (d, fs_)
    }

    #[test]
    fn absolute_links_stay_inside_root() {
        let (d, hf) = tree();
        symlink("/etc/alt/real.conf", d.path().join("etc/link.conf")).unwrap();
        symlink(
            "../../../../../etc/alt/real.conf",
            d.path().join("etc/rel.conf"),
        )
        .unwrap();
        assert_eq!(hf.read_file("/etc/link.conf", 100).unwrap().text, "hello");
        assert_eq!(hf.read_file("/etc/rel.conf", 100).unwrap().text, "hello");
        symlink("/etc/loop", d.path().join("etc/loop")).unwrap();
        assert!(matches!(
            hf.read_file("/etc/loop", 10),
            Err(FsError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn reads_are_bounded_and_lossy_is_flagged() {
        let (d, hf) = tree();
        fs::write(d.path().join("etc/big"), vec![b'a'; 5000]).unwrap();
        let t = hf.read_file("/etc/big", 1000).unwrap();
        assert!(t.truncated);
        assert_eq!(t.text.len(), 1000);
        assert_eq!(t.size, 5000);
        fs::write(d.path().join("etc/bin"), b"ok\xff\xfe").unwrap();
        assert!(hf.read_file("/etc/bin", 100).unwrap().lossy);
    }

    #[test]
    fn user_files_never_follow_links() {
        let (d, hf) = tree();
        fs::write(d.path().join("home/bob/.ssh/authorized_keys"), "k").unwrap();
        assert_eq!(
            hf.read_user_file("/home/bob", ".ssh/authorized_keys", 10)
                .unwrap()
                .text,
            "k"
        );
        // A link as the file, and a link as the .ssh directory.
        fs::create_dir_all(d.path().join("home/eve")).unwrap();
        symlink("/etc/alt", d.path().join("home/eve/.ssh")).unwrap();
        let e = hf
            .read_user_file("/home/eve", ".ssh/real.conf", 10)
            .unwrap_err();
        assert!(
            matches!(e, FsError::Symlink { ref path } if path == "/home/eve/.ssh"),
            "{e}"
        );
        symlink(
            "/etc/alt/real.conf",
            d.path().join("home/bob/.ssh/authorized_keys2"),
        )
        .unwrap();
        let e = hf
            .read_user_file("/home/bob", ".ssh/authorized_keys2", 10)
            .unwrap_err();
        assert!(matches!(e, FsError::Symlink { .. }), "{e}");
        assert!(hf.read_user_file("/home/bob", "../eve/x", 10).is_err());
    }

    #[test]
    fn fifos_do_not_hang_and_globs_are_host_paths() {
        let (d, hf) = tree();
        let fifo = d.path().join("etc/fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: mkfifo with a valid NUL-terminated path.
        unsafe {
            libc::mkfifo(c.as_ptr(), 0o644);
        }
        assert!(matches!(
            hf.read_file("/etc/fifo", 10),
            Err(FsError::NotRegular { .. })
        ));
        assert_eq!(
            hf.glob("/etc/alt/*.conf"),
            vec!["/etc/alt/real.conf".to_string()]
        );
    }
}
