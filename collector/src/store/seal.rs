//! The seal: a record of how far the store was known durable, kept outside
//! sled's log so that sled cannot lose it together with the records.
//!
//! sled 0.34 takes damage anywhere in `db` (garbage in the middle, a cut
//! file) for a torn write at its end and opens the store without the
//! records after it, without an error. Every [`super::SledStore::sync`]
//! writes a generation number into the `meta` tree before it flushes; once
//! the flush and fsyncs returned, that generation is durable and goes into
//! the seal file. At open, sled must give back at least the sealed
//! generation: less means records that were acknowledged are gone.
//!
//! The seal is rewritten at most once per [`SEAL_EVERY`] (and at open and
//! at drop), not at every sync: one more fsync a second instead of one
//! more per group commit. So a loss of only the last second of writes
//! before the damage can go unseen; anything older is caught.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(super) const SEAL_FILE: &str = "seal";
pub(super) const SEAL_EVERY: Duration = Duration::from_secs(1);
/// The key in `meta` holding the generation of the last sync.
pub(super) const GENERATION_KEY: &str = "generation";

const MAGIC: &str = "driftwatch store seal v1 generation ";
/// Seal files are tiny; a bigger one is not ours.
const MAX_SEAL_BYTES: u64 = 256;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    #[error("{path} is not a driftwatch store seal ({why})")]
    Unreadable { path: String, why: String },
}

/// The generation a seal file's text records. Pure, for the tests.
pub fn parse(text: &str) -> Result<u64, String> {
    let rest = text
        .strip_prefix(MAGIC)
        .ok_or_else(|| format!("does not start with {MAGIC:?}"))?;
    let digits = rest.trim_end_matches('\n');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{digits:?} is not a generation number"));
    }
    digits
        .parse()
        .map_err(|e| format!("{digits:?} is not a generation number: {e}"))
}

pub fn render(generation: u64) -> String {
    format!("{MAGIC}{generation}\n")
}

/// The sealed generation of a data dir; None when it has no seal yet (a
/// new dir, or one written by a collector older than the seal).
pub fn read(dir: &Path) -> std::io::Result<Result<Option<u64>, SealError>> {
    let path = dir.join(SEAL_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    let unreadable = |why: String| SealError::Unreadable {
        path: path.display().to_string(),
        why,
    };
    if let Err(e) = f.take(MAX_SEAL_BYTES + 1).read_to_string(&mut text) {
        if e.kind() == std::io::ErrorKind::InvalidData {
            return Ok(Err(unreadable("not text".into())));
        }
        return Err(e);
    }
    if text.len() as u64 > MAX_SEAL_BYTES {
        return Ok(Err(unreadable(format!(
            "longer than {MAX_SEAL_BYTES} bytes"
        ))));
    }
    Ok(parse(&text).map(Some).map_err(unreadable))
}

/// Writes seals, at most once per [`SEAL_EVERY`] unless forced.
pub(super) struct Sealer {
    path: PathBuf,
    last_write: Option<Instant>,
    written: u64,
}

impl Sealer {
    pub(super) fn new(dir: &Path, sealed: Option<u64>) -> Self {
        Sealer {
            path: dir.join(SEAL_FILE),
            last_write: None,
            written: sealed.unwrap_or(0),
        }
    }

    /// Records `durable` (a generation whose sync returned) if it is newer
    /// than the seal and the seal is due, or `force`d.
    pub(super) fn seal(&mut self, durable: u64, force: bool) -> std::io::Result<()> {
        let due = self.last_write.is_none_or(|t| t.elapsed() >= SEAL_EVERY);
        if durable <= self.written || !(due || force) {
            return Ok(());
        }
        let fresh = !self.path.exists();
        // Written in place: one short write at offset 0 of a file that only
        // grows by digits, so a crash leaves the old seal or the new one.
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(render(durable).as_bytes())?;
        f.sync_data()?;
        if fresh && let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.written = durable;
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_what_was_written() {
        assert_eq!(parse(&render(0)), Ok(0));
        assert_eq!(parse(&render(u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn anything_else_is_refused_with_why() {
        assert!(parse("").unwrap_err().contains("does not start"));
        assert!(parse(&format!("{MAGIC}12x\n")).unwrap_err().contains("12x"));
        assert!(parse(&format!("{MAGIC}\n")).is_err());
        assert!(parse(&format!("{MAGIC}99999999999999999999999\n")).is_err());
    }

    #[test]
    fn seals_only_newer_generations_and_at_most_once_per_interval() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), Ok(None));
        let mut s = Sealer::new(d.path(), None);
        s.seal(5, false).unwrap();
        assert_eq!(read(d.path()).unwrap(), Ok(Some(5)));
        s.seal(6, false).unwrap();
        assert_eq!(read(d.path()).unwrap(), Ok(Some(5)), "not due yet");
        s.seal(7, true).unwrap();
        assert_eq!(read(d.path()).unwrap(), Ok(Some(7)));
        s.seal(3, true).unwrap();
        assert_eq!(read(d.path()).unwrap(), Ok(Some(7)), "never goes back");
    }

    #[test]
    fn a_foreign_file_is_not_taken_for_a_seal() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(SEAL_FILE), vec![b'9'; 1000]).unwrap();
        assert!(matches!(
            read(d.path()).unwrap(),
            Err(SealError::Unreadable { .. })
        ));
    }
}
