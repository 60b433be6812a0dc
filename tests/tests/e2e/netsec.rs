//! The network and patch sections end to end: three real agents on fake
//! roots (their own `<root>/proc/net` tables and fd links, sshd configs,
//! dpkg status and apt lists from tests/fixtures/updates) report to the
//! real collector with a policy; `drift` names the host with an extra
//! listening port as the peer outlier and the sshd and security-update
//! policy breaches on the hosts that hold them.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use driftwatch_tests::*;
use serde_json::Value;

const HOSTS: [&str; 3] = ["n1", "n2", "n3"];
const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// A listening socket line as the kernel writes it (port in hex).
fn listen_line(sl: u32, addr_hex: &str, port: u16, inode: u64) -> String {
    format!(
        "   {sl}: {addr_hex}:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )
}

fn fake_process(root: &Path, pid: u32, exe: &str, inodes: &[u64]) {
    let dir = root.join(format!("proc/{pid}"));
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    symlink(exe, dir.join("exe")).unwrap();
    write_under(
        root,
        &format!("proc/{pid}/status"),
        "Name:\tx\nUid:\t0\t0\t0\t0\n",
    );
    for (i, inode) in inodes.iter().enumerate() {
        symlink(
            format!("socket:[{inode}]"),
            dir.join(format!("fd/{}", i + 3)),
        )
        .unwrap();
    }
}

fn make_host(root: &Path, host: &str) {
    fake_root(root, host, &format!("mid-{host}"), &format!("uuid-{host}"));
    // sshd on every host; n3 also runs a forgotten debug server on 8080.
    let mut tcp = format!("{TCP_HEADER}{}", listen_line(0, "00000000", 22, 1001));
    fake_process(root, 400, "/usr/sbin/sshd", &[1001]);
    if host == "n3" {
        tcp.push_str(&listen_line(1, "00000000", 8080, 1002));
        fake_process(root, 900, "/usr/bin/python3", &[1002]);
    }
    write_under(root, "proc/net/tcp", tcp);
    write_under(root, "proc/net/udp", TCP_HEADER);
    let password = if host == "n2" { "yes" } else { "no" };
    write_under(
        root,
        "etc/ssh/sshd_config",
        format!("PermitRootLogin prohibit-password\nPasswordAuthentication {password}\n"),
    );
    write_under(
        root,
        "var/lib/dpkg/status",
        fixture("updates/status.excerpt"),
    );
    if host == "n1" {
        // n1 has fetched bookworm-security's index: five updates from it.
        let lists = "var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_";
        write_under(
            root,
            &format!("{lists}InRelease"),
            fixture("updates/security_InRelease.head"),
        );
        write_under(
            root,
            &format!("{lists}main_binary-amd64_Packages"),
            fixture("updates/security_Packages.excerpt"),
        );
    }
}

fn findings(pki: &Pki, url: &str, host: &str) -> Vec<(String, String, String, String)> {
    let v: Value = cli_json(pki, url, &["drift", "--host", host]);
    let mut out: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("section"), s("item"), s("message"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn extra_port_is_the_outlier_and_policy_names_sshd_and_security_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::init(&dir.join("pki"));
    write_under(
        dir,
        "policy.toml",
        "[sshd]\npassword_authentication = \"no\"\npermit_root_login = [\"no\", \"prohibit-password\"]\n\n\
         [updates]\nmax_pending_security = 0\n",
    );
    let c = CollectorProc::start_with(
        &pki,
        &dir.join("data"),
        None,
        &["--policy", dir.join("policy.toml").to_str().unwrap()],
    );
    let root_of = |h: &str| -> PathBuf { dir.join("roots").join(h) };
    for h in HOSTS {
        make_host(&root_of(h), h);
        let certs = dir.join("certs").join(h);
        pki.issue_host(h, &certs);
        let root = root_of(h).to_string_lossy().into_owned();
        let mut args = vec!["--root", &root, "--label", "group=edge"];
        for s in ["host", "ssh_keys", "listening", "updates"] {
            args.extend(["--section", s]);
        }
        let out = agent_once(
            &c.url,
            &pki.ca(),
            &certs.join("agent.pem"),
            &certs.join("agent-key.pem"),
            &dir.join("state").join(h),
            &args,
        );
        assert!(out.status.success(), "{h}: {}", stderr_of(&out));
    }

    // What n3's agent saw: both sockets with their owners.
    let show = cli_json(
        &pki,
        &c.url,
        &["host", "show", "n3", "--section", "listening"],
    );
    let socks = &show["snapshot"]["sections"][0]["body"]["listening"]["sockets"];
    let got: Vec<String> = socks
        .as_array()
        .unwrap_or_else(|| panic!("{show:#}"))
        .iter()
        .map(|s| {
            format!(
                "{} {}:{} {} {}",
                s["protocol"], s["address"], s["port"], s["scope"], s["owners"][0]["exe"]
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "\"tcp\" \"0.0.0.0\":22 \"all\" \"/usr/sbin/sshd\"",
            "\"tcp\" \"0.0.0.0\":8080 \"all\" \"/usr/bin/python3\""
        ]
    );

    let n3 = findings(&pki, &c.url, "n3");
    let listening: Vec<_> = n3.iter().filter(|f| f.1 == "listening").collect();
    assert_eq!(listening.len(), 1, "{n3:#?}");
    assert_eq!(
        (listening[0].0.as_str(), listening[0].2.as_str()),
        ("peer_outlier", "tcp/8080 on all by /usr/bin/python3")
    );
    for h in ["n1", "n2"] {
        assert!(
            findings(&pki, &c.url, h).iter().all(|f| f.1 != "listening"),
            "{h} listens like its peers"
        );
    }

    let n2 = findings(&pki, &c.url, "n2");
    let sshd: Vec<_> = n2.iter().filter(|f| f.0 == "policy").collect();
    assert_eq!(sshd.len(), 1, "{n2:#?}");
    assert_eq!(sshd[0].2, "sshd PasswordAuthentication globally");
    assert!(
        sshd[0]
            .3
            .starts_with("sshd PasswordAuthentication is yes globally (/etc/ssh/sshd_config:2)"),
        "{}",
        sshd[0].3
    );

    let n1 = findings(&pki, &c.url, "n1");
    let pol: Vec<_> = n1.iter().filter(|f| f.0 == "policy").collect();
    assert_eq!(pol.len(), 1, "{n1:#?}");
    assert_eq!(
        (pol[0].1.as_str(), pol[0].2.as_str(), pol[0].3.as_str()),
        (
            "updates",
            "pending security updates",
            "5 pending security updates (policy allows 0): apt, ca-certificates, jq, krb5-locales, libbrotli1"
        )
    );
    assert!(n3.iter().all(|f| f.0 != "policy"), "{n3:#?}");

    // The table operators read says it too.
    let table = run_ok(cli(&pki, &c.url).args(["drift"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("5 pending security updates"), "{text}");
    assert!(
        text.contains("sshd PasswordAuthentication is yes"),
        "{text}"
    );
}
