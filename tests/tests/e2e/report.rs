//! The fleet report, end to end: agents on fake roots with real drift (a
//! key on one web host only, an old openssl, a degraded md array, a key on
//! every host, a hostname that is a script), the real collector with a
//! policy, `driftwatch report --html`, and Debian's chromium as the oracle:
//! the page renders, its counts are `drift --json`'s, a host's detail opens
//! from its link, the hostile hostname stays text. The screenshot is kept
//! under the target dir (path printed) for a person to look at.
//! `hosts`/`drift --format csv` are checked against their `--json` here too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use driftwatch_tests::*;
use serde_json::Value;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6ItKlKwmzVjUEzBX7yzEPoPhUPdYHbZ5uQrBYYoUuR ops@example";

/// A script that would mark the page if a browser ran it.
const HOSTILE: &str = "<script>document.documentElement.setAttribute('data-pwned','1')</script>";

struct Fleet {
    tmp: tempfile::TempDir,
    pki: Pki,
    c: CollectorProc,
}

impl Fleet {
    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn url(&self) -> &str {
        &self.c.url
    }

    /// One host: its fake root, certificate and one report.
    fn host(&self, id: &str, hostname: &str, group: &str, tweak: impl FnOnce(&Path)) {
        let r = self.root().join("roots").join(id);
        fake_root(&r, hostname, &format!("mid-{id}"), &format!("uuid-{id}"));
        write_under(&r, "root/.ssh/authorized_keys", format!("{KEY_A}\n"));
        write_under(
            &r,
            "var/lib/dpkg/status",
            dpkg_with_openssl("3.0.11-1~deb12u2"),
        );
        tweak(&r);
        let certs = self.root().join("certs").join(id);
        self.pki.issue_host(id, &certs);
        let mut args = vec![
            "--root".to_string(),
            r.to_string_lossy().into(),
            "--label".into(),
            format!("group={group}"),
        ];
        for s in ["host", "ssh_keys", "packages", "raid"] {
            args.extend(["--section".to_string(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = agent_once(
            self.url(),
            &self.pki.ca(),
            &certs.join("agent.pem"),
            &certs.join("agent-key.pem"),
            &self.root().join("state").join(id),
            &args,
        );
        assert!(out.status.success(), "{id}: {}", stderr_of(&out));
    }

    fn out(&self, args: &[&str]) -> Output {
        cli(&self.pki, self.url()).args(args).output().unwrap()
    }
}

/// Headless chromium on a local file: no network, a throwaway profile.
fn chromium(profile: &Path, args: &[&str], url: &str) -> Output {
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .env("HOME", profile)
        .output()
        .expect("running chromium (Debian's package; scripts/ci-deps.sh installs it)");
    assert!(
        out.status.success(),
        "chromium {args:?} {url} failed ({}): {}",
        out.status,
        stderr_of(&out)
    );
    out
}

/// The number in `<b data-count="NAME">N</b>` of the rendered DOM.
fn dom_count(dom: &str, name: &str) -> u64 {
    let key = format!("data-count=\"{name}\">");
    let at = dom.find(&key).unwrap_or_else(|| panic!("{key} in the DOM")) + key.len();
    dom[at..]
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// The part of the DOM between `<section id="ID"` and its `</section>`.
fn dom_section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("section {id} in the DOM"));
    let len = dom[start..].find("</section>").unwrap();
    &dom[start..start + len]
}

fn csv_rows(text: &[u8]) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(text)
        .records()
        .map(|r| r.expect("valid CSV"))
        .collect()
}

fn output_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_report_renders_in_chromium_with_the_counts_drift_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[packages]\nminimum = { openssl = \"3.0.11-1~deb12u2\" }\n[raid]\nrequire_healthy = true\n",
    )
    .unwrap();
    let c = CollectorProc::start_with(
        &pki,
        &tmp.path().join("data"),
        None,
        &["--policy", policy.to_str().unwrap()],
    );
    let f = Fleet { tmp, pki, c };

    let evil_dir = f.root().join("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    let (evil_pub, _) = ssh_keygen(&evil_dir, "id", "ed25519", "mallory@laptop");
    let mdstat = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/mdstat/pymdstat-raid5-degraded-4of3-no-rebuild.txt"),
    )
    .unwrap();
    f.host("w1", "web-1", "web", |r| {
        write_under(
            r,
            "root/.ssh/authorized_keys",
            format!("{KEY_A}\n{evil_pub}\n"),
        )
    });
    f.host("w2", "web-2", "web", |_| {});
    f.host("w3", HOSTILE, "web", |_| {});
    f.host("d1", "db-1", "db", |r| {
        write_under(r, "var/lib/dpkg/status", dpkg_with_openssl("3.0.9-1"))
    });
    f.host("d2", "db-2", "db", |r| {
        write_under(r, "proc/mdstat", &mdstat)
    });
    f.host("d3", "db-3", "db", |_| {});

    let html = output_dir().join("report.html");
    let _ = std::fs::remove_file(&html);
    let said = run_ok(cli(&f.pki, f.url()).args(["report", "--html"]).arg(&html));
    let said = String::from_utf8_lossy(&said.stdout).into_owned();
    assert!(said.contains("6 hosts"), "{said}");

    // The oracle: what `drift --json` says is open now.
    let drift = cli_json(&f.pki, f.url(), &["drift"]);
    let open: Vec<&Value> = drift["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["resolved_ms"].as_i64().unwrap_or(0) == 0)
        .collect();
    let by = |sev: &str| open.iter().filter(|x| x["severity"] == sev).count() as u64;
    let kinds: Vec<(&str, &str)> = open
        .iter()
        .map(|x| {
            (
                x["host_id"].as_str().unwrap(),
                x["section"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [("w1", "ssh_keys"), ("d1", "packages"), ("d2", "raid")] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }

    // Rendered by a real browser, asked for w1's detail by its link.
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#host-w1", html.display());
    let dom = chromium(profile.path(), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    std::fs::write(output_dir().join("report.dom.html"), &dom).unwrap();
    assert!(
        dom.contains("<title>driftwatch fleet report</title>"),
        "{dom}"
    );
    assert_eq!(dom_count(&dom, "hosts"), 6);
    assert_eq!(dom_count(&dom, "open-findings"), open.len() as u64);
    for sev in ["info", "low", "medium", "high", "critical"] {
        assert_eq!(
            dom_count(&dom, &format!("severity-{sev}")),
            by(sev),
            "{sev}"
        );
    }
    let listed = dom_section(&dom, "findings");
    assert_eq!(
        listed.matches("<tr class=\"finding\"").count(),
        open.len(),
        "{listed}"
    );
    // The grid's cells add up to the same findings, per host too.
    let grid = dom_section(&dom, "grid");
    let cells: u64 = grid
        .split("data-open=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(cells, open.len() as u64);
    for g in ["web", "db"] {
        assert!(grid.contains(&format!("data-group=\"{g}\"")), "{g}");
    }
    // The key on every host, and d2's degraded array.
    let keys = dom_section(&dom, "keys");
    assert!(
        keys.contains("data-hosts=\"6\"") && keys.contains("ops@example"),
        "{keys}"
    );
    let raid = dom_section(&dom, "raid");
    assert!(
        raid.contains("data-verdict=\"degraded\"") && raid.contains("[UUU_]"),
        "{raid}"
    );
    // The page's script opened the detail the address names, only that one.
    let details = dom_section(&dom, "hosts");
    assert!(
        details.contains("<details class=\"host\" id=\"host-w1\" open=\"\">"),
        "{details}"
    );
    assert_eq!(details.matches("open=\"\"").count(), 1, "{details}");
    // The hostile hostname is text: its script did not run.
    assert!(
        !dom.contains("data-pwned=\"1\""),
        "the hostname's script ran"
    );
    assert!(
        dom.contains("&lt;script&gt;document.documentElement.setAttribute"),
        "the hostname is shown"
    );
    assert_eq!(dom.matches("<script").count(), 1, "only the page's own");
    for external in ["http:", "https:", "src=\"", "url("] {
        assert!(!dom.contains(external), "{external} in the DOM");
    }

    // A screenshot for people: a real PNG of a page that has content.
    let png = output_dir().join("report.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,1600",
        ],
        &format!("file://{}", html.display()),
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(bytes.len() > 20_000, "{} bytes: a blank page?", bytes.len());
    eprintln!("report screenshot: {}", png.display());

    // `report --json` is the same data.
    let j = cli_json(
        &f.pki,
        f.url(),
        &["report", "--html", html.to_str().unwrap()],
    );
    assert_eq!(j["findings"].as_array().unwrap().len(), open.len());
    assert_eq!(j["hosts"], 6);

    // CSV: the same findings and hosts as --json, whole and readable back.
    let out = f.out(&["drift", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = csv_rows(&out.stdout);
    assert_eq!(rows.len(), open.len());
    let mut from_csv: Vec<String> = rows.iter().map(|r| r[11].to_string()).collect();
    let mut from_json: Vec<String> = open
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    from_csv.sort();
    from_json.sort();
    assert_eq!(from_csv, from_json);
    let out = f.out(&["hosts", "--format", "CSV"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = csv_rows(&out.stdout);
    assert_eq!(rows.len(), 6);
    let w3 = rows.iter().find(|r| &r[0] == "w3").expect("w3 listed");
    assert_eq!((&w3[1], &w3[3]), (HOSTILE, "web"));
    let hosts_json = cli_json(&f.pki, f.url(), &["hosts", "--format", "json"]);
    assert_eq!(hosts_json["hosts"].as_array().unwrap().len(), 6);
    // --json keeps working, and two different outputs are bad usage.
    let out = f.out(&["drift", "--json", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}
