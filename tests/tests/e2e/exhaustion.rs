//! What one client may cost the collector: enrollment attempts from a whole
//! network, connection slots, a full disk, huge reports. Each test is an
//! attack with the real collector binary; several 127.0.0.x source
//! addresses stand for distinct clients.

use std::net::IpAddr;

use driftwatch_common::proto::EnrollRequest;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::{CollectorProc, Pki, cli, cli_json, processes_in, run_ok};

fn no_cert(pki: &Pki) -> ClientFiles {
    ClientFiles {
        ca: pki.ca(),
        cert: None,
        key: None,
    }
}

async fn enroll_from(
    c: &CollectorProc,
    pki: &Pki,
    src: &str,
    token: &str,
    csr_pem: &str,
) -> tonic::Status {
    let local: IpAddr = src.parse().unwrap();
    let ch = driftwatch_common::client::connect_from(&c.url, &no_cert(pki), Some(local))
        .await
        .unwrap();
    AgentClient::new(ch)
        .enroll(EnrollRequest {
            token: token.into(),
            csr_pem: csr_pem.into(),
            ..Default::default()
        })
        .await
        .unwrap_err()
}

#[test]
fn enrollment_is_limited_per_network_and_the_token_is_checked_before_the_csr() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let out = driftwatch_tests::run_ok(cli(&pki, &c.url).args([
        "tokens", "create", "--group", "web", "--ttl", "1h", "--uses", "1",
    ]));
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("dwt_"))
        .expect("tokens create prints the token")
        .to_string();
    let (_, csr) = driftwatch_common::pki::new_key_and_csr().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // A wrong token with a garbage CSR: refused for the token, so no
        // CSR was parsed and nothing signed for a caller without one.
        let s = enroll_from(&c, &pki, "127.0.0.1", "dwt_00000000_00", "garbage").await;
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        // The right token with a garbage CSR: the CSR is refused and the
        // token's one use is not spent.
        let s = enroll_from(&c, &pki, "127.0.0.1", &token, "garbage").await;
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
        // One attempt from each of 30 addresses of 127.0.0.0/24: each
        // address is far below its own limit, the network is not.
        let mut codes = vec![];
        for i in 2..32 {
            let s = enroll_from(&c, &pki, &format!("127.0.0.{i}"), "dwt_00000000_00", &csr).await;
            codes.push((s.code(), s.message().to_string()));
        }
        let limited: Vec<_> = codes
            .iter()
            .filter(|(code, _)| *code == tonic::Code::ResourceExhausted)
            .collect();
        assert!(
            limited.len() >= 8,
            "30 addresses of one /24 were not limited as a network: {codes:?}"
        );
        assert!(
            limited[0].1.contains("127.0.0.0/24"),
            "the refusal names the network: {limited:?}"
        );
        // Another network is not affected.
        let s = enroll_from(&c, &pki, "127.0.1.1", "dwt_00000000_00", &csr).await;
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
    });
    let tokens = driftwatch_tests::cli_json(&pki, &c.url, &["tokens", "list"]);
    assert_eq!(tokens["tokens"][0]["uses"], 0, "{tokens}");
}

fn tls_client(pki: &Pki) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(pki.ca()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

async fn tcp_from(src: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(format!("{src}:0").parse().unwrap())?;
    s.connect(([127, 0, 0, 1], port).into()).await
}

fn report(c: &CollectorProc, pki: &Pki, dir: &std::path::Path, host: &str) -> std::process::Output {
    report_sections(c, pki, dir, host, "host")
}

fn report_sections(
    c: &CollectorProc,
    pki: &Pki,
    dir: &std::path::Path,
    host: &str,
    section: &str,
) -> std::process::Output {
    let out = dir.join(host);
    if !out.join("agent.pem").exists() {
        pki.issue_host(host, &out);
    }
    driftwatch_tests::agent_once(
        &c.url,
        &pki.ca(),
        &out.join("agent.pem"),
        &out.join("agent-key.pem"),
        &dir.join(format!("{host}-state")),
        &["--section", section],
    )
}

#[test]
fn silent_and_idle_floods_lock_out_no_one_and_never_fail_a_sync() {
    use tokio::io::AsyncReadExt;
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    // The 1,024 open files a shell or container often hands a daemon.
    let c = CollectorProc::start_limited(&pki, &d.path().join("data"), None, &[], Some(1024));
    let out = report(&c, &pki, d.path(), "before");
    assert!(
        out.status.success(),
        "{}",
        driftwatch_tests::stderr_of(&out)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // 300 TCP connections from one address that never say a word.
        let mut silent = vec![];
        for _ in 0..300 {
            if let Ok(s) = tcp_from("127.0.0.2", c.port).await {
                silent.push(s);
            }
        }
        assert_eq!(silent.len(), 300);
        // 1,000 finished TLS handshakes that never send the HTTP/2
        // preface, 50 from each of 20 addresses.
        let tls = tls_client(&pki);
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for src in 10..30 {
            let (tls, name, port) = (tls.clone(), name.clone(), c.port);
            tasks.spawn(async move {
                let mut held = vec![];
                for _ in 0..50 {
                    let tcp = tcp_from(&format!("127.0.0.{src}"), port).await.unwrap();
                    if let Ok(Ok(s)) = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        tls.connect(name.clone(), tcp),
                    )
                    .await
                    {
                        held.push(s);
                    }
                }
                held
            });
        }
        let mut idle = vec![];
        while let Some(h) = tasks.join_next().await {
            idle.extend(h.unwrap());
        }
        assert_eq!(idle.len(), 1000, "TLS handshakes that completed");
        // While every one of them is open on our side: the CLI answers
        // every time, and an agent's report is stored durably.
        for i in 0..12 {
            let out = cli(&pki, &c.url).arg("hosts").output().unwrap();
            assert!(
                out.status.success(),
                "CLI attempt {i} failed during the flood: {}\n{}",
                driftwatch_tests::stderr_of(&out),
                c.log_text()
            );
        }
        let out = report(&c, &pki, d.path(), "during");
        assert!(
            out.status.success(),
            "report during the flood: {}\n{}",
            driftwatch_tests::stderr_of(&out),
            c.log_text()
        );
        // A handshake that never sends the preface is closed by the
        // collector (first_stream_timeout, 10 s by default).
        let last = idle.last_mut().unwrap();
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                match last.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // the server's SETTINGS frame
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "an idle TLS connection was kept open past 20 s"
        );
        drop(silent);
        drop(idle);
    });
    let log = c.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("reason=\"source_handshakes\"") && log.contains("reason=\"evicted_idle\""),
        "drops are logged by reason: {log}"
    );
    // Rate-limited: 284 silent connections dropped, a handful of lines.
    let lines = log
        .lines()
        .filter(|l| l.contains("dropping connections"))
        .count();
    assert!(lines < 20, "{lines} drop lines: {log}");
    let hosts = driftwatch_tests::cli_json(&pki, &c.url, &["hosts"]);
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 2, "{hosts}");
}

/// A small tmpfs, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a small tmpfs for the full-disk test failed (it needs root): {}",
            driftwatch_tests::stderr_of(&out)
        );
        SmallDisk(at.to_path_buf())
    }

    /// Writes zeros into `name` until the filesystem is full.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join(name)).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_gives_fast_errors_keeps_reads_recovers_and_shutdown_is_bounded() {
    use std::time::{Duration, Instant};
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let disk = SmallDisk::mount(&d.path().join("disk"), "24m");
    let mut c = CollectorProc::start(&pki, &disk.0.join("data"), None);
    let out = report(&c, &pki, d.path(), "web-1");
    assert!(
        out.status.success(),
        "{}",
        driftwatch_tests::stderr_of(&out)
    );

    disk.fill("filler");
    // Every report now fails at once, saying the disk is full.
    for _ in 0..3 {
        let t = Instant::now();
        // Processes: new content every time, so there is something to write.
        let out = report_sections(&c, &pki, d.path(), "web-1", "processes");
        let err = driftwatch_tests::stderr_of(&out);
        assert!(
            !out.status.success(),
            "a report was acknowledged on a full disk"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a report on a full disk took {:?}",
            t.elapsed()
        );
        assert!(err.contains("storage is full"), "unclear error: {err}");
    }
    // Reads keep working.
    let t = Instant::now();
    let hosts = driftwatch_tests::cli_json(&pki, &c.url, &["hosts"]);
    assert_eq!(hosts["hosts"][0]["host_id"], "web-1", "{hosts}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // Space returns: reports are accepted again without a restart, the
    // spooled ones included.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    let recovered = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        report(&c, &pki, d.path(), "web-1").status.success()
    });
    assert!(
        recovered,
        "no report accepted after space was freed:\n{}",
        c.log_text()
    );
    let host = driftwatch_tests::cli_json(&pki, &c.url, &["host", "show", "web-1"]);
    assert!(host["host"]["last_seq"].as_u64().unwrap() >= 5, "{host}");

    // Full again, then SIGTERM: the process ends within a bound and says
    // what it abandoned.
    disk.fill("filler");
    let _ = report_sections(&c, &pki, d.path(), "web-1", "processes");
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(c.child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = c.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "SIGTERM did not end the collector on a full disk within 30s:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = c.log_text();
    assert!(
        status.success() || log.contains("shutdown abandoned"),
        "exit {status} without saying what was abandoned:\n{log}"
    );
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// A snapshot whose processes section is just under the 16 MiB message
/// limit: every process distinct, so nothing groups away.
fn huge_snapshot(seq: u64) -> driftwatch_common::proto::Snapshot {
    let snap = snapshot_with_processes(seq, 400_000);
    assert!(
        prost::Message::encoded_len(&snap) < 16 << 20,
        "{}",
        prost::Message::encoded_len(&snap)
    );
    snap
}

fn snapshot_with_processes(seq: u64, n: u32) -> driftwatch_common::proto::Snapshot {
    use driftwatch_common::proto::{Process, ProcessesSection, Section, Snapshot, section};
    let processes: Vec<Process> = (0..n)
        .map(|i| Process {
            pid: i + 1,
            user: "root".into(),
            name: format!("p{i}"),
            exe: format!("/usr/bin/p{i}"),
            ..Default::default()
        })
        .collect();
    Snapshot {
        seq,
        collected_at_ms: 1,
        sections: vec![Section {
            name: "processes".into(),
            status: "ok".into(),
            body: Some(section::Body::Processes(ProcessesSection { processes })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn four_concurrent_huge_reports_from_one_host_are_taken_one_at_a_time() {
    use driftwatch_common::proto::ReportRequest;
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let (cert, key) = pki.issue_host("big", &d.path().join("big"));
    let files = ClientFiles {
        ca: pki.ca(),
        cert: Some(cert),
        key: Some(key),
    };
    let pid = c.child.id();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (before, after, codes) = rt.block_on(async {
        let snaps: Vec<_> = (1..=4).map(huge_snapshot).collect();
        // Four connections, so per-connection stream limits play no part.
        let mut clients = vec![];
        for _ in 0..4 {
            let ch = driftwatch_common::client::connect(&c.url, &files)
                .await
                .unwrap();
            clients.push(
                AgentClient::new(ch)
                    .max_encoding_message_size(usize::MAX)
                    .max_decoding_message_size(usize::MAX),
            );
        }
        let before = vm_hwm_kib(pid);
        let mut tasks = tokio::task::JoinSet::new();
        for (mut client, snap) in clients.into_iter().zip(snaps) {
            tasks.spawn(async move {
                client
                    .report(ReportRequest {
                        snapshot: Some(snap),
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| (s.code(), s.message().to_string()))
            });
        }
        let mut codes = vec![];
        while let Some(r) = tasks.join_next().await {
            codes.push(r.unwrap());
        }
        (before, vm_hwm_kib(pid), codes)
    });
    eprintln!("collector VmHWM: {before} KiB before, {after} KiB after: {codes:?}");
    let ok = codes.iter().filter(|r| r.is_ok()).count();
    assert!(ok >= 1, "{codes:?}\n{}", c.log_text());
    for r in codes.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.0, tonic::Code::ResourceExhausted, "{codes:?}");
        assert!(r.1.contains("one at a time per host"), "{codes:?}");
    }
    // One ~14 MB report at a time: the peak stays under 1 GiB (four at
    // once reached 2.9 GB; BENCHMARKS.md has the measured figure).
    assert!(
        after < 1024 * 1024,
        "collector peaked at {after} KiB for four concurrent huge reports"
    );
}

#[test]
fn a_large_host_is_shown_whole_by_the_cli() {
    use driftwatch_common::proto::{ReportRequest, section};
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let (cert, key) = pki.issue_host("large", &d.path().join("large"));
    let files = ClientFiles {
        ca: pki.ca(),
        cert: Some(cert),
        key: Some(key),
    };
    // ~6 MB: over tonic's 4 MiB default, well under the 16 MiB a report may
    // be; as many processes as the cap allows, each with a command line.
    let cap = driftwatch_common::caps::PROCESSES;
    let mut snap = snapshot_with_processes(1, cap as u32);
    if let Some(section::Body::Processes(p)) = snap.sections[0].body.as_mut() {
        for p in &mut p.processes {
            p.cmdline = vec![p.exe.clone(), "--config=/etc/service.conf".into()];
        }
    }
    assert!(prost::Message::encoded_len(&snap) > 5 << 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = driftwatch_common::client::connect(&c.url, &files)
            .await
            .unwrap();
        AgentClient::new(ch)
            .max_encoding_message_size(usize::MAX)
            .report(ReportRequest {
                snapshot: Some(snap),
            })
            .await
            .unwrap();
    });
    let show = cli_json(
        &pki,
        &c.url,
        &["host", "show", "large", "--section", "processes"],
    );
    let procs = processes_in(&show).len();
    assert_eq!(procs, cap);
    let table = run_ok(cli(&pki, &c.url).args(["host", "show", "large", "--limit", "2"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&format!("{cap} processes")), "{text}");
}
