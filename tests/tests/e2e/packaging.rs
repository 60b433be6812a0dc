//! The Debian packages and systemd units: `scripts/build-debs --dev` (the
//! documented command, on the dev binaries the suite already built), their
//! contents checked with dpkg-deb, the packaged binaries run, and the
//! shipped units verified by `systemd-analyze verify` against the packaged
//! binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use driftwatch_tests::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Debs {
    agent: PathBuf,
    collector: PathBuf,
    cli: PathBuf,
    /// Extracted trees (`dpkg-deb -x`), made once so parallel tests never
    /// see a half-extracted one.
    agent_root: PathBuf,
    collector_root: PathBuf,
    cli_root: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Builds the three packages once per test binary and extracts them.
fn debs() -> &'static Debs {
    static DEBS: OnceLock<Debs> = OnceLock::new();
    DEBS.get_or_init(|| {
        run_ok(Command::new(repo().join("scripts/build-debs")).arg("--dev"));
        // target/<profile>/driftwatch-agent → target/debian (CARGO_TARGET_DIR
        // is honoured by cargo-deb and by the script alike).
        let agent_bin = bin("driftwatch-agent");
        let dir = agent_bin
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("debian");
        let find = |p: &str| {
            std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|f| {
                    let n = f.file_name().unwrap().to_string_lossy();
                    n.starts_with(&format!("{p}_")) && n.ends_with(".deb")
                })
                .unwrap_or_else(|| panic!("no {p} package in {}", dir.display()))
        };
        let tmp = tempfile::tempdir().unwrap();
        let extract = |deb: &Path, name: &str| {
            let root = tmp.path().join(name);
            run_ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
            root
        };
        let (agent, collector, cli) = (
            find("driftwatch-agent"),
            find("driftwatch-collector"),
            find("driftwatch-cli"),
        );
        Debs {
            agent_root: extract(&agent, "agent"),
            collector_root: extract(&collector, "collector"),
            cli_root: extract(&cli, "cli"),
            agent,
            collector,
            cli,
            _tmp: tmp,
        }
    })
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = run_ok(Command::new("dpkg-deb").args(args).arg(deb));
    String::from_utf8(out.stdout).unwrap()
}

/// Paths in the package's data archive, without the leading `.`.
fn contents(deb: &Path) -> Vec<String> {
    dpkg_deb(&["-c"], deb)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

fn assert_has(files: &[String], want: &[&str]) {
    for w in want {
        assert!(files.iter().any(|f| f == w), "{w} missing from {files:#?}");
    }
}

#[test]
fn agent_package_carries_binary_unit_conffile_man_pages_and_completions() {
    let deb = &debs().agent;
    let files = contents(deb);
    assert_has(
        &files,
        &[
            "/usr/bin/driftwatch-agent",
            "/usr/lib/systemd/system/driftwatch-agent.service",
            "/etc/driftwatch/agent.toml",
            "/usr/share/man/man1/driftwatch-agent.1.gz",
            "/usr/share/man/man1/driftwatch-agent-run.1.gz",
            "/usr/share/man/man1/driftwatch-agent-validate.1.gz",
            "/usr/share/bash-completion/completions/driftwatch-agent",
            "/usr/share/zsh/vendor-completions/_driftwatch-agent",
            "/usr/share/fish/vendor_completions.d/driftwatch-agent.fish",
        ],
    );
    assert!(!files.iter().any(|f| f.contains("collector")), "{files:#?}");
    let info = dpkg_deb(&["-I"], deb);
    assert!(info.contains("Package: driftwatch-agent"), "{info}");
    let conf = run_ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(
        String::from_utf8_lossy(&conf.stdout).trim(),
        "/etc/driftwatch/agent.toml"
    );
    // cargo-deb's systemd glue enables the unit at install (an image bakes
    // it enabled; it starts once /etc/driftwatch/ca.pem exists).
    let postinst = run_ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("postinst"));
    assert!(
        String::from_utf8_lossy(&postinst.stdout)
            .contains("deb-systemd-helper enable driftwatch-agent.service")
    );

    let root = &debs().agent_root;
    let v = run_ok(Command::new(root.join("usr/bin/driftwatch-agent")).arg("--version"));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("driftwatch-agent "));
    // The shipped config parses; validate refuses it until the CA is there,
    // and says which file is missing (the unit's ExecStartPre).
    let out = Command::new(root.join("usr/bin/driftwatch-agent"))
        .args(["validate", "--config"])
        .arg(root.join("etc/driftwatch/agent.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("/etc/driftwatch/ca.pem"),
        "{}",
        stderr_of(&out)
    );
    let man = std::fs::read(root.join("usr/share/man/man1/driftwatch-agent-run.1.gz")).unwrap();
    assert_eq!(&man[..2], &[0x1f, 0x8b], "man pages are gzipped");
}

#[test]
fn collector_package_carries_the_collector_the_service_user_and_docs() {
    let deb = &debs().collector;
    let files = contents(deb);
    assert_has(
        &files,
        &[
            "/usr/bin/driftwatch-collector",
            "/usr/lib/systemd/system/driftwatch-collector.service",
            "/etc/driftwatch/collector.toml",
            "/usr/share/man/man1/driftwatch-collector.1.gz",
            "/usr/share/man/man1/driftwatch-collector-serve.1.gz",
            "/usr/share/bash-completion/completions/driftwatch-collector",
        ],
    );
    // The CLI is its own package (both shipping /usr/bin/driftwatch would
    // make them conflict).
    assert!(
        !files.iter().any(|f| f == "/usr/bin/driftwatch"),
        "{files:#?}"
    );
    let info = dpkg_deb(&["-I"], deb);
    assert!(
        info.contains("Depends: ") && info.contains("adduser"),
        "{info}"
    );
    assert!(info.contains("Recommends: driftwatch-cli"), "{info}");
    let conf = run_ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(
        String::from_utf8_lossy(&conf.stdout).trim(),
        "/etc/driftwatch/collector.toml"
    );
    let postinst = run_ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("postinst"));
    let postinst = String::from_utf8_lossy(&postinst.stdout);
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(
        postinst.contains("driftwatch-collector.service"),
        "{postinst}"
    );

    let root = &debs().collector_root;
    // The shipped config is valid as shipped (ExecStartPre passes).
    let out = run_ok(
        Command::new(root.join("usr/bin/driftwatch-collector"))
            .args(["validate", "--config"])
            .arg(root.join("etc/driftwatch/collector.toml")),
    );
    assert!(stderr_of(&out).contains("ok"), "{}", stderr_of(&out));
}

#[test]
fn cli_package_carries_the_cli_alone_with_its_docs() {
    let deb = &debs().cli;
    let files = contents(deb);
    assert_has(
        &files,
        &[
            "/usr/bin/driftwatch",
            "/usr/share/man/man1/driftwatch.1.gz",
            "/usr/share/man/man1/driftwatch-tokens-create.1.gz",
            // Every command has its page, not only some.
            "/usr/share/man/man1/driftwatch-keys-sweep.1.gz",
            "/usr/share/man/man1/driftwatch-drift.1.gz",
            "/usr/share/man/man1/driftwatch-baseline-approve.1.gz",
            "/usr/share/bash-completion/completions/driftwatch",
            "/usr/share/zsh/vendor-completions/_driftwatch",
            "/usr/share/fish/vendor_completions.d/driftwatch.fish",
        ],
    );
    // For an operator's laptop: no daemon, no unit, no config, no service user.
    assert!(
        !files
            .iter()
            .any(|f| f.contains("collector") || f.contains("agent") || f.starts_with("/etc")),
        "{files:#?}"
    );
    let postinst = Command::new("dpkg-deb")
        .arg("-I")
        .arg(deb)
        .arg("postinst")
        .output()
        .unwrap();
    assert!(
        !postinst.status.success(),
        "the CLI package runs no maintainer script"
    );
    let root = &debs().cli_root;
    let v = run_ok(Command::new(root.join("usr/bin/driftwatch")).arg("--version"));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("driftwatch "));
    // Completions name the real subcommands.
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/driftwatch"))
            .unwrap();
    assert!(bash.contains("tokens") && bash.contains("revoke"), "{bash}");
}

/// The unit as shipped, with `/usr/bin/` pointed at the extracted package
/// (`verify` checks that ExecStart binaries exist and are executable;
/// `--root` would need a whole systemd unit tree under the root).
fn verify(unit: &str, pkg_root: &Path, scratch: &Path) -> std::process::Output {
    let text = std::fs::read_to_string(pkg_root.join("usr/lib/systemd/system").join(unit)).unwrap();
    let dir = tempfile::tempdir_in(scratch).unwrap().keep();
    let bin = format!("{}/usr/bin/", pkg_root.display());
    std::fs::write(dir.join(unit), text.replace("/usr/bin/", &bin)).unwrap();
    Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join(unit))
        .output()
        .expect("systemd-analyze (scripts/ci-deps.sh installs systemd)")
}

#[test]
fn units_pass_systemd_analyze_verify_without_warnings() {
    let d = debs();
    let tmp = tempfile::tempdir().unwrap();
    for (unit, root) in [
        ("driftwatch-agent.service", &d.agent_root),
        ("driftwatch-collector.service", &d.collector_root),
    ] {
        let out = verify(unit, root, tmp.path());
        // verify exits 0 on unknown keys and bad values, only warning:
        // any output at all is a failure.
        assert!(
            out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
            "{unit}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr_of(&out)
        );
    }
    // The check can fail: a misspelt key is caught.
    let root = &d.agent_root;
    let unit = root.join("usr/lib/systemd/system/driftwatch-agent.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let bad_root = tmp.path().join("bad");
    std::fs::create_dir_all(bad_root.join("usr/lib/systemd/system")).unwrap();
    std::fs::create_dir_all(bad_root.join("usr/bin")).unwrap();
    std::fs::copy(
        root.join("usr/bin/driftwatch-agent"),
        bad_root.join("usr/bin/driftwatch-agent"),
    )
    .unwrap();
    std::fs::write(
        bad_root.join("usr/lib/systemd/system/driftwatch-agent.service"),
        text.replace("MemoryMax=", "MemoryMaxx="),
    )
    .unwrap();
    let out = verify("driftwatch-agent.service", &bad_root, tmp.path());
    assert!(
        stderr_of(&out).contains("MemoryMaxx"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn agent_unit_is_capped_hardened_and_keeps_what_sweeps_need() {
    let root = &debs().agent_root;
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/driftwatch-agent.service"))
            .unwrap();
    let keys: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| keys.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
    assert_eq!(get("Restart"), Some("always"));
    assert!(get("MemoryMax").is_some() && get("CPUQuota").is_some());
    for k in [
        "PrivateTmp",
        "NoNewPrivileges",
        "ProtectKernelTunables",
        "ProtectKernelModules",
    ] {
        assert_eq!(get(k), Some("yes"), "{k}");
    }
    assert_eq!(get("ProtectSystem"), Some("strict"));
    assert_eq!(get("StateDirectory"), Some("driftwatch"));
    let rw = get("ReadWritePaths").unwrap_or("");
    assert!(rw.contains("/home") && rw.contains("/root"), "{rw}");
    let caps: Vec<&str> = get("CapabilityBoundingSet")
        .unwrap_or("")
        .split(' ')
        .collect();
    for c in [
        "CAP_DAC_READ_SEARCH",
        "CAP_DAC_OVERRIDE",
        "CAP_CHOWN",
        "CAP_FOWNER",
    ] {
        assert!(caps.contains(&c), "{c} missing: {caps:?}");
    }
    assert!(!caps.contains(&"CAP_SYS_ADMIN"), "{caps:?}");
    assert!(
        get("ExecStartPre")
            .unwrap_or("")
            .contains("driftwatch-agent validate --config")
    );
    let collector = std::fs::read_to_string(
        debs()
            .collector_root
            .join("usr/lib/systemd/system/driftwatch-collector.service"),
    )
    .unwrap();
    assert!(collector.contains("\nUser=driftwatch\n") && collector.contains("\nRestart=always\n"));
    assert!(collector.contains("\nCapabilityBoundingSet=\n"));
}
