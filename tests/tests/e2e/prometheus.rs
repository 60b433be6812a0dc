//! deploy/prometheus and deploy/grafana against the real things: promtool
//! checks the alert rules and runs their unit tests; promtool parses every
//! dashboard query (as recording rules in a temp file); and every metric
//! the rules, their tests and the dashboard name is one a running collector
//! or agent exports, scraped here rather than listed by hand.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_tests::prom::{http_get, parse};
use driftwatch_tests::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// promtool from PATH (Debian's prometheus package, scripts/ci-deps.sh).
fn promtool(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: promtool is missing and CI=true: run scripts/ci-deps.sh"
        );
        eprintln!(
            "{test}: skipped, no promtool (scripts/ci-deps.sh installs it; CI=true makes this fail)"
        );
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = promtool("alert_rules") else {
        return;
    };
    let dir = repo().join("deploy/prometheus");
    let checked = run(Command::new(&promtool)
        .args(["check", "rules", "driftwatch.rules.yml"])
        .current_dir(&dir));
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = run(Command::new(&promtool)
        .args(["test", "rules", "driftwatch.rules.test.yml"])
        .current_dir(&dir));
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `driftwatch_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("driftwatch_") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if boundary {
            out.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

fn dashboard_exprs() -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
                if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                    out.push((title.to_string(), e.to_string()));
                }
                for x in m.values() {
                    walk(x, title, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, title, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(repo().join("deploy/grafana/driftwatch.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    walk(&d, "", &mut out);
    out
}

/// Names the families in a scrape stand for in queries (a histogram's
/// series carry suffixes).
fn exported(body: &str, into: &mut BTreeSet<String>) {
    let e = parse(body).unwrap_or_else(|err| panic!("{err}\n{body}"));
    for (name, kind) in &e.types {
        into.insert(name.clone());
        if kind == "histogram" {
            for s in ["_bucket", "_sum", "_count"] {
                into.insert(format!("{name}{s}"));
            }
        }
    }
}

fn scrape_when_up(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _, body)) = http_get(addr, "/metrics") {
            return body;
        }
        assert!(Instant::now() < deadline, "no /metrics on {addr}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let cm = format!("127.0.0.1:{}", free_port());
    let c = CollectorProc::start_with(
        &pki,
        &tmp.path().join("data"),
        None,
        &["--metrics-listen", &cm],
    );
    let (cert, key) = pki.issue_host("app-01", &tmp.path().join("app-01"));
    let am = format!("127.0.0.1:{}", free_port());
    let mut agent = agent(&[
        "run",
        "--collector",
        &c.url,
        "--ca",
        pki.ca().to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--state-dir",
        tmp.path().join("state").to_str().unwrap(),
        "--section",
        "host",
        "--metrics-listen",
        &am,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut names = BTreeSet::new();
    exported(&scrape_when_up(&cm), &mut names);
    exported(&scrape_when_up(&am), &mut names);
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        names.contains("driftwatch_collector_raid_arrays"),
        "{names:?}"
    );
    assert!(
        names.contains("driftwatch_agent_spool_dropped_total"),
        "{names:?}"
    );

    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 15, "{exprs:?}");
    let mut used = BTreeSet::new();
    for (title, e) in &exprs {
        let n = metric_names(e);
        assert!(
            !n.is_empty(),
            "panel {title:?}: {e} queries no driftwatch metric"
        );
        used.extend(n);
    }
    for file in ["driftwatch.rules.yml", "driftwatch.rules.test.yml"] {
        let text = std::fs::read_to_string(repo().join("deploy/prometheus").join(file)).unwrap();
        let n = metric_names(&text);
        assert!(n.len() >= 6, "{file}: {n:?}");
        used.extend(n);
    }
    let missing: Vec<&String> = used.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\nexported: {names:?}"
    );

    // The queries parse: promtool checks them as recording rules (JSON is
    // YAML), Grafana's $__rate_interval replaced by a range.
    let Some(promtool) = promtool("dashboard_queries") else {
        return;
    };
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| {
            serde_json::json!({
                "record": format!("dashboard:query_{i}"),
                "expr": e.replace("$__rate_interval", "5m"),
            })
        })
        .collect();
    let file = tmp.path().join("dashboard.rules.yml");
    std::fs::write(
        &file,
        serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let checked = run(Command::new(promtool).arg("check").arg("rules").arg(&file));
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{checked}"
    );
}
