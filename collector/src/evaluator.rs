//! Runs the drift engine over what is stored and keeps the findings: on a
//! timer, and before answering `driftwatch drift`. The policy file is
//! re-read whenever its modification time changes; a broken file keeps the
//! last good policy in force and says so.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use driftwatch_common::proto::{Baseline, Finding, HostSummary, Label};
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
    /// What each host's snapshot gave the last evaluation.
    cache: std::sync::Arc<Mutex<DerivedCache>>,
    /// Hosts the last evaluation found stale or gone: a report from one
    /// resolves a finding even when its content is unchanged (an unchanged
    /// report marks no data changed), so it counts as a change.
    away: Mutex<HashSet<String>>,
    /// Told of every finding that opens or resolves.
    notifier: std::sync::OnceLock<std::sync::Arc<crate::notify::Notifier>>,
}

#[derive(Default)]
struct LoadedPolicy {
    policy: Policy,
    mtime: Option<SystemTime>,
    error: Option<String>,
    /// Bumped on every successful load: drafts derived under an older
    /// policy are recomputed.
    generation: u64,
}

/// Per host, what drift derived from its latest snapshot, and the inputs
/// it was derived from. Decoding every host's snapshot (~60 KB each) and
/// extracting its items on every evaluation was nearly all of its cost: 3–4.5 s per
/// `driftwatch drift` at 3,000 hosts. Now a snapshot is decoded when it was
/// rewritten, when the host's labels or image changed, or when the policy
/// or the baselines did.
#[derive(Default)]
pub struct DerivedCache {
    /// Peer item ids in `hosts` point into this interner. It only grows,
    /// so it is rebuilt (with everything else) once it holds far more items
    /// than when it was last rebuilt.
    interner: drift::peers::Interner,
    rebuilt_at_items: usize,
    policy_generation: u64,
    baselines: Vec<Baseline>,
    hosts: HashMap<String, CachedHost>,
}

struct CachedHost {
    latest_version: u64,
    labels: Vec<Label>,
    image_id: String,
    derived: drift::Derived,
}

impl DerivedCache {
    /// Drops everything when the inputs every entry depends on changed.
    fn check_inputs(&mut self, policy_generation: u64, baselines: &[Baseline]) {
        let grown = self.interner.len() > 2 * self.rebuilt_at_items + 100_000;
        if grown || policy_generation != self.policy_generation || baselines != self.baselines {
            *self = DerivedCache {
                policy_generation,
                baselines: baselines.to_vec(),
                ..Default::default()
            };
        }
    }

    fn is_current(&self, h: &HostSummary) -> bool {
        self.hosts.get(&h.host_id).is_some_and(|c| {
            c.latest_version == h.latest_version && c.labels == h.labels && c.image_id == h.image_id
        })
    }
}

impl Evaluator {
    pub fn new(settings: Settings, policy_path: Option<PathBuf>) -> Self {
        Evaluator {
            settings,
            policy_path,
            policy: Mutex::new(LoadedPolicy::default()),
            running: tokio::sync::Mutex::new((0, 0)),
            generation: std::sync::atomic::AtomicU64::new(1),
            cache: Default::default(),
            notifier: Default::default(),
            away: Default::default(),
        }
    }

    /// `host_id` reported: if it was stale or gone, its finding resolves at
    /// the next tick instead of at the next time-only re-evaluation.
    pub fn reported(&self, host_id: &str) {
        if self.away.lock().expect("not poisoned").remove(host_id) {
            self.data_changed();
        }
    }

    /// From now on, transitions are queued for `n`'s receivers.
    pub fn set_notifier(&self, n: std::sync::Arc<crate::notify::Notifier>) {
        let _ = self.notifier.set(n);
    }

    /// Something findings depend on changed (a report, a baseline, a
    /// revocation): the next `run` evaluates whatever its `min_age_ms`.
    pub fn data_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The policy in force, reloaded if the file changed.
    pub fn policy(&self) -> (Policy, Option<String>) {
        let (policy, error, _) = self.policy_and_generation();
        (policy, error)
    }

    fn policy_and_generation(&self) -> (Policy, Option<String>, u64) {
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
                        p.generation += 1;
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
        (p.policy.clone(), p.error.clone(), p.generation)
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
        let (policy, error, policy_generation) = self.policy_and_generation();
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        // Nothing changed and a recent answer exists: reuse it.
        if generation == last.1 && now_ms - last.0 < min_age_ms {
            return Ok(error);
        }
        let settings = self.settings.clone();
        let cache = self.cache.clone();
        let notifier = self.notifier.get().cloned();
        let done = tokio::task::spawn_blocking(move || {
            let mut cache = cache.lock().expect("not poisoned");
            let policy = (&policy, policy_generation);
            evaluate_stored(
                store.as_ref(),
                policy,
                &settings,
                now_ms,
                &mut cache,
                notifier.as_deref(),
            )
        })
        .await
        .expect("drift evaluation task")?;
        tracing::debug!(done.written, done.decoded, done.queued, "drift evaluated");
        *self.away.lock().expect("not poisoned") = done.away;
        *last = (now_ms, generation);
        Ok(error)
    }
}

/// What one evaluation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// Findings written (new, seen again, resolved).
    pub written: usize,
    /// Snapshots decoded because their cache entry was not current.
    pub decoded: usize,
    /// Notifications queued (and synced) for the transitions.
    pub queued: usize,
    /// Hosts with a stale or gone finding.
    pub away: HashSet<String>,
}

/// One evaluation over the store, deriving from the snapshots of hosts
/// whose cache entry is not current. `policy` comes with its load
/// generation. With a `notifier`, the transitions' notifications are
/// written in the same transaction as the findings and synced before they
/// count as queued.
pub fn evaluate_stored(
    store: &dyn Store,
    (policy, policy_generation): (&Policy, u64),
    s: &Settings,
    now_ms: i64,
    cache: &mut DerivedCache,
    notifier: Option<&crate::notify::Notifier>,
) -> Result<Evaluated, StoreError> {
    let baselines = store.baselines()?;
    cache.check_inputs(policy_generation, &baselines);
    let hosts = store.list_hosts()?;
    // First bring the cache up to date (one snapshot decoded at a time),
    // then evaluate from it: the evaluation borrows what the cache holds.
    let mut decoded = 0usize;
    for h in &hosts {
        if !drift::needs_snapshot(h, s, now_ms) || cache.is_current(h) {
            continue;
        }
        let snap = store.latest_snapshot(&h.host_id)?;
        let derived = drift::Derived::of(h, snap.as_ref(), &baselines, policy, &mut cache.interner);
        decoded += 1;
        cache.hosts.insert(
            h.host_id.clone(),
            CachedHost {
                latest_version: h.latest_version,
                labels: h.labels.clone(),
                image_id: h.image_id.clone(),
                derived,
            },
        );
    }
    if cache.rebuilt_at_items == 0 {
        cache.rebuilt_at_items = cache.interner.len();
    }
    // Hosts that left peer statistics (gone, revoked, removed) leave the cache.
    let live: HashSet<&str> = hosts
        .iter()
        .filter(|h| drift::needs_snapshot(h, s, now_ms))
        .map(|h| h.host_id.as_str())
        .collect();
    cache.hosts.retain(|id, _| live.contains(id.as_str()));
    let cache: &DerivedCache = cache;
    let unconfirmed = drift::baseline::unconfirmed(&baselines, &store.baseline_candidates()?);
    let mut evaluation = drift::Evaluation::new(&cache.interner, s, now_ms);
    for h in hosts {
        let derived = cache.hosts.get(&h.host_id).map(|c| &c.derived);
        let pending = unconfirmed.get(&h.image_id);
        let image_id = h.image_id.clone();
        evaluation.add(h, derived);
        if let Some((hosts, contents)) = pending {
            evaluation.add_draft(drift::baseline::unconfirmed_draft(
                &image_id, hosts, *contents,
            ));
        }
    }
    let current = evaluation.finish();
    let away = current
        .iter()
        .filter(|f| matches!(f.kind.as_str(), "stale" | "gone"))
        .map(|f| f.host_id.clone())
        .collect();
    let stored: Vec<Finding> = store.findings()?;
    let changes = drift::reconcile(&stored, current, now_ms);
    let events = notifier.map_or_else(Vec::new, |n| n.events_for(&stored, &changes, now_ms));
    if let (Some(n), false) = (notifier, events.is_empty()) {
        store.put_findings_and_queue(&changes, &events)?;
        store.sync()?;
        n.queued(store, &events);
    } else {
        store.put_findings(&changes)?;
    }
    Ok(Evaluated {
        written: changes.len(),
        decoded,
        queued: events.len(),
        away,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use driftwatch_common::proto::Snapshot;

    fn keys_snapshot(seq: u64, fps: &[&str]) -> Snapshot {
        Snapshot {
            seq,
            agent_epoch: 1,
            interval_s: 60,
            labels: vec![Label {
                key: "group".into(),
                value: "web".into(),
            }],
            ..crate::drift::tests::keys(fps)
        }
    }

    #[test]
    fn snapshots_are_decoded_again_only_when_an_input_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let now = 1_000_000;
        for h in ["a", "b"] {
            store
                .put_snapshot(h, &keys_snapshot(1, &["SHA256:one"]), now)
                .unwrap();
        }
        store
            .put_snapshot("c", &keys_snapshot(1, &["SHA256:one", "SHA256:two"]), now)
            .unwrap();
        let s = Settings::default();
        let policy = Policy::default();
        let mut cache = DerivedCache::default();
        let mut run = |generation: u64| {
            let r =
                evaluate_stored(&store, (&policy, generation), &s, now, &mut cache, None).unwrap();
            let open: Vec<String> = store
                .findings()
                .unwrap()
                .into_iter()
                .filter(|f| f.resolved_ms == 0)
                .map(|f| format!("{} {} {}", f.host_id, f.kind, f.item))
                .collect();
            (r.decoded, open)
        };
        let outlier = vec!["c peer_outlier root SHA256:two".to_string()];
        assert_eq!(run(0), (3, outlier.clone()));
        assert_eq!(
            run(0),
            (0, outlier.clone()),
            "nothing changed: nothing decoded"
        );

        // A report rewrites c's latest snapshot (same content): c alone again.
        store
            .put_snapshot("c", &keys_snapshot(2, &["SHA256:one", "SHA256:two"]), now)
            .unwrap();
        assert_eq!(run(0), (1, outlier));
        // The key leaves c: decoded, and the finding resolves.
        store
            .put_snapshot("c", &keys_snapshot(3, &["SHA256:one"]), now)
            .unwrap();
        assert_eq!(run(0), (1, vec![]));
        // A reloaded policy or a new baseline concerns every host.
        assert_eq!(run(1).0, 3);
        assert_eq!(run(1).0, 0);
        let baseline = driftwatch_common::proto::Baseline {
            name: "web".into(),
            ..Default::default()
        };
        store.put_baseline(&baseline, false).unwrap();
        assert_eq!(run(1).0, 3);
    }

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
