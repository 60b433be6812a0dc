//! Hostile input against the collector port: garbage bytes, a flood of idle
//! connections and half-open TLS handshakes leave it serving; a report over
//! the size limit gets a clear error and does not wedge the agent's spool.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use driftwatch_tests::{CollectorProc, Pki, agent_once, cli_json, free_port, stderr_of};

fn report_ok(c: &CollectorProc, pki: &Pki, dir: &std::path::Path, host: &str) -> bool {
    let (cert, key) = (
        dir.join(host).join("agent.pem"),
        dir.join(host).join("agent-key.pem"),
    );
    if !cert.exists() {
        pki.issue_host(host, &dir.join(host));
    }
    agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &dir.join(format!("{host}-state")),
        &["--section", "host"],
    )
    .status
    .success()
}

#[test]
fn garbage_idle_floods_and_half_open_handshakes_leave_it_serving() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    // A short handshake timeout keeps the test quick; the default is 10s.
    let cfg = d.path().join("collector.toml");
    std::fs::write(&cfg, "[limits]\nhandshake_timeout = \"2s\"\n").unwrap();
    let c = CollectorProc::start_with(
        &pki,
        &d.path().join("data"),
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    assert!(
        report_ok(&c, &pki, d.path(), "before"),
        "baseline report failed:\n{}",
        c.log_text()
    );

    let mut rng = fastrand_seed(0x5eed);
    let mut held = Vec::new();
    // 1,000 idle connections that never say a word.
    for _ in 0..1000 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", c.port)) {
            held.push(s);
        }
    }
    // Random bytes, some looking like the start of a TLS record.
    for i in 0..200 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", c.port)) {
            let mut buf: Vec<u8> = (0..(rng() % 4096) as usize).map(|_| rng() as u8).collect();
            if i % 2 == 0 {
                buf.splice(0..0, [0x16, 0x03, 0x01, 0xff, 0xff]);
            }
            let _ = s.write_all(&buf);
            held.push(s);
        }
    }
    // Half-open handshakes: a ClientHello record header promising bytes
    // that never come.
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", c.port)) {
            let _ = s.write_all(&[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ]);
            held.push(s);
        }
    }
    assert!(held.len() >= 1300, "opened only {} connections", held.len());
    // While all of them are still open, a real agent gets through within a
    // few handshake timeouts.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ok = false;
    while Instant::now() < deadline {
        if report_ok(&c, &pki, d.path(), "during") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        ok,
        "no report got through the flood within 30s:\n{}",
        c.log_text()
    );
    drop(held);
    assert!(
        report_ok(&c, &pki, d.path(), "after"),
        "report after the flood failed:\n{}",
        c.log_text()
    );
    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 3, "{hosts}");
    assert!(
        c.stop(),
        "collector did not shut down cleanly after the flood"
    );
}

/// A tiny xorshift: reproducible garbage without a dependency.
fn fastrand_seed(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[test]
fn an_oversized_report_gets_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let cfg = d.path().join("collector.toml");
    let maddr = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &cfg,
        format!("metrics_listen = \"{maddr}\"\n[limits]\nmax_message_bytes = 2048\n"),
    )
    .unwrap();
    let c = CollectorProc::start_with(
        &pki,
        &d.path().join("data"),
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let spool_dropped = || {
        driftwatch_tests::prom::scrape(&maddr)
            .value("driftwatch_collector_agent_spool_dropped_total", &[])
    };
    assert_eq!(spool_dropped(), 0.0);
    let (cert, key) = pki.issue_host("big", &d.path().join("big"));
    let state = d.path().join("state");
    // The process list of this machine is far above 2 KiB.
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &state,
        &["--section", "processes"],
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "an oversized report was accepted");
    assert!(
        err.contains("refuses snapshot 1 as too large")
            && err.contains("2048")
            && err.contains("max_message_bytes"),
        "unclear error: {err}"
    );
    // It left the spool instead of blocking every later snapshot, and the
    // drop is counted: a small report next goes through and carries it.
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &state,
        &["--section", "host"],
    );
    assert!(
        out.status.success(),
        "a later small report is blocked: {}",
        stderr_of(&out)
    );
    let host = cli_json(&pki, &c.url, &["host", "show", "big"]);
    assert_eq!(host["host"]["last_seq"], 2, "{host}");
    assert_eq!(host["host"]["spool_dropped_total"], 1, "{host}");
    // The metric the spool alert reads says the same.
    assert_eq!(spool_dropped(), 1.0);
    let table = String::from_utf8(
        driftwatch_tests::run_ok(driftwatch_tests::cli(&pki, &c.url).arg("hosts")).stdout,
    )
    .unwrap();
    assert!(
        table.contains("DROPPED") && table.contains("! 1"),
        "{table}"
    );
}

/// A message that claims the Report path but whose field 1 (the snapshot)
/// is not a Snapshot's encoding.
#[derive(Clone, PartialEq, prost::Message)]
struct BogusReport {
    #[prost(bytes = "vec", tag = "1")]
    snapshot: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AnyAck {}

#[test]
fn malformed_reports_get_a_clear_error_and_the_collector_keeps_serving() {
    use driftwatch_common::proto::agent_client::AgentClient;
    use driftwatch_common::proto::{ReportRequest, Snapshot};
    use driftwatch_common::tls::ClientFiles;

    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let (cert, key) = pki.issue_host("web-1", &d.path().join("web-1"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let files = ClientFiles {
            ca: pki.ca(),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
        };
        let ch = driftwatch_common::client::connect(&c.url, &files)
            .await
            .unwrap();
        let mut agent = AgentClient::new(ch.clone());
        let s = agent
            .report(ReportRequest { snapshot: None })
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("carries no snapshot"), "{s:?}");
        let zero = Snapshot {
            seq: 0,
            ..Default::default()
        };
        let s = agent
            .report(ReportRequest {
                snapshot: Some(zero),
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("seq must start at 1"), "{s:?}");

        // Bytes that do not decode as a Snapshot.
        let mut grpc = tonic::client::Grpc::new(ch);
        grpc.ready().await.unwrap();
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/driftwatch.v1.Agent/Report");
        let codec: tonic_prost::ProstCodec<BogusReport, AnyAck> =
            tonic_prost::ProstCodec::default();
        let bogus = BogusReport {
            snapshot: vec![0xff; 64],
        };
        let s = grpc
            .unary(tonic::Request::new(bogus), path, codec)
            .await
            .unwrap_err();
        assert!(
            s.message().to_lowercase().contains("decod"),
            "a malformed report should say it could not be decoded: {s:?}"
        );
    });
    // Still serving, and nothing was stored for the host.
    assert!(report_ok(&c, &pki, d.path(), "web-2"));
    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 1, "{hosts}");
}
