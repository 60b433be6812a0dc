//! Sweep jobs and their audit log, in the `sweeps` tree: sweep id →
//! SweepJob (prost, encoding-version byte first). Results are written in a
//! sled transaction per host, so concurrent results of one job never lose
//! each other's updates.

use driftwatch_common::proto::{SweepHost, SweepJob};
use sled::transaction::ConflictableTransactionError;

use super::sled_store::{decode, encode, tx_err};
use super::{SledStore, StoreError};

/// Storage of sweep jobs. A supertrait of [`super::Store`] so that its
/// sled implementation lives here, beside nothing else.
pub trait SweepStore {
    /// Writes a job (new or replaced). Not durable until `Store::sync`.
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError>;
    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError>;
    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError>;
    /// Applies `f` to one host's entry of a job atomically; `f` returns
    /// whether it changed anything. None when there is no such job or host.
    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepJob>, StoreError>;
}

impl SweepStore for SledStore {
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError> {
        self.put_sweep_impl(job)
    }
    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        self.get_sweep_impl(id)
    }
    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.list_sweeps_impl()
    }
    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepJob>, StoreError> {
        self.update_sweep_host_impl(id, host_id, f)
    }
}

impl SledStore {
    fn sweeps(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("sweeps")?)
    }

    fn put_sweep_impl(&self, job: &SweepJob) -> Result<(), StoreError> {
        self.sweeps()?.insert(job.id.as_bytes(), encode(job))?;
        Ok(())
    }

    fn get_sweep_impl(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        self.sweeps()?
            .get(id.as_bytes())?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    fn list_sweeps_impl(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.sweeps()?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn update_sweep_host_impl(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepJob>, StoreError> {
        let tree = self.sweeps()?;
        tree.transaction(|tx| {
            let Some(v) = tx.get(id.as_bytes())? else {
                return Ok(None);
            };
            let mut job: SweepJob =
                decode(id.as_bytes(), &v).map_err(ConflictableTransactionError::Abort)?;
            let Some(h) = job.hosts.iter_mut().find(|h| h.host_id == host_id) else {
                return Ok(None);
            };
            if f(h) {
                tx.insert(id.as_bytes(), encode(&job))?;
            }
            Ok(Some(job))
        })
        .map_err(tx_err)
    }
}
