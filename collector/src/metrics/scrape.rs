//! What the scrape-time gauges read from storage. A read that fails leaves
//! its families without series (the scrape shows the gap) instead of zeros
//! that would look like a fleet that vanished.

use driftwatch_common::metrics::Samples;
use driftwatch_common::proto::{Finding, SweepJob};
use driftwatch_common::time::now_ms;
use tracing::warn;

use crate::store::StoreError;

/// What the scrape-time gauges read, implemented by the services' state:
/// the metrics see the fleet through this and never the services' types,
/// so the dependency points one way (services → metrics).
pub trait FleetView: Send + Sync + 'static {
    /// Every host's state, one of [`HOST_STATES`], as of `now_ms`.
    fn host_states(&self, now_ms: i64) -> Result<Vec<&'static str>, StoreError>;
    fn findings(&self) -> Result<Vec<Finding>, StoreError>;
    fn sweeps(&self, now_ms: i64) -> Result<Vec<SweepJob>, StoreError>;
    /// Hosts with an open command stream.
    fn connected_agents(&self) -> usize;
    /// RAID arrays by host and verdict, revoked hosts left out.
    fn raid_arrays(&self) -> Samples;
}

pub const HOST_STATES: [&str; 4] = ["fresh", "stale", "gone", "revoked"];

/// Finding kinds (drift.proto), then what any other is counted as.
const FINDING_KINDS: [&str; 9] = [
    "peer_outlier",
    "peer_missing",
    "baseline_added",
    "baseline_removed",
    "baseline_changed",
    "policy",
    "stale",
    "gone",
    "other",
];

pub fn hosts_by_state(fleet: &dyn FleetView) -> Samples {
    let states = match fleet.host_states(now_ms()) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "metrics: listing hosts failed");
            return vec![];
        }
    };
    let mut counts = [0u64; HOST_STATES.len()];
    for s in states {
        if let Some(i) = HOST_STATES.iter().position(|x| *x == s) {
            counts[i] += 1;
        }
    }
    HOST_STATES
        .iter()
        .zip(counts)
        .map(|(s, n)| (vec![s.to_string()], n as f64))
        .collect()
}

/// Open findings by severity, and by kind and severity.
pub fn findings(fleet: &dyn FleetView) -> Vec<Samples> {
    let findings = match fleet.findings() {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "metrics: listing findings failed");
            return vec![];
        }
    };
    let sevs = crate::drift::SEVERITIES;
    let mut by_kind = vec![vec![0u64; sevs.len()]; FINDING_KINDS.len()];
    for f in findings.iter().filter(|f| f.resolved_ms == 0) {
        let Some(s) = sevs.iter().position(|x| *x == f.severity) else {
            continue;
        };
        let k = FINDING_KINDS
            .iter()
            .position(|x| *x == f.kind)
            .unwrap_or(FINDING_KINDS.len() - 1);
        by_kind[k][s] += 1;
    }
    let by_severity = sevs
        .iter()
        .enumerate()
        .map(|(s, sev)| {
            let n: u64 = by_kind.iter().map(|k| k[s]).sum();
            (vec![sev.to_string()], n as f64)
        })
        .collect();
    let mut kinds = Vec::new();
    for (k, kind) in FINDING_KINDS.iter().enumerate() {
        for (s, sev) in sevs.iter().enumerate() {
            kinds.push((
                vec![kind.to_string(), sev.to_string()],
                by_kind[k][s] as f64,
            ));
        }
    }
    vec![by_severity, kinds]
}

/// Sweeps by state, and those past their deadline with a host failed or
/// expired.
pub fn sweeps(fleet: &dyn FleetView) -> Vec<Samples> {
    let now = now_ms();
    let jobs = match fleet.sweeps(now) {
        Ok(j) => j,
        Err(e) => {
            warn!(error = %e, "metrics: listing sweeps failed");
            return vec![];
        }
    };
    let (counts, overdue) = classify_sweeps(&jobs, now);
    let by_state = SWEEP_STATES
        .iter()
        .zip(counts)
        .map(|(s, n)| (vec![s.to_string()], n as f64))
        .collect();
    vec![by_state, vec![(vec![], overdue as f64)]]
}

const SWEEP_STATES: [&str; 3] = ["running", "done", "incomplete"];

/// Sweeps per `SWEEP_STATES`, and how many are past their deadline with a
/// host failed or expired (pending hosts turn expired at the deadline).
fn classify_sweeps(jobs: &[SweepJob], now: i64) -> ([u64; 3], u64) {
    let mut counts = [0u64; 3];
    let mut overdue = 0u64;
    for v in jobs {
        let unfinished = v.hosts_failed + v.hosts_expired > 0;
        let i = if v.hosts_pending > 0 {
            0
        } else if unfinished {
            2
        } else {
            1
        };
        counts[i] += 1;
        if now >= v.expires_ms && unfinished {
            overdue += 1;
        }
    }
    (counts, overdue)
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::{HostSummary, SweepJob};

    #[test]
    fn a_sweep_is_overdue_past_its_deadline_with_a_host_failed_or_expired() {
        let job = |pending, failed, expired, expires_ms| SweepJob {
            hosts_done: 1,
            hosts_pending: pending,
            hosts_failed: failed,
            hosts_expired: expired,
            expires_ms,
            ..Default::default()
        };
        let now = 1_000;
        let jobs = [
            job(1, 1, 0, 2_000), // running, a host failed, deadline ahead
            job(0, 1, 0, 2_000), // incomplete before its deadline: not overdue
            job(0, 0, 2, 900),   // past the deadline, two never answered
            job(0, 1, 0, 1_000), // past it (at it), one failed
            job(0, 0, 0, 500),   // done, deadline long past
        ];
        let (counts, overdue) = super::classify_sweeps(&jobs, now);
        assert_eq!(counts, [1, 1, 3]);
        assert_eq!(overdue, 2);
    }

    #[test]
    fn host_states_follow_the_thresholds() {
        let f = crate::drift::Settings {
            stale_after_ms: Some(5 * 60_000),
            ..Default::default()
        };
        let now = 100 * 86_400_000;
        let h = |last: i64, revoked: i64| HostSummary {
            last_seen_ms: last,
            revoked_ms: revoked,
            ..Default::default()
        };
        let state = |h: &HostSummary| crate::drift::host_state(h, &f, now);
        assert_eq!(state(&h(now - 1_000, 0)), "fresh");
        assert_eq!(state(&h(now - 5 * 60_000 - 1, 0)), "stale");
        assert_eq!(state(&h(now - 25 * 3_600_000, 0)), "gone");
        assert_eq!(state(&h(now, 1)), "revoked");
        let enrolled = HostSummary {
            enrolled_ms: now - 1_000,
            ..Default::default()
        };
        assert_eq!(state(&enrolled), "fresh", "judged from its enrollment");
    }
}
