//! Webhook notifications end to end: the real collector and agent, a
//! receiver on loopback (hyper; one on https with a CA made by `pki init`),
//! a stale host as the finding.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use driftwatch_tests::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

const SECRET: &str = "tok-3f9a61c2SECRET";

#[derive(Debug, Clone)]
struct Got {
    key: String,
    path: String,
    body: Value,
}

/// A webhook receiver that records what it is sent, each answer held for
/// `delay`.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(port: u16, delay: Duration, tls: Option<Arc<rustls::ServerConfig>>) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let g = got.clone();
        rt.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let (g, tls) = (g.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                                serve(TokioIo::new(s), g, delay).await;
                            }
                        }
                        None => serve(TokioIo::new(s), g, delay).await,
                    }
                });
            }
        });
        Receiver { port, got, _rt: rt }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize, secs: u64) -> Vec<Got> {
        wait_for(secs, &format!("{n} notifications at the receiver"), || {
            let g = self.got();
            (g.len() >= n).then_some(g)
        })
    }
}

async fn serve<I>(io: I, got: Arc<Mutex<Vec<Got>>>, delay: Duration)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let got = got.clone();
        async move {
            let key = req
                .headers()
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            let path = req.uri().to_string();
            let body = req.into_body().collect().await?.to_bytes();
            tokio::time::sleep(delay).await;
            got.lock().unwrap().push(Got {
                key,
                path,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .await;
}

/// A port nobody listens on (the receiver is down).
fn closed_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    pki: Pki,
    config: std::path::PathBuf,
}

impl Setup {
    fn new(notify: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::init(&dir.path().join("pki"));
        pki.issue_host("web-1", &dir.path().join("certs"));
        fake_root(&dir.path().join("root"), "web-1", "mid-web-1", "uuid-web-1");
        let config = dir.path().join("collector.toml");
        std::fs::write(
            &config,
            format!("stale_after = \"2s\"\n{notify}\n[drift]\ninterval = \"1s\"\n"),
        )
        .unwrap();
        Setup { dir, pki, config }
    }

    fn collector(&self) -> CollectorProc {
        CollectorProc::start_with(
            &self.pki,
            &self.dir.path().join("data"),
            None,
            &["--config", self.config.to_str().unwrap()],
        )
    }

    /// One report of web-1; returns how long until it was acknowledged.
    fn report(&self, c: &CollectorProc) -> Duration {
        let certs = self.dir.path().join("certs");
        let started = Instant::now();
        let out = agent_once(
            &c.url,
            &self.pki.ca(),
            &certs.join("agent.pem"),
            &certs.join("agent-key.pem"),
            &self.dir.path().join("state"),
            &[
                "--root",
                self.dir.path().join("root").to_str().unwrap(),
                "--section",
                "host",
            ],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        started.elapsed()
    }

    /// web-1 goes stale: `drift` evaluates and the finding opens.
    fn stale(&self, c: &CollectorProc) {
        std::thread::sleep(Duration::from_secs(3));
        let v = cli_json(&self.pki, &c.url, &["drift"]);
        let kinds: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["kind"].as_str())
            .collect();
        assert!(kinds.contains(&"stale"), "{v}");
    }
}

/// The `key=` value of the first log line with `message`.
fn logged_key(log: &str, message: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains(message))?;
    let rest = line.split("key=").nth(1)?;
    Some(
        rest.split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

#[test]
fn a_finding_reaches_the_receiver_once_per_transition_across_a_restart() {
    let port = closed_port();
    let maddr = format!("127.0.0.1:{}", free_port());
    let s = Setup::new(&format!("metrics_listen = \"{maddr}\"\n"));
    let url_file = s.dir.path().join("ops.url");
    write_private(
        &url_file,
        &format!("http://127.0.0.1:{port}/hook?token={SECRET}\n"),
    );
    std::fs::write(
        &s.config,
        format!(
            "{}[[notify]]\nname = \"ops\"\nurl_file = \"{}\"\ntimeout = \"2s\"\n",
            std::fs::read_to_string(&s.config).unwrap(),
            url_file.display()
        ),
    )
    .unwrap();

    // The receiver is down while the finding opens.
    let c = s.collector();
    s.report(&c);
    s.stale(&c);
    let failed_key = wait_for(20, "a failed delivery attempt in the log", || {
        logged_key(&c.log_text(), "notification delivery failed")
    });
    let first_log = c.log_text();
    let m = prom::scrape(&maddr);
    let ops = [("receiver", "ops")];
    assert_eq!(
        m.value("driftwatch_collector_notifications_queued", &ops),
        1.0
    );
    assert!(m.value("driftwatch_collector_notifications_failed_total", &ops) >= 1.0);
    assert_eq!(
        m.value("driftwatch_collector_notifications_sent_total", &ops),
        0.0
    );
    assert!(c.stop(), "collector exits 0 on SIGTERM");

    // Up after the restart: the queued event arrives, with its key.
    let r = Receiver::start(port, Duration::ZERO, None);
    let c = s.collector();
    let got = r.wait_for(1, 30);
    assert_eq!(
        got[0].key, failed_key,
        "the retry after the restart keeps the key"
    );
    assert_eq!(got[0].body["idempotency_key"], failed_key.as_str());
    assert_eq!(got[0].body["event"], "opened");
    assert_eq!(got[0].body["finding"]["kind"], "stale");
    assert_eq!(got[0].body["finding"]["host_id"], "web-1");
    assert_eq!(got[0].path, format!("/hook?token={SECRET}"));

    // A report makes it resolve at the next evaluation tick (nobody asks
    // `drift`): one more event, another key.
    s.report(&c);
    let got = r.wait_for(2, 30);
    assert_eq!(got[1].body["event"], "resolved");
    assert_eq!(got[1].body["finding"]["kind"], "stale");
    assert_ne!(got[1].key, got[0].key);
    // Nothing is sent twice: wait past a few evaluation ticks.
    std::thread::sleep(Duration::from_secs(4));
    let keys: Vec<String> = r.got().into_iter().map(|g| g.key).collect();
    assert_eq!(keys.len(), 2, "each transition exactly once: {keys:?}");
    let m = prom::scrape(&maddr);
    assert_eq!(
        m.value("driftwatch_collector_notifications_sent_total", &ops),
        2.0
    );
    assert_eq!(
        m.value("driftwatch_collector_notifications_queued", &ops),
        0.0
    );

    let logs = format!("{first_log}{}", c.log_text());
    assert!(
        logs.contains(&format!("127.0.0.1:{port}")),
        "the receiver is named by its origin"
    );
    assert!(!logs.contains(SECRET), "the URL's token is never logged");
}

#[test]
fn a_slow_receiver_does_not_delay_reports_or_drift() {
    let r = Receiver::start(0, Duration::from_secs(60), None);
    let s = Setup::new(&format!(
        "[[notify]]\nname = \"slow\"\nurl = \"http://127.0.0.1:{}/hook\"\ntimeout = \"15s\"\n",
        r.port
    ));
    let c = s.collector();
    s.report(&c);
    s.stale(&c);
    // The delivery is now held by the receiver; reports and drift go on,
    // far quicker than the 15 s a report waiting on it would take.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let took = s.report(&c);
        assert!(took < Duration::from_secs(8), "a report took {took:?}");
    }
    let started = Instant::now();
    cli_json(&s.pki, &c.url, &["drift"]);
    assert!(started.elapsed() < Duration::from_secs(8));
    // The call is cut off at its timeout and retried.
    wait_for(40, "the attempt cut off at its timeout", || {
        c.log_text().contains("within 15s").then_some(())
    });
}

fn tls_receiver_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(pki.dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_file(pki.dir.join("server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

#[test]
fn notify_test_goes_through_the_outbox_to_an_https_receiver() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver's own CA and certificate, made by the real tool.
    let receiver_pki = Pki::init(&dir.path().join("receiver-pki"));
    let r = Receiver::start(0, Duration::ZERO, Some(tls_receiver_config(&receiver_pki)));
    let dead = closed_port();
    let s = Setup::new(&format!(
        "[[notify]]\nname = \"tls\"\nurl = \"https://127.0.0.1:{p}/hook\"\nca_file = \"{ca}\"\nformat = \"slack\"\n\
         [[notify]]\nname = \"untrusted\"\nurl = \"https://127.0.0.1:{p}/hook\"\ntimeout = \"2s\"\n\
         [[notify]]\nname = \"down\"\nurl = \"http://127.0.0.1:{dead}/hook\"\ntimeout = \"2s\"\n",
        p = r.port,
        ca = receiver_pki.ca().display(),
    ));
    let c = s.collector();

    let v = cli_json(&s.pki, &c.url, &["notify", "test", "--name", "tls"]);
    let res = &v["results"][0];
    assert_eq!(res["name"], "tls");
    assert_eq!(res["delivered"], true, "{v}");
    assert_eq!(res["http_status"], 200);
    let got = r.wait_for(1, 10);
    assert_eq!(got[0].key, res["idempotency_key"].as_str().unwrap());
    let text = got[0].body["text"].as_str().unwrap();
    assert!(text.contains("test notification"), "slack body: {text}");

    // All receivers: the one whose CA is not trusted and the one that is
    // down are named with why; exit 1.
    let out = cli(&s.pki, &c.url)
        .args(["notify", "test", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("tls")["delivered"], true);
    let untrusted = by_name("untrusted");
    assert_eq!(untrusted["delivered"], false);
    assert!(
        untrusted["error"].as_str().unwrap().contains("certificate"),
        "{untrusted}"
    );
    let down = by_name("down");
    assert_eq!(down["delivered"], false);
    assert!(down["error"].as_str().unwrap().contains("onnect"), "{down}");
    assert_eq!(
        r.wait_for(2, 10).len(),
        2,
        "the untrusted one never reached it"
    );

    let out = cli(&s.pki, &c.url)
        .args(["notify", "test", "--name", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("tls, untrusted, down"),
        "{}",
        stderr_of(&out)
    );
}
