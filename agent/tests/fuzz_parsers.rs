//! Stable-Rust fuzzing, bounded: every parser's fuzz entry point
//! (`driftwatch_agent::fuzz`) gets its seed corpus from tests/fixtures,
//! every saved crasher in `fuzz/regressions/<target>/`, then seeded random
//! mutations of them (bit flips, byte inserts and deletes, splices between
//! seeds, the grammar's punctuation, truncation) until an iteration or time
//! bound. A panic fails the test and saves the input under
//! `target/fuzz-crashes/` to be added to the regressions.
//!
//! Longer runs: DRIFTWATCH_FUZZ_ITERS=200000 DRIFTWATCH_FUZZ_SECS=600
//! DRIFTWATCH_FUZZ_SEED=7 cargo test -p driftwatch-agent --test fuzz_parsers

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftwatch_agent::fuzz;

const MAX_INPUT: usize = 128 << 10;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixtures_dir() -> PathBuf {
    let d = repo().join("tests/fixtures");
    assert!(d.is_dir(), "fixtures not found at {}", d.display());
    d
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files in `dir` whose name starts with `prefix`, capped in size.
fn files(dir: &Path, prefix: &str) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n != "README.md")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let mut b = std::fs::read(p).unwrap();
            b.truncate(64 << 10);
            b
        })
        .collect()
}

/// The seed corpus of a target (see fuzz/README.md for the same list).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let f = fixtures_dir();
    let mut out = match target {
        "mdstat" => files(&f.join("mdstat"), ""),
        "storcli" => files(&f.join("megaraid"), "storcli"),
        "megacli" => files(&f.join("megaraid"), "megacli"),
        "authorized_keys" => {
            let mut v = files(&f.join("ssh"), "authorized_keys");
            v.extend(files(&f.join("ssh/pubkeys"), ""));
            v
        }
        "sshd_config" => {
            let mut v = files(&f.join("ssh"), "sshd_config");
            v.extend(files(&f.join("ssh"), "sshd-T"));
            v
        }
        "rsyslog" => files(&f.join("logconfig"), "rsyslog"),
        "syslog_ng" => files(&f.join("logconfig"), "syslog-ng"),
        "journald" => files(&f.join("logconfig"), "journald"),
        "logrotate" => files(&f.join("logconfig"), "logrotate"),
        // No dpkg fixture is shared: this machine's own database (when it
        // has one) and a small stanza set.
        "dpkg_status" => {
            let mut v = files(Path::new("/var/lib/dpkg"), "status");
            v.retain(|b| !b.is_empty());
            v.push(b"Package: a\nStatus: install ok installed\nVersion: 1:2.3-4\nArchitecture: amd64\nDescription: x\n continued\n .\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 1\n".to_vec());
            v
        }
        // This machine's own processes, and shapes /proc prints: a comm
        // with spaces and parentheses, a kernel thread.
        "proc_stat" => {
            let mut v: Vec<Vec<u8>> = ["self", "1", "2"]
                .iter()
                .filter_map(|p| std::fs::read(format!("/proc/{p}/stat")).ok())
                .collect();
            v.push(b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n".to_vec());
            v
        }
        // rpm -qa output in the agent's query format (no rpm fixture).
        "rpm" => vec![
            b"bash\t5.1.8-9.el9\tx86_64\t(none)\ngpg-pubkey\t8483c65d-5ccc5b19\t(none)\t(none)\nkernel\t5.14.0-427.el9\tx86_64\t1\n".to_vec(),
        ],
        "docker_inspect" => files(&f.join("docker"), ""),
        other => panic!("no seeds for target {other}"),
    };
    assert!(!out.is_empty(), "{target}: empty seed corpus");
    out.extend(files(&repo().join("fuzz/regressions").join(target), ""));
    out
}

const PIECES: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"{",
    b"}",
    b"(",
    b")",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"\\",
    b"#",
    b"=",
    b":",
    b";",
    b",",
    b"*",
    b"/",
    b"..",
    b"%",
    b"$",
    b"@",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"18446744073709551616",
    b"-1",
    b"0",
    b"999999999999",
    b"[UU_]",
    b"include ",
    b"Include ",
    b"Match ",
    b"md0 : ",
    b"{\"Controllers\":",
    b"ssh-ed25519 ",
    b"Package: ",
    b"Status: ",
    b" .\n",
];

fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..rng.usize(1..=8) {
        let len = input.len();
        match rng.u8(0..8) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                input[i] ^= 1 << rng.u8(0..8);
            }
            1 => {
                let i = rng.usize(0..=len);
                input.insert(i, rng.u8(..));
            }
            2 if len > 0 => {
                let a = rng.usize(0..len);
                let b = (a + rng.usize(1..=64)).min(len);
                input.drain(a..b);
            }
            3 => {
                let p = PIECES[rng.usize(0..PIECES.len())];
                let i = rng.usize(0..=len);
                input.splice(i..i, p.iter().copied());
            }
            4 => {
                // A slice of another seed, so grammar from one file meets another.
                let other = &seeds[rng.usize(0..seeds.len())];
                if !other.is_empty() {
                    let a = rng.usize(0..other.len());
                    let b = (a + rng.usize(1..=256)).min(other.len());
                    let i = rng.usize(0..=len);
                    input.splice(i..i, other[a..b].iter().copied());
                }
            }
            5 if len > 0 => {
                // Repeat a chunk: deep nesting, long lines, many entries.
                let a = rng.usize(0..len);
                let b = (a + rng.usize(1..=32)).min(len);
                let chunk = input[a..b].to_vec();
                for _ in 0..rng.usize(1..=16) {
                    input.splice(a..a, chunk.iter().copied());
                }
            }
            6 if len > 0 => input.truncate(rng.usize(0..len)),
            _ => {
                let i = rng.usize(0..=len);
                let n = rng.usize(1..=16);
                let junk: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                input.splice(i..i, junk);
            }
        }
    }
    input.truncate(MAX_INPUT);
}

fn run_target(name: &str) {
    let target = fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("known target");
    let seeds = seeds(name);
    let iters = env_num("DRIFTWATCH_FUZZ_ITERS", 1500);
    let budget = Duration::from_secs(env_num("DRIFTWATCH_FUZZ_SECS", 4));
    let seed = env_num("DRIFTWATCH_FUZZ_SEED", 0x0d71f7);
    let mut rng =
        fastrand::Rng::with_seed(seed ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 8);
    let mut crashes = vec![];
    let mut try_one = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = repo().join("target/fuzz-crashes").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("crash-{:016x}", fxhash(input)));
            std::fs::write(&path, input).unwrap();
            crashes.push(path);
        }
    };
    for s in &seeds {
        try_one(s);
    }
    let started = Instant::now();
    let mut done = 0;
    while done < iters && started.elapsed() < budget {
        let mut input = seeds[rng.usize(0..seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        try_one(&input);
        done += 1;
    }
    eprintln!(
        "{name}: {} seeds, {done} mutations in {:.1}s, seed {seed:#x}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        crashes.is_empty(),
        "{name}: {} input(s) panicked (seed {seed:#x}); saved as {crashes:?}: fix, then move them to fuzz/regressions/{name}/",
        crashes.len()
    );
    assert!(done > 0, "{name}: no mutation ran within {budget:?}");
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_target(stringify!($name));
        }
    )*};
}

targets!(
    mdstat,
    storcli,
    megacli,
    authorized_keys,
    sshd_config,
    rsyslog,
    syslog_ng,
    journald,
    logrotate,
    dpkg_status,
    proc_stat,
    rpm,
    docker_inspect,
);

#[test]
fn every_library_target_is_exercised_here() {
    let names: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), 13, "{names:?}");
    for n in names {
        assert!(!seeds(n).is_empty());
    }
}
