//! History, diff, delta reporting and drift findings, end to end: several
//! agents on fake roots in two groups, the real collector with a policy.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftwatch_tests::*;
use serde_json::Value;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6ItKlKwmzVjUEzBX7yzEPoPhUPdYHbZ5uQrBYYoUuR ops@example";

struct Fleet {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    pki: Pki,
    c: Option<CollectorProc>,
    port: u16,
}

impl Fleet {
    fn new() -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let pki = Pki::init(&root.join("pki"));
        write_under(
            &root,
            "policy.toml",
            "[packages]\nminimum = { openssl = \"3.0.11-1~deb12u2\" }\n",
        );
        let mut f = Fleet {
            _tmp: tmp,
            root,
            pki,
            c: None,
            port: 0,
        };
        f.start();
        f
    }

    fn start(&mut self) {
        let port = if self.port == 0 {
            None
        } else {
            Some(self.port)
        };
        let c = CollectorProc::start_with(
            &self.pki,
            &self.root.join("data"),
            port,
            &["--policy", self.root.join("policy.toml").to_str().unwrap()],
        );
        self.port = c.port;
        self.c = Some(c);
    }

    fn url(&self) -> String {
        self.c.as_ref().unwrap().url.clone()
    }

    fn host_root(&self, host: &str) -> PathBuf {
        self.root.join("roots").join(host)
    }

    fn make_host(&self, host: &str) {
        let r = self.host_root(host);
        fake_root(&r, host, &format!("mid-{host}"), &format!("uuid-{host}"));
        write_under(&r, "root/.ssh/authorized_keys", format!("{KEY_A}\n"));
        write_under(
            &r,
            "etc/logrotate.conf",
            "weekly\nrotate 4\ninclude /etc/logrotate.d\n",
        );
        write_under(
            &r,
            "etc/logrotate.d/app",
            "/var/log/app/*.log {\n  daily\n  rotate 7\n}\n",
        );
        write_under(&r, "var/log/app/a.log", "x\n");
        write_under(
            &r,
            "var/lib/dpkg/status",
            dpkg_with_openssl("3.0.11-1~deb12u2"),
        );
        self.pki
            .issue_host(host, &self.root.join("certs").join(host));
    }

    fn report(&self, host: &str, group: &str) {
        let certs = self.root.join("certs").join(host);
        let mut args = vec![
            "--root".to_string(),
            self.host_root(host).to_string_lossy().into(),
            "--label".into(),
            format!("group={group}"),
        ];
        for s in ["host", "ssh_keys", "log_config", "packages"] {
            args.extend(["--section".to_string(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = agent_once(
            &self.url(),
            &self.pki.ca(),
            &certs.join("agent.pem"),
            &certs.join("agent-key.pem"),
            &self.root.join("state").join(host),
            &args,
        );
        assert!(out.status.success(), "{host}: {}", stderr_of(&out));
    }

    fn json(&self, args: &[&str]) -> Value {
        cli_json(&self.pki, &self.url(), args)
    }

    fn open_findings(&self, host: &str) -> Vec<(String, String, String)> {
        let v = self.json(&["drift", "--host", host]);
        let mut out: Vec<_> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["kind"].as_str().unwrap().into(),
                    f["section"].as_str().unwrap().into(),
                    f["item"].as_str().unwrap().into(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn code(f: &Fleet, args: &[&str]) -> Option<i32> {
    cli(&f.pki, &f.url())
        .args(args)
        .output()
        .unwrap()
        .status
        .code()
}

#[test]
fn drift_history_and_policy_across_two_groups() {
    let mut f = Fleet::new();
    let web = ["w1", "w2", "w3", "w4"];
    let db = ["d1", "d2", "d3"];
    for h in web.iter().chain(&db) {
        f.make_host(h);
    }
    for h in web {
        f.report(h, "web");
    }
    for h in db {
        f.report(h, "db");
    }
    for h in web.iter().chain(&db) {
        assert!(
            f.open_findings(h).is_empty(),
            "{h}: {:?}",
            f.open_findings(h)
        );
    }

    // 1. A key added on w1: diff, history, peer outlier.
    let evil_dir = f.root.join("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    let (evil_pub, evil_fp) = ssh_keygen(&evil_dir, "id", "ed25519", "mallory@laptop");
    write_under(
        &f.host_root("w1"),
        "root/.ssh/authorized_keys",
        format!("{KEY_A}\n{evil_pub}\n"),
    );
    f.report("w1", "web");
    let diff = run_ok(cli(&f.pki, &f.url()).args(["diff", "w1"]));
    let text = String::from_utf8_lossy(&diff.stdout);
    let want = format!("ssh_keys  + root  ssh-ed25519 {evil_fp} mallory@laptop");
    assert!(text.contains(&want), "diff:\n{text}\nwanted: {want}");
    let hist = f.json(&["history", "w1"]);
    let entries = hist["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "first snapshot and the change: {hist}");
    let last = &entries[1]["sections"][0];
    assert_eq!(
        (
            last["section"].as_str(),
            last["changes"][0]["kind"].as_str()
        ),
        (Some("ssh_keys"), Some("added"))
    );
    assert_eq!(
        f.open_findings("w1"),
        vec![(
            "peer_outlier".into(),
            "ssh_keys".into(),
            format!("root {evil_fp}")
        )]
    );

    // 2. A logrotate rule removed on w2: missing against its peers.
    std::fs::remove_file(f.host_root("w2").join("etc/logrotate.d/app")).unwrap();
    f.report("w2", "web");
    let w2 = f.open_findings("w2");
    assert!(
        w2.iter().any(|(k, s, i)| k == "peer_missing"
            && s == "log_config"
            && i.starts_with("rotate /var/log/app/*.log")),
        "{w2:?}"
    );

    // 3. A package downgraded on d1 breaks the policy; --fail-on exits as documented.
    write_under(
        &f.host_root("d1"),
        "var/lib/dpkg/status",
        dpkg_with_openssl("3.0.9-1"),
    );
    f.report("d1", "db");
    // The policy breach, and the version spread against its db peers.
    assert_eq!(
        f.open_findings("d1"),
        vec![
            (
                "peer_missing".into(),
                "packages".into(),
                "openssl:amd64 3.0.11-1~deb12u2".into()
            ),
            (
                "peer_outlier".into(),
                "packages".into(),
                "openssl:amd64 3.0.9-1".into()
            ),
            ("policy".into(), "packages".into(), "openssl:amd64".into()),
        ]
    );
    assert_eq!(code(&f, &["drift", "--fail-on", "high"]), Some(1));
    assert_eq!(code(&f, &["drift", "--fail-on", "critical"]), Some(0));
    assert_eq!(code(&f, &["drift", "--fail-on", "bogus"]), Some(2));
    let table = run_ok(cli(&f.pki, &f.url()).args(["drift", "--min-severity", "high"]));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("openssl 3.0.9-1 is older than the minimum 3.0.11-1~deb12u2")
            && table.contains("HIGH"),
        "{table}"
    );

    // 4. A collector restart loses no finding.
    let before = f.json(&["drift"]);
    assert!(f.c.take().unwrap().stop());
    f.start();
    let after = f.json(&["drift"]);
    let ids = |v: &Value| {
        let mut ids: Vec<(String, i64)> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().into(),
                    f["first_seen_ms"].as_i64().unwrap(),
                )
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(ids(&before).len(), 5, "{before}");

    // 5. Reverting each resolves its finding, which stays in the record.
    write_under(
        &f.host_root("w1"),
        "root/.ssh/authorized_keys",
        format!("{KEY_A}\n"),
    );
    write_under(
        &f.host_root("w2"),
        "etc/logrotate.d/app",
        "/var/log/app/*.log {\n  daily\n  rotate 7\n}\n",
    );
    write_under(
        &f.host_root("d1"),
        "var/lib/dpkg/status",
        dpkg_with_openssl("3.0.11-1~deb12u2"),
    );
    f.report("w1", "web");
    f.report("w2", "web");
    f.report("d1", "db");
    assert!(
        f.json(&["drift"])["findings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let all = f.json(&["drift", "--all"]);
    let resolved = all["findings"].as_array().unwrap();
    assert_eq!(resolved.len(), 5);
    assert!(
        resolved
            .iter()
            .all(|x| x["resolved_ms"].as_i64().unwrap() > 0)
    );
    assert_eq!(code(&f, &["drift", "--fail-on", "info"]), Some(0));

    // 6. Two hosts compared now.
    let d = f.json(&["diff", "w1", "d1"]);
    assert!(
        d["sections"].as_array().unwrap().is_empty()
            || d["sections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["section"] == "host"),
        "{d}"
    );
}

#[test]
fn unchanged_reports_add_no_history_and_deltas_recover_from_a_lost_collector() {
    let mut f = Fleet::new();
    f.make_host("u1");
    f.report("u1", "web");
    let data = f.root.join("data");
    let size = |p: &Path| -> u64 { walk_size(p) };
    let before = size(&data);
    for _ in 0..100 {
        f.report("u1", "web");
    }
    let h = f.json(&["host", "show", "u1", "--section", "ssh_keys"]);
    assert_eq!(h["host"]["snapshots_stored"], 101);
    assert_eq!(
        h["host"]["changes_stored"], 1,
        "100 unchanged reports add no history"
    );
    assert!(
        h["snapshot"]["sections"][0]["body"]["ssh_keys"]["files"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "the latest is whole"
    );
    let grown = size(&data).saturating_sub(before);
    eprintln!(
        "data dir grew by {grown} bytes over 100 unchanged reports ({} per report)",
        grown / 100
    );

    // Delta the other way: a long-running agent sends hashes; the collector
    // loses its data; the agent's next delta is answered with "need full".
    let certs = f.root.join("certs").join("u1");
    let log = f.root.join("agent.log");
    let mut running = Command::new(bin("driftwatch-agent"))
        .args([
            "run",
            "--interval",
            "1s",
            "--section",
            "host",
            "--section",
            "ssh_keys",
            "--collector",
            &f.url(),
        ])
        .arg("--ca")
        .arg(f.pki.ca())
        .arg("--cert")
        .arg(certs.join("agent.pem"))
        .arg("--key")
        .arg(certs.join("agent-key.pem"))
        .arg("--state-dir")
        .arg(f.root.join("state-long"))
        .arg("--root")
        .arg(f.host_root("u1"))
        .env("RUST_LOG", "driftwatch_agent=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |pred: &dyn Fn(&str) -> bool, what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if pred(&text) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}:\n{text}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(
        &|t| t.matches("acknowledged").count() >= 3,
        "the agent reports repeatedly",
    );
    assert!(f.c.take().unwrap().stop());
    std::fs::remove_dir_all(&data).unwrap();
    f.start();
    wait_for(
        &|t| t.contains("collector asked for full sections"),
        "the new collector asks for full sections",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hosts = f.json(&["hosts"]);
        if hosts["hosts"].as_array().is_some_and(|h| !h.is_empty()) {
            let show = f.json(&["host", "show", "u1", "--section", "ssh_keys"]);
            if show["snapshot"]["sections"][0]["body"]["ssh_keys"]["files"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resent full sections never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // One section changes while the other is re-sent only as a hash: the
    // changed one is stored whole with this report's time, the unchanged
    // one keeps its older body and time, and host show dates it.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    write_under(
        &f.host_root("u1"),
        "root/.ssh/authorized_keys",
        format!("{KEY_A}\n{KEY_A} second-line\n"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let h = loop {
        let h = f.json(&["host", "show", "u1"]);
        let keys = h["snapshot"]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "ssh_keys")
            .map(|s| s["body"]["ssh_keys"].to_string())
            .unwrap_or_default();
        if keys.contains("second-line") {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the changed key file never arrived: {h:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = running.kill();
    let _ = running.wait();
    let snap_ms = h["snapshot"]["collected_at_ms"].as_i64().unwrap();
    let body_ms = |name: &str| {
        h["snapshot"]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["body_collected_at_ms"].as_i64())
            .unwrap()
    };
    assert_eq!(body_ms("ssh_keys"), snap_ms, "{h:#}");
    assert!(
        body_ms("host") > 0 && body_ms("host") + 1_000 <= snap_ms,
        "{h:#}"
    );
    let text = run_ok(cli(&f.pki, &f.url()).args(["host", "show", "u1"]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("== host (ok) · values as of "), "{text}");
    assert!(text.contains("== ssh_keys (ok)\n"), "{text}");
}

fn walk_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        walk_size(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn image_baseline_baked_then_uploaded_and_named_baselines() {
    let f = Fleet::new();
    f.make_host("img1");
    // Bake: capture into the image's state dir (here the agent's state dir).
    let state = f.root.join("state").join("img1");
    let out = run_ok(
        agent(&["baseline", "capture", "--image-id", "web-image-7"])
            .arg("--root")
            .arg(f.host_root("img1"))
            .arg("--state-dir")
            .arg(&state),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web-image-7");
    // First boot reports and uploads it; then the host drifts from it.
    f.report("img1", "web");
    assert!(state.join("baseline.uploaded").exists());
    // One host's upload is a candidate, not the image's baseline.
    let list = f.json(&["baseline", "list"]);
    assert!(
        list["baselines"].as_array().is_none_or(Vec::is_empty),
        "{list}"
    );
    assert_eq!(list["candidates"][0]["image_id"], "web-image-7");
    run_ok(cli(&f.pki, &f.url()).args([
        "baseline",
        "approve",
        "web-image-7",
        "--from-host",
        "img1",
    ]));
    let list = f.json(&["baseline", "list"]);
    assert_eq!(list["baselines"][0]["image_id"], "web-image-7");
    assert_eq!(
        f.json(&["host", "show", "img1"])["host"]["image_id"],
        "web-image-7"
    );
    write_under(
        &f.host_root("img1"),
        "var/lib/dpkg/status",
        dpkg_with_openssl("3.0.13-1~deb12u1"),
    );
    f.report("img1", "web");
    let d = f.json(&["diff", "img1", "--baseline", "image"]);
    let changes: Vec<String> = d["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["text"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        changes.contains(&"~ openssl:amd64: 3.0.11-1~deb12u2 -> 3.0.13-1~deb12u1".to_string()),
        "{changes:?}"
    );
    let findings = f.open_findings("img1");
    assert!(
        findings.contains(&(
            "baseline_changed".into(),
            "packages".into(),
            "openssl:amd64".into()
        )),
        "{findings:?}"
    );

    // A named baseline from a golden host, chosen by label.
    f.make_host("gold");
    f.report("gold", "db");
    run_ok(cli(&f.pki, &f.url()).args(["baseline", "set", "golden", "--from-host", "gold"]));
    let d = f.json(&["diff", "img1", "--baseline", "golden"]);
    assert!(d["from"].as_str().unwrap().contains("golden"));
    let err = cli(&f.pki, &f.url())
        .args(["diff", "img1", "--baseline", "nope"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(3));
    assert!(
        stderr_of(&err).contains("baseline list"),
        "{}",
        stderr_of(&err)
    );
}
