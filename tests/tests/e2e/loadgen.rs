//! The fleet load generator against a real collector: a short run must
//! deliver reports from every simulated host, full first and then deltas,
//! and the collector must then list those hosts. No timing is asserted
//! (benchmarks live in BENCHMARKS.md).

use std::process::Command;

use driftwatch_tests::*;

#[test]
fn loadgen_delivers_full_then_delta_reports_from_every_host() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let data = tmp.path().join("data");
    let c = CollectorProc::start(&pki, &data, None);
    let pid = c.child.id().to_string();
    let out = run_ok(
        Command::new(bin("driftwatch-loadgen"))
            .args(["--collector", &c.url, "--ca"])
            .arg(pki.ca())
            .arg("--pki-dir")
            .arg(&pki.dir)
            .args(["--agents", "5", "--duration", "2s", "--change-rate", "0.5"])
            .args(["--collector-pid", &pid, "--json", "--data-dir"])
            .arg(&data),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v["connect_and_full"];
    let steady = &v["steady"];
    assert_eq!(first["reports"], 5, "{v:#}");
    assert_eq!(first["errors"], 0, "{v:#}");
    assert!(steady["reports"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(steady["errors"], 0, "{v:#}");
    assert!(
        steady["wire_bytes_per_report"].as_f64().unwrap()
            < first["wire_bytes_per_report"].as_f64().unwrap(),
        "deltas are smaller than full snapshots: {v:#}"
    );
    assert!(
        v["collector_rss_after_bytes"].as_u64().unwrap() > 0,
        "{v:#}"
    );
    assert!(steady["collector_cpu_ms_per_report"].is_number(), "{v:#}");

    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    let text = hosts.to_string();
    for i in 0..5 {
        assert!(text.contains(&format!("loadgen-{i:06}")), "{text}");
    }
}
