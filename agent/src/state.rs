//! The agent's state directory: the next sequence number and the count of
//! snapshots the spool had to drop. Written atomically (temp + fsync +
//! rename) so a crash never reuses a sequence number.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt ({reason}); move it aside to start a new sequence")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Counters {
    /// The last sequence number handed out.
    last_seq: u64,
    /// Snapshots dropped from a full spool and not yet reported.
    dropped_unreported: u64,
    /// Random, made when these counters start: lets the collector tell a
    /// sequence that started over from a replay.
    #[serde(default)]
    epoch: u64,
}

pub struct StateDir {
    dir: PathBuf,
    counters: Counters,
    /// Snapshots dropped since this process started, for the metric (the
    /// persisted count goes down as reports carry it to the collector).
    dropped_since_start: prometheus_client::metrics::counter::Counter,
}

const COUNTERS: &str = "counters.json";

impl StateDir {
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let path = dir.join(COUNTERS);
        let counters = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Counters::default(),
            Err(e) => return Err(StateError::Io { path, source: e }),
        };
        let mut state = StateDir {
            dir: dir.to_path_buf(),
            counters,
            dropped_since_start: Default::default(),
        };
        if state.counters.epoch == 0 {
            state.counters.epoch = fastrand::u64(1..);
            state.save()?;
        }
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Hands out the next sequence number, persisted before it is used.
    pub fn next_seq(&mut self) -> Result<u64, StateError> {
        self.counters.last_seq += 1;
        self.save()?;
        Ok(self.counters.last_seq)
    }

    pub fn epoch(&self) -> u64 {
        self.counters.epoch
    }

    pub fn dropped_unreported(&self) -> u64 {
        self.counters.dropped_unreported
    }

    /// Shares the count of snapshots dropped since start.
    pub fn dropped_counter(&self) -> prometheus_client::metrics::counter::Counter {
        self.dropped_since_start.clone()
    }

    pub fn add_dropped(&mut self, n: u64) -> Result<(), StateError> {
        if n > 0 {
            // Counted even if persisting fails below: it was dropped.
            self.dropped_since_start.inc_by(n);
            self.counters.dropped_unreported += n;
            self.save()?;
        }
        Ok(())
    }

    /// The collector acknowledged a snapshot that carried `n` drops.
    pub fn dropped_reported(&mut self, n: u64) -> Result<(), StateError> {
        if n > 0 {
            self.counters.dropped_unreported = self.counters.dropped_unreported.saturating_sub(n);
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(&self.counters).expect("plain struct");
        write_atomic(&self.dir.join(COUNTERS), &bytes, 0o600)
    }
}

/// Temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_survives_restart_and_drops_are_counted() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut s = StateDir::open(d.path()).unwrap();
            assert_eq!(s.next_seq().unwrap(), 1);
            assert_eq!(s.next_seq().unwrap(), 2);
            s.add_dropped(3).unwrap();
        }
        let mut s = StateDir::open(d.path()).unwrap();
        assert_eq!(s.next_seq().unwrap(), 3);
        let epoch = s.epoch();
        assert_ne!(epoch, 0);
        assert_eq!(
            StateDir::open(d.path()).unwrap().epoch(),
            epoch,
            "the epoch persists"
        );
        assert_eq!(s.dropped_unreported(), 3);
        s.dropped_reported(2).unwrap();
        assert_eq!(s.dropped_unreported(), 1);
        fs::write(d.path().join(COUNTERS), "{garbage").unwrap();
        assert!(matches!(
            StateDir::open(d.path()),
            Err(StateError::Corrupt { .. })
        ));
    }
}
