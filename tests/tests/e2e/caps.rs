//! Caps on items per section (common/src/caps.rs), end to end: a real agent
//! over a cap cuts and says so; a client that sends more than the caps is
//! cut by the collector, marked, told to resend when it claims its uncut
//! hash, and refused when it sends too many sections; the rest of the fleet
//! reports as before.

use driftwatch_common::caps;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{
    Process, ProcessesSection, ReportRequest, Section, Snapshot, section,
};
use driftwatch_common::stable::section_hash;
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::{
    CollectorProc, Pki, agent_once, cli, cli_json, fake_root, run_ok, stderr_of,
};

fn section_of<'a>(show: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    show["snapshot"]["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} section in {show}"))
}

/// A dpkg status file with `n` installed packages: generated input, the
/// stanza layout of /var/lib/dpkg/status.
fn dpkg_status(n: usize) -> String {
    let mut s = String::with_capacity(n * 80);
    for i in 0..n {
        s.push_str(&format!(
            "Package: pkg{i:06}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{i}\n\n"
        ));
    }
    s
}

fn processes_section(n: u32) -> Section {
    let processes = (0..n)
        .map(|i| Process {
            pid: i + 1,
            user: "root".into(),
            name: format!("p{i}"),
            exe: format!("/usr/bin/p{i}"),
            ..Default::default()
        })
        .collect();
    let mut s = Section {
        name: "processes".into(),
        status: "ok".into(),
        body: Some(section::Body::Processes(ProcessesSection { processes })),
        ..Default::default()
    };
    s.hash = section_hash(&s);
    s
}

#[test]
fn over_cap_sections_are_cut_visibly_and_the_fleet_is_unaffected() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let agent = |host: &str, extra: &[&str]| {
        let dir = d.path().join(host);
        let (cert, key) = pki.issue_host(host, &dir);
        let out = agent_once(&c.url, &pki.ca(), &cert, &key, &dir.join("state"), extra);
        assert!(
            out.status.success(),
            "{host}: {}\n{}",
            stderr_of(&out),
            c.log_text()
        );
    };

    // An honest agent on a host with more packages than the cap.
    let root = d.path().join("root");
    fake_root(&root, "big-dpkg", "0123456789abcdef0123456789abcdef", "u-1");
    let status = root.join("var/lib/dpkg/status");
    std::fs::create_dir_all(status.parent().unwrap()).unwrap();
    std::fs::write(&status, dpkg_status(caps::PACKAGES + 40)).unwrap();
    agent(
        "honest",
        &["--root", root.to_str().unwrap(), "--section", "packages"],
    );
    let show = cli_json(&pki, &c.url, &["host", "show", "honest"]);
    let p = section_of(&show, "packages");
    assert_eq!(p["status"], "ok", "{p}");
    assert_eq!(p["items_truncated"], 40, "{}", p["truncated"]);
    assert_eq!(
        p["truncated"],
        format!(
            "truncated: 40 packages beyond the cap of {}",
            caps::PACKAGES
        )
    );
    let listed = p["body"]["packages"]["packages"].as_array().unwrap();
    assert_eq!(listed.len(), caps::PACKAGES);
    assert_eq!(listed[0]["name"], "pkg000000");

    // A client that ignores the caps: the collector cuts and says so.
    let (cert, key) = pki.issue_host("hostile", &d.path().join("hostile"));
    let files = ClientFiles {
        ca: pki.ca(),
        cert: Some(cert),
        key: Some(key),
    };
    let uncut = processes_section(caps::PROCESSES as u32 + 500);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut client = rt.block_on(async {
        let ch = driftwatch_common::client::connect(&c.url, &files)
            .await
            .unwrap();
        AgentClient::new(ch).max_encoding_message_size(usize::MAX)
    });
    let mut send = |seq: u64, sections: Vec<Section>| {
        rt.block_on(client.report(ReportRequest {
            snapshot: Some(Snapshot {
                seq,
                collected_at_ms: 1_764_000_000_000 + seq as i64,
                sections,
                ..Default::default()
            }),
        }))
        .map(|r| r.into_inner())
    };
    let ack = send(1, vec![uncut.clone()]).expect("an over-cap report is stored, cut");
    assert!(ack.need_full.is_empty(), "{ack:?}");
    let show = cli_json(&pki, &c.url, &["host", "show", "hostile"]);
    let s = section_of(&show, "processes");
    assert_eq!(s["items_truncated"], 500, "{}", s["truncated"]);
    assert_eq!(
        s["truncated"],
        format!(
            "truncated: 500 processes beyond the cap of {} (by the collector)",
            caps::PROCESSES
        )
    );
    assert_eq!(
        s["body"]["processes"]["processes"]
            .as_array()
            .unwrap()
            .len(),
        caps::PROCESSES
    );
    // And the table an operator reads says so under the heading.
    let table = run_ok(cli(&pki, &c.url).args(["host", "show", "hostile", "--limit", "2"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&format!(
            "== processes (ok, TRUNCATED)\n! truncated: 500 processes beyond the cap of {} \
             (by the collector): the lists below are partial\n",
            caps::PROCESSES
        )),
        "{text}"
    );
    let stored_hash = s["hash"].as_str().unwrap().to_string();
    assert_ne!(
        stored_hash, uncut.hash,
        "the stored hash is the cut section's"
    );
    assert!(
        c.log_text().contains("report over the caps"),
        "{}",
        c.log_text()
    );

    // The delta rule: a hash-only resend of the uncut hash matches nothing
    // stored, so the sender is told to send the section in full.
    let hash_only = |hash: &str| Section {
        name: "processes".into(),
        status: "ok".into(),
        hash: hash.into(),
        hash_only: true,
        ..Default::default()
    };
    let ack = send(2, vec![hash_only(&uncut.hash)]).unwrap();
    assert_eq!(ack.need_full, vec!["processes".to_string()]);
    // The hash of what was stored is known and fills in.
    // (An unchanged report only touches the host record: `host show` keeps
    // the snapshot that carried the body.)
    let ack = send(2, vec![hash_only(&stored_hash)]).unwrap();
    assert!(ack.need_full.is_empty() && !ack.duplicate, "{ack:?}");
    let show = cli_json(&pki, &c.url, &["host", "show", "hostile"]);
    assert_eq!(section_of(&show, "processes")["items_truncated"], 500);

    // Too many sections: refused whole, with the count and the cap.
    let many: Vec<Section> = (0..=caps::SECTIONS)
        .map(|i| Section {
            name: format!("s{i}"),
            status: "unsupported".into(),
            ..Default::default()
        })
        .collect();
    let err = send(3, many).expect_err("too many sections");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "snapshot has {} sections, over the cap of {}",
            caps::SECTIONS + 1,
            caps::SECTIONS
        )
    );

    // The rest of the fleet: another host reports, and every host answers.
    agent("bystander", &["--section", "host"]);
    let hosts = cli_json(&pki, &c.url, &["hosts"]);
    let ids: Vec<&str> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["host_id"].as_str())
        .collect();
    for h in ["honest", "hostile", "bystander"] {
        assert!(ids.contains(&h), "{h} missing from {ids:?}");
    }
    let show = cli_json(&pki, &c.url, &["host", "show", "bystander"]);
    let host = section_of(&show, "host");
    assert_eq!(host["status"], "ok");
    assert_eq!(host["items_truncated"], 0);
}
