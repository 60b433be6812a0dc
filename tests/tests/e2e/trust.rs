//! What one host may say about others, and what the collector's disk must
//! withstand: attacks by a holder of one host certificate, a reset clock, a
//! lax umask, with the real binaries over real TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::*;
use driftwatch_common::snapshot::ok_section;
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::*;

/// A host certificate used the way a hostile (or merely clock-reset) agent
/// would: snapshots made by hand, sent with the real TLS client.
struct RawHost {
    rt: tokio::runtime::Runtime,
    files: ClientFiles,
    url: String,
}

impl RawHost {
    fn new(pki: &Pki, url: &str, host_id: &str, dir: &Path) -> RawHost {
        let (cert, key) = pki.issue_host(host_id, &dir.join(host_id));
        RawHost {
            rt: tokio::runtime::Runtime::new().unwrap(),
            files: ClientFiles {
                ca: pki.ca(),
                cert: Some(cert),
                key: Some(key),
            },
            url: url.to_string(),
        }
    }

    fn send(&self, snapshot: Snapshot) -> Result<ReportAck, tonic::Status> {
        self.rt.block_on(async {
            let ch = driftwatch_common::client::connect(&self.url, &self.files)
                .await
                .unwrap();
            AgentClient::new(ch)
                .report(ReportRequest {
                    snapshot: Some(snapshot),
                })
                .await
                .map(|r| r.into_inner())
        })
    }
}

fn snapshot(seq: u64, collected_at_ms: i64, hostname: &str) -> Snapshot {
    Snapshot {
        seq,
        collected_at_ms,
        agent_epoch: 7,
        interval_s: 60,
        sections: vec![ok_section(
            Body::Host(HostSection {
                hostname: hostname.into(),
                ..Default::default()
            }),
            1,
        )],
        ..Default::default()
    }
}

const YEAR_2001_MS: i64 = 978_307_200_000;
const YEAR_2200_MS: i64 = 7_258_118_400_000;

#[test]
fn retention_goes_by_the_collectors_clock_not_the_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let data = tmp.path().join("data");
    let config = tmp.path().join("collector.toml");
    std::fs::write(&config, "retention = \"1d\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let c = CollectorProc::start_with(&pki, &data, None, &args);
    let past = RawHost::new(&pki, &c.url, "past-clock", tmp.path());
    let future = RawHost::new(&pki, &c.url, "future-clock", tmp.path());
    for seq in 1..=3 {
        // Each changes the stable content, so each is a history record.
        past.send(snapshot(seq, YEAR_2001_MS + seq as i64, &format!("p{seq}")))
            .unwrap();
        future
            .send(snapshot(seq, YEAR_2200_MS + seq as i64, &format!("f{seq}")))
            .unwrap();
    }
    assert!(c.stop(), "collector stops cleanly");
    // Retention runs at start: records received a moment ago are well
    // inside one day, whatever their agents' clocks said.
    let c = CollectorProc::start_with(&pki, &data, None, &args);
    wait_for(20, "the start-up retention pass", || {
        c.log_text().contains("retention pass done").then_some(())
    });
    for host in ["past-clock", "future-clock"] {
        let h = cli_json(&pki, &c.url, &["history", host]);
        assert_eq!(
            h["entries"].as_array().map(Vec::len),
            Some(3),
            "{host} keeps its acknowledged history: {h}\n{}",
            c.log_text()
        );
    }
    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    for h in hosts["hosts"].as_array().unwrap() {
        assert_eq!(h["state"], "fresh", "judged by when it was received: {h}");
    }
}

/// Every file and directory below `dir`, with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![(
        dir.to_path_buf(),
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    )];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(modes(&e.path()));
        } else {
            out.push((e.path(), meta.permissions().mode() & 0o777));
        }
    }
    out
}

#[test]
fn data_files_are_private_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let data = tmp.path().join("data");
    let c = CollectorProc::start_under_umask(&pki, &data, &[], "000");
    let h = RawHost::new(&pki, &c.url, "big", tmp.path());
    // Large enough for sled to keep it in a blob file of its own.
    let mut s = snapshot(1, 1, "big");
    s.agent_version = "x".repeat(600_000);
    h.send(s).unwrap();
    assert!(c.stop());
    let all = modes(&data);
    assert!(
        all.iter().any(|(p, _)| p.starts_with(data.join("blobs"))),
        "a blob file was written: {all:?}"
    );
    for (p, mode) in &all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", p.display());
    }
}

/// Enrolls over TLS without a client certificate, as a fresh agent does,
/// claiming `previous` with whatever proof the caller brings.
fn enroll_claiming(
    pki: &Pki,
    url: &str,
    token: &str,
    previous: &str,
    proof: Option<(&Path, &Path)>,
) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, csr_pem) = driftwatch_common::pki::new_key_and_csr().unwrap();
    let (previous_cert_pem, previous_signature) = match proof {
        Some((cert, key)) => (
            std::fs::read_to_string(cert).unwrap(),
            driftwatch_common::lineage::sign(
                &std::fs::read_to_string(key).unwrap(),
                previous,
                &csr_pem,
            )
            .unwrap(),
        ),
        None => Default::default(),
    };
    rt.block_on(async {
        let files = ClientFiles {
            ca: pki.ca(),
            cert: None,
            key: None,
        };
        let ch = driftwatch_common::client::connect(url, &files)
            .await
            .unwrap();
        AgentClient::new(ch)
            .enroll(EnrollRequest {
                token: token.into(),
                csr_pem,
                facts: Some(MachineFacts {
                    hostname: "intruder".into(),
                    ..Default::default()
                }),
                previous_host_id: previous.into(),
                previous_cert_pem,
                previous_signature,
            })
            .await
            .unwrap()
            .into_inner()
            .host_id
    })
}

#[test]
fn a_previous_host_id_without_proof_is_never_lineage() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = CollectorProc::start(&pki, &tmp.path().join("data"), None);
    RawHost::new(&pki, &c.url, "victim", tmp.path())
        .send(snapshot(1, 1, "victim"))
        .unwrap();
    let token = cli_json(
        &pki,
        &c.url,
        &["tokens", "create", "--group", "web", "--ttl", "1h"],
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    // No proof at all; then a valid host certificate of our CA, but
    // another host's, signing the claim.
    let (own_cert, own_key) = pki.issue_host("intruder-0", &tmp.path().join("intruder-0"));
    let bare = enroll_claiming(&pki, &c.url, &token, "victim", None);
    let wrong = enroll_claiming(&pki, &c.url, &token, "victim", Some((&own_cert, &own_key)));
    for (id, why) in [
        (&bare, "no proof"),
        (&wrong, "is for driftwatch://host/intruder-0"),
    ] {
        let h = cli_json(&pki, &c.url, &["host", "show", id])["host"].clone();
        assert_eq!(h["previous_host_id"], "", "not lineage: {h}");
        assert_eq!(h["unverified_previous_host_id"], "victim", "{h}");
        assert!(
            h["unverified_previous_reason"]
                .as_str()
                .unwrap()
                .contains(why),
            "{h}"
        );
    }
    let v = cli_json(&pki, &c.url, &["host", "show", "victim"])["host"].clone();
    assert!(
        v["successor_host_ids"].as_array().is_none_or(Vec::is_empty),
        "no intruder becomes the victim's successor: {v}"
    );
    // The victim's own key does prove it (what a cloned disk carries).
    let (vcert, vkey) = (
        tmp.path().join("victim/agent.pem"),
        tmp.path().join("victim/agent-key.pem"),
    );
    let clone = enroll_claiming(&pki, &c.url, &token, "victim", Some((&vcert, &vkey)));
    let h = cli_json(&pki, &c.url, &["host", "show", &clone])["host"].clone();
    assert_eq!(h["previous_host_id"], "victim", "{h}");
    let v = cli_json(&pki, &c.url, &["host", "show", "victim"])["host"].clone();
    assert_eq!(v["successor_host_ids"][0], clone.as_str(), "{v}");
}

/// A snapshot of image `image` carrying its bake-time baseline; `baked`
/// stands for what the image holds (the same on every honest host).
fn with_baseline(seq: u64, host: &str, image: &str, baked: &str) -> Snapshot {
    let mut s = snapshot(seq, 1, host);
    s.image_id = image.into();
    s.image_baseline = Some(Box::new(Baseline {
        image_id: image.into(),
        created_ms: 42,
        source: "image-bake".into(),
        snapshot: Some(Box::new(snapshot(0, 42, baked))),
        ..Default::default()
    }));
    s
}

#[test]
fn one_host_cannot_decide_an_images_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = CollectorProc::start(&pki, &tmp.path().join("data"), None);
    let list = || cli_json(&pki, &c.url, &["baseline", "list"]);
    let baselines = |v: &serde_json::Value| v["baselines"].as_array().cloned().unwrap_or_default();

    // The squatter uploads first, for an image its snapshot does not run,
    // then for the one it claims to run.
    let evil = RawHost::new(&pki, &c.url, "evil", tmp.path());
    evil.send(with_baseline(1, "evil", "img-web", "forged"))
        .unwrap();
    let mut other = with_baseline(2, "evil2", "img-db", "forged");
    other.image_id = "img-web".into();
    evil.send(other).unwrap();
    let after_squat = list();
    assert!(
        baselines(&after_squat).is_empty(),
        "the first upload decides nothing: {after_squat}"
    );
    assert!(
        !after_squat["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["image_id"] == "img-db"),
        "no upload for an image the host does not run: {after_squat}"
    );

    // Three honest hosts of img-web agree, but the squatter contradicts
    // them: still not decided, and drift says so on every host.
    let honest: Vec<RawHost> = (1..=3)
        .map(|i| RawHost::new(&pki, &c.url, &format!("web-{i}"), tmp.path()))
        .collect();
    for (i, h) in honest.iter().enumerate() {
        h.send(with_baseline(
            1,
            &format!("web-{}", i + 1),
            "img-web",
            "baked",
        ))
        .unwrap();
    }
    assert!(baselines(&list()).is_empty(), "contradicted: {}", list());
    let drift = cli_json(&pki, &c.url, &["drift"]);
    let unconfirmed: Vec<&serde_json::Value> = drift["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "baseline_unconfirmed")
        .collect();
    assert_eq!(unconfirmed.len(), 4, "on each host of the image: {drift}");
    assert!(
        unconfirmed[0]["message"]
            .as_str()
            .unwrap()
            .contains("2 different contents"),
        "{drift}"
    );

    // An operator decides; the squatter's upload is then shown as differing.
    run_ok(cli(&pki, &c.url).args(["baseline", "approve", "img-web", "--from-host", "web-1"]));
    let decided = list();
    assert_eq!(baselines(&decided).len(), 1, "{decided}");
    assert!(
        baselines(&decided)[0]["source"]
            .as_str()
            .unwrap()
            .contains("approved by admin"),
        "{decided}"
    );
    let evil_row = decided["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["host_id"] == "evil")
        .cloned()
        .unwrap();
    assert_eq!(evil_row["differs_from_baseline"], true, "{decided}");

    // Without a contradiction, a quorum of agreeing hosts decides.
    for (i, h) in honest.iter().enumerate() {
        h.send(with_baseline(
            2,
            &format!("web-{}", i + 1),
            "img-app",
            "app",
        ))
        .unwrap();
    }
    let app = list();
    let app_b = baselines(&app)
        .into_iter()
        .find(|b| b["image_id"] == "img-app")
        .unwrap_or_else(|| panic!("confirmed by three hosts: {app}"));
    assert!(
        app_b["source"]
            .as_str()
            .unwrap()
            .contains("confirmed by 3 hosts"),
        "{app}"
    );
}

fn collector_cmd(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin("driftwatch-collector"));
    c.args(args).stdin(std::process::Stdio::null());
    c
}

#[test]
fn backup_of_a_running_collector_restores_checks_and_answers_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let data = tmp.path().join("data");
    let c = CollectorProc::start(&pki, &data, None);
    let a = RawHost::new(&pki, &c.url, "h1", tmp.path());
    let b = RawHost::new(&pki, &c.url, "h2", tmp.path());
    for seq in 1..=3 {
        a.send(snapshot(seq, seq as i64, &format!("a{seq}")))
            .unwrap();
    }
    b.send(snapshot(1, 1, "b")).unwrap();

    // Online: the running collector holds sled's lock, so the copy is
    // taken inside it, over the admin API.
    let file = tmp.path().join("store.backup");
    let out = collector_cmd(&["backup", "--out", file.to_str().unwrap()])
        .env("DRIFTWATCH_COLLECTOR", &c.url)
        .env("DRIFTWATCH_CA", pki.ca())
        .env("DRIFTWATCH_CERT", pki.dir.join("admin.pem"))
        .env("DRIFTWATCH_KEY", pki.dir.join("admin-key.pem"))
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let refused = tmp.path().join("refused.backup");
    let offline = collector_cmd(&[
        "backup",
        "--out",
        refused.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(offline.status.code(), Some(3), "{}", stderr_of(&offline));
    assert!(
        stderr_of(&offline).contains("in use"),
        "{}",
        stderr_of(&offline)
    );
    assert!(
        !refused.exists() && !refused.with_extension("partial").exists(),
        "a failed backup leaves no file"
    );

    let restored = tmp.path().join("restored");
    let r = [
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ];
    run_ok(&mut collector_cmd(&r));
    let again = collector_cmd(&r).output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(3),
        "not into a used dir: {}",
        stderr_of(&again)
    );
    let chk = run_ok(&mut collector_cmd(&[
        "check",
        "--data-dir",
        restored.to_str().unwrap(),
    ]));
    assert!(stderr_of(&chk).contains("hosts 2"), "{}", stderr_of(&chk));

    let c2 = CollectorProc::start(&pki, &restored, None);
    for args in [&["hosts"][..], &["history", "h1"], &["history", "h2"]] {
        let mut want = cli_json(&pki, &c.url, args);
        let mut got = cli_json(&pki, &c2.url, args);
        // Whether an agent stream is open is not stored.
        for v in [&mut want, &mut got] {
            for h in v["hosts"].as_array_mut().into_iter().flatten() {
                h["connected"] = serde_json::Value::Null;
            }
        }
        assert_eq!(got, want, "{args:?}");
    }
    drop(c2);
    assert!(c.stop());
}
