//! Answers an operator acts on, end to end with the real binaries: every
//! key of a leaver's export swept, drift naming clones by id, a host
//! against its own baseline, diff points that exist, bad values refused as
//! bad usage, host revoke/forget, and a pipe closed early.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use driftwatch_tests::*;
use serde_json::Value;

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A collector and a few hosts on fake roots reporting with `run --once`.
struct Fleet {
    _tmp: tempfile::TempDir,
    t: PathBuf,
    pki: Pki,
    c: CollectorProc,
}

impl Fleet {
    fn new(extra: &[&str]) -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().to_path_buf();
        let pki = Pki::init(&t.join("pki"));
        let c = CollectorProc::start_with(&pki, &t.join("data"), None, extra);
        Fleet {
            _tmp: tmp,
            t,
            pki,
            c,
        }
    }

    fn root(&self, id: &str) -> PathBuf {
        self.t.join("roots").join(id)
    }

    fn certs(&self, id: &str) -> (PathBuf, PathBuf) {
        let dir = self.t.join("certs").join(id);
        if !dir.join("agent.pem").exists() {
            self.pki.issue_host(id, &dir);
        }
        (dir.join("agent.pem"), dir.join("agent-key.pem"))
    }

    fn report(&self, id: &str, extra: &[&str]) {
        let (cert, key) = self.certs(id);
        let root = self.root(id).to_string_lossy().into_owned();
        let mut args = vec!["--root", root.as_str()];
        args.extend_from_slice(extra);
        let out = agent_once(
            &self.c.url,
            &self.pki.ca(),
            &cert,
            &key,
            &self.t.join("state").join(id),
            &args,
        );
        assert!(out.status.success(), "{id}: {}", stderr_of(&out));
    }

    fn cli(&self) -> Command {
        cli(&self.pki, &self.c.url)
    }

    fn json(&self, args: &[&str]) -> Value {
        cli_json(&self.pki, &self.c.url, args)
    }
}

const SECTIONS_NO_PROCS: &[&str] = &[
    "--section",
    "host",
    "--section",
    "ssh_keys",
    "--section",
    "log_config",
    "--section",
    "packages",
];

/// A leaver's export with three keys (ed25519, ecdsa with options, rsa;
/// a comment and a blank line between) is swept off two hosts: every key
/// is removed wherever it was, the others stay, and the answer lists each
/// key with where it went. Before, only the file's first key was read.
#[test]
fn a_three_key_export_is_swept_off_two_hosts() {
    let f = Fleet::new(&[]);
    let t = &f.t;
    let (k1, fp1) = ssh_keygen(t, "l1", "ed25519", "leaver@laptop");
    let (k2, fp2) = ssh_keygen(t, "l2", "ecdsa", "leaver@desktop");
    let (k3, fp3) = ssh_keygen(t, "l3", "rsa", "leaver@old");
    let (keep, keep_fp) = ssh_keygen(t, "keep", "ed25519", "ops@corp");
    let export = t.join("leaver.keys");
    std::fs::write(
        &export,
        format!("# exported keys\n{k1}\n\nno-pty,from=\"10.0.0.0/8\" {k2}\n{k3}\n"),
    )
    .unwrap();
    let passwd = "root:x:0:0:root:/root:/bin/bash\nal:x:1000:1000::/home/al:/bin/sh\n";
    // h1: keys 1 and 2 among one that stays; h2: keys 3 and 1 (twice).
    let files = [
        (
            "h1",
            format!("{keep}\n{k1}\ncert-authority,no-agent-forwarding {k2}\n"),
        ),
        ("h2", format!("{k3}\n{keep}\n{k1}\n{k1}\n")),
    ];
    let mut agents = Vec::new();
    for (id, body) in &files {
        let r = f.root(id);
        fake_root(&r, id, &format!("m-{id}"), &format!("u-{id}"));
        write_under(&r, "etc/passwd", passwd);
        write_under(&r, "home/al/.ssh/authorized_keys", body);
        if *id == "h2" {
            // sshd on h2 trusts the leaver's third key as a user CA and
            // asks a program for more keys: neither is a file a sweep edits.
            write_under(
                &r,
                "etc/ssh/sshd_config",
                "TrustedUserCAKeys /etc/ssh/user_ca.pub\nAuthorizedKeysCommand /usr/local/bin/ldap-keys %u\nAuthorizedKeysCommandUser nobody\n",
            );
            write_under(&r, "etc/ssh/user_ca.pub", format!("{k3}\n"));
        }
        let (cert, key) = f.certs(id);
        std::fs::create_dir_all(t.join("state")).unwrap();
        agents.push(AgentProc::start(
            &f.c.url,
            &f.pki.ca(),
            (&cert, &key),
            &t.join("state").join(id),
            &r,
            "2s",
        ));
    }
    wait_for(30, "two connected hosts with keys", || {
        let v = f.json(&["keys", "find", "--pubkey", export.to_str().unwrap()]);
        let hosts = f.json(&["hosts"]);
        let connected = hosts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["connected"] == true)
            .count();
        (v["locations"].as_array().unwrap().len() == 6 && connected == 2).then_some(())
    });
    let find = f.json(&["keys", "find", "--pubkey", export.to_str().unwrap()]);
    let kinds: Vec<(&str, &str)> = find["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["kind"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("/etc/ssh/user_ca.pub", "trusted_user_ca_keys")),
        "{find:#}"
    );
    assert_eq!(
        kinds.iter().filter(|k| k.1 == "cert_authority").count(),
        1,
        "{find:#}"
    );
    assert_eq!(find["command_hosts"][0]["host_id"], "h2", "{find:#}");
    assert_eq!(find["command_hosts"][0]["command_user"], "nobody");
    // What a sweep edits: the lines in users' key files.
    let mut found: Vec<(String, u64, String)> = find["locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] != "trusted_user_ca_keys")
        .map(|l| {
            (
                l["host_id"].as_str().unwrap().into(),
                l["line"].as_u64().unwrap(),
                l["fingerprint"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    let at = |h: &str, l: u64, fp: &str| (h.to_string(), l, fp.to_string());
    let mut want = vec![
        at("h1", 2, &fp1),
        at("h1", 3, &fp2),
        at("h2", 1, &fp3),
        at("h2", 3, &fp1),
        at("h2", 4, &fp1),
    ];
    want.sort();
    assert_eq!(found, want, "{find:#}");
    // The same from standard input, and the table names every key.
    let mut child = f
        .cli()
        .args(["keys", "find", "--pubkey", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        &std::fs::read(&export).unwrap(),
    )
    .unwrap();
    drop(child.stdin.take());
    let table = child.wait_with_output().unwrap();
    assert!(table.status.success(), "{}", stderr_of(&table));
    let text = stdout_of(&table);
    for (n, fp) in [(1, &fp1), (2, &fp2), (3, &fp3)] {
        assert!(text.contains(&format!("key {n} of 3: {fp}")), "{text}");
    }
    assert!(text.contains("3 of 3 keys found"), "{text}");
    assert!(text.contains("TrustedUserCAKeys: sshd trusts"), "{text}");
    assert!(text.contains("AuthorizedKeysCommand"), "{text}");

    let sweep = f
        .cli()
        .args(["keys", "sweep", "--pubkey"])
        .arg(&export)
        .args(["--remove", "--yes", "--timeout", "30s", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&sweep), Some(0), "{}", stderr_of(&sweep));
    let job: Value = serde_json::from_slice(&sweep.stdout).unwrap();
    let mut removed: Vec<(String, u64, String)> = Vec::new();
    for h in job["hosts"].as_array().unwrap() {
        assert_eq!(h["status"], "done", "{job:#}");
        for file in h["files"].as_array().unwrap() {
            assert_eq!(file["status"], "removed", "{job:#}");
            let lines = file["lines"].as_array().unwrap();
            let fps = file["line_fingerprints"].as_array().unwrap();
            assert_eq!(lines.len(), fps.len(), "{job:#}");
            for (l, fp) in lines.iter().zip(fps) {
                removed.push((
                    h["host_id"].as_str().unwrap().into(),
                    l.as_u64().unwrap(),
                    fp.as_str().unwrap().into(),
                ));
            }
        }
    }
    removed.sort();
    assert_eq!(removed, found, "every line found is removed: {job:#}");
    assert_eq!(job["lines_removed"], 5);
    for (id, _) in &files {
        let left =
            std::fs::read_to_string(f.root(id).join("home/al/.ssh/authorized_keys")).unwrap();
        assert_eq!(left, format!("{keep}\n"), "{id}");
        // ssh-keygen agrees: the one key left is the one that stays.
        let out = run_ok(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(f.root(id).join("home/al/.ssh/authorized_keys")),
        );
        assert!(stdout_of(&out).contains(&keep_fp), "{}", stdout_of(&out));
    }
    // The human summary says, per key, what went where.
    let status = f
        .cli()
        .args(["keys", "sweep-status", job["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = stdout_of(&status);
    assert!(text.contains("per key:"), "{text}");
    assert!(
        text.contains(&format!("{fp1}: removed h1 /home/al/.ssh/authorized_keys:2; h2 /home/al/.ssh/authorized_keys:3,4")),
        "{text}"
    );
    assert!(text.contains("5 lines removed"), "{text}");
    // The sweep left sshd's CA file alone, as find said it would.
    assert_eq!(
        std::fs::read_to_string(f.root("h2").join("etc/ssh/user_ca.pub")).unwrap(),
        format!("{k3}\n")
    );
    drop(agents);
}

/// A malformed line in the export is bad usage naming the line; nothing
/// is asked of the collector.
#[test]
fn a_malformed_export_line_is_named_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pki = Pki::init(&t.join("pki"));
    let (k1, _) = ssh_keygen(t, "l1", "ed25519", "a@b");
    let export = t.join("bad.keys");
    std::fs::write(&export, format!("{k1}\n\nssh-ed25519 AAAA-not-a-key c@d\n")).unwrap();
    let out = cli(&pki, "https://127.0.0.1:1")
        .args(["keys", "find", "--pubkey"])
        .arg(&export)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("bad.keys line 3"),
        "{}",
        stderr_of(&out)
    );
    // Not a key file at all: refused after a bounded read.
    let out = cli(&pki, "https://127.0.0.1:1")
        .args(["keys", "find", "--pubkey", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("/dev/zero is larger than"), "{err}");
}

/// Two clones that kept one hostname are two findings rows, each named by
/// its host id.
#[test]
fn drift_on_two_clones_with_one_hostname_names_both_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[packages]\nminimum = { openssl = \"3.0.11-1~deb12u2\" }\n",
    )
    .unwrap();
    let f = Fleet::new(&["--policy", policy.to_str().unwrap()]);
    for id in ["clone-a1", "clone-b2"] {
        let r = f.root(id);
        fake_root(&r, "web-01", &format!("m-{id}"), &format!("u-{id}"));
        write_under(
            &r,
            "var/lib/dpkg/status",
            "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.2-1\n\n",
        );
        f.report(id, SECTIONS_NO_PROCS);
    }
    let out = run_ok(f.cli().arg("drift"));
    let text = stdout_of(&out);
    let header = text.lines().next().unwrap();
    assert!(
        header.find("HOST ID").unwrap() < header.find("HOSTNAME").unwrap(),
        "{text}"
    );
    for id in ["clone-a1", "clone-b2"] {
        assert!(
            text.lines()
                .any(|l| l.contains(id) && l.contains("openssl")),
            "{id} in\n{text}"
        );
    }
}

/// Right after `baseline set NAME --from-host H`, H against NAME shows no
/// difference in any section, processes included (several processes of
/// one executable are running); and diff points that do not exist are
/// errors, never "no differences".
#[test]
fn a_baseline_of_self_is_empty_and_diff_points_must_exist() {
    let f = Fleet::new(&[]);
    let id = "self-1";
    let r = f.root(id);
    fake_root(&r, id, "m-self", "u-self");
    write_under(
        &r,
        "root/.ssh/authorized_keys",
        format!("{}\n", ssh_keygen(&f.t, "k", "ed25519", "ops@x").0),
    );
    write_under(
        &r,
        "etc/logrotate.conf",
        "weekly\nrotate 4\n/var/log/app.log {\n daily\n}\n",
    );
    write_under(
        &r,
        "var/lib/dpkg/status",
        "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2\n\n",
    );
    let mut sleepers: Vec<_> = (0..3)
        .map(|_| Command::new("sleep").arg("60").spawn().unwrap())
        .collect();
    // Every section the agent has (raid and containers say what they can).
    f.report(id, &[]);
    f.report(id, &[]);
    run_ok(f.cli().args(["baseline", "set", "me", "--from-host", id]));
    let d = f.json(&["diff", id, "--baseline", "me"]);
    assert_eq!(d["sections"], serde_json::json!([]), "{d:#}");
    let snap = f.json(&["host", "show", id]);
    let names: Vec<&str> = snap["snapshot"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for s in [
        "host",
        "processes",
        "ssh_keys",
        "log_config",
        "raid",
        "packages",
        "containers",
        "listening",
    ] {
        assert!(names.contains(&s), "{s} in {names:?}");
    }
    let sleeps = processes_in(&snap)
        .iter()
        .filter(|p| p["cmdline"] == serde_json::json!(["sleep", "60"]))
        .count();
    assert!(sleeps >= 3, "the sleepers are in the snapshot ({sleeps})");
    // The headers name what is compared: A is ---, B is +++.
    let two = run_ok(f.cli().args(["diff", id, id]));
    let text = stdout_of(&two);
    assert!(text.starts_with(&format!("--- {id} ({id}) seq ")), "{text}");
    assert!(text.contains("no differences"), "{text}");
    // Points: a seq never reported, a time before the first snapshot.
    for (from, want) in [("999", "seq 999"), ("2001-01-01T00:00:00Z", "at or before")] {
        let out = f.cli().args(["diff", id, "--from", from]).output().unwrap();
        assert_eq!(code(&out), Some(3), "{from}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(want), "{}", stderr_of(&out));
        assert!(!stdout_of(&out).contains("no differences"));
    }
    let ok = run_ok(f.cli().args(["diff", id, "--from", "1", "--to", "0s"]));
    assert!(
        stdout_of(&ok).starts_with(&format!("--- {id} ({id}) seq 1 (")),
        "{}",
        stdout_of(&ok)
    );
    // history --section / --limit.
    let h = f.json(&["history", id, "--section", "packages"]);
    let entries = h["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{h:#}");
    assert!(
        entries[0]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["section"] == "packages"),
        "{h:#}"
    );
    let h = f.json(&["history", id, "--limit", "1"]);
    assert_eq!(h["entries"].as_array().unwrap().len(), 1, "{h:#}");
    for s in &mut sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
}

/// Every bad value is bad usage (exit 2) naming its flag, before anything
/// connects; word values are case-insensitive and synonyms are accepted.
#[test]
fn bad_values_exit_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let fp = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8";
    let cases: &[(&[&str], &str)] = &[
        (&["drift", "--min-severity", "severe"], "--min-severity"),
        (&["drift", "--fail-on", "bogus"], "--fail-on"),
        (&["host", "show", "h", "--sort", "size"], "--sort"),
        (&["host", "show", "h", "--section", "keys"], "--section"),
        (
            &["tokens", "create", "--group", "g", "--ttl", "forever"],
            "--ttl",
        ),
        (
            &["tokens", "create", "--group", "g", "--ttl", "400d"],
            "--ttl",
        ),
        (
            &["keys", "sweep", "--fingerprint", fp, "--timeout", "soon"],
            "--timeout",
        ),
        (
            &["keys", "sweep", "--fingerprint", fp, "--expires", "never"],
            "--expires",
        ),
        (&["history", "h", "--since", "yesterday"], "--since"),
        (&["history", "h", "--section", "nope"], "--section"),
        (&["diff", "h", "--from", "last-week"], "--from"),
        (&["diff", "h", "--to", "3x"], "--to"),
        (&["hosts", "--state", "dead"], "--state"),
        (&["hosts", "--label", "web"], "--label"),
    ];
    for (args, flag) in cases {
        let out = cli(&pki, "https://127.0.0.1:1")
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(flag),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    // Accepted (the command then fails to connect: exit 3, not 2).
    for args in [
        &["drift", "--min-severity", "HIGH"][..],
        &["drift", "--fail-on", "Critical"],
        &["host", "show", "h", "--sort", "memory"],
        &["host", "show", "h", "--section", "SSH_KEYS"],
        &["hosts", "--state", "Gone"],
        &["diff", "h", "--from", "2h", "--to", "2026-11-26T04:00:00Z"],
    ] {
        let out = cli(&pki, "https://127.0.0.1:1")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&out), Some(3), "{args:?}: {}", stderr_of(&out));
    }
}

/// revoke asks (scripts say --yes), forget removes a gone or revoked
/// host's data and refuses a live one, the list filters by label and state,
/// and a CLI whose --ca is another PKI's says it is a CA mismatch.
#[test]
fn host_lifecycle_and_a_closed_pipe() {
    let f = Fleet::new(&[]);
    for (id, group) in [("live-1", "web"), ("live-2", "db")] {
        fake_root(&f.root(id), id, &format!("m-{id}"), &format!("u-{id}"));
        f.report(
            id,
            &["--section", "host", "--label", &format!("group={group}")],
        );
    }
    let ids = |args: &[&str]| -> Vec<String> {
        f.json(args)["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["host_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["hosts", "--label", "group=db"]), ["live-2"]);
    assert_eq!(ids(&["hosts", "--state", "fresh"]).len(), 2);

    let out = f
        .cli()
        .args(["hosts", "revoke", "live-1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--yes"), "{}", stderr_of(&out));
    let out = f
        .cli()
        .args(["hosts", "forget", "live-1", "--yes"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(3), "a fresh host is refused");
    assert!(
        stderr_of(&out).contains("revoke it first"),
        "{}",
        stderr_of(&out)
    );
    run_ok(f.cli().args(["hosts", "revoke", "live-1", "--yes"]));
    assert_eq!(ids(&["hosts", "--state", "revoked"]), ["live-1"]);
    let out = run_ok(f.cli().args(["hosts", "forget", "live-1", "--yes"]));
    assert!(
        stdout_of(&out).contains("stays refused"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(ids(&["hosts"]), ["live-2"]);
    // Forgotten, still refused.
    let (cert, key) = f.certs("live-1");
    let again = agent_once(
        &f.c.url,
        &f.pki.ca(),
        &cert,
        &key,
        &f.t.join("state").join("live-1"),
        &[
            "--root",
            f.root("live-1").to_str().unwrap(),
            "--section",
            "host",
        ],
    );
    assert!(!again.status.success());
    assert_eq!(ids(&["hosts"]), ["live-2"]);

    // A reader that stops early: no "Broken pipe", exit 0.
    let mut child = f
        .cli()
        .args(["host", "show", "live-2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");

    // Another PKI's CA: the collector's certificate is not from it.
    let other = Pki::init(&f.t.join("other-pki"));
    let out = f
        .cli()
        .env("DRIFTWATCH_CA", other.ca())
        .arg("hosts")
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(3));
    assert!(
        stderr_of(&out).contains("CA mismatch"),
        "{}",
        stderr_of(&out)
    );
}

/// A revoked agent stops asking: one ERROR saying so, then nothing for an
/// hour, however short its interval (before: a WARN every second, forever).
#[test]
fn a_revoked_agent_backs_off_and_logs_once() {
    let f = Fleet::new(&[]);
    let id = "gone-1";
    let r = f.root(id);
    fake_root(&r, id, "m-g", "u-g");
    let (cert, key) = f.certs(id);
    std::fs::create_dir_all(f.t.join("state")).unwrap();
    let agent = AgentProc::start(
        &f.c.url,
        &f.pki.ca(),
        (&cert, &key),
        &f.t.join("state").join(id),
        &r,
        "1s",
    );
    wait_for(20, "the agent's first report", || {
        f.json(&["hosts"])["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["host_id"] == id && h["connected"] == true)
            .then_some(())
    });
    run_ok(f.cli().args(["hosts", "revoke", id, "--yes"]));
    std::thread::sleep(std::time::Duration::from_secs(7));
    let log = agent.log_text();
    let refused = log.matches("the collector refuses this host").count();
    let warns = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("delivery failed"))
        .count();
    assert_eq!(refused, 1, "{log}");
    assert_eq!(warns, 0, "{log}");
    // The command stream, closed by the revocation, says so once too.
    assert_eq!(log.matches("retrying in an hour").count(), 1, "{log}");
}
