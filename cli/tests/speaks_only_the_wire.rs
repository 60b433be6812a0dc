//! "The CLI speaks only the wire" as a fact about its dependency graph: it
//! must not link the collector, its store (sled) or the agent. An operator's
//! laptop gets a small binary, and no CLI code can reach into storage.

use std::process::Command;

#[test]
fn the_cli_depends_on_proto_and_common_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "driftwatch-cli",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"driftwatch-proto") && crates.contains(&"driftwatch-common"),
        "{tree}"
    );
    for banned in [
        "sled",
        "driftwatch-collector",
        "driftwatch-agent",
        "sysinfo",
        "bollard",
    ] {
        assert!(
            !crates.contains(&banned),
            "driftwatch-cli links {banned}:\n{tree}"
        );
    }
}
