//! Enrollment, clone-safe identity and authorization, end to end over real
//! TLS with the real binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::*;
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::*;

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    pki: Pki,
    c: CollectorProc,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::init(&root.join("pki"));
    let c = CollectorProc::start(&pki, &root.join("data"), None);
    World {
        _tmp: tmp,
        root,
        pki,
        c,
    }
}

impl World {
    fn token(&self, group: &str, ttl: &str, uses: &str) -> (String, String) {
        let v = cli_json(
            &self.pki,
            &self.c.url,
            &[
                "tokens", "create", "--group", group, "--ttl", ttl, "--uses", uses,
            ],
        );
        let token = v["token"].as_str().unwrap().to_string();
        let path = self
            .root
            .join(format!("token-{}", v["info"]["id"].as_str().unwrap()));
        std::fs::write(&path, &token).unwrap();
        (token, path.to_string_lossy().into_owned())
    }

    /// `run --once` with an identity kept in `state`, on fake root `host`.
    fn enroll_once(&self, host: &str, state: &str, token_file: &str) -> Output {
        let root = self.root.join(format!("root-{host}"));
        let state = self.root.join(state);
        agent(&[
            "run",
            "--once",
            "--section",
            "host",
            "--collector",
            &self.c.url,
        ])
        .arg("--ca")
        .arg(self.pki.ca())
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .args(["--enroll-token-file", token_file])
        .output()
        .unwrap()
    }

    fn hosts(&self) -> Vec<serde_json::Value> {
        cli_json(&self.pki, &self.c.url, &["hosts"])["hosts"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn host_id_in(state: &Path) -> String {
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("identity/identity.json")).unwrap())
            .unwrap();
    rec["host_id"].as_str().unwrap().to_string()
}

#[test]
fn token_enrollment_end_to_end_and_identity_is_reused() {
    let w = world();
    fake_root(&w.root.join("root-web-a"), "web-a", "1111", "uuid-a");
    let (_, tf) = w.token("web", "1h", "2");
    let out = w.enroll_once("web-a", "state-a", &tf);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr_of(&out),
        w.c.log_text()
    );

    let state = w.root.join("state-a");
    let key = state.join("identity/agent-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let id = host_id_in(&state);
    assert!(id.starts_with("web-a-"), "{id}");

    let hosts = w.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["host_id"], id.as_str());
    assert_eq!(hosts[0]["labels"][0]["key"], "group");
    assert_eq!(hosts[0]["labels"][0]["value"], "web");
    assert_eq!(hosts[0]["facts"]["product_uuid"], "uuid-a");

    // The same machine reports again with the same identity: no new use.
    let out = w.enroll_once("web-a", "state-a", &tf);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(host_id_in(&state), id);
    let tokens = cli_json(&w.pki, &w.c.url, &["tokens", "list"]);
    assert_eq!(tokens["tokens"][0]["uses"], 1);
    assert_eq!(tokens["tokens"][0]["state"], "active");
    assert_eq!(
        tokens["tokens"][0]["hash"], "",
        "the hash never leaves the collector"
    );
    assert_eq!(w.hosts()[0]["last_seq"], 2);

    // `enroll` alone prints the new host id.
    fake_root(&w.root.join("root-web-b"), "web-b", "2222", "uuid-b");
    let out = agent(&["enroll", "--collector", &w.c.url])
        .arg("--ca")
        .arg(w.pki.ca())
        .arg("--state-dir")
        .arg(w.root.join("state-b"))
        .arg("--root")
        .arg(w.root.join("root-web-b"))
        .args(["--enroll-token-file", &tf])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .starts_with("web-b-")
    );
}

#[test]
fn bad_expired_used_up_and_revoked_tokens_are_refused_without_a_certificate() {
    let w = world();
    fake_root(&w.root.join("root-h"), "h", "1111", "uuid-h");
    let bad = w.root.join("bad-token");
    std::fs::write(&bad, "dwt_00000000_deadbeefdeadbeef").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            bad.to_string_lossy().into_owned(),
            "enrollment token is invalid",
        ),
        (w.token("web", "1s", "0").1, "expired"),
        (
            {
                let (_, f) = w.token("web", "1h", "1");
                assert!(w.enroll_once("h", "state-first", &f).status.success());
                f
            },
            "used up (1 of 1 enrollments)",
        ),
        (
            {
                let (_, f) = w.token("web", "1h", "0");
                let id = std::path::Path::new(&f)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_start_matches("token-")
                    .to_string();
                run_ok(cli(&w.pki, &w.c.url).args(["tokens", "revoke", &id]));
                f
            },
            "was revoked",
        ),
    ];
    std::thread::sleep(Duration::from_millis(1200));
    for (i, (file, want)) in cases.iter().enumerate() {
        let state = format!("state-refused-{i}");
        let out = w.enroll_once("h", &state, file);
        assert_eq!(out.status.code(), Some(1), "case {want}");
        assert!(
            stderr_of(&out).contains(want),
            "case {want}: {}",
            stderr_of(&out)
        );
        assert!(
            !w.root.join(&state).join("identity/agent.pem").exists(),
            "no certificate for {want}"
        );
    }
    assert_eq!(w.hosts().len(), 1, "only the one good enrollment");
    let states: Vec<String> = cli_json(&w.pki, &w.c.url, &["tokens", "list"])["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_string())
        .collect();
    for s in ["expired", "used_up", "revoked"] {
        assert!(states.iter().any(|x| x == s), "{s} in {states:?}");
    }
}

async fn host_client(
    url: &str,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
) -> tonic::transport::Channel {
    driftwatch_common::client::connect(
        url,
        &ClientFiles {
            ca,
            cert: Some(cert),
            key: Some(key),
        },
    )
    .await
    .unwrap()
}

#[test]
fn agent_certificates_call_no_admin_rpc_and_report_only_as_themselves() {
    let w = world();
    let (cert, key) = w.pki.issue_host("web-01", &w.root.join("web-01"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = host_client(&w.c.url, w.pki.ca(), cert, key).await;
        let mut admin = AdminClient::new(ch.clone());
        let results = vec![
            admin.list_hosts(ListHostsRequest {}).await.map(|_| ()),
            admin
                .get_host(GetHostRequest {
                    host: "web-01".into(),
                    sections: vec![],
                })
                .await
                .map(|_| ()),
            admin
                .revoke_host(RevokeHostRequest {
                    host: "web-01".into(),
                })
                .await
                .map(|_| ()),
            admin
                .create_token(CreateTokenRequest {
                    group: "x".into(),
                    ttl_s: 60,
                    uses: 0,
                })
                .await
                .map(|_| ()),
            admin.list_tokens(ListTokensRequest {}).await.map(|_| ()),
            admin
                .revoke_token(RevokeTokenRequest {
                    id: "00000000".into(),
                })
                .await
                .map(|_| ()),
        ];
        for r in results {
            let s = r.unwrap_err();
            assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
            assert!(s.message().contains("admin certificate"), "{s:?}");
        }
        let mut agent = AgentClient::new(ch);
        let snap = Snapshot {
            host_id: "db-01".into(),
            seq: 1,
            ..Default::default()
        };
        let s = agent
            .report(ReportRequest {
                snapshot: Some(snap),
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        assert!(s.message().contains("reports only as itself"), "{s:?}");
        let ok = Snapshot {
            host_id: "web-01".into(),
            seq: 1,
            ..Default::default()
        };
        agent
            .report(ReportRequest { snapshot: Some(ok) })
            .await
            .unwrap();
    });
    let hosts = w.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["host_id"], "web-01");
}

#[test]
fn revoked_host_is_refused_on_its_open_stream_and_next_report() {
    let w = world();
    fake_root(&w.root.join("root-r"), "rev", "1111", "uuid-r");
    let (_, tf) = w.token("web", "1h", "0");
    assert!(w.enroll_once("r", "state-r", &tf).status.success());
    let state = w.root.join("state-r");
    let id = host_id_in(&state);
    let log = w.root.join("agent-r.log");
    let mut running = agent(&[
        "run",
        "--interval",
        "1s",
        "--section",
        "host",
        "--collector",
        &w.c.url,
    ])
    .arg("--ca")
    .arg(w.pki.ca())
    .arg("--state-dir")
    .arg(&state)
    .arg("--root")
    .arg(w.root.join("root-r"))
    .env("RUST_LOG", "info")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.hosts()[0]["connected"].as_bool().unwrap_or(false) {
        assert!(
            Instant::now() < deadline,
            "agent stream never connected: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = cli_json(&w.pki, &w.c.url, &["hosts", "revoke", &id, "--yes"]);
    assert_eq!(r["streams_closed"], 1);
    assert!(r["host"]["revoked_ms"].as_i64().unwrap() > 0);
    assert_eq!(r["host"]["revoked_by"], "admin");

    // The open stream was cut: the running agent says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("refused this host's certificate") && text.contains("was revoked") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not see the revocation:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = running.kill();
    let _ = running.wait();
    assert!(!w.hosts()[0]["connected"].as_bool().unwrap_or(false));

    // Its next report is refused, with a message that says why.
    let out = w.enroll_once("r", "state-r", &tf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains(&format!("host {id} was revoked")),
        "{}",
        stderr_of(&out)
    );

    // Revocation survives a collector restart.
    let port = w.c.port;
    let World { _tmp, root, pki, c } = w;
    assert!(c.stop());
    let c = CollectorProc::start(&pki, &root.join("data"), Some(port));
    let out = agent(&["run", "--once", "--section", "host", "--collector", &c.url])
        .arg("--ca")
        .arg(pki.ca())
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(root.join("root-r"))
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("was revoked"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_state_dir_copied_to_another_machine_enrolls_as_a_new_host() {
    let w = world();
    fake_root(
        &w.root.join("root-orig"),
        "golden",
        "same-machine-id",
        "uuid-original",
    );
    // The clone: same disk (machine-id), different VM (product uuid).
    fake_root(
        &w.root.join("root-clone"),
        "golden",
        "same-machine-id",
        "uuid-clone",
    );
    let (_, tf) = w.token("web", "1h", "0");
    assert!(w.enroll_once("orig", "state-orig", &tf).status.success());
    let orig = host_id_in(&w.root.join("state-orig"));

    copy_dir(&w.root.join("state-orig"), &w.root.join("state-clone"));
    let out = w.enroll_once("clone", "state-clone", &tf);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let clone = host_id_in(&w.root.join("state-clone"));
    assert_ne!(clone, orig, "the clone must not report as the original");
    assert!(
        stderr_of(&out).contains("machine facts changed"),
        "{}",
        stderr_of(&out)
    );
    let aside = std::fs::read_dir(w.root.join("state-clone"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("identity.replaced-")
        });
    assert!(aside, "the old identity is kept aside, not deleted");

    // Both keep reporting as themselves; the collector records the lineage.
    assert!(w.enroll_once("orig", "state-orig", &tf).status.success());
    assert_eq!(host_id_in(&w.root.join("state-orig")), orig);
    let c = cli_json(&w.pki, &w.c.url, &["host", "show", &clone]);
    assert_eq!(c["host"]["previous_host_id"], orig.as_str());
    assert_eq!(
        c["host"]["last_seq"], 1,
        "the clone starts its own sequence"
    );
    let o = cli_json(&w.pki, &w.c.url, &["host", "show", &orig]);
    assert_eq!(o["host"]["successor_host_ids"][0], clone.as_str());
    assert_eq!(o["host"]["last_seq"], 2);
}

#[test]
fn enrollment_is_rate_limited_per_address() {
    let w = world();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let codes: Vec<tonic::Code> = rt.block_on(async {
        let files = ClientFiles {
            ca: w.pki.ca(),
            cert: None,
            key: None,
        };
        let ch = driftwatch_common::client::connect(&w.c.url, &files)
            .await
            .unwrap();
        let mut a = AgentClient::new(ch);
        let mut codes = vec![];
        let (_, csr_pem) = driftwatch_common::pki::new_key_and_csr().unwrap();
        for _ in 0..15 {
            let req = EnrollRequest {
                token: "dwt_00000000_00".into(),
                csr_pem: csr_pem.clone(),
                ..Default::default()
            };
            codes.push(a.enroll(req).await.unwrap_err().code());
        }
        codes
    });
    assert_eq!(codes[0], tonic::Code::Unauthenticated);
    assert!(codes.contains(&tonic::Code::ResourceExhausted), "{codes:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn an_enrolled_agent_renews_its_certificate_before_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::init(&root.join("pki"));
    std::fs::write(
        root.join("collector.toml"),
        // Long enough that the renewing run (agent start, handshake with the
        // old certificate, Renew) fits before expiry on a loaded machine.
        "enrolled_cert_validity = \"24s\"\n",
    )
    .unwrap();
    let c = CollectorProc::start_with(
        &pki,
        &root.join("data"),
        None,
        &["--config", root.join("collector.toml").to_str().unwrap()],
    );
    let w = World {
        _tmp: tmp,
        root,
        pki,
        c,
    };
    fake_root(&w.root.join("root-ren"), "ren", "m-ren", "u-ren");
    let (_, tf) = w.token("web", "1h", "1");
    assert!(w.enroll_once("ren", "state-ren", &tf).status.success());
    let state = w.root.join("state-ren");
    let read = |f: &str| std::fs::read_to_string(state.join("identity").join(f)).unwrap();
    let (cert1, key1, id1) = (read("agent.pem"), read("agent-key.pem"), host_id_in(&state));
    let rec1: serde_json::Value = serde_json::from_str(&read("identity.json")).unwrap();

    // Two thirds of the lifetime pass: the next run renews with its current
    // certificate (the token is used up, so this cannot be a re-enrollment).
    let issued = rec1["issued_ms"].as_i64().unwrap();
    while driftwatch_common::time::now_ms() < issued + 16_500 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = w.enroll_once("ren", "state-ren", &tf);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rec2: serde_json::Value = serde_json::from_str(&read("identity.json")).unwrap();
    assert_eq!(host_id_in(&state), id1, "same host id");
    assert_ne!(read("agent.pem"), cert1, "a new certificate");
    assert_ne!(read("agent-key.pem"), key1, "with a new key");
    assert!(rec2["not_after_ms"].as_i64() > rec1["not_after_ms"].as_i64());
    assert_eq!(
        w.hosts()[0]["last_seq"],
        2,
        "the report after renewal was accepted"
    );

    // Without renewal the old certificate expires and is refused.
    // Certificate times have whole-second precision: wait until the first
    // certificate's recorded expiry is clearly past.
    let expiry = rec1["not_after_ms"].as_i64().unwrap();
    while driftwatch_common::time::now_ms() < expiry + 2_000 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let old = w.root.join("old-cert");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("c.pem"), &cert1).unwrap();
    std::fs::write(old.join("k.pem"), &key1).unwrap();
    std::fs::set_permissions(old.join("k.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = agent_once(
        &w.c.url,
        &w.pki.ca(),
        &old.join("c.pem"),
        &old.join("k.pem"),
        &w.root.join("state-old"),
        &["--section", "host"],
    );
    assert!(
        !out.status.success(),
        "an expired certificate must be refused"
    );
}
