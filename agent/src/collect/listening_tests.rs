use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;
use crate::testutil::fixture;

fn collect(root: &Path) -> ListeningSection {
    let ctx = Context {
        fs: HostFs::new(root),
    };
    match ListeningCollector::default().collect(&ctx) {
        Ok(Body::Listening(l)) => l,
        other => panic!("{other:?}"),
    }
}

fn fake_process(root: &Path, pid: u32, exe: &str, uid: u32, fds: &[&str]) {
    let dir = root.join(format!("proc/{pid}"));
    fs::create_dir_all(dir.join("fd")).unwrap();
    symlink(exe, dir.join("exe")).unwrap();
    fs::write(
        dir.join("status"),
        format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
    )
    .unwrap();
    fs::write(
        dir.join("comm"),
        format!("{}\n", exe.rsplit('/').next().unwrap()),
    )
    .unwrap();
    for (i, target) in fds.iter().enumerate() {
        // Dangling here, as they are in /proc: only the link text counts.
        symlink(target, dir.join(format!("fd/{i}"))).unwrap();
    }
}

/// A fake procfs holding the real tables of tests/fixtures/listening/ and
/// two processes: owners, users and the unowned count come out as built.
#[test]
fn owners_come_from_the_fd_links_under_the_root() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    fs::create_dir_all(root.join("proc/net")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    for t in ["tcp", "tcp6", "udp", "udp6"] {
        fs::write(
            root.join("proc/net").join(t),
            fixture(&format!("listening/{t}")),
        )
        .unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n",
    )
    .unwrap();
    // Two nginx workers share the 18443 socket; one also holds 18080.
    fake_process(
        root,
        700,
        "/usr/sbin/nginx",
        33,
        &["/dev/null", "socket:[24866]", "socket:[24865]"],
    );
    fake_process(
        root,
        701,
        "/usr/sbin/nginx",
        33,
        &["socket:[24866]", "pipe:[5]"],
    );
    fake_process(
        root,
        9,
        "/usr/sbin/sshd",
        0,
        &["socket:[24867]", "socket:[999999]"],
    );
    let l = collect(root);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    let row = |proto: &str, port: u32| {
        let s = l
            .sockets
            .iter()
            .find(|s| s.protocol == proto && s.port == port)
            .unwrap();
        let owners: Vec<String> = s
            .owners
            .iter()
            .map(|o| format!("{} {} {}", o.pid, o.exe, o.user))
            .collect();
        (
            s.address.as_str(),
            s.scope.as_str(),
            s.family.as_str(),
            owners,
        )
    };
    assert_eq!(
        row("tcp", 18443),
        (
            "0.0.0.0",
            "all",
            "ipv4",
            vec![
                "700 /usr/sbin/nginx www-data".to_string(),
                "701 /usr/sbin/nginx www-data".into()
            ]
        )
    );
    assert_eq!(
        row("tcp", 18080),
        (
            "127.0.0.1",
            "loopback",
            "ipv4",
            vec!["700 /usr/sbin/nginx www-data".to_string()]
        )
    );
    assert_eq!(
        row("tcp", 18022),
        (
            "::",
            "all",
            "ipv6",
            vec!["9 /usr/sbin/sshd root".to_string()]
        )
    );
    assert_eq!(row("tcp", 18632).0, "127.0.0.1");
    assert_eq!(l.sockets.len(), 10);
    assert_eq!(l.unowned, 7);
    // Sorted by protocol then port.
    let order: Vec<(String, u32)> = l
        .sockets
        .iter()
        .map(|s| (s.protocol.clone(), s.port))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

/// A link in place of <root>/proc is not walked, and says so; a broken
/// table line is a problem with its number, the rest still listed.
#[test]
fn a_linked_proc_is_refused_and_bad_lines_named() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let elsewhere = d.path().join("elsewhere");
    fs::create_dir_all(elsewhere.join("net")).unwrap();
    let mut tcp = fixture("listening/tcp");
    tcp.push_str("  99: nonsense\n");
    fs::write(elsewhere.join("net/tcp"), tcp).unwrap();
    // Relative, so the tables are read through it within the root.
    symlink("elsewhere", root.join("proc")).unwrap();
    let l = collect(root);
    let probs: Vec<String> = l
        .problems
        .iter()
        .map(|p| format!("{}:{} {}", p.source, p.line, p.message))
        .collect();
    assert!(
        probs
            .iter()
            .any(|p| p.starts_with("/proc/net/tcp:11 expected")),
        "{probs:?}"
    );
    assert!(
        probs
            .iter()
            .any(|p| p.starts_with("/proc:0 is a symbolic link")),
        "{probs:?}"
    );
    assert_eq!(l.sockets.len(), 3);
    assert_eq!(l.unowned, 3);
}

#[test]
fn no_tables_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    let ctx = Context {
        fs: HostFs::new(d.path()),
    };
    let e = ListeningCollector::default().collect(&ctx).unwrap_err();
    assert!(
        matches!(e, SectionError::Unsupported(ref m) if m.contains("/proc/net")),
        "{e}"
    );
}

/// The bound on descriptors is hit and said, never silent.
#[test]
fn the_descriptor_bound_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    fs::create_dir_all(root.join("proc/net")).unwrap();
    fs::write(root.join("proc/net/tcp"), fixture("listening/tcp")).unwrap();
    fake_process(root, 1, "/a", 0, &["pipe:[1]", "pipe:[2]", "pipe:[3]"]);
    fake_process(root, 2, "/b", 0, &["socket:[24865]"]);
    let ctx = Context {
        fs: HostFs::new(root),
    };
    let mut c = ListeningCollector {
        max_fds: 3,
        max_processes: 10,
    };
    let Ok(Body::Listening(l)) = c.collect(&ctx) else {
        panic!()
    };
    assert!(
        l.problems
            .iter()
            .any(|p| p.message.starts_with("stopped at 3 open descriptors")),
        "{:?}",
        l.problems
    );
    assert_eq!(l.unowned, 3);
}

/// The live system as oracle: sockets this test process opens are found
/// with its pid and executable, and (where iproute2 is installed, which
/// scripts/ci-deps.sh makes sure of) every listening socket `ss -ltnup`
/// shows before and after the collection is listed with the same owners.
#[test]
fn finds_its_own_sockets_on_the_live_system_as_ss_does() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let tcp6 = std::net::TcpListener::bind("[::]:0").ok();
    let me = std::process::id();
    let exe = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let before = ss();
    let l = collect(Path::new("/"));
    let after = ss();
    let mine = |proto: &str, port: u16| {
        l.sockets
            .iter()
            .find(|s| s.protocol == proto && s.port == u32::from(port))
            .unwrap_or_else(|| panic!("{proto} {port} not listed"))
    };
    let t = mine("tcp", tcp.local_addr().unwrap().port());
    assert_eq!(
        (t.address.as_str(), t.scope.as_str()),
        ("127.0.0.1", "loopback")
    );
    assert!(
        t.owners.iter().any(|o| o.pid == me && o.exe == exe),
        "{t:?}"
    );
    let u = mine("udp", udp.local_addr().unwrap().port());
    assert_eq!((u.address.as_str(), u.scope.as_str()), ("0.0.0.0", "all"));
    assert!(
        u.owners.iter().any(|o| o.pid == me && o.exe == exe),
        "{u:?}"
    );
    if let Some(t6) = &tcp6 {
        let s = mine("tcp", t6.local_addr().unwrap().port());
        assert_eq!((s.address.as_str(), s.family.as_str()), ("::", "ipv6"));
    }
    let ours: BTreeSet<String> = l
        .sockets
        .iter()
        .flat_map(|s| {
            let key = format!("{} {}:{}", s.protocol, s.address, s.port);
            s.owners.iter().map(move |o| format!("{key} {}", o.pid))
        })
        .collect();
    let stable: Vec<&String> = before.intersection(&after).collect();
    assert!(
        stable.iter().any(|x| x.ends_with(&format!(" {me}"))),
        "ss did not show this process's sockets: {before:?}"
    );
    for x in stable {
        assert!(ours.contains(x), "ss lists {x}; the agent lists {ours:?}");
    }
}

/// `ss -ltnupH` as "proto addr:port pid" per owner, addresses as the agent
/// writes them (ss shows `*` for all addresses and `[::1]` brackets).
fn ss() -> BTreeSet<String> {
    let out = match std::process::Command::new("ss").args(["-ltnupH"]).output() {
        Ok(o) => o,
        Err(e) => panic!("ss (iproute2, scripts/ci-deps.sh) is needed as the oracle: {e}"),
    };
    assert!(out.status.success(), "{out:?}");
    let mut set = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (addr, port) = f[4].rsplit_once(':').unwrap();
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        // ss writes an interface scope (%lo) after some addresses.
        let addr = addr.split('%').next().unwrap();
        // `*` is a dual-stack `::` socket (IPV6_V6ONLY off).
        let addr = match addr {
            "*" => "::".to_string(),
            a => match a.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) => v6
                    .to_ipv4_mapped()
                    .map_or(v6.to_string(), |v4| v4.to_string()),
                Ok(v4) => v4.to_string(),
                Err(_) => a.to_string(),
            },
        };
        let rest = f[6..].join(" ");
        for part in rest.split("pid=").skip(1) {
            let pid: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            set.insert(format!("{} {addr}:{port} {pid}", f[0]));
        }
    }
    set
}
