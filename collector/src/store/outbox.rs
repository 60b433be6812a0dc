//! The notification outbox: one tree, `outbox`, receiver name 0x00 u64 BE
//! id → NotifyEvent. Ids come from sled's `generate_id`, which only grows,
//! also across restarts, so a receiver's entries are one prefix in the
//! order they were queued.
//!
//! Findings and the events of their transitions are written in one sled
//! transaction: after a crash both are there or neither, so an opened
//! finding is never stored without its notification (nor a notification
//! sent for a finding that was never stored).

use std::collections::BTreeMap;

use driftwatch_common::proto::{Finding, NotifyEvent};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::sled_store::{decode, encode};
use super::{SledStore, StoreError};

/// A queued event and the key it is stored under.
pub type Queued = (Vec<u8>, NotifyEvent);

/// Storage of queued notifications. A supertrait of [`super::Store`] so
/// that its sled implementation lives here.
pub trait OutboxStore {
    /// Writes `findings` (inserted or replaced by id) and queues `events`
    /// in one transaction. Not durable until `Store::sync`.
    fn put_findings_and_queue(
        &self,
        findings: &[Finding],
        events: &[NotifyEvent],
    ) -> Result<(), StoreError>;
    /// Up to `limit` of `receiver`'s queued events, oldest first.
    fn queued(&self, receiver: &str, limit: usize) -> Result<Vec<Queued>, StoreError>;
    /// Removes a delivered (or refused) event.
    fn dequeue(&self, key: &[u8]) -> Result<(), StoreError>;
    /// Removes `receiver`'s oldest events beyond the newest `keep`;
    /// returns how many went.
    fn trim_queue(&self, receiver: &str, keep: usize) -> Result<u64, StoreError>;
    /// How many events each receiver has queued.
    fn queue_lengths(&self) -> Result<BTreeMap<String, u64>, StoreError>;
}

fn prefix(receiver: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(receiver.len() + 9);
    k.extend_from_slice(receiver.as_bytes());
    k.push(0);
    k
}

impl SledStore {
    fn outbox(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("outbox")?)
    }
}

impl OutboxStore for SledStore {
    fn put_findings_and_queue(
        &self,
        findings: &[Finding],
        events: &[NotifyEvent],
    ) -> Result<(), StoreError> {
        let _w = self.writing();
        let outbox = self.outbox()?;
        let mut batch = sled::Batch::default();
        for f in findings {
            batch.insert(f.id.as_bytes(), encode(f));
        }
        let mut queued = Vec::with_capacity(events.len());
        for e in events {
            let mut k = prefix(&e.receiver);
            k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
            queued.push((k, encode(e)));
        }
        (&self.findings, &outbox)
            .transaction(|(f, o)| {
                f.apply_batch(&batch)?;
                for (k, v) in &queued {
                    o.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Sled(e),
                TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
            })
    }

    fn queued(&self, receiver: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        self.outbox()?
            .scan_prefix(prefix(receiver))
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), decode(&k, &v)?))
            })
            .collect()
    }

    fn dequeue(&self, key: &[u8]) -> Result<(), StoreError> {
        let _w = self.writing();
        self.outbox()?.remove(key)?;
        Ok(())
    }

    fn trim_queue(&self, receiver: &str, keep: usize) -> Result<u64, StoreError> {
        let _w = self.writing();
        let outbox = self.outbox()?;
        let keys: Vec<sled::IVec> = outbox
            .scan_prefix(prefix(receiver))
            .keys()
            .collect::<Result<_, _>>()?;
        let excess = keys.len().saturating_sub(keep);
        let mut batch = sled::Batch::default();
        for k in &keys[..excess] {
            batch.remove(k.clone());
        }
        outbox.apply_batch(batch)?;
        Ok(excess as u64)
    }

    fn queue_lengths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for k in self.outbox()?.iter().keys() {
            let k = k?;
            let name = k.split(|&b| b == 0).next().unwrap_or_default();
            *out.entry(String::from_utf8_lossy(name).into_owned())
                .or_insert(0) += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn event(receiver: &str, key: &str) -> NotifyEvent {
        NotifyEvent {
            receiver: receiver.into(),
            idempotency_key: key.into(),
            event: "opened".into(),
            ..Default::default()
        }
    }

    #[test]
    fn queued_in_order_per_receiver_with_the_findings_and_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            let f = Finding {
                id: "f1".into(),
                ..Default::default()
            };
            s.put_findings_and_queue(
                std::slice::from_ref(&f),
                &[event("a", "1"), event("b", "x"), event("a", "2")],
            )
            .unwrap();
            s.put_findings_and_queue(&[], &[event("a", "3")]).unwrap();
            assert_eq!(s.findings().unwrap(), vec![f]);
            s.sync().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let keys = |r: &str| -> Vec<String> {
            s.queued(r, 10)
                .unwrap()
                .into_iter()
                .map(|(_, e)| e.idempotency_key)
                .collect()
        };
        assert_eq!(keys("a"), ["1", "2", "3"]);
        assert_eq!(keys("b"), ["x"]);
        // A name that is a prefix of another is its own queue.
        s.put_findings_and_queue(&[], &[event("ab", "y")]).unwrap();
        assert_eq!(keys("a"), ["1", "2", "3"]);
        // Ids keep growing after a reopen: new entries go last.
        s.put_findings_and_queue(&[], &[event("a", "4")]).unwrap();
        assert_eq!(keys("a"), ["1", "2", "3", "4"]);

        assert_eq!(s.trim_queue("a", 2).unwrap(), 2, "the oldest go");
        assert_eq!(keys("a"), ["3", "4"]);
        let (first, _) = s.queued("a", 1).unwrap().remove(0);
        s.dequeue(&first).unwrap();
        assert_eq!(keys("a"), ["4"]);
        let lengths = s.queue_lengths().unwrap();
        assert_eq!(
            lengths.into_iter().collect::<Vec<_>>(),
            [("a".into(), 1), ("ab".into(), 1), ("b".into(), 1)]
        );
    }
}
