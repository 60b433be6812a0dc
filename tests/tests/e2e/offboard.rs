//! Offboarding judged by the real sshd, the program that decides what logs
//! in: a key hidden past the snapshot's 1 MiB bound (1,100 padding comment
//! lines, then the key) logs in before the sweep, the host is named as
//! unproven by `keys find`, and after the sweep sshd refuses the key while
//! the other key still logs in (tests/tests/e2e/sweep_proof.rs checks the
//! same with `ssh-keygen -lf` on the file).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use driftwatch_tests::*;

/// `sshd -D` on 127.0.0.1 with a temp host key, letting root in by key
/// from `keys_file` (StrictModes off: the file lives in a temp tree).
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, keys_file: &Path) -> Sshd {
        let hk = dir.join("host_key");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&hk),
        );
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "ListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nAuthorizedKeysFile {}\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nPermitRootLogin prohibit-password\n",
                hk.display(),
                keys_file.display()
            ),
        )
        .unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start /usr/sbin/sshd (openssh-server)");
        wait_for(10, "sshd listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        Sshd { child, port }
    }

    /// Does this private key log in?
    fn logs_in(&self, key: &Path) -> bool {
        Command::new("ssh")
            .arg("-i")
            .arg(key)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-p",
                &self.port.to_string(),
                "root@127.0.0.1",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_key_hidden_past_one_mebibyte_is_reported_and_swept_as_sshd_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pki = Pki::init(&t.join("pki"));
    let c = CollectorProc::start(&pki, &t.join("data"), None);
    let (leaver, fp) = ssh_keygen(t, "leaver", "ed25519", "leaver@corp");
    let (other, _) = ssh_keygen(t, "other", "ed25519", "ops@corp");
    let root = t.join("root");
    fake_root(&root, "web-1", "m-1", "u-1");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nal:x:1000:1000::/home/al:/bin/sh\n",
    )
    .unwrap();
    let ak = root.join("home/al/.ssh/authorized_keys");
    std::fs::create_dir_all(ak.parent().unwrap()).unwrap();
    let pad = format!("# {}\n", "x".repeat(1000)).repeat(1100);
    std::fs::write(&ak, format!("{pad}{other}\n{leaver}\n")).unwrap();
    let sshd = Sshd::start(t, &ak);
    assert!(sshd.logs_in(&t.join("leaver")), "sshd reads past 1 MiB");

    let (cert, key) = pki.issue_host("web-1", &t.join("cert"));
    let _agent = AgentProc::start(
        &c.url,
        &pki.ca(),
        (&cert, &key),
        &t.join("state"),
        &root,
        "2s",
    );
    wait_for(30, "a snapshot from web-1", || {
        let hosts = cli_json(&pki, &c.url, &["hosts"]);
        let h = &hosts["hosts"].as_array()?.first()?.clone();
        (h["connected"] == true && h["last_seq"].as_u64() > Some(0)).then_some(())
    });

    // keys find: the key is not in what was read, and the answer says the
    // file was not read completely, and why (JSON and table).
    let find = cli_json(&pki, &c.url, &["keys", "find", "--fingerprint", &fp]);
    assert_eq!(
        find["locations"].as_array().map_or(0, Vec::len),
        0,
        "{find:#}"
    );
    let inc = &find["unread_files"][0];
    assert_eq!(inc["host_id"], "web-1", "{find:#}");
    assert_eq!(inc["path"], "/home/al/.ssh/authorized_keys");
    assert!(
        inc["reason"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{find:#}"
    );
    let table = run_ok(cli(&pki, &c.url).args(["keys", "find", "--fingerprint", &fp]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("not proven on 1 host")
            && text.contains("could not be read completely")
            && text.contains("/home/al/.ssh/authorized_keys"),
        "{text}"
    );

    // The sweep reads on to the end and removes the line; "done" is now
    // true: sshd refuses the key, the other key still logs in.
    let (code, job, err) = cli_any(
        &pki,
        &c.url,
        &[
            "keys",
            "sweep",
            "--fingerprint",
            &fp,
            "--remove",
            "--yes",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(code, Some(0), "{err}\n{job:#}");
    let h = &job["hosts"][0];
    assert_eq!(h["status"], "done", "{job:#}");
    assert_eq!(h["files"][0]["status"], "removed", "{job:#}");
    assert_eq!(h["files"][0]["lines"], serde_json::json!([1102]), "{job:#}");
    assert!(!sshd.logs_in(&t.join("leaver")), "sshd refuses the key now");
    assert!(
        sshd.logs_in(&t.join("other")),
        "the other key still logs in"
    );
    let left = std::fs::read_to_string(&ak).unwrap();
    assert_eq!(left, format!("{pad}{other}\n"));
}
