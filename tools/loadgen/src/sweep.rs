//! `--sweep`: how long an offboarding sweep takes to reach a fleet. Every
//! simulated agent connects with its own certificate, reports once (a small
//! full snapshot, so the collector knows the host) and holds its
//! `Commands` stream open on the same connection, as the agent does
//! (`agent/src/commands.rs`). Then, as an admin (the PKI dir's
//! `admin.pem`), the tool starts a dry-run sweep for a key no agent has and
//! measures, from the StartSweep call, when each agent receives its
//! command; agents answer as an agent without the key does (`done`,
//! nothing would be removed), and the tool polls GetSweep until the
//! collector has recorded every result.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use driftwatch_common::client::{connect, connect_from};
use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{
    Command, CommandResult, GetSweepRequest, HostSection, KeySelector, ReportRequest, Snapshot,
    StartSweepRequest, SweepJob, section::Body,
};
use driftwatch_common::snapshot::ok_section;
use driftwatch_common::tls::ClientFiles;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// Handshakes at once while the fleet connects (as the report mode).
const CONNECT_CONCURRENCY: usize = 64;

/// A key no simulated agent holds (a well-formed SHA256 fingerprint).
const ABSENT_KEY: &str = "SHA256:SJh1tjY9ANkozKg1Q8py5OSQtO4f5SYlGCKJ4Dpiq0U";

#[derive(clap::Args, Debug)]
pub struct SweepOpts {
    /// Sweep mode: agents hold Commands streams; measure a dry-run sweep's
    /// fan-out instead of report throughput (--duration, --rate, --full,
    /// --change-rate do not apply).
    #[arg(long)]
    pub sweep: bool,
    /// Sweeps to run one after another on the same connections.
    #[arg(long, default_value_t = 3)]
    pub sweep_runs: usize,
    /// Agents receive the command but never answer (only fan-out measured).
    #[arg(long)]
    pub sweep_no_answer: bool,
    /// Give up on a sweep (missing agents or results) after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub sweep_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct RunOut {
    /// StartSweep call until its answer came back.
    pub start_rpc_ms: f64,
    /// Why StartSweep failed, if it did (the sweep may still have gone out).
    pub start_error: Option<String>,
    /// Agents whose command arrived (of `agents_connected`).
    pub received: usize,
    pub receive_p50_ms: f64,
    pub receive_p99_ms: f64,
    pub receive_max_ms: f64,
    /// StartSweep call until GetSweep showed no host pending (polled every
    /// 100 ms); None without answers or when it timed out.
    pub all_recorded_ms: Option<f64>,
    pub hosts_in_job: u32,
    pub hosts_done: u32,
    pub hosts_pending: u32,
}

#[derive(Debug, Serialize)]
pub struct Out {
    pub agents: usize,
    pub agents_connected: usize,
    pub connect_errors: usize,
    pub first_connect_error: Option<String>,
    pub connect_seconds: f64,
    pub answer: bool,
    pub runs: Vec<RunOut>,
}

/// What the collector needs to list the host: a small full snapshot.
fn first_snapshot(i: usize) -> Snapshot {
    Snapshot {
        seq: 1,
        agent_epoch: fastrand::u64(1..),
        collected_at_ms: driftwatch_common::time::now_ms(),
        agent_version: format!("loadgen-{}", env!("CARGO_PKG_VERSION")),
        sections: vec![ok_section(
            Body::Host(HostSection {
                hostname: format!("sweep-{i:06}.loadgen"),
                machine_id: format!("{i:032x}"),
                ..Default::default()
            }),
            0,
        )],
        ..Default::default()
    }
}

/// What an agent without the key answers a dry run with
/// (`driftwatch_agent::sweep::run`: no file holds it).
fn answer(cmd: &Command) -> CommandResult {
    CommandResult {
        command_id: cmd.id.clone(),
        status: "done".into(),
        message: "would remove 0 line(s)".into(),
        files: vec![],
    }
}

/// One agent: connect, report, open the stream; then forward the arrival
/// time of every command and answer it.
async fn agent(
    i: usize,
    url: String,
    files: ClientFiles,
    reply: bool,
    arrived: mpsc::UnboundedSender<(String, Instant)>,
    gate: Arc<Semaphore>,
    source: Option<std::net::IpAddr>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let _permit = gate.acquire().await.expect("never closed");
    let ch = connect_from(&url, &files, source)
        .await
        .map_err(|e| e.to_string())?;
    let mut client = AgentClient::new(ch);
    client
        .report(ReportRequest {
            snapshot: Some(first_snapshot(i)),
        })
        .await
        .map_err(|s| format!("report: {s}"))?;
    let (tx, rx) = mpsc::channel::<CommandResult>(16);
    let mut inbound = client
        .commands(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("commands: {s}"))?
        .into_inner();
    Ok(tokio::spawn(async move {
        while let Ok(Some(cmd)) = inbound.message().await {
            let _ = arrived.send((cmd.id.clone(), Instant::now()));
            if reply && tx.send(answer(&cmd)).await.is_err() {
                break;
            }
        }
    }))
}

fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(
    opts: &SweepOpts,
    url: &str,
    ca: &Path,
    pki_dir: &Path,
    files: Vec<ClientFiles>,
    one_source: bool,
) -> anyhow::Result<Out> {
    let admin = ClientFiles {
        ca: ca.to_path_buf(),
        cert: Some(pki_dir.join("admin.pem")),
        key: Some(pki_dir.join("admin-key.pem")),
    };
    if !pki_dir.join("admin.pem").exists() {
        bail!(
            "{} has no admin.pem (pki init makes one): sweeps need an admin certificate",
            pki_dir.display()
        );
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run_async(opts, url, admin, files, one_source))
}

async fn run_async(
    opts: &SweepOpts,
    url: &str,
    admin: ClientFiles,
    files: Vec<ClientFiles>,
    one_source: bool,
) -> anyhow::Result<Out> {
    let n = files.len();
    let reply = !opts.sweep_no_answer;
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let t = Instant::now();
    let tasks: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            tokio::spawn(agent(
                i,
                url.to_string(),
                f,
                reply,
                arrived_tx.clone(),
                gate.clone(),
                crate::sources::source_for(url, i, one_source),
            ))
        })
        .collect();
    drop(arrived_tx);
    let mut streams = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        match task.await.expect("agent task") {
            Ok(h) => streams.push(h),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let connect_seconds = t.elapsed().as_secs_f64();
    let connected = streams.len();
    eprintln!(
        "{connected} of {n} agents hold a Commands stream ({errors} failed) after {connect_seconds:.1}s"
    );
    let mut admin_client =
        AdminClient::new(connect(url, &admin).await.context("connecting as admin")?)
            .max_decoding_message_size(256 << 20);

    let mut runs = Vec::new();
    for r in 0..opts.sweep_runs.max(1) {
        // Stray arrivals of an earlier sweep are not this one's.
        while arrived.try_recv().is_ok() {}
        let t0 = Instant::now();
        // The RPC may fail (the admin client gives up after 60 s, like the
        // CLI) while the collector goes on pushing: arrivals still count,
        // and the sweep is then known by the id its commands carry.
        let started = admin_client
            .start_sweep(StartSweepRequest {
                selector: Some(KeySelector {
                    fingerprint: ABSENT_KEY.into(),
                    ..Default::default()
                }),
                remove: false,
                ttl_s: 3600,
            })
            .await;
        let start_rpc = t0.elapsed();
        let (mut job_id, mut start_error) = (None, None);
        let mut last = SweepJob::default();
        match started {
            Ok(j) => {
                last = j.into_inner();
                job_id = Some(last.id.clone());
            }
            Err(e) => {
                eprintln!("StartSweep failed after {start_rpc:.1?}: {e}");
                start_error = Some(e.to_string());
            }
        }
        let deadline = t0 + opts.sweep_timeout;
        let mut times = Vec::with_capacity(connected);
        while times.len() < connected {
            match tokio::time::timeout_at(deadline.into(), arrived.recv()).await {
                Ok(Some((id, at))) if job_id.get_or_insert_with(|| id.clone()) == &id => {
                    times.push(at.saturating_duration_since(t0))
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut all_recorded = None;
        if let (true, Some(id)) = (reply, &job_id) {
            loop {
                last = admin_client
                    .get_sweep(GetSweepRequest { id: id.clone() })
                    .await
                    .context("GetSweep")?
                    .into_inner();
                if last.hosts_pending == 0 {
                    all_recorded = Some(t0.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        times.sort_unstable();
        let out = RunOut {
            start_rpc_ms: start_rpc.as_secs_f64() * 1000.0,
            start_error,
            received: times.len(),
            receive_p50_ms: quantile_ms(&times, 0.5),
            receive_p99_ms: quantile_ms(&times, 0.99),
            receive_max_ms: quantile_ms(&times, 1.0),
            all_recorded_ms: all_recorded,
            hosts_in_job: last.hosts.len() as u32,
            hosts_done: last.hosts_done,
            hosts_pending: last.hosts_pending,
        };
        eprintln!("sweep {} ({}) measured", r + 1, job_id.unwrap_or_default());
        runs.push(out);
    }
    for s in streams {
        s.abort();
    }
    Ok(Out {
        agents: n,
        agents_connected: connected,
        connect_errors: errors,
        first_connect_error: first_error,
        connect_seconds,
        answer: reply,
        runs,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub fn print_human(w: &mut dyn std::io::Write, o: &Out) -> std::io::Result<()> {
    writeln!(
        w,
        "{} agents, {} connected with Commands streams ({} errors) in {:.1}s; agents {}",
        o.agents,
        o.agents_connected,
        o.connect_errors,
        o.connect_seconds,
        if o.answer { "answer" } else { "do not answer" },
    )?;
    if let Some(e) = &o.first_connect_error {
        writeln!(w, "  first connect error: {e}")?;
    }
    for (i, r) in o.runs.iter().enumerate() {
        writeln!(
            w,
            "  sweep {}: StartSweep {:.0} ms; received by {}/{}: p50 {:.0} ms p99 {:.0} ms max {:.0} ms; all results recorded {}; job {} hosts, {} done, {} pending",
            i + 1,
            r.start_rpc_ms,
            r.received,
            o.agents_connected,
            r.receive_p50_ms,
            r.receive_p99_ms,
            r.receive_max_ms,
            r.all_recorded_ms
                .map_or("n/a".into(), |v| format!("{v:.0} ms")),
            r.hosts_in_job,
            r.hosts_done,
            r.hosts_pending,
        )?;
        if let Some(e) = &r.start_error {
            writeln!(w, "    StartSweep failed: {e}")?;
        }
    }
    let m = |f: fn(&RunOut) -> f64| median(o.runs.iter().map(f).collect());
    writeln!(
        w,
        "  median of {} sweeps: StartSweep {:.0} ms; receive p50 {:.0} ms p99 {:.0} ms max {:.0} ms; all recorded {}",
        o.runs.len(),
        m(|r| r.start_rpc_ms),
        m(|r| r.receive_p50_ms),
        m(|r| r.receive_p99_ms),
        m(|r| r.receive_max_ms),
        if o.runs.iter().all(|r| r.all_recorded_ms.is_some()) {
            format!("{:.0} ms", m(|r| r.all_recorded_ms.unwrap_or(0.0)))
        } else {
            "n/a".into()
        },
    )
}
