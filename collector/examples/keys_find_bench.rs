//! `keys find` over a large fleet, measured three ways on a real sled data
//! dir filled through the collector's store API:
//!
//! 1. in process: `SledStore::open`, `KeyIndex::load` (time and heap bytes
//!    of the index), and `KeyIndex::find` by fingerprint and by comment
//!    (median of repeated runs);
//! 2. the real collector binary started on that dir: time from spawn until
//!    it answers an admin RPC over mutual TLS (that includes building the
//!    index), and its RSS then;
//! 3. the real `driftwatch keys find` binary against it (process start,
//!    TLS handshake, RPC, table rendering): median wall time of N runs.
//!
//!   cargo build --release -p driftwatch-collector
//!   cargo run --release -p driftwatch-collector --example keys_find_bench -- \
//!       [--hosts 100000] [--dir target/keys-bench] [--runs 21] [--cli-runs 15] \
//!       [--starts 3] [--bin target/release] [--packages 0]
//!
//! The data dir is filled only when it holds no hosts yet (delete it to
//! refill); the PKI is made in DIR/pki with `driftwatch-collector pki init`.
//! Each host's ssh_keys section: 2–4 users (root, deploy, 0–2 people),
//! 2–4 keys each, drawn from 5,000 people's keys (so a person's key is on
//! ~200 hosts); a departing user's key (comment `leaver@corp`) sits on 1%
//! of hosts. The other sections are a small host section and, with
//! `--packages N`, a packages section of N entries (~60 bytes each: 1,000
//! make a latest snapshot the size of a real host's, ~60 KB), which is what
//! the collector decodes at start to build the index.

#![allow(clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use driftwatch_collector::keyindex::KeyIndex;
use driftwatch_collector::store::{SledStore, Store};
use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::proto::{
    AuthorizedKey, AuthorizedKeysFile, FindKeysRequest, HostSection, KeyOption, KeySelector,
    Package, PackagesSection, Section, Snapshot, SshKeysSection, section::Body,
};
use driftwatch_common::snapshot::ok_section;
use driftwatch_common::tls::ClientFiles;
use sha2::{Digest, Sha256};

/// Counts live heap bytes, so the index's size is measured, not guessed
/// from RSS (which also holds sled's page cache).
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: p came from System.alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: p came from System.alloc with layout l.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Args {
    hosts: usize,
    dir: PathBuf,
    runs: usize,
    cli_runs: usize,
    starts: usize,
    bin: PathBuf,
    packages: usize,
}

fn args() -> Args {
    let mut a = Args {
        hosts: 100_000,
        dir: PathBuf::from("target/keys-bench"),
        runs: 21,
        cli_runs: 15,
        starts: 3,
        bin: PathBuf::from("target/release"),
        packages: 0,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--hosts" => a.hosts = val.parse().expect("--hosts N"),
            "--dir" => a.dir = PathBuf::from(val),
            "--runs" => a.runs = val.parse().expect("--runs N"),
            "--cli-runs" => a.cli_runs = val.parse().expect("--cli-runs N"),
            "--starts" => a.starts = val.parse().expect("--starts N"),
            "--bin" => a.bin = PathBuf::from(val),
            "--packages" => a.packages = val.parse().expect("--packages N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

const PEOPLE: usize = 5_000;
const LEAVER_COMMENT: &str = "leaver@corp";

/// A fingerprint as ssh-keygen prints it, derived from a name.
fn fingerprint(seed: &str) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let d = Sha256::digest(seed.as_bytes());
    let mut out = String::from("SHA256:");
    for chunk in d.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn key(line: u32, person: usize, options: bool) -> AuthorizedKey {
    AuthorizedKey {
        line,
        key_type: "ssh-ed25519".into(),
        label: "ED25519".into(),
        bits: 256,
        fingerprint: fingerprint(&format!("person-{person}")),
        comment: format!("person{person}@corp"),
        options: if options {
            vec![KeyOption {
                name: "from".into(),
                value: "10.0.0.0/8".into(),
                has_value: true,
            }]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

fn leaver_key(line: u32) -> AuthorizedKey {
    AuthorizedKey {
        line,
        key_type: "ssh-ed25519".into(),
        label: "ED25519".into(),
        bits: 256,
        fingerprint: fingerprint("leaver"),
        comment: LEAVER_COMMENT.into(),
        ..Default::default()
    }
}

fn packages(i: usize, n: usize) -> Section {
    ok_section(
        Body::Packages(PackagesSection {
            source: "dpkg".into(),
            installed_count: n as u64,
            packages: (0..n)
                .map(|p| Package {
                    name: format!("package-{p:05}"),
                    // One host in 50 has something upgraded.
                    version: format!("1.{}.{}-1+deb12u1", p % 17, usize::from(i % 50 == p % 50)),
                    architecture: "amd64".into(),
                    status: "install ok installed".into(),
                    installed: true,
                    source: format!("src-{}", p / 3),
                })
                .collect(),
            ..Default::default()
        }),
        1000,
    )
}

fn host_snapshot(i: usize, n_packages: usize) -> Snapshot {
    let rnd = fastrand_like(i as u64);
    let hostname = format!("web-{i:06}.prod.example.com");
    let mut users: Vec<(String, u32)> = vec![("root".into(), 0), ("deploy".into(), 1000)];
    for u in 0..(rnd % 3) as usize {
        users.push((
            format!("person{}", (i * 7 + u * 13) % PEOPLE),
            1001 + u as u32,
        ));
    }
    let mut files = Vec::new();
    for (ui, (user, uid)) in users.iter().enumerate() {
        let home = if user == "root" {
            "/root".to_string()
        } else {
            format!("/home/{user}")
        };
        let n = 2 + ((rnd >> (8 + ui * 2)) % 3) as usize;
        let mut keys: Vec<AuthorizedKey> = (0..n)
            .map(|k| {
                let person = ((rnd >> 16) as usize + i * 31 + ui * 101 + k * 997) % PEOPLE;
                key(k as u32 + 1, person, k == 0 && ui == 0)
            })
            .collect();
        if i % 100 == 7 && ui == 1 {
            keys.push(leaver_key(n as u32 + 1));
        }
        files.push(AuthorizedKeysFile {
            user: user.clone(),
            uid: *uid,
            home: home.clone(),
            path: format!("{home}/.ssh/authorized_keys"),
            pattern: "%h/.ssh/authorized_keys".into(),
            owner_uid: *uid,
            owner_gid: *uid,
            mode: 0o600,
            size_bytes: 100 * keys.len() as u64,
            keys,
            ..Default::default()
        });
    }
    let mut snap = Snapshot {
        host_id: host_id(i),
        seq: 1,
        collected_at_ms: 1_800_000_000_000,
        sections: vec![
            ok_section(
                Body::Host(HostSection {
                    hostname,
                    os_id: "debian".into(),
                    os_version_id: "12".into(),
                    kernel: "6.1.0-18-amd64".into(),
                    arch: "x86_64".into(),
                    machine_id: format!("{:032x}", i),
                    ..Default::default()
                }),
                10,
            ),
            ok_section(
                Body::SshKeys(SshKeysSection {
                    files,
                    ..Default::default()
                }),
                100,
            ),
        ],
        ..Default::default()
    };
    if n_packages > 0 {
        snap.sections.push(packages(i, n_packages));
    }
    snap
}

/// A fixed pseudo-random number per host (splitmix64), so refills agree.
fn fastrand_like(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn host_id(i: usize) -> String {
    format!("host-{i:06}")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn fill(store: &SledStore, hosts: usize, n_packages: usize) {
    let t = Instant::now();
    for i in 0..hosts {
        store
            .put_snapshot(
                &host_id(i),
                &host_snapshot(i, n_packages),
                1_800_000_000_000,
            )
            .expect("put_snapshot");
        if (i + 1) % 10_000 == 0 {
            println!("  filled {} hosts in {:.0?}", i + 1, t.elapsed());
        }
    }
    store.sync().expect("sync");
    println!("filled {hosts} hosts in {:.1?}", t.elapsed());
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn in_process(a: &Args, data: &Path, selectors: &[(&str, KeySelector)]) {
    let t = Instant::now();
    let store = SledStore::open(data).expect("open store");
    let open = t.elapsed();
    let hosts = store.list_hosts().expect("list hosts").len();
    if hosts < a.hosts {
        if hosts > 0 {
            panic!(
                "{} holds {hosts} hosts, fewer than --hosts {}: delete it to refill",
                data.display(),
                a.hosts
            );
        }
        fill(&store, a.hosts, a.packages);
    }
    println!(
        "data dir {}: {} hosts, {:.0} MiB",
        data.display(),
        store.list_hosts().expect("list hosts").len(),
        dir_bytes(data) as f64 / 1048576.0
    );
    let live_before = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let idx = KeyIndex::load(&store).expect("load index");
    let load = t.elapsed();
    let live_with = LIVE.load(Ordering::Relaxed);
    println!(
        "in process: SledStore::open {}, KeyIndex::load {} ({} hosts indexed)",
        ms(open),
        ms(load),
        idx.hosts_indexed()
    );
    for (name, sel) in selectors {
        let mut times = Vec::new();
        let mut hits = 0;
        for _ in 0..a.runs {
            let t = Instant::now();
            hits = idx.find(sel).len();
            times.push(t.elapsed());
        }
        let min = *times.iter().min().expect("runs");
        let max = *times.iter().max().expect("runs");
        println!(
            "  find by {name}: {hits} lines, median {} (min {}, max {}) over {} runs",
            ms(median(times)),
            ms(min),
            ms(max),
            a.runs
        );
    }
    drop(idx);
    let live_after = LIVE.load(Ordering::Relaxed);
    println!(
        "  index heap: {:.1} MiB ({:.0} B per host); growth during load {:.1} MiB (sled cache included)",
        (live_with - live_after) as f64 / 1048576.0,
        (live_with - live_after) as f64 / a.hosts as f64,
        (live_with - live_before) as f64 / 1048576.0,
    );
}

struct Collector {
    child: Child,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).expect("mkdir");
    let data = a.dir.join("data");
    let pki = a.dir.join("pki");
    let leaver_fp = fingerprint("leaver");
    let person_fp = fingerprint("person-42");
    let selectors = [
        (
            "fingerprint (leaver, 1% of hosts)",
            KeySelector {
                fingerprint: leaver_fp.clone(),
                ..Default::default()
            },
        ),
        (
            "comment (leaver@corp)",
            KeySelector {
                comment: LEAVER_COMMENT.into(),
                ..Default::default()
            },
        ),
        (
            "fingerprint (one person's key)",
            KeySelector {
                fingerprint: person_fp.clone(),
                ..Default::default()
            },
        ),
        (
            "comment matching nothing",
            KeySelector {
                comment: "nobody@nowhere".into(),
                ..Default::default()
            },
        ),
    ];
    in_process(&a, &data, &selectors);

    if !pki.join("ca.pem").exists() {
        let st = Command::new(a.bin.join("driftwatch-collector"))
            .args(["pki", "init", "--dir"])
            .arg(&pki)
            .args(["--server-name", "localhost"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pki init");
        assert!(st.success(), "pki init failed");
    }
    let files = ClientFiles {
        ca: pki.join("ca.pem"),
        cert: Some(pki.join("admin.pem")),
        key: Some(pki.join("admin-key.pem")),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut starts = Vec::new();
    let mut running = None;
    for n in 0..a.starts.max(1) {
        drop(running.take()); // killed before the next one opens the dir
        let port = free_port();
        let url = format!("https://localhost:{port}");
        let t = Instant::now();
        let child = Command::new(a.bin.join("driftwatch-collector"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .arg("--pki-dir")
            .arg(&pki)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start collector");
        let c = Collector { child };
        let pid = c.child.id();
        let indexed = rt.block_on(async {
            loop {
                if t.elapsed() > Duration::from_secs(600) {
                    panic!("collector did not answer within 600 s");
                }
                if let Ok(ch) = driftwatch_common::client::connect(&url, &files).await
                    && let Ok(r) = AdminClient::new(ch)
                        .find_keys(FindKeysRequest {
                            selector: Some(KeySelector {
                                comment: "x".into(),
                                ..Default::default()
                            }),
                        })
                        .await
                {
                    return r.into_inner().hosts_indexed;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let took = t.elapsed();
        println!(
            "collector start {}: answers after {} ({indexed} hosts indexed), RSS {:.0} MiB",
            n + 1,
            ms(took),
            rss_kib(pid).unwrap_or(0) as f64 / 1024.0
        );
        starts.push(took);
        running = Some((c, url));
    }
    println!("collector start: median {}", ms(median(starts)));
    let (c, url) = running.expect("a collector runs");
    let cli = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new(a.bin.join("driftwatch"))
            .args(args)
            .env("DRIFTWATCH_COLLECTOR", &url)
            .env("DRIFTWATCH_CA", pki.join("ca.pem"))
            .env("DRIFTWATCH_CERT", pki.join("admin.pem"))
            .env("DRIFTWATCH_KEY", pki.join("admin-key.pem"))
            .env("HOME", a.dir.join("no-home"))
            .stdin(Stdio::null())
            .output()
            .expect("run driftwatch");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "driftwatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (took, out.stdout.iter().filter(|b| **b == b'\n').count())
    };
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "keys find --fingerprint (leaver)",
            vec!["keys", "find", "--fingerprint", &leaver_fp],
        ),
        (
            "keys find --comment leaver@corp",
            vec!["keys", "find", "--comment", LEAVER_COMMENT],
        ),
        (
            "keys find --fingerprint (leaver) --json",
            vec!["keys", "find", "--fingerprint", &leaver_fp, "--json"],
        ),
        (
            "keys find --comment (matches nothing)",
            vec!["keys", "find", "--comment", "nobody@nowhere"],
        ),
    ];
    for (name, args) in &cases {
        let _ = cli(args); // warm-up
        let mut times = Vec::new();
        let mut lines = 0;
        for _ in 0..a.cli_runs {
            let (t, l) = cli(args);
            times.push(t);
            lines = l;
        }
        let max = *times.iter().max().expect("runs");
        println!(
            "  CLI {name}: {lines} output lines, median {} (max {}) over {} runs",
            ms(median(times)),
            ms(max),
            a.cli_runs
        );
    }
    println!(
        "collector RSS at end: {:.0} MiB",
        rss_kib(c.child.id()).unwrap_or(0) as f64 / 1024.0
    );
    drop(c);
}
