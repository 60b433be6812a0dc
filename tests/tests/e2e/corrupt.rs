//! A damaged sled data dir, made by a real collector and corrupted here,
//! stops `serve` and is reported by `check`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use driftwatch_tests::{CollectorProc, Pki, agent_once, bin, stderr_of};

fn collector(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin("driftwatch-collector"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn overwrite(file: &Path, at: u64, len: usize) {
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&vec![0xA5; len]).unwrap();
}

fn cut_to_half(file: &Path) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
}

fn middle(file: &Path) -> u64 {
    std::fs::metadata(file).unwrap().len() / 2
}

/// sled 0.34 opens a `db` whose first 4 KiB were overwritten as an empty
/// store without an error (`check` said "ok", `serve` started with no
/// hosts), and one with garbage in the middle or cut to half its length
/// keeping only the records before the damage. The collector refuses all
/// three: the first because not even the schema came back, the others
/// because sled gave back an older sync than the seal beside it records
/// as durable (ARCHITECTURE.md, "Storage").
#[test]
fn a_damaged_db_stops_serve_and_fails_check_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let data = d.path().join("data");
    let c = CollectorProc::start(&pki, &data, None);
    for h in ["a", "b", "c"] {
        let dir = d.path().join(h);
        let (cert, key) = pki.issue_host(h, &dir);
        let out = agent_once(
            &c.url,
            &pki.ca(),
            &cert,
            &key,
            &dir.join("state"),
            &["--section", "host", "--section", "packages"],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    assert!(c.stop());
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("header", |p| overwrite(&p.join("db"), 0, 4096)),
        ("middle", |p| {
            let db = p.join("db");
            overwrite(&db, middle(&db), 4096)
        }),
        ("cut", |p| cut_to_half(&p.join("db"))),
    ];
    let intact = d.path().join("intact");
    copy_dir(&data, &intact);
    let ok = collector(&["check", "--data-dir", intact.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr_of(&ok));
    assert!(stderr_of(&ok).contains("hosts 3"), "{}", stderr_of(&ok));
    for (name, damage) in cases {
        let p = d.path().join(name);
        copy_dir(&data, &p);
        damage(&p);
        let db = p.join("db").display().to_string();
        let chk = collector(&["check", "--data-dir", p.to_str().unwrap()]);
        let text = stderr_of(&chk);
        assert_eq!(chk.status.code(), Some(3), "{name}: {text}");
        assert!(
            text.contains(&format!("data file {db} is damaged")),
            "{name}: {text}"
        );
        assert!(
            text.contains("driftwatch-collector restore"),
            "{name}: {text}"
        );
        assert!(text.contains("check --data-dir"), "{name}: {text}");
        let serve = std::process::Command::new(bin("driftwatch-collector"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&p)
            .arg("--pki-dir")
            .arg(&pki.dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = stderr_of(&serve);
        if name != "header" {
            assert!(text.contains("seal"), "{name}: {text}");
        }
        assert!(
            !serve.status.success(),
            "{name}: serve started on a damaged db: {text}"
        );
        assert!(
            text.contains(&format!("data file {db} is damaged")),
            "{name}: {text}"
        );
    }
}

/// The seal never refuses a store that only lost what a kill -9 may lose:
/// a collector killed while agents report, restarted on the same dir.
#[test]
fn a_killed_collector_reopens_its_own_store() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let data = d.path().join("data");
    for round in 0..3 {
        let c = CollectorProc::start(&pki, &data, None);
        let dir = d.path().join(format!("h{round}"));
        let (cert, key) = pki.issue_host(&format!("h{round}"), &dir);
        let out = agent_once(
            &c.url,
            &pki.ca(),
            &cert,
            &key,
            &dir.join("state"),
            &["--section", "host"],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        drop(c); // SIGKILL, see CollectorProc
    }
    let chk = collector(&["check", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(chk.status.code(), Some(0), "{}", stderr_of(&chk));
    assert!(stderr_of(&chk).contains("hosts 3"), "{}", stderr_of(&chk));
}
