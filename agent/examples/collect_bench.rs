//! Agent collection benchmark: CPU time of one full collection, per section
//! and in total (median over runs), and the bytes a report puts on the
//! wire, full and as an unchanged host's delta.
//!
//! ```sh
//! cargo run --release -p driftwatch-agent --example collect_bench -- --runs 15
//! cargo run --release -p driftwatch-agent --example collect_bench -- \
//!     --synthetic target/bench-root --extra-procs 2000 --runs 15
//! ```
//!
//! CPU is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user + system),
//! so a wait does not count and other processes on the machine do not
//! either; a subprocess's CPU (none on the hot path) would not be counted. The collectors run on this
//! thread, one after the other, as the agent runs them.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_agent::collect::{self, Context};
use driftwatch_agent::hostfs::HostFs;
use driftwatch_agent::report::delta;
use driftwatch_common::proto::Snapshot;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJYMRoqyxAiD+q3PQTR+iHWL0SKU9/jeEHdwHEoixGAs";

/// This thread's CPU time (user + system), nanoseconds. /proc's
/// schedstat is only brought up to date at scheduler ticks, too coarse for
/// sections that take under a millisecond.
#[allow(unsafe_code)]
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A host tree like a busy shared server's: 1,000 users each with an
/// authorized_keys file, 200 logrotate rules, and a dpkg status four times
/// this machine's (package names made distinct).
fn synthetic_root(dir: &Path) -> std::io::Result<()> {
    let w = |rel: &str, text: &str| -> std::io::Result<()> {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
        std::fs::write(p, text)
    };
    w("etc/hostname", "bench-host\n")?;
    w("etc/machine-id", "0123456789abcdef0123456789abcdef\n")?;
    w(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"13\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n",
    )?;
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/bash\n");
    for i in 0..1000 {
        passwd.push_str(&format!(
            "user{i}:x:{}:{}::/home/user{i}:/bin/bash\n",
            2000 + i,
            2000 + i
        ));
        w(
            &format!("home/user{i}/.ssh/authorized_keys"),
            &format!("{KEY} user{i}@laptop\nfrom=\"10.0.0.0/8\" {KEY} user{i}@ci\n"),
        )?;
    }
    w("etc/passwd", &passwd)?;
    w(
        "etc/ssh/sshd_config",
        "PermitRootLogin no\nPasswordAuthentication no\n",
    )?;
    w(
        "etc/logrotate.conf",
        "weekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n",
    )?;
    for i in 0..200 {
        w(
            &format!("etc/logrotate.d/app{i}"),
            &format!(
                "/var/log/app{i}/*.log {{\n    daily\n    rotate 14\n    compress\n    missingok\n    notifempty\n    postrotate\n        systemctl reload app{i} >/dev/null 2>&1 || true\n    endscript\n}}\n"
            ),
        )?;
    }
    w(
        "etc/rsyslog.conf",
        "module(load=\"imuxsock\")\n*.info;mail.none /var/log/messages\nauth,authpriv.* /var/log/auth.log\n*.* @@logs.example.com:514\n",
    )?;
    let real = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
    let mut status = String::new();
    for copy in 0..4 {
        for line in real.lines() {
            match line.strip_prefix("Package: ") {
                Some(name) if copy > 0 => status.push_str(&format!("Package: {name}-copy{copy}\n")),
                _ => {
                    status.push_str(line);
                    status.push('\n');
                }
            }
        }
    }
    w("var/lib/dpkg/status", &status)?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut runs = 15usize;
    let mut root: Option<PathBuf> = None;
    let mut synthetic: Option<PathBuf> = None;
    let mut extra = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--runs" => runs = val().parse().expect("--runs N"),
            "--root" => root = Some(val().into()),
            "--synthetic" => synthetic = Some(val().into()),
            "--extra-procs" => extra = val().parse().expect("--extra-procs N"),
            _ => panic!(
                "usage: collect_bench [--runs N] [--root DIR | --synthetic DIR] [--extra-procs N]"
            ),
        }
    }
    if let Some(dir) = &synthetic {
        let _ = std::fs::remove_dir_all(dir);
        synthetic_root(dir)?;
        root = Some(dir.clone());
    }
    let children: Vec<Child> = (0..extra)
        .map(|_| {
            Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let procs = std::fs::read_dir("/proc")?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .count();

    let ctx = Context {
        fs: root.as_ref().map_or_else(HostFs::default, HostFs::new),
    };
    let mut collectors = collect::all();
    let names: Vec<&str> = collectors.iter().map(|c| c.kind().name()).collect();
    let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut wall: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut total_cpu = Vec::new();
    let mut snaps = Vec::new();
    // One warm-up run (first reads fill the page cache; the agent's
    // process table is kept between ticks as in `run`).
    for run in 0..=runs {
        let mut sections = Vec::new();
        let t_all = thread_cpu_ns();
        for c in collectors.iter_mut() {
            let (c0, w0) = (thread_cpu_ns(), Instant::now());
            let body = c.collect(&ctx);
            let (c1, w1) = (thread_cpu_ns(), w0.elapsed());
            let name = c.kind().name();
            if run > 0 {
                cpu.entry(name).or_default().push((c1 - c0) as f64 / 1e6);
                wall.entry(name).or_default().push(w1.as_secs_f64() * 1e3);
            }
            sections.push(match body {
                Ok(b) => driftwatch_common::snapshot::ok_section(b, 0),
                Err(e) => driftwatch_common::snapshot::failed_section(
                    c.kind(),
                    driftwatch_common::vocab::CollectionStatus::Error,
                    e.to_string(),
                    0,
                ),
            });
        }
        if run > 0 {
            total_cpu.push((thread_cpu_ns() - t_all) as f64 / 1e6);
        }
        snaps.push(Snapshot {
            seq: run as u64 + 1,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            sections,
            ..Default::default()
        });
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }

    println!(
        "root {} · {} processes on the host · {} runs (medians, ms)",
        root.as_ref()
            .map_or("/".into(), |p| p.display().to_string()),
        procs,
        runs
    );
    println!("{:<12} {:>10} {:>10}", "section", "cpu ms", "wall ms");
    for n in &names {
        println!(
            "{:<12} {:>10.2} {:>10.2}",
            n,
            median(cpu.get_mut(n).expect("ran")),
            median(wall.get_mut(n).expect("ran"))
        );
    }
    println!("{:<12} {:>10.2}", "total", median(&mut total_cpu));

    // Wire: the first snapshot in full; the last one as a delta against
    // what the first acknowledged (an unchanged host between refreshes).
    let first = &snaps[1];
    let last = snaps.last().expect("runs");
    let now = std::time::Instant::now();
    let acked: HashMap<String, (String, std::time::Instant)> = first
        .sections
        .iter()
        .map(|s| (s.name.clone(), (s.hash.clone(), now)))
        .collect();
    let d = delta(last, &acked, Duration::from_secs(900), &[], now);
    let changed: Vec<&str> = d
        .sections
        .iter()
        .filter(|s| !s.hash_only)
        .map(|s| s.name.as_str())
        .collect();
    println!(
        "wire: full {} bytes; delta {} bytes (sections sent in full: {})",
        prost::Message::encoded_len(first),
        prost::Message::encoded_len(&d),
        if changed.is_empty() {
            "none".into()
        } else {
            changed.join(", ")
        }
    );
    Ok(())
}
