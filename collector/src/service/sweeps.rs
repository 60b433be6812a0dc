//! Key search and offboarding sweeps, collector side: the admin RPCs' work,
//! and what happens when an agent's Commands stream opens (pending sweeps
//! are pushed) and when a result comes back (recorded in the audit log).

use driftwatch_common::keysel;
use driftwatch_common::proto::{
    Command, CommandResult, FindKeysResponse, KeySelector, ListSweepsResponse, StartSweepRequest,
    SweepCommand, SweepHost, SweepJob,
};
use driftwatch_common::time::now_ms;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::{info, warn};

use super::State;
use crate::error::ServiceError;

/// A result pushed just before expiry may still arrive after it; an hour
/// later nothing can change a sweep any more.
const SETTLE_AFTER_EXPIRY_MS: i64 = 3_600_000;

/// Summaries (counts, no host entries) of sweeps that can no longer change:
/// every host answered, or an hour past expiry. `keys sweeps` and the
/// sweeps metric read these from memory instead of every host entry of
/// every sweep ever run (a year of offboarding × 100,000 hosts is millions
/// of entries per scrape).
#[derive(Debug, Default)]
pub struct SettledSweeps(std::sync::Mutex<std::collections::HashMap<String, SweepJob>>);

/// Every sweep with its counts and without host entries, newest first.
/// Blocking (store reads): call from the blocking pool or a sync context.
pub fn summaries(
    store: &dyn crate::store::Store,
    settled: &SettledSweeps,
    now: i64,
) -> Result<Vec<SweepJob>, crate::store::StoreError> {
    let mut out = Vec::new();
    for header in store.sweep_headers()? {
        if let Some(s) = settled.0.lock().expect("not poisoned").get(&header.id) {
            out.push(s.clone());
            continue;
        }
        let Some(job) = store.get_sweep(&header.id)? else {
            continue; // removed since the headers were read
        };
        let answered = job.hosts.iter().all(|h| h.status != "pending");
        let mut v = view(job, now);
        v.hosts.clear();
        if answered || now >= v.expires_ms.saturating_add(SETTLE_AFTER_EXPIRY_MS) {
            settled
                .0
                .lock()
                .expect("not poisoned")
                .insert(v.id.clone(), v.clone());
        }
        out.push(v);
    }
    out.sort_by_key(|j| std::cmp::Reverse(j.created_ms));
    Ok(out)
}

/// How long offline hosts may still pick a sweep up, unless asked otherwise.
pub const DEFAULT_SWEEP_TTL_S: u64 = 7 * 86_400;
const MAX_SWEEP_TTL_S: u64 = 90 * 86_400;

/// Bounds what one request can name: a leaver's export holds a handful of
/// keys, not thousands.
const MAX_SELECTOR_KEYS: usize = 1000;

/// At least one fingerprint or comment, every fingerprint looking like one
/// (so a typo cannot silently match nothing anywhere).
pub fn validate_selector(sel: Option<KeySelector>) -> Result<KeySelector, ServiceError> {
    let sel = sel.unwrap_or_default();
    if keysel::is_empty(&sel) {
        return Err(ServiceError::InvalidArgument(
            "name the key by --fingerprint, --pubkey or --comment".into(),
        ));
    }
    let n = keysel::fingerprints(&sel).count() + keysel::comments(&sel).count();
    if n > MAX_SELECTOR_KEYS {
        return Err(ServiceError::InvalidArgument(format!(
            "{n} keys in one request: at most {MAX_SELECTOR_KEYS}"
        )));
    }
    for fp in keysel::fingerprints(&sel) {
        let b64 = fp.strip_prefix("SHA256:").unwrap_or("");
        if b64.len() != 43
            || !b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(ServiceError::InvalidArgument(format!(
                "{fp:?} is not a SHA256 key fingerprint: give it as `ssh-keygen -lf KEY` prints it (SHA256:…, 43 characters after the colon)"
            )));
        }
    }
    Ok(sel)
}

pub fn find_keys(
    state: &State,
    sel: Option<KeySelector>,
) -> Result<FindKeysResponse, ServiceError> {
    let sel = validate_selector(sel)?;
    let idx = state.keys.read().expect("not poisoned");
    let mut locations = idx.find(&sel);
    let mut command_hosts = idx.command_hosts();
    let revoked = state.revoked.read().expect("not poisoned");
    for l in &mut locations {
        l.host_revoked = revoked.contains(&l.host_id);
    }
    for h in &mut command_hosts {
        h.host_revoked = revoked.contains(&h.host_id);
    }
    Ok(FindKeysResponse {
        locations,
        hosts_indexed: u32::try_from(idx.hosts_indexed()).unwrap_or(u32::MAX),
        selector: Some(sel),
        command_hosts,
        unread_files: idx.unread_files(),
    })
}

fn new_sweep_id(now: i64) -> String {
    let mut r = [0u8; 3];
    SystemRandom::new()
        .fill(&mut r)
        .expect("system RNG available");
    format!("sw-{now}-{}", hex::encode(r))
}

fn command_for(job: &SweepJob) -> Command {
    Command {
        id: job.id.clone(),
        kind: "sweep".into(),
        sweep: Some(SweepCommand {
            sweep_id: job.id.clone(),
            selector: job.selector.clone(),
            remove: job.remove,
        }),
    }
}

/// Counts, and `expired` for hosts still pending after the deadline: the
/// stored record keeps `pending` (a late result is still recorded).
pub fn view(mut job: SweepJob, now: i64) -> SweepJob {
    let (mut done, mut pending, mut failed, mut expired, mut lines) = (0, 0, 0, 0, 0);
    for h in &mut job.hosts {
        if h.status == "pending" && now >= job.expires_ms {
            h.status = "expired".into();
        }
        match h.status.as_str() {
            "done" => done += 1,
            "failed" => failed += 1,
            "expired" => expired += 1,
            _ => pending += 1,
        }
        lines += h
            .files
            .iter()
            .filter(|f| f.status == "removed")
            .map(|f| f.lines.len() as u32)
            .sum::<u32>();
    }
    job.hosts_done = done;
    job.hosts_pending = pending;
    job.hosts_failed = failed;
    job.hosts_expired = expired;
    job.lines_removed = lines;
    job
}

/// Records the job first (durably), then pushes it to every connected
/// host; the others get it when their stream opens, until it expires.
pub async fn start(
    state: &State,
    admin: &str,
    req: StartSweepRequest,
) -> Result<SweepJob, ServiceError> {
    let selector = validate_selector(req.selector)?;
    let ttl_s = match req.ttl_s {
        0 => DEFAULT_SWEEP_TTL_S,
        t if t > MAX_SWEEP_TTL_S => {
            return Err(ServiceError::InvalidArgument(
                "a sweep may wait at most 90 days for offline hosts".into(),
            ));
        }
        t => t,
    };
    let now = now_ms();
    let mut hosts: Vec<SweepHost> = state
        .blocking(|s| s.list_hosts())
        .await?
        .into_iter()
        .filter(|h| h.revoked_ms == 0)
        .map(|h| SweepHost {
            host_id: h.host_id,
            hostname: h.hostname,
            status: "pending".into(),
            ..Default::default()
        })
        .collect();
    hosts.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    let job = SweepJob {
        id: new_sweep_id(now),
        selector: Some(selector),
        remove: req.remove,
        requested_by: admin.to_string(),
        created_ms: now,
        expires_ms: now + (ttl_s as i64) * 1000,
        hosts,
        ..Default::default()
    };
    let j = job.clone();
    state.blocking(move |s| s.put_sweep(&j)).await?;
    state.durable().await?;
    info!(sweep = %job.id, remove = job.remove, hosts = job.hosts.len(), %admin, "sweep started");
    // Hosts connected to other collectors of the fleet get it from them.
    state
        .bus
        .publish(crate::fleet_bus::FleetEvent::SweepStarted {
            sweep_id: job.id.clone(),
        });
    // Every connected host first, then one store call records them all:
    // the last agent must not wait on the bookkeeping of the others.
    let now = now_ms();
    let sent = state.streams.push_many(
        job.hosts.iter().map(|h| h.host_id.as_str()),
        &command_for(&job),
    );
    info!(sweep = %job.id, pushed = sent.len(), "sweep pushed to connected hosts");
    mark_sent(state, &job.id, sent, now).await;
    get(state, &job.id).await
}

/// Another collector stored sweep `id`: push it to this collector's
/// connected hosts that are still pending in it.
pub async fn push_stored(state: &State, id: &str) {
    let i = id.to_string();
    let job = match state.blocking(move |s| s.get_sweep(&i)).await {
        Ok(Some(job)) => job,
        Ok(None) => return,
        Err(e) => {
            warn!(sweep = %id, error = %e, "cannot read a sweep another collector started");
            return;
        }
    };
    let now = now_ms();
    if now >= job.expires_ms {
        return;
    }
    let sent = state.streams.push_many(
        job.hosts
            .iter()
            .filter(|h| h.status == "pending")
            .map(|h| h.host_id.as_str()),
        &command_for(&job),
    );
    if !sent.is_empty() {
        info!(sweep = %job.id, pushed = sent.len(), "sweep from another collector pushed to connected hosts");
    }
    mark_sent(state, &job.id, sent, now).await;
}

async fn mark_sent(state: &State, id: &str, hosts: Vec<String>, now: i64) {
    if hosts.is_empty() {
        return;
    }
    let id = id.to_string();
    let r = state
        .blocking(move |s| s.mark_sweep_sent(&id, &hosts, now))
        .await;
    if let Err(e) = r {
        warn!(error = %e, "could not record that a sweep was sent");
    }
}

pub async fn get(state: &State, id: &str) -> Result<SweepJob, ServiceError> {
    let i = id.to_string();
    let job = state
        .blocking(move |s| s.get_sweep(&i))
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no sweep {id:?}: `driftwatch keys sweeps` lists them"
            ))
        })?;
    Ok(view(job, now_ms()))
}

pub async fn list(state: &State) -> Result<ListSweepsResponse, ServiceError> {
    let settled = state.settled_sweeps.clone();
    let sweeps = state
        .blocking(move |s| summaries(s, &settled, now_ms()))
        .await?;
    Ok(ListSweepsResponse { sweeps })
}

/// A host's stream opened: push every unexpired sweep it has not run.
/// Reads the job headers and this host's entry of each, not whole jobs.
pub async fn on_connect(state: &State, host: &str) {
    let h = host.to_string();
    let jobs = state
        .blocking(move |s| {
            let now = now_ms();
            let mut pending = Vec::new();
            for job in s.sweep_headers()? {
                if now < job.expires_ms
                    && s.sweep_host(&job.id, &h)?
                        .is_some_and(|e| e.status == "pending")
                {
                    pending.push(job);
                }
            }
            Ok(pending)
        })
        .await;
    let jobs = match jobs {
        Ok(j) => j,
        Err(e) => {
            warn!(error = %e, "cannot read pending sweeps");
            return;
        }
    };
    for job in jobs {
        if state.streams.push(host, command_for(&job)) {
            info!(sweep = %job.id, "pending sweep pushed");
            mark_sent(state, &job.id, vec![host.to_string()], now_ms()).await;
        }
    }
}

/// A result came back: the first final result of a host is the record
/// (a command pushed twice is answered twice; the second changes nothing).
pub async fn on_result(state: &State, host: &str, r: CommandResult) {
    let status = match r.status.as_str() {
        "done" => "done",
        _ => "failed",
    };
    let sweep_id = r.command_id.clone();
    let (id, h) = (r.command_id.clone(), host.to_string());
    let now = now_ms();
    let res = state
        .blocking(move |s| {
            s.update_sweep_host(&id, &h, &|e| {
                if e.status != "pending" {
                    return false;
                }
                e.status = status.into();
                e.finished_ms = now;
                e.message = r.message.clone();
                e.files = r.files.clone();
                true
            })
        })
        .await;
    match res {
        Ok(Some(_)) => {
            if let Err(e) = state.durable().await {
                warn!(error = %e, "sweep result not yet durable");
            }
            info!(sweep = %sweep_id, %status, "sweep result recorded");
        }
        Ok(None) => warn!("result for an unknown sweep or host ignored"),
        Err(e) => warn!(error = %e, "cannot record a sweep result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::SweepFile;

    fn sel(fp: &str, comment: &str) -> Option<KeySelector> {
        Some(KeySelector {
            fingerprint: fp.into(),
            comment: comment.into(),
            ..Default::default()
        })
    }

    #[test]
    fn selectors_name_real_keys() {
        let fp = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8";
        assert!(validate_selector(sel(fp, "")).is_ok());
        assert!(validate_selector(sel("", "bob@laptop")).is_ok());
        assert!(validate_selector(sel(fp, "bob")).is_ok(), "any of them");
        let many = |fps: Vec<&str>| {
            Some(KeySelector {
                fingerprints: fps.into_iter().map(String::from).collect(),
                ..Default::default()
            })
        };
        assert!(validate_selector(many(vec![fp, fp])).is_ok());
        assert!(
            validate_selector(many(vec![fp, "SHA256:typo"]))
                .unwrap_err()
                .to_string()
                .contains("SHA256:typo")
        );
        for bad in [
            sel("", ""),
            sel("SHA256:short", ""),
            sel("MD5:aa", ""),
            None,
        ] {
            let e = validate_selector(bad).unwrap_err().to_string();
            assert!(e.contains("fingerprint"), "{e}");
        }
    }

    #[test]
    fn pending_hosts_expire_when_read_and_lines_are_counted() {
        let host = |id: &str, status: &str, lines: Vec<u32>| SweepHost {
            host_id: id.into(),
            status: status.into(),
            files: vec![SweepFile {
                status: "removed".into(),
                lines,
                ..Default::default()
            }],
            ..Default::default()
        };
        let job = SweepJob {
            expires_ms: 1000,
            hosts: vec![
                host("a", "done", vec![1, 3]),
                host("b", "pending", vec![]),
                host("c", "failed", vec![2]),
            ],
            ..Default::default()
        };
        let early = view(job.clone(), 999);
        assert_eq!(
            (
                early.hosts_done,
                early.hosts_pending,
                early.hosts_failed,
                early.hosts_expired
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(early.lines_removed, 3);
        let late = view(job, 1000);
        assert_eq!((late.hosts_pending, late.hosts_expired), (0, 1));
        assert_eq!(late.hosts[1].status, "expired");
    }

    #[test]
    fn summaries_are_kept_once_a_sweep_cannot_change() {
        use crate::store::{SledStore, SweepStore};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let job = |id: &str, created_ms| SweepJob {
            id: id.into(),
            created_ms,
            expires_ms: 10_000,
            hosts: ["a", "b"]
                .iter()
                .map(|h| SweepHost {
                    host_id: h.to_string(),
                    status: "pending".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        store.put_sweep(&job("old", 1)).unwrap();
        store.put_sweep(&job("new", 2)).unwrap();
        let answer = |id: &str, host: &str, status: &'static str| {
            store
                .update_sweep_host(id, host, &|e| {
                    e.status = status.into();
                    true
                })
                .unwrap()
                .unwrap();
        };
        let settled = SettledSweeps::default();
        let is_settled = |id: &str| settled.0.lock().unwrap().contains_key(id);
        let counts = |j: &SweepJob| {
            (
                j.hosts_done,
                j.hosts_pending,
                j.hosts_failed,
                j.hosts_expired,
            )
        };

        answer("old", "a", "done");
        let got = summaries(&store, &settled, 5_000).unwrap();
        assert_eq!(got[0].id, "new", "newest first");
        assert_eq!(counts(&got[1]), (1, 1, 0, 0));
        assert!(got.iter().all(|j| j.hosts.is_empty()));
        assert!(!is_settled("old") && !is_settled("new"));

        // Every host answered: settled, and served from memory from now on.
        answer("old", "b", "failed");
        let got = summaries(&store, &settled, 5_000).unwrap();
        assert_eq!(counts(&got[1]), (1, 0, 1, 0));
        assert!(is_settled("old") && !is_settled("new"));
        store.put_sweep(&job("old", 1)).unwrap(); // behind the cache's back
        assert_eq!(
            counts(&summaries(&store, &settled, 5_000).unwrap()[1]),
            (1, 0, 1, 0)
        );

        // Expired but a late result could still land: not yet settled.
        let got = summaries(&store, &settled, 10_000).unwrap();
        assert_eq!(counts(&got[0]), (0, 0, 0, 2));
        assert!(!is_settled("new"));
        summaries(&store, &settled, 10_000 + SETTLE_AFTER_EXPIRY_MS).unwrap();
        assert!(is_settled("new"));
    }
}
