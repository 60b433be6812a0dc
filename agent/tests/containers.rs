//! The `containers` collector against the real Docker Engine, plus a fake
//! daemon that accepts and never answers.
//!
//! No registry is needed: the image is built here from scratch with the
//! static busybox (Debian's busybox-static, see scripts/ci-deps.sh). Every
//! container and image is named with a per-run prefix and removed by a Drop
//! guard, also when an assertion fails. With `CI=true` a missing engine
//! fails the test; elsewhere it is skipped with a loud message.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_agent::collect::containers::ContainersCollector;
use driftwatch_agent::collect::{Collector, Context, SectionError};
use driftwatch_agent::hostfs::HostFs;
use driftwatch_common::proto::{Container, ContainersSection, section::Body};

fn ctx() -> Context {
    Context {
        fs: HostFs::default(),
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether the engine is usable; fails under CI=true when it is not.
fn engine_available() -> bool {
    let problem = match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Ok(_) if Path::new("/bin/busybox").exists() => return true,
        Ok(_) => "/bin/busybox is missing (run scripts/ci-deps.sh)".to_string(),
        Err(e) => e,
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the Docker engine tests cannot run: {problem}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPING the real-engine containers test: {problem} !!!!!!!!\n\
         !!!!!!!! (set CI=true to make this a failure) !!!!!!!!\n"
    );
    false
}

/// Removes what a test run created, whatever happened to the test.
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "-f", i]);
        }
    }
}

fn collect(c: &mut ContainersCollector) -> ContainersSection {
    match c.collect(&ctx()) {
        Ok(Body::Containers(s)) => s,
        other => panic!("containers section: {other:?}"),
    }
}

fn find<'a>(s: &'a ContainersSection, name: &str) -> Option<&'a Container> {
    s.containers.iter().find(|c| c.name == name)
}

#[test]
fn real_engine_inventory() {
    if !engine_available() {
        return;
    }
    let p = format!("dwtest{}x{:04x}", std::process::id(), fastrand::u16(..));
    let n = |s: &str| format!("{p}-{s}");
    let mut guard = Cleanup {
        containers: Vec::new(),
        images: vec![format!("{p}:1"), format!("{p}:latest")],
    };

    // A second copy of busybox as /bin/sh lets `--health-cmd` (always run
    // through /bin/sh -c) work without symlinks in the image.
    let build = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", build.path().join("busybox")).unwrap();
    std::fs::write(
        build.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY busybox /bin/sh\n\
         CMD [\"/bin/busybox\",\"sleep\",\"3600\"]\n",
    )
    .unwrap();
    let tag = format!("{p}:1");
    let context = build.path().display().to_string();
    docker(&[
        "build",
        "-q",
        "-t",
        &tag,
        "-t",
        &format!("{p}:latest"),
        &context,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let image_id = docker(&["image", "inspect", "--format", "{{.Id}}", &tag])
        .unwrap_or_else(|e| panic!("{e}"));
    guard.images.push(image_id.clone());
    let mount_dir = tempfile::tempdir().unwrap();
    let mount_src = mount_dir.path().display().to_string();

    let mut run = |name: &str, args: &[&str]| {
        let name = n(name);
        guard.containers.push(name.clone());
        let mut all = vec!["run", "--name", name.as_str()];
        all.extend_from_slice(args);
        docker(&all).unwrap_or_else(|e| panic!("{e}"));
    };
    run(
        "healthy",
        &[
            "-d",
            "--health-cmd",
            "/bin/busybox true",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "-p",
            "127.0.0.1::8080",
            "-v",
            &format!("{mount_src}:/data:ro"),
            &tag,
        ],
    );
    run(
        "unhealthy",
        &[
            "-d",
            "--health-cmd",
            "echo probe-failed-marker; exit 3",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            &tag,
        ],
    );
    run(
        "looping",
        &["-d", "--restart", "always", &tag, "/bin/busybox", "false"],
    );
    run("byid", &["-d", &image_id]);
    // Runs to completion: a stopped container with exit code 0.
    run("stopped", &[&tag, "/bin/busybox", "true"]);
    run(
        "compose",
        &[
            "-d",
            "--label",
            &format!("com.docker.compose.project={p}proj"),
            "--label",
            "com.docker.compose.service=web",
            "--label",
            "a.first=1",
            &p,
        ],
    );

    let mut collector = ContainersCollector::from_env();
    let deadline = Instant::now() + Duration::from_secs(45);
    let section = loop {
        let s = collect(&mut collector);
        let ready =
            |name: &str, ok: &dyn Fn(&Container) -> bool| find(&s, &n(name)).is_some_and(ok);
        let health = |c: &Container| {
            c.health
                .as_ref()
                .map(|h| h.status.clone())
                .unwrap_or_default()
        };
        let all_ready = ready("healthy", &|c| health(c) == "healthy")
            && ready("unhealthy", &|c| health(c) == "unhealthy")
            && ready("looping", &|c| c.restart_count > 0)
            && ready("stopped", &|c| c.state == "exited");
        if all_ready {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "containers did not settle in time: {:#?}",
            s.containers
                .iter()
                .filter(|c| c.name.starts_with(&p))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    assert!(!section.engine_version.is_empty());
    assert!(
        section.api_version.starts_with("1."),
        "{}",
        section.api_version
    );
    let mine: Vec<&Container> = section
        .containers
        .iter()
        .filter(|c| c.name.starts_with(&p))
        .collect();
    assert_eq!(
        mine.len(),
        6,
        "stopped containers are listed too: {mine:#?}"
    );
    for c in &mine {
        assert_eq!(c.image_id, image_id, "{}", c.name);
        assert!(
            c.image_repo_digests.is_empty(),
            "a local build has no repo digest"
        );
        assert!(c.error.is_empty(), "{}: {}", c.name, c.error);
        assert!(!c.created.is_empty() && c.id.len() == 64, "{c:?}");
    }

    let healthy = find(&section, &n("healthy")).unwrap();
    assert_eq!(healthy.state, "running");
    assert_eq!(healthy.image, tag);
    assert_eq!(healthy.reference_kind, "tag");
    assert!(!healthy.pinned, "a tag floats");
    assert!(!healthy.started_at.is_empty());
    let h = healthy.health.as_ref().unwrap();
    assert_eq!(h.failing_streak, 0);
    assert_eq!(h.last_probe.as_ref().unwrap().exit_code, 0);
    assert_eq!(healthy.ports.len(), 1, "{:?}", healthy.ports);
    assert_eq!(healthy.ports[0].container_port, "8080/tcp");
    assert_eq!(healthy.ports[0].host_ip, "127.0.0.1");
    assert!(healthy.ports[0].host_port > 0);
    assert_eq!(healthy.mounts.len(), 1);
    assert_eq!(healthy.mounts[0].source, mount_src);
    assert_eq!(healthy.mounts[0].destination, "/data");
    assert!(!healthy.mounts[0].read_write);
    assert_eq!(healthy.restart_policy, "no");

    let sick = find(&section, &n("unhealthy")).unwrap();
    assert_eq!(sick.state, "running", "unhealthy yet kept running");
    let h = sick.health.as_ref().unwrap();
    assert!(h.failing_streak >= 2, "{h:?}");
    let probe = h.last_probe.as_ref().unwrap();
    assert_eq!(probe.exit_code, 3);
    assert_eq!(probe.output, "probe-failed-marker");

    let looping = find(&section, &n("looping")).unwrap();
    assert_eq!(looping.restart_policy, "always");
    assert!(looping.restart_count > 0);
    assert!(
        matches!(looping.state.as_str(), "restarting" | "running" | "exited"),
        "{}",
        looping.state
    );

    let byid = find(&section, &n("byid")).unwrap();
    assert_eq!(byid.image, image_id);
    assert_eq!(byid.reference_kind, "image_id");
    assert!(byid.pinned, "an image id pins");

    let stopped = find(&section, &n("stopped")).unwrap();
    assert_eq!(stopped.state, "exited");
    assert_eq!(stopped.exit_code, 0);
    assert!(!stopped.finished_at.is_empty());
    assert!(stopped.ports.is_empty());
    assert!(stopped.health.is_none());

    let compose = find(&section, &n("compose")).unwrap();
    assert_eq!(compose.compose_project, format!("{p}proj"));
    assert_eq!(compose.compose_service, "web");
    assert_eq!(compose.reference_kind, "untagged");
    let keys: Vec<&str> = compose.labels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "a.first",
            "com.docker.compose.project",
            "com.docker.compose.service"
        ]
    );
}

/// A unix socket that accepts connections and never says a word.
fn hanging_daemon(dir: &Path) -> String {
    let path = dir.join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    format!("unix://{}", path.display())
}

fn assert_times_out(result: Result<Body, SectionError>, took: Duration) {
    match result {
        Err(SectionError::Failed(why)) => {
            assert!(why.contains("did not answer"), "{why}")
        }
        other => panic!("a hanging daemon must be a section error: {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_hanging_daemon_is_a_section_error_not_a_stuck_agent() {
    let d = tempfile::tempdir().unwrap();
    let host = hanging_daemon(d.path());
    let mut c = ContainersCollector::new(Some(host))
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(2));
    // Twice: the second tick must not reuse a half-made client and hang.
    for _ in 0..2 {
        let start = Instant::now();
        let r = c.collect(&ctx());
        assert_times_out(r, start.elapsed());
    }
}

#[test]
fn a_hanging_daemon_times_out_inside_the_agents_runtime() {
    let d = tempfile::tempdir().unwrap();
    let host = hanging_daemon(d.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut c = ContainersCollector::new(Some(host))
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(2));
    let (r, took) = rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            (c.collect(&ctx()), start.elapsed())
        })
        .await
        .unwrap()
    });
    assert_times_out(r, took);
}

#[test]
fn the_section_bound_holds_even_when_each_call_is_patient() {
    let d = tempfile::tempdir().unwrap();
    let host = hanging_daemon(d.path());
    let mut c = ContainersCollector::new(Some(host))
        .with_timeouts(Duration::from_secs(60), Duration::from_millis(400));
    let start = Instant::now();
    match c.collect(&ctx()) {
        Err(SectionError::Failed(why)) => assert!(why.contains("did not finish"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(3));
}
