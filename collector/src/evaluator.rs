//! Runs the drift engine over what is stored and keeps the findings: on a
//! timer, and before answering `driftwatch drift`. The policy file is
//! re-read whenever its modification time changes; a broken file keeps the
//! last good policy in force and says so.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use driftwatch_common::proto::Finding;
use tracing::{info, warn};

use crate::drift::{self, Settings, policy::Policy};
use crate::store::{Store, StoreError};

pub struct Evaluator {
    pub settings: Settings,
    policy_path: Option<PathBuf>,
    policy: Mutex<LoadedPolicy>,
    /// Serializes evaluations (two at once would race on reconcile) and
    /// remembers when the last one ran and on which data generation.
    running: tokio::sync::Mutex<(i64, u64)>,
    /// Bumped whenever stored data that findings depend on changes.
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct LoadedPolicy {
    policy: Policy,
    mtime: Option<SystemTime>,
    error: Option<String>,
}

impl Evaluator {
    pub fn new(settings: Settings, policy_path: Option<PathBuf>) -> Self {
        Evaluator {
            settings,
            policy_path,
            policy: Mutex::new(LoadedPolicy::default()),
            running: tokio::sync::Mutex::new((0, 0)),
            generation: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Something findings depend on changed (a report, a baseline, a
    /// revocation): the next `run` evaluates whatever its `min_age_ms`.
    pub fn data_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The policy in force, reloaded if the file changed.
    pub fn policy(&self) -> (Policy, Option<String>) {
        let mut p = self.policy.lock().expect("not poisoned");
        if let Some(path) = &self.policy_path {
            let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if mtime != p.mtime || (mtime.is_none() && p.error.is_none()) {
                p.mtime = mtime;
                match std::fs::read_to_string(path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| drift::policy::parse(&t))
                {
                    Ok(new) => {
                        info!(path = %path.display(), "policy loaded");
                        p.policy = new;
                        p.error = None;
                    }
                    Err(e) => {
                        let msg = format!(
                            "policy {}: {e}; the last good policy stays in force",
                            path.display()
                        );
                        warn!(error = %msg, "policy not loaded");
                        p.error = Some(msg);
                    }
                }
            }
        }
        (p.policy.clone(), p.error.clone())
    }

    /// Evaluates and stores findings unless an evaluation finished less than
    /// `min_age_ms` ago. Blocking store work runs on the blocking pool.
    pub async fn run(
        &self,
        store: std::sync::Arc<dyn Store>,
        now_ms: i64,
        min_age_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut last = self.running.lock().await;
        let (policy, error) = self.policy();
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        // Nothing changed and a recent answer exists: reuse it.
        if generation == last.1 && now_ms - last.0 < min_age_ms {
            return Ok(error);
        }
        let settings = self.settings.clone();
        let written = tokio::task::spawn_blocking(move || {
            evaluate_stored(store.as_ref(), &policy, &settings, now_ms)
        })
        .await
        .expect("drift evaluation task")?;
        tracing::debug!(written, "drift evaluated");
        *last = (now_ms, generation);
        Ok(error)
    }
}

/// One evaluation over the store; returns how many findings were written.
pub fn evaluate_stored(
    store: &dyn Store,
    policy: &Policy,
    s: &Settings,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let baselines = store.baselines()?;
    // One host's snapshot decoded at a time: at thousands of hosts, all of
    // them at once was most of the collector's memory.
    let mut evaluation = drift::Evaluation::new(&baselines, policy, s, now_ms);
    for h in store.list_hosts()? {
        let snap = store.latest_snapshot(&h.host_id)?;
        evaluation.add(h, snap.as_ref());
    }
    let current = evaluation.finish();
    let stored: Vec<Finding> = store.findings()?;
    let changes = drift::reconcile(&stored, current, now_ms);
    store.put_findings(&changes)?;
    Ok(changes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reloads_on_change_and_a_broken_file_keeps_the_last_good() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("policy.toml");
        std::fs::write(&path, "[raid]\nrequire_healthy = true\n").unwrap();
        let e = Evaluator::new(Settings::default(), Some(path.clone()));
        let (p, err) = e.policy();
        assert!(p.raid.require_healthy && err.is_none());

        // A changed file is picked up (bump the mtime explicitly: some
        // filesystems keep second granularity).
        std::fs::write(&path, "[containers]\nforbid_latest = true\n").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let (p, err) = e.policy();
        assert!(p.containers.forbid_latest && !p.raid.require_healthy && err.is_none());

        std::fs::write(&path, "[containers]\nforbid_lates = true\n").unwrap();
        let later = later + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let (p, err) = e.policy();
        assert!(
            p.containers.forbid_latest,
            "the last good policy stays in force"
        );
        assert!(err.unwrap().contains("forbid_lates"));
    }
}
