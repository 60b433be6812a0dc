//! What a monitored host reports is shown on an admin's terminal: a user on
//! that host who names a process with control sequences (a new window
//! title, a screen clear, cursor moves that erase the lines above) must not
//! reach the terminal. The real agent reports a real process whose command
//! line carries them; the real CLI must print them as visible escapes.

use std::process::{Command, Stdio};

use driftwatch_tests::*;

const HOSTILE: &str = "evil\x1b]0;owned\x07\x1b[2J\x1b[1A\x1b[2K\u{9b}31m";

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_escape_laden_process_name_renders_escaped() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    // `sh -c CMD NAME`: NAME becomes $0, so it stands in the command line.
    let child = Child(
        Command::new("sh")
            .args(["-c", "sleep 120", HOSTILE])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    wait_for(10, "the shell's command line", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|b| b.windows(4).any(|w| w == b"evil"))
    });
    let (cert, key) = pki.issue_host("term-01", &d.path().join("agent"));
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &d.path().join("state"),
        &["--section", "processes"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));

    let show =
        run_ok(cli(&pki, &c.url).args(["host", "show", "term-01", "--section", "processes"]));
    let text = String::from_utf8(show.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&pid.to_string()) && l.contains("evil"))
        .unwrap_or_else(|| panic!("no row for pid {pid}:\n{text}"));
    assert!(
        line.contains("evil\\e]0;owned\\x07\\e[2J\\e[1A\\e[2K\\x9b31m"),
        "{line}"
    );
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the terminal:\n{text:?}"
    );

    // JSON keeps the exact value (escaped the JSON way) for scripts.
    let json = run_ok(cli(&pki, &c.url).args(["--json", "host", "show", "term-01"]));
    let raw = String::from_utf8(json.stdout).unwrap();
    assert!(!raw.chars().any(|c| c.is_control() && c != '\n'), "{raw:?}");
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let procs = processes_in(&v);
    assert!(
        procs.iter().any(|p| p["cmdline"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == HOSTILE))),
        "the exact name is kept in JSON"
    );
}
