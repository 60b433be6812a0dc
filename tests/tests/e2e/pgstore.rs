//! The collector binary on PostgreSQL (`serve --store`, a cluster this
//! test starts): a real agent reports, the CLI answers `hosts`, `history`
//! and `keys find` from the database; kill -9 of the collector and a
//! restart on the same database lose nothing acknowledged and store no
//! seq twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use driftwatch_tests::pg::PgCluster;
use driftwatch_tests::*;

fn agent_seqs(log: &Path, message: &str) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == message)
        .filter_map(|e| e["seq"].as_u64())
        .collect()
}

fn host_entry(pki: &Pki, url: &str, id: &str) -> Option<serde_json::Value> {
    let (code, v, _) = cli_any(pki, url, &["hosts"]);
    if code != Some(0) {
        return None;
    }
    v["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["host_id"] == id)
        .cloned()
}

#[test]
fn reports_survive_a_kill_9_once_each_on_postgresql() {
    let Some(pg) = PgCluster::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let (cert, key) = pki.issue_host("web-1", &tmp.path().join("web-1"));
    let root = tmp.path().join("root");
    fake_root(&root, "web-1", "1111", "uuid-1");
    write_under(
        &root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nal:x:1000:1000::/home/al:/bin/sh\n",
    );
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (public, _fp) = ssh_keygen(&keys, "al", "ed25519", "al@laptop");
    write_under(&root, "home/al/.ssh/authorized_keys", format!("{public}\n"));
    let password = pg.password_file("store.pw");
    let store_args = [
        "--store",
        &pg.url(),
        "--store-password-file",
        password.to_str().unwrap(),
    ];
    // The data dir CollectorProc passes stays unused: the store wins.
    let data = tmp.path().join("unused-data");
    let c = CollectorProc::start_with(&pki, &data, None, &store_args);
    let port = c.port;

    let state = tmp.path().join("state");
    let log = tmp.path().join("agent.log");
    let mut agent = Command::new(bin("driftwatch-agent"))
        .args(["--log-format", "json", "run", "--interval", "1s"])
        .args(["--collector", &c.url, "--ca"])
        .arg(pki.ca())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .args(["--section", "host", "--section", "ssh_keys"])
        .env("RUST_LOG", "info,driftwatch_agent=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start agent");

    wait_for(30, "three acknowledged reports", || {
        (agent_seqs(&log, "acknowledged").len() >= 3).then_some(())
    });
    let h = host_entry(&pki, &c.url, "web-1").expect("web-1 listed");
    assert_eq!(h["hostname"], "web-1", "{h:#}");
    let found = cli_json(
        &pki,
        &c.url,
        &[
            "keys",
            "find",
            "--pubkey",
            keys.join("al.pub").to_str().unwrap(),
        ],
    );
    let locations = found["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1, "{found:#}");
    assert_eq!(locations[0]["host_id"], "web-1", "{found:#}");
    let hist = cli_json(&pki, &c.url, &["history", "web-1"]);
    assert!(!hist["entries"].as_array().unwrap().is_empty(), "{hist:#}");

    // kill -9 mid-stream, then the same port and database again.
    let mut c = c;
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    let acked_at_kill = agent_seqs(&log, "acknowledged").into_iter().max().unwrap();
    let c2 = CollectorProc::start_with(&pki, &data, Some(port), &store_args);
    wait_for(60, "reports acknowledged after the restart", || {
        let acked = agent_seqs(&log, "acknowledged").into_iter().max()?;
        (acked >= acked_at_kill + 3).then_some(())
    });
    agent.kill().unwrap();
    agent.wait().unwrap();
    let acked: BTreeSet<u64> = agent_seqs(&log, "acknowledged").into_iter().collect();
    let h = host_entry(&pki, &c2.url, "web-1").expect("web-1 listed after the restart");
    let last_seq = h["last_seq"].as_u64().unwrap();
    let stored = h["snapshots_stored"].as_u64().unwrap();
    let max_acked = *acked.iter().max().unwrap();
    assert!(
        last_seq >= max_acked,
        "every acknowledged seq is stored: {h:#}"
    );
    // Seqs 1..=last_seq, one epoch: each stored exactly once.
    assert_eq!(stored, last_seq, "no seq stored twice or lost: {h:#}");
    let rows = pg.psql_as_superuser(
        "driftwatch",
        "SELECT count(*) FROM host_keys WHERE host_id = 'web-1'",
    );
    assert_eq!(rows, "1", "the key is a row, for queries by fingerprint");
}
