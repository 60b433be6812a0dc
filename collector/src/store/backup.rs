//! Backups of a data dir: every tree's every entry, copied while writes
//! are held off (so the copy is one instant of the store), in a file of
//! our own: the line `driftwatch-backup v1`, then entries as u32
//! big-endian length + protobuf `Entry`, then a trailer entry (tree "")
//! holding the sha256 of every byte before it. sled's own export is an
//! in-memory iterator for its version migrations, with no file format.
//!
//! `check` opens a data dir and decodes every record of every tree we
//! know with its type, so damage is found before it is needed.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use driftwatch_common::proto::{
    AuditEntry, Baseline, Finding, HostSummary, NotifyEvent, Section, Snapshot, SnapshotRecord,
    SweepHost, SweepJob, Token,
};
use prost::Message;
use sha2::{Digest, Sha256};

use super::StoreError;
use super::sled_store::{SledStore, decode};

const MAGIC: &[u8] = b"driftwatch-backup v1\n";
/// No entry is larger than the largest report (16 MiB) with headroom; a
/// length above it is damage, not something to allocate.
const MAX_ENTRY: u32 = 64 << 20;

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(bytes = "vec", tag = "1")]
    tree: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    value: Vec<u8>,
}

/// Entries per tree.
pub type Counts = BTreeMap<String, u64>;

fn bad(path: &Path, why: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        reason: why.into(),
    }
}

struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, e: &Entry) -> io::Result<()> {
        let bytes = e.encode_to_vec();
        let len = (bytes.len() as u32).to_be_bytes();
        self.hash.update(len);
        self.hash.update(&bytes);
        self.inner.write_all(&len)?;
        self.inner.write_all(&bytes)
    }
}

impl SledStore {
    /// Writes a consistent copy of every tree to `out`.
    pub fn export(&self, out: &mut dyn Write) -> Result<Counts, StoreError> {
        let _exclusive = self.write_gate.write().unwrap_or_else(|p| p.into_inner());
        let ioe = |e: io::Error| StoreError::Io {
            path: "backup output".into(),
            source: e,
        };
        out.write_all(MAGIC).map_err(ioe)?;
        let mut w = Hashing {
            inner: out,
            hash: Sha256::new(),
        };
        let mut counts = Counts::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            let n = counts
                .entry(String::from_utf8_lossy(&name).into_owned())
                .or_default();
            for kv in tree.iter() {
                let (k, v) = kv?;
                w.put(&Entry {
                    tree: name.to_vec(),
                    key: k.to_vec(),
                    value: v.to_vec(),
                })
                .map_err(ioe)?;
                *n += 1;
            }
        }
        let digest = w.hash.clone().finalize().to_vec();
        w.put(&Entry {
            tree: vec![],
            key: b"sha256".to_vec(),
            value: digest,
        })
        .map_err(ioe)?;
        w.inner.flush().map_err(ioe)?;
        Ok(counts)
    }
}

/// Reads a backup, calling `f` for each entry; fails on a bad header,
/// truncation or a digest that does not match.
fn read_backup(
    path: &Path,
    mut f: impl FnMut(Entry) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let file = std::fs::File::open(path).map_err(|e| StoreError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut r = io::BufReader::new(file);
    let mut magic = vec![0u8; MAGIC.len()];
    if r.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(bad(
            path,
            "not a driftwatch backup (no `driftwatch-backup v1` header)",
        ));
    }
    let mut hash = Sha256::new();
    loop {
        let mut len = [0u8; 4];
        if r.fill_buf().map(|b| b.is_empty()).unwrap_or(true) {
            return Err(bad(path, "truncated: it ends before its checksum"));
        }
        r.read_exact(&mut len)
            .map_err(|_| bad(path, "truncated entry length"))?;
        let n = u32::from_be_bytes(len);
        if n > MAX_ENTRY {
            return Err(bad(path, format!("entry of {n} bytes: damaged")));
        }
        let mut buf = vec![0u8; n as usize];
        r.read_exact(&mut buf)
            .map_err(|_| bad(path, "truncated entry"))?;
        let e = Entry::decode(buf.as_slice()).map_err(|e| bad(path, e.to_string()))?;
        if e.tree.is_empty() {
            if hash.finalize().as_slice() != e.value.as_slice() {
                return Err(bad(path, "checksum does not match its content"));
            }
            return Ok(());
        }
        hash.update(len);
        hash.update(&buf);
        f(e)?;
    }
}

/// Restores `backup` into `dir`, which must be missing or empty. The whole
/// file is verified before anything is written.
pub fn restore(backup: &Path, dir: &Path) -> Result<Counts, StoreError> {
    read_backup(backup, |_| Ok(()))?;
    let empty = match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(StoreError::Io {
                path: dir.display().to_string(),
                source: e,
            });
        }
    };
    if !empty {
        return Err(StoreError::Io {
            path: dir.display().to_string(),
            source: io::Error::other("restore needs an empty or missing directory"),
        });
    }
    super::private::make_private(dir).map_err(|e| StoreError::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut counts = Counts::new();
    {
        let db = sled::Config::new().path(dir).open()?;
        read_backup(backup, |e| {
            db.open_tree(&e.tree)?.insert(e.key, e.value)?;
            *counts
                .entry(String::from_utf8_lossy(&e.tree).into_owned())
                .or_default() += 1;
            Ok(())
        })?;
        db.flush()?;
    }
    // Opening checks the schema and makes it durable (fsync).
    let store = SledStore::open(dir)?;
    super::Store::sync(&store)?;
    Ok(counts)
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub counts: Counts,
    /// (tree, key, why), at most [`MAX_PROBLEMS`] kept.
    pub problems: Vec<(String, String, String)>,
    pub problem_count: u64,
}

pub const MAX_PROBLEMS: usize = 50;

/// Decodes every record of every known tree with its type.
pub fn check(store: &SledStore) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    for name in store.db.tree_names() {
        let tree_name = String::from_utf8_lossy(&name).into_owned();
        let tree = store.db.open_tree(&name)?;
        let decoder: fn(&[u8], &[u8]) -> Result<(), StoreError> = match tree_name.as_str() {
            "hosts" => |k, v| decode::<HostSummary>(k, v).map(drop),
            "latest" => |k, v| decode::<Snapshot>(k, v).map(drop),
            "history" => |k, v| decode::<SnapshotRecord>(k, v).map(drop),
            "sections" => |k, v| decode::<Section>(k, v).map(drop),
            "findings" => |k, v| decode::<Finding>(k, v).map(drop),
            "baselines" | "baseline_candidates" => |k, v| decode::<Baseline>(k, v).map(drop),
            "tokens" => |k, v| decode::<Token>(k, v).map(drop),
            "sweeps" => |k, v| decode::<SweepJob>(k, v).map(drop),
            "sweep_hosts" => |k, v| decode::<SweepHost>(k, v).map(drop),
            "outbox" => |k, v| decode::<NotifyEvent>(k, v).map(drop),
            "audit" => |k, v| decode::<AuditEntry>(k, v).map(drop),
            _ => |_, _| Ok(()),
        };
        let mut n = 0;
        for kv in tree.iter() {
            let (k, v) = kv?;
            n += 1;
            if let Err(e) = decoder(&k, &v) {
                report.problem_count += 1;
                if report.problems.len() < MAX_PROBLEMS {
                    report.problems.push((
                        tree_name.clone(),
                        String::from_utf8_lossy(&k).into_owned(),
                        e.to_string(),
                    ));
                }
            }
        }
        report.counts.insert(tree_name, n);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_backup_restores_whole_and_damage_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = SledStore::open(&d.path().join("a")).unwrap();
        s.enroll_host(&HostSummary {
            host_id: "h1".into(),
            ..Default::default()
        })
        .unwrap();
        s.hosts.insert("broken", vec![1u8, 0xff, 0xff]).unwrap();
        let mut out = Vec::new();
        let counts = s.export(&mut out).unwrap();
        assert_eq!(counts["hosts"], 2);
        let r = check(&s).unwrap();
        assert_eq!(r.problem_count, 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].1, "broken");

        let file = d.path().join("backup");
        std::fs::write(&file, &out).unwrap();
        let restored = restore(&file, &d.path().join("b")).unwrap();
        assert_eq!(restored["hosts"], 2);
        assert!(
            restore(&file, &d.path().join("b")).is_err(),
            "not into a used dir"
        );

        let mut flipped = out.clone();
        let i = flipped.len() / 2;
        flipped[i] ^= 1;
        std::fs::write(&file, &flipped).unwrap();
        assert!(restore(&file, &d.path().join("c")).is_err());
        assert!(
            !d.path().join("c").exists(),
            "nothing written from a damaged backup"
        );
        std::fs::write(&file, &out[..out.len() - 10]).unwrap();
        assert!(restore(&file, &d.path().join("c")).is_err());
    }
}
