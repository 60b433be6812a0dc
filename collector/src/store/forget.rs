//! Forgetting a host: its host record, latest snapshot, history records and
//! findings go. A revoked host's id stays in `meta` (`forgotten-revoked/ID`)
//! so its certificate is still refused after the record is gone: forgetting
//! must never un-revoke. Stable sections it alone referenced are left to
//! retention's sweep. Sweep audit entries are kept (they are the proof of
//! what was done, not the host's data).

use driftwatch_common::proto::{Finding, HostSummary};

use super::StoreError;
use super::reports::host_prefix;
use super::sled_store::{SledStore, decode, encode};

const REVOKED_PREFIX: &[u8] = b"forgotten-revoked/";

fn revoked_key(host_id: &str) -> Vec<u8> {
    [REVOKED_PREFIX, host_id.as_bytes()].concat()
}

impl SledStore {
    /// In an order a crash can interrupt anywhere: the tombstone first, the
    /// host record last, so a half-forgotten host is still listed and
    /// `forget` can be run again.
    pub(super) fn forget_inner(
        &self,
        host_id: &str,
    ) -> Result<Option<(HostSummary, u64)>, StoreError> {
        let Some(host) = self.host_record(host_id)? else {
            return Ok(None);
        };
        if host.revoked_ms > 0 {
            self.meta.insert(revoked_key(host_id), encode(&host))?;
        }
        let mut removed = 0u64;
        for r in self.findings.iter() {
            let (k, v) = r?;
            let f: Finding = decode(&k, &v)?;
            if f.host_id == host_id {
                self.findings.remove(&k)?;
                removed += 1;
            }
        }
        for r in self.history.scan_prefix(host_prefix(host_id)) {
            let (k, _) = r?;
            self.history.remove(&k)?;
            removed += 1;
        }
        self.latest.remove(host_id.as_bytes())?;
        self.hosts.remove(host_id.as_bytes())?;
        Ok(Some((host, removed)))
    }

    pub(super) fn forgotten_revoked_inner(&self) -> Result<Vec<String>, StoreError> {
        self.meta
            .scan_prefix(REVOKED_PREFIX)
            .map(|r| {
                let (k, _) = r?;
                Ok(String::from_utf8_lossy(&k[REVOKED_PREFIX.len()..]).into_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use driftwatch_common::proto::Snapshot;

    #[test]
    fn a_forgotten_host_leaves_nothing_but_a_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let snap = |seq| Snapshot {
            seq,
            agent_epoch: 1,
            sections: driftwatch_common::testgen::sections(
                &mut driftwatch_common::testgen::Gen::new(seq),
            ),
            ..Default::default()
        };
        for host in ["a", "b"] {
            store.put_snapshot(host, &snap(1), 1).unwrap();
            store.put_snapshot(host, &snap(2), 2).unwrap();
        }
        store
            .put_findings(&[Finding {
                id: "f1".into(),
                host_id: "a".into(),
                ..Default::default()
            }])
            .unwrap();
        store.revoke_host("a", "alice", 3).unwrap();
        let (h, removed) = store.forget_host("a").unwrap().unwrap();
        assert_eq!(h.host_id, "a");
        assert_eq!(removed, 3, "two history records and a finding");
        assert!(store.host("a").unwrap().is_none());
        assert!(store.latest_snapshot("a").unwrap().is_none());
        assert!(store.history("a", 0).unwrap().is_empty());
        assert!(store.findings().unwrap().is_empty());
        assert_eq!(store.history("b", 0).unwrap().len(), 2, "b untouched");
        assert!(store.forget_host("a").unwrap().is_none());
        drop(store);
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.forgotten_revoked_ids().unwrap(),
            vec!["a".to_string()]
        );
        // A host that was never revoked leaves no tombstone.
        store.forget_host("b").unwrap().unwrap();
        assert_eq!(
            store.forgotten_revoked_ids().unwrap(),
            vec!["a".to_string()]
        );
    }
}
