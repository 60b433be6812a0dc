//! The offboarding sweep end to end: real collector, real agents holding
//! their Commands streams on fake roots, real TLS, `ssh-keygen` as the
//! fingerprint oracle. One leaver's key sits on two hosts in different
//! users (once with options, once duplicated in authorized_keys2), on a
//! host that is offline during the sweep, and behind a symlink on a fourth;
//! a fifth host never had it.

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use driftwatch_tests::*;
use serde_json::Value;

fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap()
}

fn mode(root: &Path, rel: &str) -> (u32, u32) {
    let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
    (m.mode() & 0o7777, m.uid())
}

fn files(h: &Value) -> Vec<(String, String, Vec<u64>)> {
    h["files"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["path"].as_str().unwrap().to_string(),
                        f["status"].as_str().unwrap().to_string(),
                        f["lines"]
                            .as_array()
                            .map(|l| l.iter().map(|n| n.as_u64().unwrap()).collect())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn hosts_of(find: &Value) -> Vec<String> {
    let mut v: Vec<String> = find["locations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["host_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.dedup();
    v
}

struct Fleet {
    roots: Vec<PathBuf>,
    leaver: String,
    fp: String,
    other1: String,
    other2: String,
}

const AK: &str = ".ssh/authorized_keys";

fn build(tmp: &Path) -> Fleet {
    let (leaver, fp) = ssh_keygen(tmp, "leaver", "ed25519", "leaver@corp");
    let (other1, _) = ssh_keygen(tmp, "other1", "ed25519", "ops@corp");
    let (other2, _) = ssh_keygen(tmp, "other2", "ecdsa", "dev@corp");
    let roots: Vec<PathBuf> = (1..=5).map(|i| tmp.join(format!("root-{i}"))).collect();
    for (i, r) in roots.iter().enumerate() {
        fake_root(
            r,
            &format!("web-{}", i + 1),
            &format!("m-{i}"),
            &format!("u-{i}"),
        );
    }
    let passwd = |r: &Path, users: &[(&str, u32)]| {
        let mut s = String::from("root:x:0:0:root:/root:/bin/bash\n");
        for (u, id) in users {
            s += &format!("{u}:x:{id}:{id}::/home/{u}:/bin/bash\n");
        }
        write_owned(r, "etc/passwd", s, 0o644, 0);
    };
    // web-1: alice has it with options between two other keys; bob never had it.
    passwd(&roots[0], &[("alice", 1000), ("bob", 1001)]);
    write_owned(
        &roots[0],
        &format!("home/alice/{AK}"),
        format!("{other1}\nfrom=\"10.0.0.0/8\",no-pty {leaver}\n{other2}\n"),
        0o600,
        1000,
    );
    write_owned(
        &roots[0],
        &format!("home/bob/{AK}"),
        format!("{other1}\n"),
        0o600,
        1001,
    );
    // web-2: carol has it in authorized_keys and twice in authorized_keys2
    // (one CRLF line, the last line without a newline).
    passwd(&roots[1], &[("carol", 1002)]);
    write_owned(
        &roots[1],
        &format!("home/carol/{AK}"),
        format!("# team keys\n{other2}\n{leaver}\n"),
        0o600,
        1002,
    );
    write_owned(
        &roots[1],
        &format!("home/carol/{AK}2"),
        format!("{leaver}\r\n{other1}\n{leaver}"),
        0o644,
        1002,
    );
    // web-3: offline during the sweep.
    passwd(&roots[2], &[("dave", 1003)]);
    write_owned(
        &roots[2],
        &format!("home/dave/{AK}"),
        format!("{leaver}\n{other1}\n"),
        0o600,
        1003,
    );
    // web-4: erin's authorized_keys is a link to a shared file.
    passwd(&roots[3], &[("erin", 1004)]);
    write_owned(
        &roots[3],
        "etc/keys/shared",
        format!("{leaver}\n"),
        0o644,
        0,
    );
    std::fs::create_dir_all(roots[3].join("home/erin/.ssh")).unwrap();
    symlink("/etc/keys/shared", roots[3].join(format!("home/erin/{AK}"))).unwrap();
    // web-5: never had it.
    passwd(&roots[4], &[("frank", 1005)]);
    write_owned(
        &roots[4],
        &format!("home/frank/{AK}"),
        format!("{other1}\n{other2}\n"),
        0o600,
        1005,
    );
    Fleet {
        roots,
        leaver,
        fp,
        other1,
        other2,
    }
}

/// Every file under a root, with content, mode and owner: "unchanged" means
/// this is equal.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_symlink() {
                out.push((
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                    0,
                    m.uid(),
                ));
            } else {
                out.push((
                    p.clone(),
                    std::fs::read(&p).unwrap(),
                    m.mode() & 0o7777,
                    m.uid(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn offboarding_sweep_removes_exactly_the_leavers_lines_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pki = Pki::init(&t.join("pki"));
    let data = t.join("data");
    let c = CollectorProc::start(&pki, &data, None);
    let fleet = build(t);
    let certs: Vec<(PathBuf, PathBuf)> = (1..=5)
        .map(|i| pki.issue_host(&format!("web-{i}"), &t.join(format!("cert-{i}"))))
        .collect();
    let state = |i: usize| t.join(format!("state-{}", i + 1));
    let root_arg = |i: usize| fleet.roots[i].to_string_lossy().into_owned();

    // web-3 reports once, then is switched off for the sweep.
    let once = agent_once(
        &c.url,
        &pki.ca(),
        &certs[2].0,
        &certs[2].1,
        &state(2),
        &[
            "--root",
            &root_arg(2),
            "--section",
            "host",
            "--section",
            "ssh_keys",
        ],
    );
    assert!(once.status.success(), "{}", stderr_of(&once));
    let start = |i: usize, url: &str| {
        AgentProc::start(
            url,
            &pki.ca(),
            (&certs[i].0, &certs[i].1),
            &state(i),
            &fleet.roots[i],
            "2s",
        )
    };
    let mut agents: Vec<AgentProc> = [0, 1, 3, 4].iter().map(|&i| start(i, &c.url)).collect();
    wait_for(30, "four connected agents with snapshots", || {
        let hosts = cli_json(&pki, &c.url, &["hosts"]);
        let ok = hosts["hosts"]
            .as_array()?
            .iter()
            .filter(|h| h["connected"] == true && h["last_seq"].as_u64() > Some(0))
            .count();
        (ok == 4).then_some(())
    });

    // keys find: the same answer by fingerprint, public key file and comment.
    let find = cli_json(&pki, &c.url, &["keys", "find", "--fingerprint", &fleet.fp]);
    assert_eq!(hosts_of(&find), ["web-1", "web-2", "web-3"], "{find:#}");
    assert_eq!(find["locations"].as_array().unwrap().len(), 5, "{find:#}");
    let with_opts = &find["locations"][0];
    assert_eq!(with_opts["user"], "alice");
    assert_eq!(with_opts["line"], 2);
    assert_eq!(
        with_opts["options"],
        serde_json::json!(["from=10.0.0.0/8", "no-pty"])
    );
    let pubkey = t.join("leaver.pub").to_string_lossy().into_owned();
    // The same lines; each answer also echoes its own selector.
    assert_eq!(
        cli_json(&pki, &c.url, &["keys", "find", "--pubkey", &pubkey])["locations"],
        find["locations"]
    );
    assert_eq!(
        cli_json(&pki, &c.url, &["keys", "find", "--comment", "leaver@corp"])["locations"],
        find["locations"]
    );

    let before: Vec<_> = fleet.roots.iter().map(|r| tree(r)).collect();

    // Dry run: lists what would go, changes nothing. web-3 is offline, so
    // each sweep below waits its whole --timeout: long enough for the four
    // connected agents to answer on a loaded CI machine.
    let (code, dry, err) = cli_any(
        &pki,
        &c.url,
        &["keys", "sweep", "--pubkey", &pubkey, "--timeout", "15s"],
    );
    assert_eq!(
        code,
        Some(1),
        "pending and refused hosts make the answer bad news: {err}"
    );
    assert!(
        err.contains("done") && err.contains("pending"),
        "progress on stderr: {err}"
    );
    assert_eq!(dry["remove"], false);
    assert_eq!(
        files(job_host(&dry, "web-1")),
        [(format!("/home/alice/{AK}"), "would_remove".into(), vec![2])]
    );
    assert_eq!(
        files(job_host(&dry, "web-2")),
        [
            (format!("/home/carol/{AK}"), "would_remove".into(), vec![3]),
            (
                format!("/home/carol/{AK}2"),
                "would_remove".into(),
                vec![1, 3]
            ),
        ]
    );
    assert_eq!(job_host(&dry, "web-3")["status"], "pending");
    assert_eq!(job_host(&dry, "web-4")["status"], "failed");
    assert_eq!(job_host(&dry, "web-5")["status"], "done");
    for (r, b) in fleet.roots.iter().zip(&before) {
        assert_eq!(&tree(r), b, "a dry run changed {}", r.display());
    }

    // No terminal and no --yes: refused, nothing changes.
    let (code, _, err) = cli_any(
        &pki,
        &c.url,
        &["keys", "sweep", "--fingerprint", &fleet.fp, "--remove"],
    );
    assert_eq!(code, Some(2), "a refusal is bad usage: {err}");
    assert!(
        err.contains("--yes") && err.contains("no terminal"),
        "{err}"
    );
    assert_eq!(
        cli_json(&pki, &c.url, &["keys", "sweeps"])["sweeps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // On a terminal it lists the hosts it will touch and asks; "no" cancels.
    let (mut typing, tty) = pty();
    let asking = cli(&pki, &c.url)
        .args(["keys", "sweep", "--fingerprint", &fleet.fp, "--remove"])
        .stdin(std::fs::File::open(&tty).unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut typing, b"no\n").unwrap();
    let asked = asking.wait_with_output().unwrap();
    let err = stderr_of(&asked);
    assert_eq!(asked.status.code(), Some(3), "{err}");
    assert!(
        err.contains("Proceed?") && err.contains("sweep cancelled"),
        "{err}"
    );
    for h in ["web-1", "web-3", "web-5"] {
        assert!(err.contains(h), "{h} listed: {err}");
    }
    assert!(err.contains("no (pending)"), "offline host marked: {err}");
    assert_eq!(
        cli_json(&pki, &c.url, &["keys", "sweeps"])["sweeps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for (r, b) in fleet.roots.iter().zip(&before) {
        assert_eq!(&tree(r), b, "a cancelled sweep changed {}", r.display());
    }

    // The sweep.
    let (code, job, err) = cli_any(
        &pki,
        &c.url,
        &[
            "keys",
            "sweep",
            "--fingerprint",
            &fleet.fp,
            "--remove",
            "--yes",
            "--timeout",
            "15s",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["requested_by"], "admin");
    assert_eq!(job_host(&job, "web-1")["status"], "done", "{job:#}");
    assert_eq!(
        files(job_host(&job, "web-1")),
        [(format!("/home/alice/{AK}"), "removed".into(), vec![2])]
    );
    assert_eq!(
        files(job_host(&job, "web-2")),
        [
            (format!("/home/carol/{AK}"), "removed".into(), vec![3]),
            (format!("/home/carol/{AK}2"), "removed".into(), vec![1, 3]),
        ]
    );
    assert_eq!(job_host(&job, "web-3")["status"], "pending");
    let w4 = job_host(&job, "web-4");
    assert_eq!(w4["status"], "failed");
    assert_eq!(
        files(w4),
        [(format!("/home/erin/{AK}"), "refused".into(), vec![])]
    );
    assert!(
        w4["files"][0]["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link")
    );
    assert_eq!(job_host(&job, "web-5")["status"], "done");
    assert!(files(job_host(&job, "web-5")).is_empty());

    // Exactly those lines gone; every other byte, the modes and owners kept.
    let (r1, r2) = (&fleet.roots[0], &fleet.roots[1]);
    let (l, o1, o2) = (&fleet.leaver, &fleet.other1, &fleet.other2);
    assert_eq!(
        read(r1, &format!("home/alice/{AK}")),
        format!("{o1}\n{o2}\n").as_bytes()
    );
    assert_eq!(mode(r1, &format!("home/alice/{AK}")), (0o600, 1000));
    assert_eq!(
        read(r2, &format!("home/carol/{AK}")),
        format!("# team keys\n{o2}\n").as_bytes()
    );
    assert_eq!(
        read(r2, &format!("home/carol/{AK}2")),
        format!("{o1}\n").as_bytes()
    );
    assert_eq!(mode(r2, &format!("home/carol/{AK}2")), (0o644, 1002));
    // A backup of the previous content beside the file, same mode.
    let backup = job["hosts"][0]["files"][0]["backup"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        backup.starts_with(&format!("/home/alice/{AK}.driftwatch-bak-")),
        "{backup}"
    );
    let b = r1.join(backup.trim_start_matches('/'));
    assert_eq!(
        std::fs::read(&b).unwrap(),
        format!("{o1}\nfrom=\"10.0.0.0/8\",no-pty {l}\n{o2}\n").as_bytes()
    );
    assert_eq!(std::fs::metadata(&b).unwrap().mode() & 0o7777, 0o600);
    // The untouched host, bob's file, the link and its target: unchanged.
    assert_eq!(tree(&fleet.roots[4]), before[4]);
    assert_eq!(tree(&fleet.roots[3]), before[3]);
    assert_eq!(
        read(r1, &format!("home/bob/{AK}")),
        format!("{o1}\n").as_bytes()
    );

    // The agents sent fresh snapshots: the fleet view shows only web-3.
    wait_for(20, "keys find to show only the offline host", || {
        let f = cli_json(&pki, &c.url, &["keys", "find", "--fingerprint", &fleet.fp]);
        (hosts_of(&f) == ["web-3"]).then_some(())
    });

    // web-3 comes back and runs the pending sweep.
    agents.push(start(2, &c.url));
    let done = wait_for(30, "web-3 to run the pending sweep", || {
        let (_, v, _) = cli_any(&pki, &c.url, &["keys", "sweep-status", &id]);
        (job_host(&v, "web-3")["status"] == "done").then_some(v)
    });
    assert_eq!(
        files(job_host(&done, "web-3")),
        [(format!("/home/dave/{AK}"), "removed".into(), vec![1])]
    );
    assert_eq!(
        read(&fleet.roots[2], &format!("home/dave/{AK}")),
        format!("{o1}\n").as_bytes()
    );
    wait_for(20, "keys find to show the key nowhere", || {
        let f = cli_json(&pki, &c.url, &["keys", "find", "--fingerprint", &fleet.fp]);
        hosts_of(&f).is_empty().then_some(())
    });

    // The audit log survives a collector restart.
    drop(agents);
    let port = c.port;
    assert!(c.stop(), "collector stops cleanly");
    let c = CollectorProc::start(&pki, &data, Some(port));
    let list = cli_json(&pki, &c.url, &["keys", "sweeps"]);
    let sweeps = list["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 2, "{list:#}");
    assert_eq!(sweeps[0]["id"], id.as_str());
    assert_eq!(sweeps[0]["requested_by"], "admin");
    assert_eq!(sweeps[0]["selector"]["fingerprints"][0], fleet.fp.as_str());
    assert_eq!(sweeps[1]["remove"], false);
    assert_eq!(sweeps[0]["lines_removed"], 5);
    let (code, after, _) = cli_any(&pki, &c.url, &["keys", "sweep-status", &id]);
    assert_eq!(code, Some(1), "web-4 still failed");
    for h in ["web-1", "web-2", "web-3", "web-5"] {
        assert_eq!(job_host(&after, h)["status"], "done", "{h}: {after:#}");
        assert!(job_host(&after, h)["finished_ms"].as_i64().unwrap() > 0);
    }
    assert_eq!(job_host(&after, "web-4")["status"], "failed");
    assert_eq!(
        files(job_host(&after, "web-2")),
        files(job_host(&job, "web-2"))
    );
    assert!(after["created_ms"].as_i64().unwrap() > 0);
    // The key index is rebuilt from the stored snapshots.
    let f = cli_json(&pki, &c.url, &["keys", "find", "--fingerprint", &fleet.fp]);
    assert!(hosts_of(&f).is_empty(), "{f:#}");
    assert_eq!(f["hosts_indexed"], 5);
    // People get a table that names the refused link.
    let table = cli(&pki, &c.url)
        .args(["keys", "sweep-status", &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("refused") && text.contains("/home/erin/.ssh/authorized_keys"),
        "{text}"
    );

    // A revoked host's key lines stay findable, marked: no sweep reaches it.
    run_ok(cli(&pki, &c.url).args(["hosts", "revoke", "web-5", "--yes"]));
    let f = cli_json(&pki, &c.url, &["keys", "find", "--comment", "ops@corp"]);
    let marks: Vec<(String, bool)> = f["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let id = l["host_id"].as_str().unwrap().to_string();
            (id, l["host_revoked"].as_bool().unwrap_or(false))
        })
        .collect();
    assert!(marks.contains(&("web-5".into(), true)), "{f:#}");
    assert!(marks.contains(&("web-1".into(), false)), "{f:#}");
    let table = run_ok(cli(&pki, &c.url).args(["keys", "find", "--comment", "ops@corp"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("web-5 (revoked)") && text.contains("a sweep cannot reach it"),
        "{text}"
    );
    assert!(!text.contains("web-1 (revoked)"), "{text}");
}
