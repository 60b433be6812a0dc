//! The spool: every snapshot is written here before it is sent and leaves
//! only when the collector acknowledged it. Bounded in bytes; when full the
//! oldest go first (the newest state matters most) and are counted.
//!
//! One file per snapshot, named by zero-padded sequence number so a
//! directory listing is the send order.

use std::fs;
use std::path::{Path, PathBuf};

use driftwatch_common::proto::Snapshot;
use prost::Message;
use thiserror::Error;

use crate::state::{StateError, write_atomic};

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub path: PathBuf,
    pub size: u64,
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(|source| SpoolError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
        })
    }

    /// Entries oldest first. Stray files (temp files of a crashed write)
    /// are ignored.
    pub fn entries(&self) -> Result<Vec<Entry>, SpoolError> {
        let rd = fs::read_dir(&self.dir).map_err(|source| SpoolError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut out: Vec<Entry> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let seq = name.to_str()?.strip_suffix(".pb")?.parse().ok()?;
                Some(Entry {
                    seq,
                    path: e.path(),
                    size: e.metadata().ok()?.len(),
                })
            })
            .collect();
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// Writes a snapshot durably, then trims the oldest entries past the
    /// byte bound. Returns how many were dropped.
    pub fn push(&self, snap: &Snapshot) -> Result<u64, SpoolError> {
        let path = self.dir.join(format!("{:020}.pb", snap.seq));
        write_atomic(&path, &snap.encode_to_vec(), 0o600)?;
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut dropped = 0;
        // Never drop the snapshot just written.
        for e in entries.iter().take(entries.len().saturating_sub(1)) {
            if total <= self.max_bytes {
                break;
            }
            self.remove(e)?;
            total -= e.size;
            dropped += 1;
        }
        Ok(dropped)
    }

    pub fn read(&self, e: &Entry) -> Result<Option<Snapshot>, SpoolError> {
        let bytes = fs::read(&e.path).map_err(|source| SpoolError::Io {
            path: e.path.clone(),
            source,
        })?;
        // A corrupt entry cannot be sent; the caller drops and counts it.
        Ok(Snapshot::decode(bytes.as_slice()).ok())
    }

    pub fn remove(&self, e: &Entry) -> Result<(), SpoolError> {
        match fs::remove_file(&e.path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SpoolError::Io {
                path: e.path.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(seq: u64, pad: usize) -> Snapshot {
        Snapshot {
            seq,
            agent_version: "x".repeat(pad),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_order_and_drops_oldest_when_full() {
        let d = tempfile::tempdir().unwrap();
        // Each entry is ~1 KB: three fit, a fourth pushes the oldest out.
        let s = Spool::open(d.path(), 3100).unwrap();
        for seq in 1..=3 {
            assert_eq!(s.push(&snap(seq, 1000)).unwrap(), 0, "seq {seq}");
        }
        assert_eq!(s.push(&snap(4, 1000)).unwrap(), 1);
        assert_eq!(s.push(&snap(5, 2000)).unwrap(), 2);
        let seqs: Vec<u64> = s.entries().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        let e = &s.entries().unwrap()[0];
        assert_eq!(s.read(e).unwrap().unwrap().seq, 4);
        // A single snapshot larger than the bound is still kept.
        let s2 = Spool::open(&d.path().join("small"), 10).unwrap();
        assert_eq!(s2.push(&snap(1, 100)).unwrap(), 0);
        assert_eq!(s2.entries().unwrap().len(), 1);
    }

    #[test]
    fn orders_by_number_not_name_and_ignores_strays() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        s.push(&snap(10, 1)).unwrap();
        s.push(&snap(9, 1)).unwrap();
        fs::write(d.path().join(".00000000000000000011.pb.tmp1"), "x").unwrap();
        let seqs: Vec<u64> = s.entries().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![9, 10]);
    }
}
