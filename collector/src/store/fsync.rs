//! fsync helpers for files another thread may delete under us.

use std::fs::File;
use std::io;
use std::path::Path;

/// fsyncs `path` if it still exists; returns whether it did.
///
/// sled removes blob files of its own accord (a value overwritten or
/// relocated) at any moment, also between our directory listing and the
/// open. A file gone has nothing left to make durable, and the directory
/// fsync that follows records its removal; failing the sync for it (as we
/// did) failed acknowledgements under concurrent load — found by
/// `cargo run -p driftwatch-collector --example durable_ack -- --concurrency 128`.
pub(crate) fn sync_if_present(path: &Path) -> io::Result<bool> {
    match File::open(path).and_then(|f| f.sync_all()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_deleted_before_its_sync_is_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("blob");
        std::fs::write(&p, b"x").unwrap();
        assert!(sync_if_present(&p).unwrap());
        std::fs::remove_file(&p).unwrap();
        assert!(!sync_if_present(&p).unwrap());
        // Other errors still count: a path through a regular file is
        // ENOTDIR, not "gone".
        std::fs::write(d.path().join("f"), b"").unwrap();
        assert!(sync_if_present(&d.path().join("f").join("x")).is_err());
    }
}
