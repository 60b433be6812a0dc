//! What a sweep's "done" proves, attacked the way a leaver would: one
//! shared file swept by two hosts at once (a key padded past the
//! snapshot's read bound is in offboard.rs, judged by a real sshd). Real collector, real agents on fake roots, real TLS;
//! `ssh-keygen -lf` parses the files afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftwatch_tests::*;

const AK: &str = "home/alice/.ssh/authorized_keys";

/// The fingerprints ssh-keygen reads in a key file (comments skipped).
fn fingerprints_in(file: &Path) -> Vec<String> {
    let out = run_ok(Command::new("ssh-keygen").arg("-lf").arg(file));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn root_with_alice(root: &Path, name: &str, body: &[u8]) {
    fake_root(root, name, &format!("m-{name}"), &format!("u-{name}"));
    write_owned(
        root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        0o644,
        0,
    );
    write_owned(root, AK, body, 0o600, 1000);
}

fn connected(pki: &Pki, url: &str, n: usize) {
    wait_for(30, "connected agents with snapshots", || {
        let hosts = cli_json(pki, url, &["hosts"]);
        let ok = hosts["hosts"]
            .as_array()?
            .iter()
            .filter(|h| h["connected"] == true && h["last_seq"].as_u64() > Some(0))
            .count();
        (ok == n).then_some(())
    });
}

/// 1,100 comment lines of ~1 KiB, then the leaver's key: the snapshot
/// (1 MiB per file) cannot see it, so `keys find` names the host as
/// unproven instead of "on no host"; the sweep reads to the end and removes it.
#[test]
fn two_hosts_sweeping_one_shared_file_at_once_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pki = Pki::init(&t.join("pki"));
    let c = CollectorProc::start(&pki, &t.join("data"), None);
    let (leaver, fp) = ssh_keygen(t, "leaver", "ed25519", "leaver@corp");
    let (other, other_fp) = ssh_keygen(t, "other", "ed25519", "ops@corp");
    // Large enough that the two rewrites overlap in time.
    let pad = format!("# {}\n", "p".repeat(1021)).repeat(4000);
    let body = format!("{leaver}\n{pad}{other}\n{leaver}\n");
    let root = t.join("root-1");
    root_with_alice(&root, "web-1", body.as_bytes());
    // The second host's root is the same tree under another name.
    let root2: PathBuf = t.join("root-2");
    std::os::unix::fs::symlink(&root, &root2).unwrap();
    let mut agents = Vec::new();
    for (i, r) in [&root, &root2].into_iter().enumerate() {
        let cert = pki.issue_host(&format!("web-{}", i + 1), &t.join(format!("cert-{i}")));
        agents.push(AgentProc::start(
            &c.url,
            &pki.ca(),
            (&cert.0, &cert.1),
            &t.join(format!("state-{i}")),
            r,
            "2s",
        ));
    }
    connected(&pki, &c.url, 2);
    let (code, job, err) = cli_any(
        &pki,
        &c.url,
        &[
            "keys",
            "sweep",
            "--fingerprint",
            &fp,
            "--remove",
            "--yes",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(code, Some(0), "{err}\n{job:#}");
    let mut removed = 0;
    for id in ["web-1", "web-2"] {
        let h = job_host(&job, id);
        assert_eq!(h["status"], "done", "{job:#}");
        for f in h["files"].as_array().into_iter().flatten() {
            match f["status"].as_str().unwrap() {
                "removed" => {
                    removed += 1;
                    assert_eq!(f["lines"], serde_json::json!([1, 4003]), "{job:#}");
                }
                "absent" => {}
                other => panic!("{id}: {other} in {job:#}"),
            }
        }
    }
    assert_eq!(removed, 1, "one host removed the lines: {job:#}");
    assert_eq!(fingerprints_in(&root.join(AK)), [other_fp]);
    let backups: Vec<_> = std::fs::read_dir(root.join("home/alice/.ssh"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "authorized_keys")
        .collect();
    assert_eq!(backups.len(), 1, "one backup, no temp file: {backups:?}");
    assert!(backups[0].starts_with("authorized_keys.driftwatch-bak-"));
    drop(agents);
}
