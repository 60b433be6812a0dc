//! The data dir is private to the collector's user: created 0700, its
//! files 0600, whatever the umask; a dir made earlier under a looser one is
//! tightened when opened (it holds every host's users, keys and command
//! lines). New files sled creates later are covered by the process umask
//! (`driftwatch_common::private_files::owner_only_umask`, set by the
//! commands that open a store).

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) 0700 and takes group and other
/// permissions off it and everything below it (sled's tree is two levels:
/// files and `blobs/`). Symlinks are left alone. Returns how many entries
/// were tightened.
pub fn make_private(dir: &Path) -> io::Result<usize> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    tighten(dir, 0)
}

fn tighten(path: &Path, depth: usize) -> io::Result<usize> {
    let meta = fs::symlink_metadata(path)?;
    let mut changed = 0;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_dir() {
        if mode & 0o077 != 0 {
            fs::set_permissions(path, Permissions::from_mode(mode & 0o700 | DIR_MODE))?;
            changed += 1;
        }
        if depth < 2 {
            for entry in fs::read_dir(path)? {
                changed += tighten(&entry?.path(), depth + 1)?;
            }
        }
    } else if meta.is_file() && mode & 0o077 != 0 {
        fs::set_permissions(path, Permissions::from_mode(mode & 0o700 | FILE_MODE))?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loose_data_dir_is_tightened() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("a/data");
        fs::create_dir_all(data.join("blobs")).unwrap();
        fs::write(data.join("db"), b"x").unwrap();
        fs::write(data.join("blobs/1"), b"x").unwrap();
        for p in [&data, &data.join("blobs")] {
            fs::set_permissions(p, Permissions::from_mode(0o777)).unwrap();
        }
        for p in [data.join("db"), data.join("blobs/1")] {
            fs::set_permissions(&p, Permissions::from_mode(0o666)).unwrap();
        }
        assert_eq!(make_private(&data).unwrap(), 4);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("blobs")), 0o700);
        assert_eq!(mode(&data.join("db")), 0o600);
        assert_eq!(mode(&data.join("blobs/1")), 0o600);
        assert_eq!(make_private(&data).unwrap(), 0, "nothing left to do");
    }
}
