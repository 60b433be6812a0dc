//! What a durable acknowledgement costs: the same reports stored three
//! ways on a real sled directory — no sync (not durable, the floor), one
//! fsync per report, and the collector's group commit (concurrent reports
//! share one sync). Prints throughput and latency per mode.
//!
//!   cargo run --release -p driftwatch-collector --example durable_ack -- \
//!       [--reports 2000] [--concurrency 32] [--bytes 8192] [--dir target/durable-bench]
//!
//! The directory must be on the disk being measured (not tmpfs).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_collector::store::{GroupCommit, SledStore, Store};
use driftwatch_common::proto::Snapshot;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoSync,
    PerReport,
    Grouped,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::NoSync => "no sync (not durable)",
            Mode::PerReport => "fsync per report",
            Mode::Grouped => "group commit",
        }
    }
}

struct Args {
    reports: usize,
    concurrency: usize,
    bytes: usize,
    dir: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        reports: 2000,
        concurrency: 32,
        bytes: 8192,
        dir: PathBuf::from("target/durable-bench"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--reports" => a.reports = val.parse().expect("--reports N"),
            "--concurrency" => a.concurrency = val.parse().expect("--concurrency N"),
            "--bytes" => a.bytes = val.parse().expect("--bytes N"),
            "--dir" => a.dir = PathBuf::from(val),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

async fn run(mode: Mode, a: &Args) -> (Duration, Vec<Duration>) {
    let dir = a.dir.join(format!("{}", mode as u8));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).expect("open sled"));
    let commit = GroupCommit::start(store.clone());
    let per_task = a.reports / a.concurrency;
    let started = Instant::now();
    let mut tasks = vec![];
    for t in 0..a.concurrency {
        let (store, commit, bytes) = (store.clone(), commit.clone(), a.bytes);
        tasks.push(tokio::spawn(async move {
            let host = format!("bench-{t}");
            let mut lat = Vec::with_capacity(per_task);
            for seq in 1..=per_task as u64 {
                let snap = Snapshot {
                    seq,
                    agent_version: "x".repeat(bytes),
                    ..Default::default()
                };
                let t0 = Instant::now();
                let (s, h) = (store.clone(), host.clone());
                tokio::task::spawn_blocking(move || s.put_snapshot(&h, &snap, 1))
                    .await
                    .unwrap()
                    .expect("put");
                match mode {
                    Mode::NoSync => {}
                    Mode::PerReport => {
                        let s = store.clone();
                        tokio::task::spawn_blocking(move || s.sync())
                            .await
                            .unwrap()
                            .expect("sync");
                    }
                    Mode::Grouped => commit.commit().await.expect("commit"),
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    all.sort();
    (total, all)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(a.concurrency + 4)
        .build()
        .unwrap();
    println!(
        "{} reports of ~{} bytes from {} concurrent hosts, sled in {}",
        a.reports,
        a.bytes,
        a.concurrency,
        a.dir.display()
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        "mode", "reports/s", "p50 ms", "p99 ms", "max ms"
    );
    for mode in [Mode::NoSync, Mode::PerReport, Mode::Grouped] {
        let (total, lat) = rt.block_on(run(mode, &a));
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<24} {:>10.0} {:>10.2} {:>10.2} {:>10.2}",
            mode.name(),
            lat.len() as f64 / total.as_secs_f64(),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(*lat.last().unwrap())
        );
    }
}
