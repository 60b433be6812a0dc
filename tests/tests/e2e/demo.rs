//! The demo fleet shows what the tool is for: right after
//! `deploy/docker/demo.sh up`, `driftwatch drift` finds every kind of drift
//! its fake roots hold, on the hosts that hold it and nowhere else. The
//! script runs as a developer would run it, with this build's binaries
//! (BIN_DIR), a free DEMO_PORT and a compose project of its own, so a
//! developer's demo on the same engine is left alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use driftwatch_tests::fleet::docker_or_skip;
use driftwatch_tests::*;
use serde_json::Value;

const LEAVER_FINGERPRINT: &str = "SHA256:uaE4DvrMgJ0GWb1YM7QxM9NNyfz41kdSi/yVmINGCX0";

fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker")
}

/// One demo fleet; `Drop` runs `demo.sh down` whatever happened, and on a
/// failure first prints the fleet's logs.
struct Demo {
    project: String,
    port: u16,
    bin_dir: PathBuf,
    pki: Pki,
    _tmp: tempfile::TempDir,
}

impl Demo {
    fn new() -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        Demo {
            project: format!("dwdemo-{}", std::process::id()),
            port: free_port(),
            bin_dir: bin("driftwatch").parent().expect("bin dir").to_path_buf(),
            pki: Pki {
                dir: tmp.path().join("pki"),
            },
            _tmp: tmp,
        }
    }

    fn script(&self, arg: &str) -> Output {
        Command::new(docker_dir().join("demo.sh"))
            .arg(arg)
            .env("BIN_DIR", &self.bin_dir)
            .env("DEMO_PORT", self.port.to_string())
            .env("DEMO_PROJECT", &self.project)
            .env("DRIFTWATCH_DEMO_PKI", &self.pki.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run demo.sh")
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = Command::new("docker-compose")
                .args(["-p", &self.project, "-f"])
                .arg(docker_dir().join("compose.yaml"))
                .args(["logs", "--no-color", "--tail=30"])
                .env("DEMO_PORT", self.port.to_string())
                .env("DRIFTWATCH_DEMO_PKI", &self.pki.dir)
                .output();
            if let Ok(l) = logs {
                eprintln!("demo fleet logs:\n{}", String::from_utf8_lossy(&l.stdout));
            }
        }
        let down = self.script("down");
        if !down.status.success() {
            eprintln!("demo.sh down failed: {}", stderr_of(&down));
        }
    }
}

/// (host, kind, rule, item, message) of every open finding.
fn findings(v: &Value) -> Vec<[String; 5]> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            ["host_id", "kind", "rule", "item", "message"]
                .map(|k| f[k].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn demo_up_then_drift_shows_every_kind_of_drift() {
    if !docker_or_skip("demo_up_then_drift_shows_every_kind_of_drift") {
        return;
    }
    let demo = Demo::new();
    let up = demo.script("up");
    let said = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        up.status.success(),
        "demo.sh up failed ({}):\nstdout: {said}\nstderr: {}",
        up.status,
        stderr_of(&up)
    );
    // The lines it prints are the ones to paste: this build's binary, this port.
    let cli_path = demo.bin_dir.join("driftwatch");
    for line in [
        format!("export DRIFTWATCH_COLLECTOR={}", demo.url()),
        format!(
            "DRIFTWATCH_KEY={}",
            demo.pki.dir.join("admin-key.pem").display()
        ),
        format!("{} drift", cli_path.display()),
    ] {
        assert!(
            said.contains(&line),
            "demo.sh up did not print {line:?}:\n{said}"
        );
    }

    // No waiting here: `up` returns once every host has reported.
    let all = findings(&cli_json(&demo.pki, &demo.url(), &["drift"]));
    let has = |host: &str, kind: &str, rule: &str, text: &str| {
        all.iter().any(|[h, k, r, item, msg]| {
            h == host && k == kind && r == rule && (item.contains(text) || msg.contains(text))
        })
    };
    let expected = [
        (
            "web-1",
            "policy",
            "ssh_keys.forbidden_fingerprints",
            LEAVER_FINGERPRINT,
        ),
        (
            "db-1",
            "policy",
            "ssh_keys.forbidden_fingerprints",
            LEAVER_FINGERPRINT,
        ),
        ("web-1", "peer_outlier", "group=web", LEAVER_FINGERPRINT),
        ("db-1", "policy", "containers.forbid_latest", "shop-latest"),
        (
            "db-1",
            "policy",
            "containers.forbid_unhealthy",
            "shop-unhealthy",
        ),
        ("db-1", "policy", "raid.require_healthy", "RAID is degraded"),
        (
            "web-2",
            "policy",
            "logs.require_rotation",
            "/var/log/shop/debug.log",
        ),
        ("web-3", "policy", "packages.minimum", "openssl 3.0.9-1"),
        (
            "web-3",
            "peer_outlier",
            "group=web",
            "openssl:amd64 3.0.9-1",
        ),
        (
            "web-3",
            "peer_missing",
            "group=web",
            "openssl:amd64 3.0.15-1~deb12u1",
        ),
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|(h, k, r, t)| !has(h, k, r, t))
        .collect();
    assert!(
        missing.is_empty(),
        "drift lacks {missing:?}; it found:\n{all:#?}"
    );

    // Each drift is where its root put it: the others are clean of it.
    let strays: Vec<_> = all
        .iter()
        .filter(|[h, _, rule, item, _]| stray(h, rule, item))
        .collect();
    assert!(
        strays.is_empty(),
        "drift found more than the roots hold: {strays:#?}"
    );
}

/// A finding on a host whose root holds no such drift. Peer findings carry
/// the group as their rule; policy rules start with the section's name.
fn stray(host: &str, rule: &str, item: &str) -> bool {
    let section = rule.split('.').next().unwrap_or_default();
    let clean_of: &[&str] = match host {
        "web-1" => &["raid", "logs", "packages", "containers"],
        "web-2" => &["ssh_keys", "raid", "packages", "containers"],
        "web-3" => &["ssh_keys", "raid", "logs", "containers"],
        "db-1" => &["logs", "packages"],
        _ => return true,
    };
    clean_of.contains(&section)
        || (rule == "group=web" && host != "web-3" && item.contains("openssl"))
}
