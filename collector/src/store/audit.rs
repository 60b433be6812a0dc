//! The audit trail of admin actions: tree `audit`, key = `at_ms` (i64 BE,
//! offset so the order of bytes is the order of time) followed by a u64 BE
//! from sled's id generator (two actions in one millisecond keep both),
//! value = AuditEntry. Reads walk the tree backwards from the newest, so
//! a bounded read costs what it returns. The trail keeps the newest
//! [`MAX_ENTRIES`]: an append past it drops the oldest, so a script
//! looping on an admin action cannot fill the disk.

use driftwatch_common::proto::AuditEntry;

use super::sled_store::{decode, encode};
use super::{SledStore, StoreError};

/// Entries kept: years of people's admin actions, a few tens of MB.
pub const MAX_ENTRIES: usize = 100_000;

/// Storage of the audit trail. A supertrait of [`super::Store`] so that
/// its sled code lives here.
pub trait AuditStore {
    /// Appends one entry. Not durable until `Store::sync`.
    fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Entries at or after `since_ms`, newest first, at most `limit`; and
    /// whether more matched.
    fn audit(&self, since_ms: i64, limit: usize) -> Result<(Vec<AuditEntry>, bool), StoreError>;
}

/// Big-endian with the sign bit flipped: byte order equals numeric order,
/// negative times (a clock before 1970) included.
fn time_key(at_ms: i64) -> [u8; 8] {
    ((at_ms as u64) ^ (1 << 63)).to_be_bytes()
}

impl SledStore {
    fn audit_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("audit")?)
    }
}

impl SledStore {
    fn put_audit_bounded(&self, entry: &AuditEntry, max: usize) -> Result<(), StoreError> {
        let _w = self.writing();
        let tree = self.audit_tree()?;
        let mut len = self.audit_len.lock().expect("not poisoned");
        let n = match *len {
            Some(n) => n,
            None => tree.len(),
        };
        let mut key = time_key(entry.at_ms).to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let mut n = n + usize::from(tree.insert(key, encode(entry))?.is_none());
        while n > max && tree.pop_min()?.is_some() {
            n -= 1;
        }
        *len = Some(n);
        Ok(())
    }
}

impl AuditStore for SledStore {
    fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.put_audit_bounded(entry, MAX_ENTRIES)
    }

    fn audit(&self, since_ms: i64, limit: usize) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        let mut out = Vec::new();
        for kv in self
            .audit_tree()?
            .range(time_key(since_ms).to_vec()..)
            .rev()
        {
            let (k, v) = kv?;
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(decode(&k, &v)?);
        }
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64, target: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            admin: "alice".into(),
            role: "operator".into(),
            action: "RevokeHost".into(),
            target: target.into(),
            outcome: "ok".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn newest_first_from_since_bounded_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        for (t, name) in [
            (-5, "before-1970"),
            (10, "a"),
            (20, "b"),
            (20, "c"),
            (30, "d"),
        ] {
            s.put_audit(&entry(t, name)).unwrap();
        }
        let targets = |v: &[AuditEntry]| v.iter().map(|e| e.target.clone()).collect::<Vec<_>>();
        let (all, more) = s.audit(i64::MIN, 100).unwrap();
        assert_eq!(targets(&all), ["d", "c", "b", "a", "before-1970"]);
        assert!(!more);
        let (since, more) = s.audit(20, 100).unwrap();
        assert_eq!(targets(&since), ["d", "c", "b"]);
        assert!(!more);
        let (cut, more) = s.audit(0, 2).unwrap();
        assert_eq!(targets(&cut), ["d", "c"]);
        assert!(more, "three matched, two returned");
        let (exact, more) = s.audit(20, 3).unwrap();
        assert_eq!(exact.len(), 3);
        assert!(!more, "exactly the limit matched: nothing left out");
    }

    #[test]
    fn the_oldest_entries_go_past_the_bound_also_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            for t in 0..5 {
                s.put_audit_bounded(&entry(t, &format!("e{t}")), 3).unwrap();
            }
            let (kept, more) = s.audit(i64::MIN, 10).unwrap();
            assert_eq!(kept.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [4, 3, 2]);
            assert!(!more);
            crate::store::Store::sync(&s).unwrap();
        }
        // Counted afresh from the tree, not from zero.
        let s = SledStore::open(dir.path()).unwrap();
        s.put_audit_bounded(&entry(9, "e9"), 3).unwrap();
        let (kept, _) = s.audit(i64::MIN, 10).unwrap();
        assert_eq!(kept.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [9, 4, 3]);
    }

    #[test]
    fn entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.put_audit(&entry(1, "h1")).unwrap();
            crate::store::Store::sync(&s).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.audit(0, 10).unwrap().0, vec![entry(1, "h1")]);
    }
}
