//! The host collectors from the outside: one fake host tree with traps,
//! read by the real agent binary through `--root`, then reported through
//! the collector and shown by the CLI. `ssh-keygen` is the fingerprint
//! oracle.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use driftwatch_tests::*;
use serde_json::Value;

fn fake_host(tmp: &Path) -> (std::path::PathBuf, Vec<(String, String)>) {
    let root = tmp.join("root");
    fake_root(&root, "fake-host", "m-1", "u-1");
    write_under(
        &root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/srv/alice:/bin/bash\n\
         bob:x:1001:1001::/home/bob:/bin/bash\neve:x:1002:1002::/home/eve:/bin/bash\n\
         svc:x:999:999::/var/lib/svc:/usr/sbin/nologin\nbroken-line\n",
    );
    write_under(
        &root,
        "etc/ssh/sshd_config",
        "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/keys/%u\nPermitRootLogin no\n",
    );
    let alice = ssh_keygen(tmp, "key-ed25519", "ed25519", "alice@laptop");
    let bob = ssh_keygen(tmp, "key-ecdsa", "ecdsa", "bob@desk");
    let svc = ssh_keygen(tmp, "key-rsa", "rsa", "deploy@ci");
    // Options with quoted commas and escaped quotes, CRLF, a comment.
    write_under(
        &root,
        "srv/alice/.ssh/authorized_keys",
        format!(
            "# alice\r\nfrom=\"10.0.0.0/8\",command=\"echo \\\"hi, there\\\"\" {}\r\n",
            alice.0
        ),
    );
    write_under(
        &root,
        "home/bob/.ssh/authorized_keys",
        format!("{}\nnot-a-key AAAA\n", bob.0),
    );
    std::fs::set_permissions(
        root.join("home/bob/.ssh/authorized_keys"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    // eve's .ssh is a link to a secret: reported, never read.
    write_under(&root, "etc/secret/authorized_keys", "SECRET-MATERIAL\n");
    std::fs::create_dir_all(root.join("home/eve")).unwrap();
    symlink("/etc/secret", root.join("home/eve/.ssh")).unwrap();
    // A central key file outside any home, by %u.
    write_under(&root, "etc/ssh/keys/svc", format!("{}\n", svc.0));
    // A 100 MB (sparse) authorized_keys and binary garbage in root's.
    std::fs::create_dir_all(root.join("var/lib/svc/.ssh")).unwrap();
    std::fs::File::create(root.join("var/lib/svc/.ssh/authorized_keys"))
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    write_under(
        &root,
        "root/.ssh/authorized_keys",
        b"\xff\xfe\x00garbage\x01\n".as_slice(),
    );

    write_under(
        &root,
        "etc/rsyslog.conf",
        "*.* @@logs.example.com:6514\n$IncludeConfig /etc/rsyslog.d/*.conf\n",
    );
    write_under(
        &root,
        "etc/rsyslog.d/50-fwd.conf",
        "action(type=\"omfwd\" target=\"10.1.1.1\" port=\"514\" protocol=\"udp\")\n",
    );
    write_under(
        &root,
        "etc/rsyslog.d/99-binary.conf",
        b"\xff\xfe garbage \x00\x01".as_slice(),
    );
    write_under(
        &root,
        "etc/logrotate.conf",
        "weekly\nrotate 4\ninclude /etc/logrotate.d\n",
    );
    write_under(
        &root,
        "etc/logrotate.d/app",
        "/var/log/app/*.log {\n  daily\n  rotate 7\n  compress\n}\n",
    );
    for f in [
        "var/log/app/web.log",
        "var/log/app/web.log.1",
        "var/log/app/web.log.2.gz",
        "var/log/orphan.log",
    ] {
        write_under(&root, f, "x\n");
    }
    let mdstat = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/mdstat/procfs-raid1-degraded-recovery-failed-spare.txt"),
    )
    .expect("the corpus in tests/fixtures");
    write_under(&root, "proc/mdstat", mdstat);
    write_under(
        &root,
        "var/lib/dpkg/status",
        "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\n\
         Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n",
    );
    (root, vec![alice, bob, svc])
}

fn body<'a>(snap: &'a Value, name: &str) -> &'a Value {
    let s = snap["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    assert_eq!(s["status"], "ok", "{name}: {s}");
    &s["body"][name]
}

#[test]
fn a_fake_host_read_through_root_reports_every_section_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, keys) = fake_host(tmp.path());
    let out = run_ok(agent(&["collect", "--json", "--root"]).arg(&root));
    let snap: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("SECRET-MATERIAL"),
        "a symlinked .ssh was followed"
    );

    let ssh = body(&snap, "ssh_keys");
    let files = ssh["files"].as_array().unwrap();
    let file = |user: &str, path: &str| {
        files
            .iter()
            .find(|f| f["user"] == user && f["path"] == path)
            .unwrap_or_else(|| panic!("{user} {path}: {files:?}"))
    };
    let a = file("alice", "/srv/alice/.ssh/authorized_keys");
    let k = &a["keys"][0];
    assert_eq!(
        (k["fingerprint"].as_str().unwrap(), k["line"].as_u64()),
        (keys[0].1.as_str(), Some(2))
    );
    assert_eq!(k["comment"], "alice@laptop");
    assert_eq!(k["options"][1]["name"], "command");
    assert_eq!(k["options"][1]["value"], "echo \"hi, there\"");
    let b = file("bob", "/home/bob/.ssh/authorized_keys");
    assert_eq!(b["keys"][0]["fingerprint"], keys[1].1.as_str());
    assert_eq!(b["malformed"][0]["line"], 2);
    assert!(
        b["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "file_world_writable"),
        "{b}"
    );
    let e = file("eve", "/home/eve/.ssh/authorized_keys");
    assert!(
        e["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "symlink_refused"),
        "{e}"
    );
    assert_eq!(
        file("svc", "/etc/ssh/keys/svc")["keys"][0]["fingerprint"],
        keys[2].1.as_str()
    );
    assert!(
        file("svc", "/var/lib/svc/.ssh/authorized_keys")["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "truncated")
    );
    assert!(
        file("root", "/root/.ssh/authorized_keys")["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "non_utf8")
    );

    let logs = body(&snap, "log_config");
    let fwd: Vec<(String, u64, String)> = logs["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["target"].as_str().unwrap().into(),
                f["port"].as_u64().unwrap(),
                f["protocol"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        fwd,
        vec![
            ("logs.example.com".into(), 6514, "tcp".into()),
            ("10.1.1.1".into(), 514, "udp".into())
        ]
    );
    assert_eq!(
        logs["unrotated"].as_array().unwrap().len(),
        1,
        "{}",
        logs["unrotated"]
    );
    assert_eq!(logs["unrotated"][0]["path"], "/var/log/orphan.log");
    assert_eq!(logs["rotation"][0]["matched"][0], "/var/log/app/web.log");
    let bin = logs["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/rsyslog.d/99-binary.conf")
        .unwrap();
    assert!(bin["error"].as_str().unwrap().contains("binary"), "{bin}");

    let raid = body(&snap, "raid");
    assert_eq!(raid["verdict"], "rebuilding");
    assert_eq!(raid["md_arrays"][0]["name"], "md6");

    let pkgs = body(&snap, "packages");
    assert_eq!(pkgs["installed_count"], 1);
    assert_eq!(pkgs["packages"][0]["name"], "bash");

    assert_eq!(body(&snap, "host")["hostname"], "fake-host");
}

#[test]
fn every_section_reaches_the_collector_and_the_cli_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, keys) = fake_host(tmp.path());
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = CollectorProc::start(&pki, &tmp.path().join("data"), None);
    let (cert, key) = pki.issue_host("fake-01", &tmp.path().join("agent"));
    let mut args = vec!["--root".to_string(), root.to_string_lossy().into_owned()];
    for s in ["host", "ssh_keys", "log_config", "raid", "packages"] {
        args.push("--section".into());
        args.push(s.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = agent_once(
        &c.url,
        &pki.ca(),
        &cert,
        &key,
        &tmp.path().join("state"),
        &args,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));

    let show = |section: &str| {
        let out = run_ok(cli(&pki, &c.url).args(["host", "show", "fake-01", "--section", section]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ssh = show("ssh_keys");
    assert!(
        ssh.contains(&keys[0].1) && ssh.contains("alice@laptop"),
        "{ssh}"
    );
    assert!(ssh.contains("symlink"), "{ssh}");
    let logs = show("log_config");
    assert!(
        logs.contains("logs.example.com") && logs.contains("/var/log/orphan.log"),
        "{logs}"
    );
    let raid = show("raid");
    assert!(
        raid.contains("md6") && raid.to_uppercase().contains("REBUILDING"),
        "{raid}"
    );
    let pk = show("packages");
    assert!(pk.contains("bash") && pk.contains("5.2.15-2+b2"), "{pk}");
    let json = cli_json(
        &pki,
        &c.url,
        &["host", "show", "fake-01", "--section", "raid"],
    );
    assert_eq!(
        json["snapshot"]["sections"][0]["body"]["raid"]["verdict"],
        "rebuilding"
    );
}
