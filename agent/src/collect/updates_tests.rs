use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use super::*;
use crate::testutil::fixture;

const SEC: &str = "deb.debian.org_debian-security_dists_bookworm-security_";
const MAIN: &str = "deb.debian.org_debian_dists_bookworm_";

fn collect_at(root: &Path, c: &mut UpdatesCollector) -> UpdatesSection {
    let ctx = Context {
        fs: HostFs::new(root),
    };
    match c.collect(&ctx) {
        Ok(Body::Updates(u)) => u,
        other => panic!("{other:?}"),
    }
}

fn lz4(text: &str) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// Constructed kernel stanzas (not from a real status file): the running
/// kernel's package and a newer one installed beside it.
const KERNELS: &str = "\nPackage: linux-image-6.1.0-25-amd64\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.1.106-3\n\nPackage: linux-image-6.1.0-26-amd64\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.1.112-1\n\nPackage: linux-image-amd64\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.1.112-1\n";

/// A fake root of the real excerpts in tests/fixtures/updates: dpkg's
/// status, bookworm's and bookworm-security's indexes (the security one
/// lz4-compressed, as apt keeps it here) with their InRelease headers.
fn fake_root(root: &Path) {
    let lists = root.join("var/lib/apt/lists");
    fs::create_dir_all(&lists).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    let mut status = fixture("updates/status.excerpt");
    status.push_str(KERNELS);
    fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    fs::write(
        lists.join(format!("{SEC}InRelease")),
        fixture("updates/security_InRelease.head"),
    )
    .unwrap();
    fs::write(
        lists.join(format!("{MAIN}InRelease")),
        fixture("updates/bookworm_InRelease.head"),
    )
    .unwrap();
    fs::write(
        lists.join(format!("{SEC}main_binary-amd64_Packages.lz4")),
        lz4(&fixture("updates/security_Packages.excerpt")),
    )
    .unwrap();
    fs::write(
        lists.join(format!("{MAIN}main_binary-amd64_Packages")),
        fixture("updates/main_Packages.excerpt"),
    )
    .unwrap();
    fs::write(root.join("proc/sys/kernel/osrelease"), "6.1.0-25-amd64\n").unwrap();
    fs::write(
        root.join("var/lib/dpkg/info/linux-image-6.1.0-26-amd64.list"),
        "/boot\n",
    )
    .unwrap();
}

/// Field by field what apt itself listed as upgradable for these packages
/// on the machine the excerpts come from (SOURCES.md): seven updates, the
/// five offered by bookworm-security flagged.
#[test]
fn the_fake_tree_gives_what_apt_listed() {
    let d = tempfile::tempdir().unwrap();
    fake_root(d.path());
    let mut c = UpdatesCollector::default();
    let u = collect_at(d.path(), &mut c);
    assert!(u.problems.is_empty(), "{:?}", u.problems);
    let got: Vec<String> = u
        .updates
        .iter()
        .map(|p| {
            format!(
                "{} {} -> {} {} {}",
                p.name, p.installed_version, p.candidate_version, p.security, p.suite
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "apt 2.6.1 -> 2.6.2 true oldstable-security",
            "base-files 12.4+deb12u11 -> 12.4+deb12u15 false oldstable",
            "bash 5.2.15-2+b8 -> 5.2.15-2+b13 false oldstable",
            "ca-certificates 20230311+deb12u1 -> 20250419~deb12u2 true oldstable-security",
            "jq 1.6-2.1+deb12u1 -> 1.6-2.1+deb12u3 true oldstable-security",
            "krb5-locales 1.20.1-2+deb12u3 -> 1.20.1-2+deb12u5 true oldstable-security",
            "libbrotli1 1.0.9-2+b6 -> 1.0.9-2+deb12u1 true oldstable-security",
        ]
    );
    assert_eq!(u.security_count, 5);
    assert_eq!(u.source, "apt");
    let ix: Vec<(String, bool, u64)> = u
        .indexes
        .iter()
        .map(|i| (i.suite.clone(), i.security, i.packages))
        .collect();
    assert_eq!(
        ix,
        [
            ("oldstable-security".into(), true, 5),
            ("oldstable".into(), false, 8)
        ]
    );
    assert_eq!(u.indexes[0].release_date_ms, 1_796_253_223_000);
    assert!(u.index_refreshed_ms > 0);
    let r = u.reboot.unwrap();
    assert!(r.required);
    assert_eq!(r.running_kernel, "6.1.0-25-amd64");
    assert_eq!(r.newest_kernel, "6.1.0-26-amd64");
    assert_eq!(
        r.reasons,
        [
            "running kernel 6.1.0-25-amd64 is older than installed linux-image-6.1.0-26-amd64 (6.1.112-1)"
        ]
    );
    assert!(r.since_ms > 0);
}

/// The marker file and its package list; a kernel that is the newest is
/// no reason; no apt lists is said, not guessed.
#[test]
fn reboot_marker_and_no_lists() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::create_dir_all(root.join("run")).unwrap();
    fs::create_dir_all(root.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
    fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    fs::write(root.join("proc/sys/kernel/osrelease"), "6.1.0-26-amd64\n").unwrap();
    fs::write(root.join("var/lib/dpkg/status"), KERNELS).unwrap();
    fs::write(
        root.join("run/reboot-required"),
        "*** System restart required ***\n",
    )
    .unwrap();
    fs::write(
        root.join("run/reboot-required.pkgs"),
        "libc6\nlinux-base\nlibc6\n",
    )
    .unwrap();
    let u = collect_at(root, &mut UpdatesCollector::default());
    let r = u.reboot.unwrap();
    assert!(r.required);
    assert_eq!(r.reasons, ["/var/run/reboot-required exists"]);
    assert_eq!(r.packages, ["libc6", "linux-base"]);
    assert_eq!(u.problems.len(), 1);
    assert!(
        u.problems[0].message.starts_with("no apt lists"),
        "{:?}",
        u.problems
    );
    fs::remove_file(root.join("run/reboot-required")).unwrap();
    let u = collect_at(root, &mut UpdatesCollector::default());
    assert!(!u.reboot.unwrap().required);
}

/// A changed index is read again; an unchanged one comes from the cache
/// (its stanza count stays while the text on disk has changed without
/// its size or mtime changing: proof it was not re-read).
#[test]
fn unchanged_indexes_are_not_read_again() {
    let d = tempfile::tempdir().unwrap();
    fake_root(d.path());
    let main = d.path().join(format!(
        "var/lib/apt/lists/{MAIN}main_binary-amd64_Packages"
    ));
    let mut c = UpdatesCollector::default();
    let first = collect_at(d.path(), &mut c);
    let before = fs::metadata(&main).unwrap();
    let text = fs::read_to_string(&main)
        .unwrap()
        .replace("Version: 5.2.15-2+b13", "Version: 5.2.15-2+b99");
    fs::write(&main, &text).unwrap();
    let set_mtime = |m: &fs::Metadata| {
        let t = fs::FileTimes::new().set_modified(m.modified().unwrap());
        fs::File::options()
            .write(true)
            .open(&main)
            .unwrap()
            .set_times(t)
            .unwrap();
    };
    set_mtime(&before);
    let cached = collect_at(d.path(), &mut c);
    assert_eq!(first.updates, cached.updates);
    fs::write(&main, format!("{text}\n")).unwrap();
    let reread = collect_at(d.path(), &mut c);
    let bash = reread.updates.iter().find(|u| u.name == "bash").unwrap();
    assert_eq!(bash.candidate_version, "5.2.15-2+b99");
}

fn require_tool(tool: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is needed as the oracle (scripts/ci-deps.sh installs it)"
    );
}

/// The live machine as oracle: what `apt list --upgradable` lists (name,
/// architecture, candidate) is exactly what the section computes from the
/// same lists; every update apt takes from a -security suite is flagged.
#[test]
fn the_live_machine_agrees_with_apt() {
    require_tool("apt");
    let u = collect_at(Path::new("/"), &mut UpdatesCollector::default());
    let out = std::process::Command::new("apt")
        .args(["list", "--upgradable"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut apt_set = BTreeSet::new();
    let mut apt_security = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // name/suite[,suite] version arch [upgradable from: old]
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !line.contains("[upgradable from:") {
            continue;
        }
        let (name, suites) = f[0].split_once('/').unwrap();
        apt_set.insert(format!("{name}:{} {}", f[2], f[1]));
        if suites.split(',').any(|s| s.ends_with("-security")) {
            apt_security.insert(name.to_string());
        }
    }
    let ours: BTreeSet<String> = u
        .updates
        .iter()
        .map(|p| format!("{}:{} {}", p.name, p.architecture, p.candidate_version))
        .collect();
    assert_eq!(ours, apt_set, "problems: {:?}", u.problems);
    for name in &apt_security {
        assert!(
            u.updates.iter().any(|p| &p.name == name && p.security),
            "{name}"
        );
    }
}

/// Every version string the machine's dpkg status and apt lists hold,
/// compared in pairs with the agent's ordering and with `dpkg
/// --compare-versions`: each installed version with the candidate and
/// with neighbours in a shuffled list of every distinct version.
#[test]
fn version_order_is_dpkg_s_on_real_versions() {
    require_tool("dpkg");
    let mut versions: BTreeSet<String> = BTreeSet::new();
    let status = fs::read_to_string("/var/lib/dpkg/status").unwrap();
    for p in dpkg::parse(&status).packages {
        versions.insert(p.version);
    }
    let lists = fs::read_dir("/var/lib/apt/lists").unwrap();
    for e in lists.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_index(&name) {
            continue;
        }
        let mut r = apt::IndexReader::new(None);
        let f = fs::File::open(e.path()).unwrap();
        if name.ends_with(".lz4") {
            for_each_line(lz4_flex::frame::FrameDecoder::new(f), u64::MAX, |n, l| {
                r.line(n, l)
            })
            .unwrap();
        } else {
            for_each_line(f, u64::MAX, |n, l| r.line(n, l)).unwrap();
        }
        r.finish();
        versions.extend(r.offers.into_iter().map(|o| o.version));
    }
    assert!(
        versions.len() > 1000,
        "only {} versions on this machine",
        versions.len()
    );
    let mut all: Vec<String> = versions.into_iter().collect();
    fastrand::Rng::with_seed(20).shuffle(&mut all);
    let mut pairs: Vec<(String, String)> = all
        .windows(2)
        .take(1500)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    // Close calls: a version against itself with a suffix, a tilde, an epoch.
    for v in all.iter().take(200) {
        pairs.push((v.clone(), format!("{v}~1")));
        pairs.push((v.clone(), format!("{v}+b1")));
        if !v.contains(':') {
            pairs.push((v.clone(), format!("1:{v}")));
        }
    }
    let mut wrong = Vec::new();
    for (a, b) in &pairs {
        let ours = debversion::compare(a, b);
        let dpkg = |op: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .unwrap()
                .success()
        };
        let theirs = if dpkg("lt") {
            std::cmp::Ordering::Less
        } else if dpkg("eq") {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Greater
        };
        if ours != theirs {
            wrong.push(format!("{a} vs {b}: ours {ours:?}, dpkg {theirs:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ: {wrong:?}",
        wrong.len(),
        pairs.len()
    );
}
