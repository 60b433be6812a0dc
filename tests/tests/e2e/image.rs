//! The machine-image flow of deploy/packer/: the template validates with
//! Packer, and its bake scripts, run on a fake image tree, write a config
//! the real agent enrolls with, and scrub every identity so a second boot of
//! the same image enrolls as a new host.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use driftwatch_tests::*;

fn packer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/packer")
}

fn script(name: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg(packer_dir().join("scripts").join(name));
    c
}

#[test]
fn packer_template_validates_and_is_formatted() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("placeholder");
    std::fs::write(&f, "x").unwrap();
    let f = f.to_str().unwrap();
    let packer = |args: &[&str]| {
        let out = Command::new("packer")
            .args(args)
            .current_dir(packer_dir())
            .env("CHECKPOINT_DISABLE", "1")
            .env("PACKER_CACHE_DIR", tmp.path().join("cache"))
            .output()
            .expect("packer (scripts/ci-deps.sh installs Debian's packer)");
        assert!(
            out.status.success(),
            "packer {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr_of(&out)
        );
    };
    packer(&["fmt", "-check", "."]);
    let vars = [
        "collector_url=https://collector.example.invalid:7443".to_string(),
        format!("ca_cert_file={f}"),
        format!("enroll_token_file={f}"),
        format!("agent_deb={f}"),
        "base_image_url=https://example.invalid/debian.qcow2".to_string(),
        "base_image_checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000".to_string(),
    ];
    let mut args = vec!["validate"];
    for v in &vars {
        args.extend(["-var", v]);
    }
    args.push("driftwatch-agent.pkr.hcl");
    packer(&args);
}

#[test]
fn baseline_step_captures_the_image_with_the_real_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("image");
    fake_root(&root, "bake", "m", "u");
    let state = tmp.path().join("state");
    let out = run_ok(
        script("baseline.sh")
            .env("AGENT", bin("driftwatch-agent"))
            .env("STATE_DIR", &state)
            .env("ROOT", &root)
            .env("IMAGE_ID", "driftwatch-web-20261126040000"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "driftwatch-web-20261126040000"
    );
    assert!(state.join("baseline.pb").exists());
    // Without an image id the step refuses rather than bake an anonymous one.
    let out = script("baseline.sh")
        .env("AGENT", bin("driftwatch-agent"))
        .env("STATE_DIR", &state)
        .env_remove("IMAGE_ID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IMAGE_ID"));
}

#[test]
fn baked_config_enrolls_at_first_boot_and_a_scrubbed_image_enrolls_anew() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = CollectorProc::start(&pki, &tmp.path().join("data"), None);
    let token = cli_json(
        &pki,
        &c.url,
        &[
            "tokens", "create", "--group", "web", "--ttl", "1h", "--uses", "5",
        ],
    )["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Bake: install-agent.sh writes the enrollment config into the image.
    let image = tmp.path().join("image");
    fake_root(&image, "web-baked", "bakemachineid", "uuid-bake");
    run_ok(
        script("install-agent.sh")
            .env("ROOT", &image)
            .env("COLLECTOR_URL", &c.url)
            .env("CA_FILE", pki.ca())
            .env("ENROLL_TOKEN", &token)
            .env("GROUP", "web"),
    );
    let etc = image.join("etc/driftwatch");
    let tf = etc.join("enroll-token");
    assert_eq!(std::fs::read_to_string(&tf).unwrap().trim(), token);
    assert_eq!(
        std::fs::metadata(&tf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let conf = etc.join("agent.toml");
    // The unit's ExecStartPre, on the baked config (paths re-rooted by flag).
    run_ok(
        agent(&["validate", "--config"])
            .arg(&conf)
            .arg("--ca")
            .arg(etc.join("ca.pem")),
    );

    // A boot of the image: the agent runs with the baked config, its
    // absolute paths pointed into the tree.
    let state = image.join("var/lib/driftwatch");
    let boot = || {
        let out = agent(&["run", "--once", "--section", "host", "--config"])
            .arg(&conf)
            .arg("--ca")
            .arg(etc.join("ca.pem"))
            .arg("--enroll-token-file")
            .arg(&tf)
            .arg("--state-dir")
            .arg(&state)
            .arg("--root")
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            stderr_of(&out),
            c.log_text()
        );
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state.join("identity/identity.json")).unwrap())
                .unwrap();
        rec["host_id"].as_str().unwrap().to_string()
    };
    // Say the builder booted the image once (a test run of the service).
    let first = boot();
    assert!(state.join("counters.json").exists());
    std::fs::write(state.join("baseline-keep"), "kept").unwrap();

    // Scrub: nothing that identifies the machine stays.
    let out = run_ok(script("scrub.sh").env("ROOT", &image));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no driftwatch identity left"));
    for gone in ["identity", "spool", "counters.json"] {
        assert!(!state.join(gone).exists(), "{gone} survived the scrub");
    }
    assert_eq!(std::fs::read(image.join("etc/machine-id")).unwrap(), b"");
    assert!(
        state.join("baseline-keep").exists(),
        "scrub removed more than identity"
    );
    assert!(
        conf.exists() && tf.exists(),
        "scrub removed the enrollment config"
    );

    // The instance's first boot (systemd gave it its own machine-id).
    std::fs::write(image.join("etc/machine-id"), "instancemachineid\n").unwrap();
    let second = boot();
    assert_ne!(first, second, "a scrubbed image must enroll as a new host");
    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    let ids: Vec<&str> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["host_id"].as_str())
        .collect();
    assert!(
        ids.contains(&first.as_str()) && ids.contains(&second.as_str()),
        "{ids:?}"
    );
}
