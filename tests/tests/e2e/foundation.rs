//! Foundation, end to end: real binaries, real certificates from `pki`,
//! real sled on disk, loopback TLS.

use std::path::Path;

use driftwatch_tests::*;

struct Fleet {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    pki: Pki,
}

fn fleet() -> Fleet {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::init(&root.join("pki"));
    Fleet {
        _tmp: tmp,
        root,
        pki,
    }
}

fn report(f: &Fleet, c: &CollectorProc, host: &str, extra: &[&str]) -> std::process::Output {
    let dir = f.root.join(format!("agent-{host}"));
    let (cert, key) = if dir.exists() {
        (dir.join("agent.pem"), dir.join("agent-key.pem"))
    } else {
        f.pki.issue_host(host, &dir)
    };
    agent_once(
        &c.url,
        &f.pki.ca(),
        &cert,
        &key,
        &f.root.join(format!("state-{host}")),
        extra,
    )
}

#[test]
fn agent_reports_and_cli_finds_host_with_process_count_near_proc() {
    let f = fleet();
    let c = CollectorProc::start(&f.pki, &f.root.join("data"), None);
    let out = report(
        &f,
        &c,
        "web-01",
        &["--label", "group=web", "--label", "env=test"],
    );
    assert!(
        out.status.success(),
        "agent --once failed: {}\ncollector log:\n{}",
        stderr_of(&out),
        c.log_text()
    );
    // Human logs to a file (as to journald) are plain text: no colour codes.
    let log = c.log_text();
    assert!(log.contains("collector listening"), "{log}");
    assert!(!log.contains('\x1b'), "escape codes in a file log:\n{log}");
    assert!(!stderr_of(&out).contains('\x1b'), "{}", stderr_of(&out));

    let hosts = cli_json(&f.pki, &c.url, &["hosts"]);
    let hosts = hosts["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    let h = &hosts[0];
    assert_eq!(h["host_id"], "web-01");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(h["hostname"], hostname.trim());
    assert_eq!(h["last_seq"], 1);
    let labels: Vec<(String, String)> = h["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap().into(),
                l["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        vec![
            ("env".into(), "test".into()),
            ("group".into(), "web".into())
        ]
    );
    assert!(
        h["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "processes" && s["status"] == "ok")
    );

    let show = cli_json(
        &f.pki,
        &c.url,
        &["host", "show", "web-01", "--section", "processes"],
    );
    let sections = show["snapshot"]["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 1, "only the asked section");
    let procs = sections[0]["body"]["processes"]["processes"]
        .as_array()
        .unwrap();
    let oracle = proc_count() as f64;
    let got = procs.len() as f64;
    // Counted at different moments while parallel tests start and reap
    // processes: 10%, but never fewer than 10 on a small container.
    assert!(
        (got - oracle).abs() <= (oracle * 0.10).max(10.0),
        "{got} processes reported vs {oracle} in /proc"
    );
    assert!(procs.iter().any(|p| {
        p["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("driftwatch-collector"))
    }));

    // The table view works too and finds the host by hostname.
    let table = run_ok(cli(&f.pki, &c.url).args([
        "host",
        "show",
        hostname.trim(),
        "--sort",
        "mem",
        "--limit",
        "3",
    ]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("== processes (ok)") && text.contains("more (use --limit 0"),
        "{text}"
    );
}

#[test]
fn clients_without_certificate_or_from_another_ca_are_refused() {
    let f = fleet();
    let c = CollectorProc::start(&f.pki, &f.root.join("data"), None);

    // The CLI says what to do before it even connects.
    let out = cli(&f.pki, &c.url)
        .env_remove("DRIFTWATCH_CERT")
        .env_remove("DRIFTWATCH_KEY")
        .arg("hosts")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no client certificate: pass --cert/--key"),
        "{}",
        stderr_of(&out)
    );

    // A TLS client with no certificate reaches the server and is refused per RPC.
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let files = driftwatch_common::tls::ClientFiles {
            ca: f.pki.ca(),
            cert: None,
            key: None,
        };
        let ch = driftwatch_common::client::connect(&c.url, &files)
            .await
            .expect("TLS without client cert");
        let mut admin = driftwatch_common::proto::admin_client::AdminClient::new(ch.clone());
        let a = admin
            .list_hosts(driftwatch_common::proto::ListHostsRequest {})
            .await
            .unwrap_err();
        let mut agent = driftwatch_common::proto::agent_client::AgentClient::new(ch);
        let r = agent
            .report(driftwatch_common::proto::ReportRequest {
                snapshot: Some(Default::default()),
            })
            .await
            .unwrap_err();
        (a, r)
    });
    for s in [&status.0, &status.1] {
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        assert!(s.message().contains("no client certificate"), "{s:?}");
    }

    // Certificates from a foreign CA: the agent and the CLI fail clearly.
    let other = Pki::init(&f.root.join("other-pki"));
    let (cert, key) = other.issue_host("intruder", &f.root.join("intruder"));
    let out = agent_once(
        &c.url,
        &f.pki.ca(),
        &cert,
        &key,
        &f.root.join("state-intruder"),
        &[],
    );
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("snapshot 1 was not acknowledged"), "{err}");
    assert!(
        err.contains("check that this certificate was issued by the collector's CA"),
        "{err}"
    );
    let out = cli(&f.pki, &c.url)
        .env("DRIFTWATCH_CERT", other.dir.join("admin.pem"))
        .env("DRIFTWATCH_KEY", other.dir.join("admin-key.pem"))
        .arg("hosts")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr_of(&out)
    );

    // Nothing from those attempts was stored.
    assert_eq!(
        cli_json(&f.pki, &c.url, &["hosts"])["hosts"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn collector_restart_keeps_hosts_and_last_snapshot() {
    let f = fleet();
    let data = f.root.join("data");
    let c = CollectorProc::start(&f.pki, &data, None);
    for _ in 0..2 {
        let out = report(&f, &c, "db-01", &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let port = c.port;
    assert!(c.stop(), "collector did not exit 0 on SIGTERM");

    let c = CollectorProc::start(&f.pki, &data, Some(port));
    let show = cli_json(&f.pki, &c.url, &["host", "show", "db-01"]);
    assert_eq!(show["host"]["last_seq"], 2);
    assert_eq!(show["host"]["snapshots_stored"], 2);
    assert_eq!(show["snapshot"]["seq"], 2);
    assert!(!show["snapshot"]["sections"].as_array().unwrap().is_empty());
    assert!(Path::new(&data).join("db").exists());
}

#[test]
fn agent_once_fails_clearly_when_collector_is_down_and_delivers_later() {
    let f = fleet();
    let (cert, key) = f.pki.issue_host("late-01", &f.root.join("agent-late"));
    let state = f.root.join("state-late");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://localhost:{port}");
    let out = agent_once(
        &url,
        &f.pki.ca(),
        &cert,
        &key,
        &state,
        &["--section", "host"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("snapshot 1 was not acknowledged") && err.contains("stays in the spool"),
        "{err}"
    );

    // When the collector is back, the spooled snapshot goes first, then the new one.
    let c = CollectorProc::start(&f.pki, &f.root.join("data"), Some(port));
    let out = agent_once(
        &url,
        &f.pki.ca(),
        &cert,
        &key,
        &state,
        &["--section", "host"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let show = cli_json(&f.pki, &c.url, &["host", "show", "late-01"]);
    assert_eq!(show["host"]["snapshots_stored"], 2);
    assert_eq!(show["host"]["last_seq"], 2);
}

#[test]
fn the_cli_reads_its_config_file_and_flags_win() {
    let f = fleet();
    let c = CollectorProc::start(&f.pki, &f.root.join("data"), None);
    let out = report(&f, &c, "cfg-01", &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let home = f.root.join("home");
    std::fs::create_dir_all(home.join(".config/driftwatch")).unwrap();
    std::fs::write(
        home.join(".config/driftwatch/cli.toml"),
        format!(
            "collector = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            c.url,
            f.pki.ca().display(),
            f.pki.dir.join("admin.pem").display(),
            f.pki.dir.join("admin-key.pem").display()
        ),
    )
    .unwrap();
    let plain = || {
        let mut cmd = std::process::Command::new(bin("driftwatch"));
        cmd.env_clear()
            .env("HOME", &home)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let out = run_ok(plain().args(["hosts", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hosts"][0]["host_id"], "cfg-01");
    // A flag wins over the file: a wrong collector address now fails.
    let out = plain()
        .args(["hosts", "--collector", "https://localhost:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("cannot reach the collector at https://localhost:1"),
        "{}",
        stderr_of(&out)
    );
    // A typo in the file is an error naming the key.
    std::fs::write(
        home.join(".config/driftwatch/cli.toml"),
        "colector = \"x\"\n",
    )
    .unwrap();
    let out = plain().arg("hosts").output().unwrap();
    assert!(stderr_of(&out).contains("colector"), "{}", stderr_of(&out));
}
