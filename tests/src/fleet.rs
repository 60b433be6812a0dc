//! Multi-host harness: the collector and agents as containers on a private
//! Docker network the test creates, from images built locally out of this
//! workspace's binaries (`deploy/docker/build-images.sh`; the engine here
//! has no registry). Tests can partition the collector off the network,
//! kill -9 it and start it again on the same data volume.
//!
//! Every name carries a per-fleet prefix; [`Fleet`]'s `Drop` removes the
//! containers, the network and the volumes even when the test panicked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{Pki, bin, run_ok};

pub const COLLECTOR_IMAGE: &str = "driftwatch-collector:dev";
pub const AGENT_IMAGE: &str = "driftwatch-agent:dev";

/// Whether Docker tests can run. Without a usable engine they are skipped
/// on a developer machine but FAIL under CI=true: CI installs what the
/// tests need, so a missing engine is a broken CI, not a reason to pass.
pub fn docker_or_skip(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: Docker is not usable and CI=true: these tests must run in CI"
        );
        eprintln!("{test}: skipped, no usable Docker engine (set CI=true to make this fail)");
    }
    ok
}

/// Builds both images from the binaries next to the test executable, once
/// per test process.
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin_dir = bin("driftwatch-collector")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker/build-images.sh");
        run_ok(
            Command::new(script)
                .arg("--bin-dir")
                .arg(&bin_dir)
                .args(["--tag", "dev"]),
        );
    });
}

/// `docker ARGS`, failing the test with its output unless it exits 0.
pub fn docker(args: &[&str]) -> Output {
    run_ok(Command::new("docker").args(args))
}

fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub struct Fleet {
    pub prefix: String,
    pub net: String,
    pub pki: Pki,
    _dir: tempfile::TempDir,
    dir: PathBuf,
    containers: Vec<String>,
    volumes: Vec<String>,
}

pub const COLLECTOR_URL: &str = "https://collector:7443";

impl Fleet {
    /// A network and a PKI whose server certificate names `collector` (the
    /// collector's alias on the network) and `localhost` (for the CLI run
    /// inside the collector's container).
    pub fn create() -> Fleet {
        ensure_images();
        static N: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "dwfleet-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let pki_dir = dir.join("pki");
        run_ok(
            Command::new(bin("driftwatch-collector"))
                .args(["pki", "init", "--dir"])
                .arg(&pki_dir)
                .args(["--server-name", "collector", "--server-name", "localhost"]),
        );
        let net = format!("{prefix}-net");
        let fleet = Fleet {
            prefix,
            net: net.clone(),
            pki: Pki { dir: pki_dir },
            _dir: tmp,
            dir,
            containers: vec![],
            volumes: vec![],
        };
        docker(&["network", "create", &net]);
        fleet
    }

    pub fn collector_name(&self) -> String {
        format!("{}-collector", self.prefix)
    }

    pub fn agent_name(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Starts the collector (debug logs for the collector crate, JSON, so
    /// tests can read the order reports were stored in). `extra` goes after
    /// `serve` (e.g. `--config`).
    pub fn start_collector(&mut self) {
        let name = self.collector_name();
        let data = format!("{}-data", self.prefix);
        self.volumes.push(data.clone());
        self.containers.push(name.clone());
        let pki = format!("{}:/pki:ro", self.pki.dir.display());
        let data_mount = format!("{data}:/data");
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &self.net,
            "--network-alias",
            "collector",
            "-v",
            &pki,
            "-v",
            &data_mount,
            "-e",
            "RUST_LOG=info,driftwatch_collector=debug",
            COLLECTOR_IMAGE,
            "--log-format",
            "json",
            "serve",
            "--listen",
            "0.0.0.0:7443",
            "--data-dir",
            "/data/collector",
            "--pki-dir",
            "/pki",
        ]);
        self.wait_collector_serving();
    }

    /// Waits until the CLI inside the collector's container gets an answer.
    pub fn wait_collector_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.try_cli_json(&["hosts"]).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "collector did not serve within 30s; logs:\n{}",
                self.logs(&self.collector_name())
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill_collector(&self) {
        docker(&["kill", "--signal", "KILL", &self.collector_name()]);
        // `docker kill` returns once the signal is sent; wait for the exit.
        docker(&["wait", &self.collector_name()]);
    }

    /// Starts the same container again: same data volume, same alias.
    pub fn restart_collector(&self) {
        docker(&["start", &self.collector_name()]);
        self.wait_collector_serving();
    }

    /// Cuts the collector off the fleet's network (agents can no longer reach it).
    pub fn partition_collector(&self) {
        docker(&["network", "disconnect", &self.net, &self.collector_name()]);
    }

    pub fn heal_collector(&self) {
        docker(&[
            "network",
            "connect",
            "--alias",
            "collector",
            &self.net,
            &self.collector_name(),
        ]);
    }

    /// Issues a certificate for `host` and starts an agent container for it
    /// with its own state volume. `args` follow `run` (e.g. `--interval`).
    pub fn start_agent(&mut self, host: &str, args: &[&str]) {
        let out = self.dir.join("hosts").join(host);
        let (_cert, _key) = self.pki.issue_host(host, &out);
        let name = self.agent_name(host);
        let state = format!("{name}-state");
        self.volumes.push(state.clone());
        self.containers.push(name.clone());
        let mut cmd = vec![
            "run".to_string(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--hostname".into(),
            host.into(),
            "--network".into(),
            self.net.clone(),
            "-v".into(),
            format!("{}:/pki/ca.pem:ro", self.pki.ca().display()),
            "-v".into(),
            format!("{}:/pki/host:ro", out.display()),
            "-v".into(),
            format!("{state}:/state"),
            "-e".into(),
            "RUST_LOG=info,driftwatch_agent=debug".into(),
            AGENT_IMAGE.into(),
            "--log-format".into(),
            "json".into(),
        ];
        cmd.extend(self.agent_run_args().iter().map(|s| s.to_string()));
        cmd.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        docker(&refs);
    }

    /// Runs `driftwatch-agent run --once` for `host` in a fresh container
    /// on the same state volume as [`Fleet::start_agent`] would use, and
    /// returns its output (exit 0 = acknowledged).
    pub fn agent_once(&mut self, host: &str, args: &[&str]) -> Output {
        let out = self.dir.join("hosts").join(host);
        if !out.join("agent.pem").exists() {
            self.pki.issue_host(host, &out);
        }
        let state = format!("{}-state", self.agent_name(host));
        if !self.volumes.contains(&state) {
            self.volumes.push(state.clone());
        }
        let mut cmd = vec![
            "run".to_string(),
            "--rm".into(),
            "--hostname".into(),
            host.into(),
            "--network".into(),
            self.net.clone(),
            "-v".into(),
            format!("{}:/pki/ca.pem:ro", self.pki.ca().display()),
            "-v".into(),
            format!("{}:/pki/host:ro", out.display()),
            "-v".into(),
            format!("{state}:/state"),
            AGENT_IMAGE.into(),
        ];
        cmd.extend(self.agent_run_args().iter().map(|s| s.to_string()));
        cmd.push("--once".into());
        cmd.extend(args.iter().map(|s| s.to_string()));
        Command::new("docker")
            .args(&cmd)
            .stdin(Stdio::null())
            .output()
            .expect("spawn docker")
    }

    fn agent_run_args(&self) -> [&'static str; 10] {
        [
            "run",
            "--collector",
            COLLECTOR_URL,
            "--ca",
            "/pki/ca.pem",
            "--cert",
            "/pki/host/agent.pem",
            "--key",
            "/pki/host/agent-key.pem",
            "--state-dir=/state",
        ]
    }

    /// The admin CLI inside the collector's container, against its own
    /// loopback: works while the collector is partitioned from the fleet.
    pub fn try_cli_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let out = Command::new("docker")
            .args([
                "exec",
                "-e",
                "DRIFTWATCH_COLLECTOR=https://localhost:7443",
                "-e",
                "DRIFTWATCH_CA=/pki/ca.pem",
                "-e",
                "DRIFTWATCH_CERT=/pki/admin.pem",
                "-e",
                "DRIFTWATCH_KEY=/pki/admin-key.pem",
                &self.collector_name(),
                "/usr/local/bin/driftwatch",
            ])
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        self.try_cli_json(args).unwrap_or_else(|| {
            panic!(
                "driftwatch {args:?} failed; collector logs:\n{}",
                self.logs(&self.collector_name())
            )
        })
    }

    /// (last_seq, snapshots_stored) of a host, or None before it reported.
    pub fn host_seqs(&self, host: &str) -> Option<(u64, u64)> {
        let v = self.try_cli_json(&["host", "show", host])?;
        let h = &v["host"];
        Some((h["last_seq"].as_u64()?, h["snapshots_stored"].as_u64()?))
    }

    /// Polls until `pred` holds or `timeout` passes (then fails with the logs).
    pub fn wait_for(&self, what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; collector logs (tail):\n{}",
                tail(&self.logs(&self.collector_name()), 40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// stdout + stderr of a container so far.
    pub fn logs(&self, name: &str) -> String {
        let out = Command::new("docker")
            .args(["logs", name])
            .stdin(Stdio::null())
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// JSON log lines of a container with this `message`.
    pub fn log_events(&self, name: &str, message: &str) -> Vec<serde_json::Value> {
        self.logs(name)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &self.containers {
            docker_quiet(&["rm", "-f", "-v", c]);
        }
        docker_quiet(&["network", "rm", &self.net]);
        for v in &self.volumes {
            docker_quiet(&["volume", "rm", "-f", v]);
        }
    }
}
