//! driftwatch-loadgen: a simulated fleet against a real collector. N agents,
//! each with its own host certificate and persistent mutual-TLS connection,
//! send this machine's snapshot (full first, then deltas through the real
//! agent `Reporter`), and the run reports throughput, acknowledgement
//! latency and what the collector process paid for it.
//!
//! Loopback or lab use only: it needs the CA key (`--pki-dir`) to issue
//! its certificates.

mod fleet;
mod procstat;
mod snapshots;
mod sources;
mod sweep;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Serialize;

/// Fleet load generator for a driftwatch collector.
///
/// Exit codes: 0 the run finished (errors, if any, are in the output);
/// 1 it could not start (bad arguments, PKI, collection); 3 every report
/// failed.
#[derive(Debug, Parser)]
#[command(name = "driftwatch-loadgen", version)]
struct Args {
    /// Collector URL, e.g. https://localhost:7443.
    #[arg(long)]
    collector: String,
    /// CA certificate the collector's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// PKI directory holding the CA key (`driftwatch-collector pki init`):
    /// the host certificates are issued from it.
    #[arg(long)]
    pki_dir: PathBuf,
    /// Simulated agents (one connection each).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// How long the steady (delta) phase runs, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Fraction of steady reports carrying a change (a package upgraded).
    #[arg(long, default_value_t = 0.01)]
    change_rate: f64,
    /// Each agent reports this often (e.g. 60s); 0 = as fast as the
    /// collector acknowledges (closed loop), which measures the ceiling.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Total reports/s to aim for instead of --interval: each agent's
    /// interval becomes agents / rate.
    #[arg(long)]
    rate: Option<f64>,
    /// Every report travels in full (measures full-snapshot intake).
    #[arg(long)]
    full: bool,
    /// The collector's pid, for CPU and RSS; default: the one process
    /// named driftwatch-collector, if there is exactly one.
    #[arg(long)]
    collector_pid: Option<u32>,
    /// The collector's data dir, for bytes on disk per report.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Connect every agent from one address (the kernel's choice), as a
    /// fleet behind one NAT would; by default each agent of a loopback
    /// collector connects from its own 127.64.0.0/10 address, as real
    /// agents each have their own.
    #[arg(long)]
    one_source: bool,
    #[command(flatten)]
    sweep: sweep::SweepOpts,
}

#[derive(Debug, Serialize)]
struct PhaseOut {
    reports: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    reports_per_s: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    ack_max_ms: f64,
    wire_bytes_per_report: f64,
    collector_cpu_cores: Option<f64>,
    collector_cpu_ms_per_report: Option<f64>,
    disk_bytes_per_report: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Out {
    agents: usize,
    mode: &'static str,
    change_rate: f64,
    interval_ms: u64,
    snapshot_sections: usize,
    snapshot_bytes: usize,
    /// Connect + first (full) report of every agent.
    connect_and_full: PhaseOut,
    /// Until --duration: deltas (or fulls with --full).
    steady: PhaseOut,
    collector_pid: Option<u32>,
    collector_rss_before_bytes: Option<u64>,
    collector_rss_after_bytes: Option<u64>,
    /// RSS growth from before the fleet connected to the end, per agent.
    collector_rss_bytes_per_host: Option<f64>,
    /// Steady disk bytes per report × reports per host per day at a 60 s
    /// interval.
    disk_bytes_per_host_per_day_at_60s: Option<f64>,
    loadgen_cpu_cores_steady: Option<f64>,
}

fn phase_out(p: &mut fleet::Phase, cpu: Option<(f64, f64)>, disk: Option<(u64, u64)>) -> PhaseOut {
    let n = p.reports.max(1) as f64;
    let secs = p.elapsed.as_secs_f64();
    PhaseOut {
        reports: p.reports,
        errors: p.errors,
        first_error: p.first_error.clone(),
        seconds: secs,
        reports_per_s: p.per_s(),
        ack_p50_ms: p.quantile_ms(0.5),
        ack_p99_ms: p.quantile_ms(0.99),
        ack_max_ms: p.quantile_ms(1.0),
        wire_bytes_per_report: p.wire_bytes as f64 / n,
        collector_cpu_cores: cpu.map(|(a, b)| (b - a) / secs.max(1e-9)),
        collector_cpu_ms_per_report: cpu.map(|(a, b)| (b - a) * 1000.0 / n),
        disk_bytes_per_report: disk.map(|(a, b)| b.saturating_sub(a) as f64 / n),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("driftwatch-loadgen: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.change_rate) {
        bail!("--change-rate is a fraction between 0 and 1");
    }
    // Thousands of connections need thousands of descriptors.
    let _ = driftwatch_common::fd_limit::raise_to_hard();
    let interval = match args.rate {
        Some(r) if r > 0.0 => Duration::from_secs_f64(args.agents as f64 / r),
        Some(_) => bail!("--rate must be positive"),
        None => args.interval,
    };
    let pid = args.collector_pid.or_else(procstat::find_collector);
    let work = tempfile::Builder::new()
        .prefix("driftwatch-loadgen.")
        .tempdir()
        .context("making a work dir for the certificates")?;
    let files = fleet::issue_certs(&args.pki_dir, &args.ca, work.path(), args.agents)?;
    if args.sweep.sweep {
        let out = sweep::run(
            &args.sweep,
            &args.collector,
            &args.ca,
            &args.pki_dir,
            files,
            args.one_source,
        )?;
        let mut stdout = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &out)?;
            writeln!(stdout)?;
        } else {
            sweep::print_human(&mut stdout, &out)?;
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let template = snapshots::collect_template()?;
    let snapshot_bytes = prost::Message::encoded_len(&template);
    let snapshot_sections = template.sections.len();

    let sample = || pid.and_then(procstat::sample);
    let disk = || args.data_dir.as_deref().map(procstat::dir_bytes);
    let before = sample();
    let self_pid = std::process::id();

    let rt = tokio::runtime::Runtime::new()?;
    let plan = fleet::Plan {
        url: args.collector.clone(),
        duration: args.duration,
        change_rate: args.change_rate,
        interval,
        full_only: args.full,
        one_source: args.one_source,
    };
    let mut mid = None;
    let (mut first, mut steady) = rt.block_on(fleet::run(plan, files, Arc::new(template), || {
        mid = Some((sample(), disk(), procstat::sample(self_pid)));
    }));
    let after = sample();
    let disk_after = disk();
    let self_after = procstat::sample(self_pid);
    let (mid_c, mid_disk, mid_self) = mid.unwrap_or_default();

    let pair =
        |a: Option<procstat::Sample>, b: Option<procstat::Sample>| Some((a?.cpu_s, b?.cpu_s));
    let disk_pair = |a: Option<u64>, b: Option<u64>| Some((a?, b?));
    let first_out = phase_out(&mut first, pair(before, mid_c), None);
    let steady_out = phase_out(
        &mut steady,
        pair(mid_c, after),
        disk_pair(mid_disk, disk_after),
    );
    let out = Out {
        agents: args.agents,
        mode: if args.full { "full" } else { "delta" },
        change_rate: args.change_rate,
        interval_ms: interval.as_millis() as u64,
        snapshot_sections,
        snapshot_bytes,
        disk_bytes_per_host_per_day_at_60s: steady_out.disk_bytes_per_report.map(|b| b * 1440.0),
        loadgen_cpu_cores_steady: pair(mid_self, self_after)
            .map(|(a, b)| (b - a) / steady.elapsed.as_secs_f64().max(1e-9)),
        connect_and_full: first_out,
        steady: steady_out,
        collector_pid: pid,
        collector_rss_before_bytes: before.map(|s| s.rss_bytes),
        collector_rss_after_bytes: after.map(|s| s.rss_bytes),
        collector_rss_bytes_per_host: before
            .zip(after)
            .map(|(b, a)| (a.rss_bytes as f64 - b.rss_bytes as f64) / args.agents as f64),
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        print_human(&mut stdout, &out)?;
    }
    if out.steady.reports == 0 && out.connect_and_full.reports == 0 {
        return Ok(std::process::ExitCode::from(3));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn opt(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.digits$}{unit}"))
}

fn print_human(w: &mut dyn Write, o: &Out) -> std::io::Result<()> {
    writeln!(
        w,
        "{} agents, {} mode, change rate {}, interval {} ms, snapshot {} sections / {} bytes",
        o.agents, o.mode, o.change_rate, o.interval_ms, o.snapshot_sections, o.snapshot_bytes
    )?;
    for (name, p) in [("connect+full", &o.connect_and_full), ("steady", &o.steady)] {
        writeln!(
            w,
            "{name:>13}: {} reports ({} errors) in {:.1}s = {:.0}/s; ack p50 {:.1} ms p99 {:.1} ms max {:.1} ms; wire {:.0} B/report; collector CPU {} cores, {} per report; disk {}",
            p.reports,
            p.errors,
            p.seconds,
            p.reports_per_s,
            p.ack_p50_ms,
            p.ack_p99_ms,
            p.ack_max_ms,
            p.wire_bytes_per_report,
            opt(p.collector_cpu_cores, "", 2),
            opt(p.collector_cpu_ms_per_report, " ms", 3),
            opt(p.disk_bytes_per_report, " B/report", 0),
        )?;
        if let Some(e) = &p.first_error {
            writeln!(w, "{:>13}  first error: {e}", "")?;
            writeln!(
                w,
                "{:>13}  errors: agents reconnected and resent in full, so these figures are not the collector's intake",
                ""
            )?;
        }
    }
    writeln!(
        w,
        "collector: RSS {} -> {} ({} per host); disk {} per host per day at 60 s; loadgen CPU {} cores",
        opt(
            o.collector_rss_before_bytes.map(|b| b as f64 / 1048576.0),
            " MiB",
            1
        ),
        opt(
            o.collector_rss_after_bytes.map(|b| b as f64 / 1048576.0),
            " MiB",
            1
        ),
        opt(o.collector_rss_bytes_per_host, " B", 0),
        opt(
            o.disk_bytes_per_host_per_day_at_60s.map(|b| b / 1024.0),
            " KiB",
            1
        ),
        opt(o.loadgen_cpu_cores_steady, "", 2),
    )
}
