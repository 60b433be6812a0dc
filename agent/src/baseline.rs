//! The bake-time baseline: `driftwatch-agent baseline capture` runs while a
//! machine image is built (Packer) and writes what the image holds into the
//! state dir; every agent built from the image uploads it once, and the
//! collector takes it as the image's baseline only when enough hosts
//! agree (or an operator approves one), so every host built from it can be
//! compared with what was baked.

use std::path::{Path, PathBuf};

use driftwatch_common::proto::{Baseline, Snapshot};
use prost::Message;
use thiserror::Error;

use crate::state::{StateError, write_atomic};

pub const BASELINE_FILE: &str = "baseline.pb";
pub const UPLOADED_MARKER: &str = "baseline.uploaded";

#[derive(Debug, Error)]
pub enum BaselineError {
    #[error("baseline file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// A random image id when the builder gives none.
pub fn new_image_id() -> String {
    format!("img-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

pub fn write(
    state_dir: &Path,
    image_id: &str,
    snapshot: Snapshot,
    now_ms: i64,
) -> Result<PathBuf, BaselineError> {
    std::fs::create_dir_all(state_dir).map_err(|source| StateError::Io {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let b = Baseline {
        name: String::new(),
        image_id: image_id.to_string(),
        created_ms: now_ms,
        source: "image-bake".into(),
        snapshot: Some(Box::new(snapshot)),
    };
    let path = state_dir.join(BASELINE_FILE);
    write_atomic(&path, &b.encode_to_vec(), 0o600)?;
    // A fresh capture must be uploaded again.
    let _ = std::fs::remove_file(state_dir.join(UPLOADED_MARKER));
    Ok(path)
}

/// The baked baseline, if the image has one; and whether it still needs
/// uploading.
pub fn load(state_dir: &Path) -> Result<Option<(Baseline, bool)>, BaselineError> {
    let path = state_dir.join(BASELINE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BaselineError::Read {
                path,
                reason: e.to_string(),
            });
        }
    };
    let b = Baseline::decode(bytes.as_slice()).map_err(|e| BaselineError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let pending = !state_dir.join(UPLOADED_MARKER).exists();
    Ok(Some((b, pending)))
}

pub fn mark_uploaded(state_dir: &Path) -> Result<(), BaselineError> {
    write_atomic(&state_dir.join(UPLOADED_MARKER), b"uploaded\n", 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_load_and_upload_marker() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        write(
            d.path(),
            "img-1",
            Snapshot {
                seq: 0,
                ..Default::default()
            },
            5,
        )
        .unwrap();
        let (b, pending) = load(d.path()).unwrap().unwrap();
        assert_eq!(
            (b.image_id.as_str(), b.created_ms, pending),
            ("img-1", 5, true)
        );
        mark_uploaded(d.path()).unwrap();
        assert!(!load(d.path()).unwrap().unwrap().1);
        write(d.path(), "img-2", Snapshot::default(), 6).unwrap();
        assert!(
            load(d.path()).unwrap().unwrap().1,
            "a new capture uploads again"
        );
        std::fs::write(d.path().join(BASELINE_FILE), b"\xff\xff garbage").unwrap();
        assert!(load(d.path()).is_err());
    }
}
