//! Prometheus `/metrics` of the collector and the agent, end to end: real
//! binaries, real TLS, scraped over plain HTTP and parsed strictly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use driftwatch_tests::prom::{Exposition, http_get, parse, scrape};
use driftwatch_tests::*;

const RECEIVED: &str = "driftwatch_collector_reports_received_total";
const REJECTED: &str = "driftwatch_collector_reports_rejected_total";

fn hosts(e: &Exposition, state: &str) -> f64 {
    e.value("driftwatch_collector_hosts", &[("state", state)])
}

#[test]
fn collector_metrics_move_when_agents_report_and_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let maddr = format!("127.0.0.1:{}", free_port());
    let c = CollectorProc::start_with(
        &pki,
        &tmp.path().join("data"),
        None,
        &["--metrics-listen", &maddr],
    );

    let before = scrape(&maddr);
    assert_eq!(before.value(RECEIVED, &[("outcome", "new")]), 0.0);
    assert_eq!(before.value(REJECTED, &[("reason", "revoked")]), 0.0);
    assert_eq!(hosts(&before, "fresh"), 0.0);
    assert_eq!(
        before.value("driftwatch_collector_report_bytes_total", &[]),
        0.0
    );

    let (cert, key) = pki.issue_host("web-01", &tmp.path().join("web-01"));
    let state = tmp.path().join("state");
    for _ in 0..2 {
        let out = agent_once(
            &c.url,
            &pki.ca(),
            &cert,
            &key,
            &state,
            &["--section", "host"],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }

    let after = scrape(&maddr);
    assert_eq!(after.value(RECEIVED, &[("outcome", "new")]), 2.0);
    assert_eq!(after.value(RECEIVED, &[("outcome", "duplicate")]), 0.0);
    assert!(after.value("driftwatch_collector_report_bytes_total", &[]) > 100.0);
    assert_eq!(
        after.value("driftwatch_collector_report_duration_seconds_count", &[]),
        2.0
    );
    assert!(after.value("driftwatch_collector_report_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(hosts(&after, "fresh"), 1.0);
    assert_eq!(hosts(&after, "stale"), 0.0);
    // Scrape-time gauges for findings and sweeps are exposed per label value.
    for sev in ["info", "low", "medium", "high", "critical"] {
        assert_eq!(
            after.value("driftwatch_collector_findings_open", &[("severity", sev)]),
            0.0
        );
    }
    for st in ["running", "done", "incomplete"] {
        assert_eq!(
            after.value("driftwatch_collector_sweeps", &[("state", st)]),
            0.0
        );
    }
    assert_eq!(after.value("driftwatch_collector_sweeps_overdue", &[]), 0.0);
    // Findings by kind: every kind (a fixed vocabulary) times severity.
    let by_kind: Vec<_> = after
        .samples
        .iter()
        .filter(|(s, _)| s.name == "driftwatch_collector_findings_open_by_kind")
        .collect();
    assert_eq!(by_kind.len(), 9 * 5, "{by_kind:?}");
    assert!(by_kind.iter().all(|(_, v)| **v == 0.0), "{by_kind:?}");
    assert_eq!(
        after.value("driftwatch_collector_agent_spool_dropped_total", &[]),
        0.0
    );

    // A revoked host's report is refused and counted under its reason.
    run_ok(cli(&pki, &c.url).args(["hosts", "revoke", "web-01", "--yes"]));
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &state,
        &["--section", "host"],
    );
    assert!(!out.status.success());
    let refused = scrape(&maddr);
    assert_eq!(refused.value(REJECTED, &[("reason", "revoked")]), 1.0);
    assert_eq!(refused.value(RECEIVED, &[("outcome", "new")]), 2.0);
    assert_eq!(hosts(&refused, "revoked"), 1.0);
    assert_eq!(hosts(&refused, "fresh"), 0.0);

    // Only /metrics is served; the gRPC port serves no metrics.
    let (code, _, _) = http_get(&maddr, "/").unwrap();
    assert_eq!(code, 404);
    assert!(c.stop(), "collector did not stop cleanly");
}

#[test]
fn collector_metrics_listener_comes_from_the_config_file_too() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let maddr = format!("127.0.0.1:{}", free_port());
    let cfg = tmp.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!("metrics_listen = \"{maddr}\"\nstale_after = \"6s\"\ngone_after = \"1h\"\n"),
    )
    .unwrap();
    let c = CollectorProc::start_with(
        &pki,
        &tmp.path().join("data"),
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let (cert, key) = pki.issue_host("db-01", &tmp.path().join("db-01"));
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &tmp.path().join("state"),
        &["--section", "host"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(hosts(&scrape(&maddr), "fresh"), 1.0);
    // stale_after = 6s from the file: the host turns stale without reports.
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = scrape(&maddr);
        if hosts(&e, "stale") == 1.0 || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(hosts(&e, "stale"), 1.0);
    assert_eq!(hosts(&e, "fresh"), 0.0);
    assert_eq!(hosts(&e, "gone"), 0.0);
    // An evaluation (what `drift` asks for) opens a stale finding: it is
    // counted by kind and by severity alike.
    let findings = cli_json(&pki, &c.url, &["drift"]);
    let stale: Vec<_> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "stale")
        .collect();
    assert_eq!(stale.len(), 1, "{findings}");
    let sev = stale[0]["severity"].as_str().unwrap();
    let e = scrape(&maddr);
    assert_eq!(
        e.value(
            "driftwatch_collector_findings_open_by_kind",
            &[("kind", "stale"), ("severity", sev)]
        ),
        1.0
    );
    assert_eq!(
        e.value("driftwatch_collector_findings_open", &[("severity", sev)]),
        1.0
    );
}

#[test]
fn agent_metrics_report_section_times_deliveries_and_spool_depth() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = CollectorProc::start(&pki, &tmp.path().join("data"), None);
    let (cert, key) = pki.issue_host("app-01", &tmp.path().join("app-01"));
    let maddr = format!("127.0.0.1:{}", free_port());
    let mut child = agent(&[
        "run",
        "--collector",
        &c.url,
        "--ca",
        pki.ca().to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--state-dir",
        tmp.path().join("state").to_str().unwrap(),
        "--interval",
        "1s",
        "--section",
        "host",
        "--section",
        "packages",
        "--metrics-listen",
        &maddr,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        if let Ok((200, _, body)) = http_get(&maddr, "/metrics") {
            let e = parse(&body).unwrap_or_else(|err| panic!("{err}\n{body}"));
            // Everything delivered: the spool is empty. Polled, because a
            // scrape between a collection and its delivery sees depth 1.
            if e.value("driftwatch_agent_deliveries_total", &[("result", "ok")]) >= 2.0
                && e.value("driftwatch_agent_spool_snapshots", &[]) == 0.0
            {
                break e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "agent metrics never showed two deliveries and an empty spool"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(e.value("driftwatch_agent_collections_total", &[]) >= 2.0);
    for s in ["host", "packages"] {
        let secs = e.value(
            "driftwatch_agent_section_collect_seconds",
            &[("section", s)],
        );
        assert!(secs > 0.0 && secs < 30.0, "{s}: {secs}");
        assert_eq!(
            e.value("driftwatch_agent_section_errors_total", &[("section", s)]),
            0.0
        );
    }
    assert!(
        e.get(
            "driftwatch_agent_section_collect_seconds",
            &[("section", "processes")]
        )
        .is_none()
    );
    assert!(e.value("driftwatch_agent_last_collect_timestamp_seconds", &[]) > 1.7e9);
}

#[test]
fn raid_arrays_by_verdict_per_host_follow_reports_restarts_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let maddr = format!("127.0.0.1:{}", free_port());
    let data = tmp.path().join("data");
    let flags = ["--metrics-listen", maddr.as_str()];
    let c = CollectorProc::start_with(&pki, &data, None, &flags);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mdstat");
    // (host, mdstat fixture): SOURCES.md says md0 raid5 degraded; two
    // healthy raid5 arrays.
    for (host, mdstat) in [
        ("db-01", "checkraid-raid5-degraded-failed-empty-unused.txt"),
        ("db-02", "checkraid-raid5-healthy-multiple-spares.txt"),
    ] {
        let root = tmp.path().join(format!("root-{host}"));
        fake_root(&root, host, "0123456789abcdef0123456789abcdef", "uuid");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::copy(fixtures.join(mdstat), root.join("proc/mdstat")).unwrap();
        let (cert, key) = pki.issue_host(host, &tmp.path().join(host));
        let out = agent_once(
            &c.url,
            &pki.ca(),
            &cert,
            &key,
            &tmp.path().join(format!("state-{host}")),
            &["--root", root.to_str().unwrap(), "--section", "raid"],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let raid = |e: &Exposition, host: &str, verdict: &str| {
        e.get(
            "driftwatch_collector_raid_arrays",
            &[("host", host), ("verdict", verdict)],
        )
    };
    let check = |e: &Exposition| {
        assert_eq!(raid(e, "db-01", "degraded"), Some(1.0));
        assert_eq!(raid(e, "db-01", "healthy"), Some(0.0));
        assert_eq!(raid(e, "db-02", "healthy"), Some(2.0));
        assert_eq!(raid(e, "db-02", "degraded"), Some(0.0));
        assert_eq!(raid(e, "db-02", "failed"), Some(0.0));
    };
    check(&scrape(&maddr));
    // After a restart the index is rebuilt from what is stored.
    assert!(c.stop(), "collector did not stop cleanly");
    let c = CollectorProc::start_with(&pki, &data, None, &flags);
    check(&scrape(&maddr));
    // A revoked host's arrays are no one's to fix any more.
    run_ok(cli(&pki, &c.url).args(["hosts", "revoke", "db-01", "--yes"]));
    let e = scrape(&maddr);
    assert_eq!(raid(&e, "db-01", "degraded"), None);
    assert_eq!(raid(&e, "db-02", "healthy"), Some(2.0));
}
