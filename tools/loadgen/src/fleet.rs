//! The simulated fleet: one host certificate, one persistent mutual-TLS
//! connection and one real `Reporter` per agent.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use driftwatch_agent::report::Reporter;
use driftwatch_common::identity::Identity;
use driftwatch_common::pki::{Ca, write_key};
use driftwatch_common::proto::Snapshot;
use driftwatch_common::tls::ClientFiles;
use tokio::sync::Semaphore;

use crate::snapshots;

/// At most this many TLS handshakes at once: thousands at the same instant
/// only measure the accept queue.
const CONNECT_CONCURRENCY: usize = 64;

pub struct Plan {
    pub url: String,
    pub duration: Duration,
    /// Fraction of steady reports that carry a change (0..=1).
    pub change_rate: f64,
    /// Each agent reports this often; zero = as fast as acknowledged.
    pub interval: Duration,
    /// Every report in full (no delta), to measure full-snapshot intake.
    pub full_only: bool,
    /// Every agent from one source address (see `sources`).
    pub one_source: bool,
}

/// What one phase achieved, across all agents.
#[derive(Debug, Default)]
pub struct Phase {
    pub reports: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Acknowledgement latency of every successful report, microseconds.
    pub latencies_us: Vec<u64>,
    /// Encoded size of the acknowledged reports' wire (delta) form.
    pub wire_bytes: u64,
}

impl Phase {
    fn absorb(&mut self, o: Phase) {
        self.reports += o.reports;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.latencies_us.extend(o.latencies_us);
        self.wire_bytes += o.wire_bytes;
    }

    fn record(&mut self, r: Result<(), String>, took: Duration, wire: u64) {
        match r {
            Ok(()) => {
                self.reports += 1;
                self.latencies_us.push(took.as_micros() as u64);
                self.wire_bytes += wire;
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    pub fn per_s(&self) -> f64 {
        self.reports as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The q-quantile (0..=1) of the latencies, milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Issues `n` host certificates from the CA in `pki_dir` into `out`.
pub fn issue_certs(
    pki_dir: &Path,
    ca_path: &Path,
    out: &Path,
    n: usize,
) -> anyhow::Result<Vec<ClientFiles>> {
    let ca =
        Ca::load(pki_dir).with_context(|| format!("loading the CA from {}", pki_dir.display()))?;
    (0..n)
        .map(|i| {
            let issued = ca.issue_client(&Identity::Host(host_id(i)))?;
            let cert = out.join(format!("{i}.pem"));
            let key = out.join(format!("{i}.key"));
            std::fs::write(&cert, &issued.cert_pem)?;
            write_key(&key, issued.key_pem.as_deref().unwrap_or_default())?;
            Ok(ClientFiles {
                ca: ca_path.to_path_buf(),
                cert: Some(cert),
                key: Some(key),
            })
        })
        .collect()
}

pub fn host_id(i: usize) -> String {
    format!("loadgen-{i:06}")
}

struct Agent {
    reporter: Reporter,
    snap: Snapshot,
    seq: u64,
    changes: u64,
}

impl Agent {
    /// Turns the held snapshot into the next one the agent would spool
    /// (in place: a copy per report would cost the load generator more CPU
    /// than the collector spends on a delta).
    fn advance(&mut self, change_rate: f64) {
        self.seq += 1;
        if fastrand::f64() < change_rate {
            self.changes += 1;
            snapshots::change(&mut self.snap, self.changes);
        }
        self.snap.seq = self.seq;
        self.snap.collected_at_ms = driftwatch_common::time::now_ms();
    }

    /// Sends the held snapshot; returns its bytes on the wire.
    async fn send(&mut self) -> (Result<(), String>, u64) {
        let r = self
            .reporter
            .send(&self.snap)
            .await
            .map_err(|e| e.to_string());
        (r, self.reporter.last_wire_bytes)
    }
}

/// Phase 1: every agent connects and sends its first, full snapshot.
/// Phase 2: until `duration` is up, every agent sends the next snapshot
/// (a delta unless `full_only`) each interval, or as soon as the previous
/// one was acknowledged.
pub async fn run(
    plan: Plan,
    files: Vec<ClientFiles>,
    template: Arc<Snapshot>,
    between: impl FnOnce(),
) -> (Phase, Phase) {
    let refresh = if plan.full_only {
        Duration::ZERO
    } else {
        // Longer than any run: deltas only, as between two refreshes.
        Duration::from_secs(365 * 86_400)
    };
    let interval_s = plan.interval.as_secs().max(1);
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let (url, template, gate) = (plan.url.clone(), template.clone(), gate.clone());
        let source = crate::sources::source_for(&url, i, plan.one_source);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("never closed");
            let mut a = Agent {
                reporter: Reporter::new(driftwatch_agent::failover::CollectorSet::one(url), f)
                    .with_full_refresh(refresh)
                    .with_source(source),
                snap: snapshots::for_host(&template, i, interval_s),
                seq: 0,
                changes: 0,
            };
            let mut phase = Phase::default();
            a.advance(0.0);
            let t = Instant::now();
            let (r, wire) = a.send().await;
            phase.record(r, t.elapsed(), wire);
            (a, phase)
        }));
    }
    let mut agents = Vec::new();
    let mut first = Phase::default();
    for t in tasks {
        let (a, p) = t.await.expect("agent task");
        agents.push(a);
        first.absorb(p);
    }
    first.elapsed = start.elapsed();
    between();

    let n = agents.len().max(1) as u32;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = Vec::new();
    for (i, mut a) in agents.into_iter().enumerate() {
        let (interval, change_rate) = (plan.interval, plan.change_rate);
        tasks.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            // Spread the agents evenly over one interval.
            let mut next = start + interval * (i as u32) / n;
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                a.advance(change_rate);
                let t = Instant::now();
                let (r, wire) = a.send().await;
                phase.record(r, t.elapsed(), wire);
                // A late agent does not send a burst to catch up.
                next = (next + interval).max(Instant::now());
            }
            phase
        }));
    }
    let mut steady = Phase::default();
    for t in tasks {
        steady.absorb(t.await.expect("agent task"));
    }
    steady.elapsed = start.elapsed();
    (first, steady)
}
