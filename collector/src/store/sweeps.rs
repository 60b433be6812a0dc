//! Sweep jobs and their audit log. Two trees:
//!
//! - `sweeps`: sweep id → SweepJob *header* (selector, who, when; `hosts`
//!   empty);
//! - `sweep_hosts`: sweep id 0x00 host id → SweepHost (that host's entry:
//!   status, when sent, its result).
//!
//! A result or a "sent" mark rewrites one small value, never the job: with
//! every host inside one value (schema 2), a 10,000-host job was ~1 MB and
//! was decoded and rewritten once per host sent and once per result
//! (BENCHMARKS.md). Readers assemble the job from the header and its hosts
//! (sorted by host id, as the key order gives them). Per-host updates are
//! compare-and-swap loops on their own key, so a result and a "sent" mark
//! racing on one host never lose each other's fields.

use driftwatch_common::proto::{SweepHost, SweepJob};

use super::sled_store::{decode, encode};
use super::{SledStore, StoreError};

/// Storage of sweep jobs. A supertrait of [`super::Store`] so that its
/// sled implementation lives here, beside nothing else.
pub trait SweepStore {
    /// Writes a job (new or replaced), its header and one entry per host.
    /// Not durable until `Store::sync`.
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError>;
    /// The job with every host entry, sorted by host id.
    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError>;
    /// Every job with its host entries.
    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError>;
    /// Every job without its host entries (`hosts` empty): cheap.
    fn sweep_headers(&self) -> Result<Vec<SweepJob>, StoreError>;
    /// One host's entry of a job.
    fn sweep_host(&self, id: &str, host_id: &str) -> Result<Option<SweepHost>, StoreError>;
    /// Applies `f` to one host's entry of a job atomically; `f` returns
    /// whether it changed anything. None when there is no such job or host.
    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepHost>, StoreError>;
    /// Records that the job was pushed to `host_ids` at `sent_ms`; returns
    /// how many entries exist (hosts not in the job are skipped).
    fn mark_sweep_sent(
        &self,
        id: &str,
        host_ids: &[String],
        sent_ms: i64,
    ) -> Result<usize, StoreError>;
}

impl SweepStore for SledStore {
    fn put_sweep(&self, job: &SweepJob) -> Result<(), StoreError> {
        let _w = self.writing();
        self.put_sweep_impl(job)
    }
    fn get_sweep(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        self.get_sweep_impl(id)
    }
    fn list_sweeps(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.sweep_headers_impl()?
            .into_iter()
            .map(|mut j| {
                j.hosts = self.sweep_hosts_of(&j.id)?;
                Ok(j)
            })
            .collect()
    }
    fn sweep_headers(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.sweep_headers_impl()
    }
    fn sweep_host(&self, id: &str, host_id: &str) -> Result<Option<SweepHost>, StoreError> {
        let k = host_key(id, host_id);
        self.sweep_hosts()?
            .get(&k)?
            .map(|v| decode(&k, &v))
            .transpose()
    }
    fn update_sweep_host(
        &self,
        id: &str,
        host_id: &str,
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepHost>, StoreError> {
        let _w = self.writing();
        self.update_host_entry(&self.sweep_hosts()?, &host_key(id, host_id), f)
    }
    fn mark_sweep_sent(
        &self,
        id: &str,
        host_ids: &[String],
        sent_ms: i64,
    ) -> Result<usize, StoreError> {
        let _w = self.writing();
        let tree = self.sweep_hosts()?;
        let mut n = 0;
        for h in host_ids {
            let mark = |e: &mut SweepHost| {
                e.sent_ms = sent_ms;
                true
            };
            if self
                .update_host_entry(&tree, &host_key(id, h), &mark)?
                .is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// `id 0x00 host`: a job's entries are one prefix, in host id order.
/// Sweep ids and host ids never contain 0x00.
fn host_key(id: &str, host_id: &str) -> Vec<u8> {
    let mut k = job_prefix(id);
    k.extend_from_slice(host_id.as_bytes());
    k
}

fn job_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1 + 48);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

impl SledStore {
    fn sweeps(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("sweeps")?)
    }

    fn sweep_hosts(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("sweep_hosts")?)
    }

    /// Entries first, header last: a job is visible only once complete (a
    /// crash in between leaves entries no header names, never a job
    /// missing hosts).
    fn put_sweep_impl(&self, job: &SweepJob) -> Result<(), StoreError> {
        let entries = self.sweep_hosts()?;
        let mut batch = sled::Batch::default();
        for kv in entries.scan_prefix(job_prefix(&job.id)) {
            batch.remove(kv?.0);
        }
        for h in &job.hosts {
            batch.insert(host_key(&job.id, &h.host_id), encode(h));
        }
        entries.apply_batch(batch)?;
        let header = SweepJob {
            hosts: vec![],
            ..job.clone()
        };
        self.sweeps()?.insert(job.id.as_bytes(), encode(&header))?;
        Ok(())
    }

    fn get_sweep_impl(&self, id: &str) -> Result<Option<SweepJob>, StoreError> {
        let Some(v) = self.sweeps()?.get(id.as_bytes())? else {
            return Ok(None);
        };
        let mut job: SweepJob = decode(id.as_bytes(), &v)?;
        job.hosts = self.sweep_hosts_of(id)?;
        Ok(Some(job))
    }

    fn sweep_headers_impl(&self) -> Result<Vec<SweepJob>, StoreError> {
        self.sweeps()?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn sweep_hosts_of(&self, id: &str) -> Result<Vec<SweepHost>, StoreError> {
        self.sweep_hosts()?
            .scan_prefix(job_prefix(id))
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Read, apply, compare-and-swap; again if another writer came between.
    fn update_host_entry(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        f: &dyn Fn(&mut SweepHost) -> bool,
    ) -> Result<Option<SweepHost>, StoreError> {
        loop {
            let Some(old) = tree.get(key)? else {
                return Ok(None);
            };
            let mut entry: SweepHost = decode(key, &old)?;
            if !f(&mut entry) {
                return Ok(Some(entry));
            }
            match tree.compare_and_swap(key, Some(&old), Some(encode(&entry)))? {
                Ok(()) => return Ok(Some(entry)),
                Err(_) => continue,
            }
        }
    }

    /// Schema 2 kept every host inside the job's value: move them to
    /// `sweep_hosts` (an entry already there wins) and strip the header.
    /// Idempotent, so a crash halfway only means doing it again.
    pub(super) fn migrate_sweeps_from_v2(&self) -> Result<u64, StoreError> {
        let (jobs, entries) = (self.sweeps()?, self.sweep_hosts()?);
        let mut moved = 0;
        for kv in jobs.iter() {
            let (k, v) = kv?;
            let mut job: SweepJob = decode(&k, &v)?;
            if job.hosts.is_empty() {
                continue;
            }
            let mut batch = sled::Batch::default();
            for h in &job.hosts {
                let hk = host_key(&job.id, &h.host_id);
                if !entries.contains_key(&hk)? {
                    batch.insert(hk, encode(h));
                }
            }
            entries.apply_batch(batch)?;
            moved += job.hosts.len() as u64;
            job.hosts.clear();
            jobs.insert(k, encode(&job))?;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, hosts: &[&str]) -> SweepJob {
        SweepJob {
            id: id.into(),
            requested_by: "ops".into(),
            expires_ms: 10_000,
            hosts: hosts
                .iter()
                .map(|h| SweepHost {
                    host_id: h.to_string(),
                    hostname: format!("{h}.example"),
                    status: "pending".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn finish(s: &SledStore, id: &str, host: &str, status: &'static str) -> Option<SweepHost> {
        s.update_sweep_host(id, host, &|e| {
            if e.status != "pending" {
                return false;
            }
            e.status = status.into();
            e.finished_ms = 5;
            true
        })
        .unwrap()
    }

    #[test]
    fn hosts_live_in_their_own_entries_and_jobs_are_assembled() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.put_sweep(&job("sw-1", &["c", "a", "b"])).unwrap();
        // A job whose id is a prefix of another's must not see its hosts.
        s.put_sweep(&job("sw-10", &["z"])).unwrap();

        // The header carries no hosts; each host has its own value.
        let raw = s.sweeps().unwrap().get("sw-1").unwrap().unwrap();
        assert!(decode::<SweepJob>(b"sw-1", &raw).unwrap().hosts.is_empty());
        assert_eq!(s.sweep_hosts().unwrap().len(), 4);

        let got = s.get_sweep("sw-1").unwrap().unwrap();
        let ids: Vec<_> = got.hosts.iter().map(|h| h.host_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "sorted by host id");
        assert_eq!(got.requested_by, "ops");
        assert_eq!(s.get_sweep("sw-10").unwrap().unwrap().hosts.len(), 1);
        assert!(s.get_sweep("sw-2").unwrap().is_none());

        let headers = s.sweep_headers().unwrap();
        assert_eq!(headers.len(), 2);
        assert!(headers.iter().all(|j| j.hosts.is_empty()));
        let all = s.list_sweeps().unwrap();
        assert_eq!(
            all.iter().map(|j| j.hosts.len()).collect::<Vec<_>>(),
            [3, 1]
        );
    }

    #[test]
    fn results_and_sent_marks_touch_one_entry_and_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.put_sweep(&job("sw-1", &["a", "b", "c"])).unwrap();

        // The first final result is the record; a second changes nothing.
        assert_eq!(finish(&s, "sw-1", "b", "done").unwrap().status, "done");
        assert_eq!(finish(&s, "sw-1", "b", "failed").unwrap().status, "done");
        assert!(finish(&s, "sw-1", "nobody", "done").is_none());
        assert!(finish(&s, "sw-2", "a", "done").is_none());

        // A "sent" mark after the result keeps the result, and vice versa.
        let n = s
            .mark_sweep_sent("sw-1", &["a".into(), "b".into(), "ghost".into()], 42)
            .unwrap();
        assert_eq!(n, 2, "hosts not in the job are skipped");
        let b = s.sweep_host("sw-1", "b").unwrap().unwrap();
        assert_eq!(
            (b.status.as_str(), b.sent_ms, b.finished_ms),
            ("done", 42, 5)
        );
        finish(&s, "sw-1", "a", "failed");
        let a = s.sweep_host("sw-1", "a").unwrap().unwrap();
        assert_eq!((a.status.as_str(), a.sent_ms), ("failed", 42));
        let c = s.sweep_host("sw-1", "c").unwrap().unwrap();
        assert_eq!((c.status.as_str(), c.sent_ms), ("pending", 0));

        // Concurrent writers on different hosts and on the same host.
        let s = std::sync::Arc::new(s);
        s.put_sweep(&job("sw-3", &["h0", "h1", "h2", "h3"]))
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        s.mark_sweep_sent("sw-3", &["h0".into(), "h1".into()], i)
                            .unwrap();
                    }
                    finish(&s, "sw-3", &format!("h{i}"), "done");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let j = s.get_sweep("sw-3").unwrap().unwrap();
        assert!(j.hosts.iter().all(|h| h.status == "done"), "{j:?}");
    }

    #[test]
    fn replacing_a_job_drops_hosts_it_no_longer_has() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.put_sweep(&job("sw-1", &["a", "b"])).unwrap();
        s.put_sweep(&job("sw-1", &["b"])).unwrap();
        assert_eq!(s.get_sweep("sw-1").unwrap().unwrap().hosts.len(), 1);
    }

    #[test]
    fn schema_2_jobs_move_their_hosts_out_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a schema-2 collector left: hosts inside the job's value.
            let s = SledStore::open(dir.path()).unwrap();
            let mut old = job("sw-1", &["a", "b"]);
            old.hosts[0].status = "done".into();
            old.hosts[0].finished_ms = 7;
            s.sweeps().unwrap().insert("sw-1", encode(&old)).unwrap();
            s.db.open_tree("meta")
                .unwrap()
                .insert("schema", &2u32.to_be_bytes())
                .unwrap();
            s.db.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let raw = s.sweeps().unwrap().get("sw-1").unwrap().unwrap();
        assert!(decode::<SweepJob>(b"sw-1", &raw).unwrap().hosts.is_empty());
        let j = s.get_sweep("sw-1").unwrap().unwrap();
        assert_eq!(j.hosts.len(), 2);
        assert_eq!(
            (j.hosts[0].status.as_str(), j.hosts[0].finished_ms),
            ("done", 7)
        );
        assert_eq!(finish(&s, "sw-1", "b", "done").unwrap().status, "done");
        drop(s);
        // Reopening (schema 3 now) finds nothing left to move.
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.migrate_sweeps_from_v2().unwrap(), 0);
        assert_eq!(s.get_sweep("sw-1").unwrap().unwrap().hosts.len(), 2);
    }
}
