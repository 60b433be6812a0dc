//! The parser against `visudo -c -f FILE` (sudo's own check): every
//! sudoers fixture's verdict from the real visudo must be the parser's
//! (no errors exactly when visudo accepts), except where the table below
//! says why the agent deliberately differs; and generated variants of
//! real rules are judged the same way. visudo is a test dependency
//! (Debian's sudo, scripts/ci-deps.sh).

use std::path::Path;
use std::process::Command;

use super::expand::expand;
use super::{Entry, parse};
use crate::testutil::fixtures_dir;

fn visudo_accepts(file: &Path) -> (bool, String) {
    let out = Command::new("/usr/sbin/visudo")
        .arg("-c")
        .arg("-f")
        .arg(file)
        .output()
        .expect("visudo must be installed (scripts/ci-deps.sh installs sudo)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// Whether the agent finds the text valid: no syntax error and no alias
/// defined twice.
fn agent_accepts(text: &str) -> (bool, String) {
    let p = parse(text);
    let entries: Vec<(String, Entry)> = p.entries.into_iter().map(|e| ("f".into(), e)).collect();
    let x = expand(&entries);
    let errs = format!("{:?} {:?}", p.errors, x.errors);
    (p.errors.is_empty() && x.errors.is_empty(), errs)
}

/// (fixture, what visudo says, why the agent accepts it anyway).
const DIFFERS: &[(&str, &str, &str)] = &[(
    "sudo-regress-test26.sudoers",
    "unknown defaults entry",
    "Defaults names are not checked: the set differs between sudo versions \
     (cmddenial_message is newer than Debian 12's sudo 1.9.13), and a name \
     this sudo does not know changes no rule",
)];

#[test]
fn every_sudoers_fixture_has_visudos_verdict() {
    let mut n = (0, 0);
    for e in std::fs::read_dir(fixtures_dir().join("sudoers")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let (visudo_ok, said) = visudo_accepts(&p);
        let (agent_ok, errs) = agent_accepts(&text);
        match DIFFERS.iter().find(|d| d.0 == name) {
            Some((_, words, _)) => {
                assert!(
                    !visudo_ok && said.contains(words),
                    "{name}: visudo now says {said}"
                );
                assert!(agent_ok, "{name}: {errs}");
            }
            None => assert_eq!(
                agent_ok, visudo_ok,
                "{name}: visudo says {said}; agent {errs}"
            ),
        }
        if visudo_ok {
            n.0 += 1;
        } else {
            n.1 += 1;
        }
    }
    // A corpus that shrank to nothing proves nothing.
    assert!(n.0 >= 15 && n.1 >= 10, "accepted/refused fixtures: {n:?}");
}

/// Variants of real rules, each judged by visudo and by the parser.
#[test]
fn generated_variants_have_visudos_verdict() {
    let users = [
        "alice",
        "%sudo",
        "#1001",
        "\"quoted user\"",
        "ALL, !bob",
        "OPS",
        "%",
        "al ice",
    ];
    let hosts = ["ALL", "web-1, web-2", "10.0.0.0/8", "WEB", ""];
    let runas = [
        "",
        "(ALL)",
        "(ALL:ALL)",
        "(root, www-data)",
        "(:adm)",
        "( )",
        "(ALL",
        "(root) (root)",
    ];
    let tags = [
        "",
        "NOPASSWD: ",
        "NOPASSWD: SETENV: ",
        "nopasswd: ",
        "TIMEOUT=5m ",
        "TIMEOUT=5x ",
        "CWD=/tmp ",
        "BOGUS=1 ",
    ];
    let cmnds = [
        "ALL",
        "/usr/bin/systemctl restart nginx",
        "/bin/ls, !/bin/rm",
        "CMDS",
        "sudoedit /etc/motd",
        "/usr/bin/less /var/log/*, /bin/kill -HUP 1",
        "ls",
        "^/usr/bin/(id|w)$",
        "^/usr/bin/id",
        "/bin/echo a\\,b",
        "/bin/echo a:b",
    ];
    let head = "User_Alias OPS = carol, dave\nHost_Alias WEB = web-3\nCmnd_Alias CMDS = /bin/true, /bin/false\n";
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(20);
    let (mut agree, mut refused) = (0, 0);
    for i in 0..120 {
        let line = format!(
            "{} {} = {}{}{}\nOPS WEB = CMDS\n",
            users[rng.usize(..users.len())],
            hosts[rng.usize(..hosts.len())],
            runas[rng.usize(..runas.len())],
            tags[rng.usize(..tags.len())],
            cmnds[rng.usize(..cmnds.len())],
        );
        let text = format!("{head}{line}");
        let f = dir.path().join(format!("v{i}"));
        std::fs::write(&f, &text).unwrap();
        let (visudo_ok, said) = visudo_accepts(&f);
        let (agent_ok, errs) = agent_accepts(&text);
        assert_eq!(
            agent_ok, visudo_ok,
            "{text:?}: visudo says {said}; agent {errs}"
        );
        agree += 1;
        refused += usize::from(!visudo_ok);
    }
    assert!(
        refused > 10 && agree - refused > 10,
        "{refused} of {agree} refused"
    );
}
