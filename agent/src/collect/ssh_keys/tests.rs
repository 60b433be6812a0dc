//! A fake host tree read through HostFs: several users with homes outside
//! /home, AuthorizedKeysFile with tokens from an Include'd file, symlink
//! traps, bad modes and owners, and bad input of every kind.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::testutil::fixture;

const ED1: &str = "SHA256:L3k/oJubblSY0lB9Ulsl7emDMnRPKm/8udf2ccwk560";
const RSA1: &str = "SHA256:l6itGumSMcRBBAFteCgmjQBIXqLK/jFGUH3viHX1RmE";
const SK1: &str = "SHA256:Go7HO0CVPYG+BSDSk9ZUJBKGSrtBExp6obTa9iqzIUo";

fn pubkey(name: &str) -> String {
    fixture(&format!("ssh/pubkeys/{name}"))
        .trim_end()
        .to_string()
}

fn write(root: &Path, host_path: &str, content: impl AsRef<[u8]>, mode: u32) {
    let p = root.join(host_path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(root: &Path, host_path: &str, mode: u32) {
    let p = root.join(host_path.trim_start_matches('/'));
    fs::create_dir_all(&p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

struct Host {
    _dir: tempfile::TempDir,
    fs: HostFs,
    /// The uid files made by this test belong to.
    me: u32,
}

/// Users get the test's own uid unless it runs as root, so owner checks
/// give the same verdicts either way.
fn uid_for(me: u32, n: u32) -> u32 {
    if me == 0 { 1000 + n } else { me }
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let me = fs::metadata(r).unwrap().uid();
    let u = |n| uid_for(me, n);
    // mallory's files belong to someone else: when root runs the test the
    // file is given away, otherwise her uid differs from ours.
    let mallory = if me == 0 { 1009 } else { me + 1 };
    write(
        r,
        "/etc/passwd",
        format!(
            "root:x:0:0:root:/root:/bin/bash\n\
             alice:x:{}:{}::/srv/alice:/bin/bash\n\
             bob:x:{}:{}::/var/lib/bob:/bin/sh\n\
             carol:x:{}:{}::/home/carol:/bin/bash\n\
             dave:x:{}:{}::/home/dave:/bin/bash\n\
             erin:x:{}:{}::/data/erin:/bin/bash\n\
             frank:x:{}:{}::/home/frank:/bin/bash\n\
             gina:x:{}:{}::/home/gina:/bin/bash\n\
             svc:x:998:998:service:/opt/svc:/usr/sbin/nologin\n\
             nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n\
             broken line\n\
             mallory:x:{mallory}:{mallory}::/home/mallory:/bin/bash\n",
            u(1),
            u(1),
            u(2),
            u(2),
            u(3),
            u(3),
            u(4),
            u(4),
            u(5),
            u(5),
            u(6),
            u(6),
            u(7),
            u(7)
        ),
        0o644,
    );
    write(
        r,
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication yes\n\
         Match User svc\n  PasswordAuthentication yes\n  AuthorizedKeysFile /etc/ssh/svc_keys/%u\n",
        0o644,
    );
    write(
        r,
        "/etc/ssh/sshd_config.d/10-keys.conf",
        "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys/%u .ssh/keys_%U\n\
         PasswordAuthentication no\nTrustedUserCAKeys /etc/ssh/user_ca.pub\n",
        0o644,
    );
    let ed = pubkey("openssh-ed25519_1.pub");
    let rsa = pubkey("openssh-rsa_1.pub");
    let sk = pubkey("openssh-ecdsa_sk1.pub");
    // root: CRLF file.
    mkdir(r, "/root/.ssh", 0o700);
    write(
        r,
        "/root/.ssh/authorized_keys",
        format!("# admins\r\n{ed}\r\n\r\n"),
        0o600,
    );
    // alice: home outside /home, a key file there and one under /etc/ssh.
    mkdir(r, "/srv/alice/.ssh", 0o700);
    write(
        r,
        "/srv/alice/.ssh/authorized_keys",
        format!(
            "from=\"10.0.0.1\",command=\"echo \\\"a, b\\\"\" {rsa}\n  no-touch-required {sk}\n"
        ),
        0o600,
    );
    write(
        r,
        "/etc/ssh/authorized_keys/alice",
        format!("{ed}\n"),
        0o644,
    );
    // bob: authorized_keys is a link to /etc/shadow.
    write(r, "/etc/shadow", "root:SECRET:1::::::\n", 0o600);
    mkdir(r, "/var/lib/bob/.ssh", 0o700);
    symlink("/etc/shadow", r.join("var/lib/bob/.ssh/authorized_keys")).unwrap();
    // carol: .ssh is a link to alice's.
    mkdir(r, "/home/carol", 0o755);
    symlink("/srv/alice/.ssh", r.join("home/carol/.ssh")).unwrap();
    // dave: world-writable file and .ssh.
    mkdir(r, "/home/dave/.ssh", 0o777);
    write(
        r,
        "/home/dave/.ssh/authorized_keys",
        format!("{ed} dave\n"),
        0o666,
    );
    // erin: binary garbage, non-UTF-8, and one good key after it.
    mkdir(r, "/data/erin/.ssh", 0o700);
    let mut bin = b"\x00\x01\x02garbage\xff\xfe\n".to_vec();
    bin.extend_from_slice(format!("{rsa}\n").as_bytes());
    write(r, "/data/erin/.ssh/authorized_keys", bin, 0o600);
    // frank: ~2 MB of keys, over the 1 MiB bound.
    mkdir(r, "/home/frank/.ssh", 0o700);
    let line = format!("{ed}\n");
    write(
        r,
        "/home/frank/.ssh/authorized_keys",
        line.repeat(2 * 1024 * 1024 / line.len() + 1),
        0o600,
    );
    // gina: a directory where the file should be.
    mkdir(r, "/home/gina/.ssh/authorized_keys", 0o700);
    // svc: system user, restricted key via %U.
    mkdir(r, "/opt/svc/.ssh", 0o755);
    write(
        r,
        "/opt/svc/.ssh/keys_998",
        format!("restrict,command=\"/usr/bin/backup\" {ed} backup\n"),
        0o644,
    );
    // A directory where an included file should be: a problem, not a failure.
    mkdir(r, "/etc/ssh/sshd_config.d/99-dir.conf", 0o755);
    write(r, "/etc/ssh/user_ca.pub", format!("# CA\n{sk}\n"), 0o644);
    // Keys for the Match User svc block only: alice's is not sshd's business.
    write(r, "/etc/ssh/svc_keys/svc", format!("{rsa} deploy\n"), 0o644);
    write(r, "/etc/ssh/svc_keys/alice", format!("{rsa}\n"), 0o644);
    // mallory: a file owned by neither her nor root.
    mkdir(r, "/home/mallory/.ssh", 0o700);
    write(
        r,
        "/home/mallory/.ssh/authorized_keys",
        format!("{ed}\n"),
        0o600,
    );
    if me == 0 {
        std::os::unix::fs::chown(
            r.join("home/mallory/.ssh/authorized_keys"),
            Some(4242),
            None,
        )
        .unwrap();
    }
    Host {
        fs: HostFs::new(r),
        _dir: dir,
        me,
    }
}

fn file<'a>(s: &'a SshKeysSection, path: &str) -> &'a AuthorizedKeysFile {
    s.files.iter().find(|f| f.path == path).unwrap_or_else(|| {
        panic!(
            "no entry for {path}: {:?}",
            s.files.iter().map(|f| &f.path).collect::<Vec<_>>()
        )
    })
}

fn fps(f: &AuthorizedKeysFile) -> Vec<(u32, &str)> {
    f.keys
        .iter()
        .map(|k| (k.line, k.fingerprint.as_str()))
        .collect()
}

#[test]
fn fake_host_tree_field_by_field() {
    let h = host();
    let s = collect_ssh_keys(&h.fs).unwrap();

    // Settings: the Include'd file came first, so its values win.
    let sshd = s.sshd.as_ref().unwrap();
    assert_eq!(
        sshd.config_files,
        vec![SSHD_CONFIG, "/etc/ssh/sshd_config.d/10-keys.conf"]
    );
    assert_eq!(
        sshd.authorized_keys_patterns,
        vec![
            "%h/.ssh/authorized_keys",
            "/etc/ssh/authorized_keys/%u",
            ".ssh/keys_%U"
        ]
    );
    let pa = sshd.password_authentication.as_ref().unwrap();
    assert_eq!(
        (pa.value.as_str(), pa.file.as_str(), pa.line),
        ("no", "/etc/ssh/sshd_config.d/10-keys.conf", 2)
    );
    assert_eq!(sshd.permit_root_login.as_ref().unwrap().value, "no");
    assert_eq!(sshd.match_blocks.len(), 1);
    assert_eq!(sshd.match_blocks[0].criteria, "User svc");
    assert_eq!(sshd.problems.len(), 1, "{:?}", sshd.problems);
    assert_eq!(sshd.problems[0].file, "/etc/ssh/sshd_config.d/99-dir.conf");
    assert!(sshd.problems[0].reason.contains("not a regular file"));
    let ca = sshd.trusted_user_ca_file.as_ref().expect("CA keys read");
    assert_eq!(
        (ca.path.as_str(), ca.pattern.as_str()),
        ("/etc/ssh/user_ca.pub", "TrustedUserCAKeys")
    );
    assert_eq!(fps(ca), vec![(2, SK1)]);
    // sshd wants it root-owned; a non-root test run owns it itself.
    let want: Vec<&str> = if h.me == 0 {
        vec![]
    } else {
        vec!["file_bad_owner"]
    };
    assert_eq!(ca.flags, want);

    assert_eq!(
        s.errors,
        vec!["/etc/passwd line 11: expected 7 ':'-separated fields, found 1"]
    );

    // Deterministic order: by user, then path.
    let order: Vec<(&str, &str)> = s
        .files
        .iter()
        .map(|f| (f.user.as_str(), f.path.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let users: Vec<&str> = order.iter().map(|(u, _)| *u).collect();
    assert!(!users.contains(&"nobody"), "missing homes are not entries");

    let root = file(&s, "/root/.ssh/authorized_keys");
    assert_eq!((root.user.as_str(), root.uid), ("root", 0));
    assert_eq!(fps(root), vec![(2, ED1)]);
    assert_eq!(root.keys[0].comment, "ED25519 test key #1");
    assert!(root.flags.is_empty(), "{:?}", root.flags);
    assert!(root.malformed.is_empty());
    assert_eq!(root.mode, 0o600);
    assert_eq!(root.owner_uid, h.me);

    let a = file(&s, "/srv/alice/.ssh/authorized_keys");
    assert_eq!(a.pattern, "%h/.ssh/authorized_keys");
    assert_eq!(a.home, "/srv/alice");
    assert_eq!(fps(a), vec![(1, RSA1), (2, SK1)]);
    assert_eq!(a.keys[0].options[1].value, "echo \"a, b\"");
    assert_eq!(a.keys[1].label, "ECDSA-SK");
    assert!(a.flags.is_empty(), "{:?}", a.flags);
    let a2 = file(&s, "/etc/ssh/authorized_keys/alice");
    assert_eq!(
        (a2.user.as_str(), a2.pattern.as_str()),
        ("alice", "/etc/ssh/authorized_keys/%u")
    );
    assert_eq!(fps(a2), vec![(1, ED1)]);

    let b = file(&s, "/var/lib/bob/.ssh/authorized_keys");
    assert_eq!(b.flags, vec!["symlink_refused"]);
    assert!(b.error.contains("symbolic link"), "{}", b.error);
    assert!(
        b.keys.is_empty() && b.malformed.is_empty(),
        "a link is never read"
    );

    let c: Vec<&AuthorizedKeysFile> = s.files.iter().filter(|f| f.user == "carol").collect();
    assert_eq!(
        c.len(),
        2,
        "authorized_keys and keys_%U both sit behind the link"
    );
    for f in c {
        assert_eq!(f.flags, vec!["symlink_refused"]);
        assert!(f.error.starts_with("/home/carol/.ssh:"), "{}", f.error);
        assert!(f.keys.is_empty());
    }

    let d = file(&s, "/home/dave/.ssh/authorized_keys");
    assert_eq!(
        d.flags,
        vec![
            "dir_group_writable",
            "dir_world_writable",
            "file_group_writable",
            "file_world_writable"
        ]
    );
    assert_eq!(d.mode, 0o666);
    assert_eq!(
        fps(d),
        vec![(1, ED1)],
        "a flagged file still reports its keys"
    );

    let e = file(&s, "/data/erin/.ssh/authorized_keys");
    assert_eq!(e.flags, vec!["non_utf8"]);
    assert_eq!(fps(e), vec![(2, RSA1)]);
    assert_eq!(e.malformed.len(), 1);
    assert_eq!(e.malformed[0].line, 1);

    let f = file(&s, "/home/frank/.ssh/authorized_keys");
    assert_eq!(f.flags, vec!["truncated"]);
    assert!(f.size_bytes > 2 * 1024 * 1024);
    let line_len = pubkey("openssh-ed25519_1.pub").len() as u64 + 1;
    assert_eq!(f.keys.len() as u64, MAX_KEY_FILE_BYTES / line_len);
    assert!(
        f.malformed.is_empty(),
        "the cut line is not reported as malformed"
    );

    let g = file(&s, "/home/gina/.ssh/authorized_keys");
    assert_eq!(g.flags, vec!["not_regular"]);
    assert!(g.error.contains("not a regular file"));

    let v = file(&s, "/opt/svc/.ssh/keys_998");
    assert_eq!(
        (v.user.as_str(), v.pattern.as_str()),
        ("svc", ".ssh/keys_%U")
    );
    assert_eq!(
        v.keys[0]
            .options
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        vec!["restrict", "command"]
    );
    assert_eq!(v.keys[0].comment, "ED25519 test key #1 backup");

    let sv = file(&s, "/etc/ssh/svc_keys/svc");
    assert_eq!(sv.pattern, "/etc/ssh/svc_keys/%u (Match User svc)");
    assert_eq!(fps(sv), vec![(1, RSA1)]);
    assert!(s.files.iter().all(|f| f.path != "/etc/ssh/svc_keys/alice"));

    let m = file(&s, "/home/mallory/.ssh/authorized_keys");
    assert_eq!(m.flags, vec!["file_bad_owner"]);
    assert!(m.keys.is_empty() && m.malformed.is_empty(), "{m:?}");
    assert!(m.incomplete.contains("not parsed"), "{m:?}");
}

/// A root-only file hard-linked into a home: sshd would read it, but its
/// text is not the user's to report; no line of it leaves the host.
#[test]
fn hard_linked_key_files_are_named_not_parsed() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "/etc/passwd", "al:x:0:0::/home/al:/bin/sh\n", 0o644);
    write(
        r,
        "/etc/secret",
        "root:$6$saltsalt$notakeyatall:19000:0:99999:7:::\n",
        0o600,
    );
    mkdir(r, "/home/al/.ssh", 0o700);
    std::fs::hard_link(r.join("etc/secret"), r.join("home/al/.ssh/authorized_keys")).unwrap();
    let s = collect_ssh_keys(&HostFs::new(r)).unwrap();
    let f = file(&s, "/home/al/.ssh/authorized_keys");
    assert_eq!(f.flags, vec!["hard_linked"]);
    assert!(f.keys.is_empty() && f.malformed.is_empty(), "{f:?}");
    assert!(f.incomplete.contains("2 hard links"), "{f:?}");
    let wire = prost::Message::encode_to_vec(&s);
    assert!(
        !wire.windows(4).any(|w| w == b"$6$s"),
        "the linked file's text is not in the section"
    );
}

#[test]
fn symlinked_home_is_followed_but_group_writable_home_is_flagged() {
    let h = host();
    let r = h.fs.root().to_path_buf();
    // alice's home is a link to another mount; that is normal and followed.
    fs::rename(r.join("srv/alice"), r.join("srv/alice-real")).unwrap();
    symlink("/srv/alice-real", r.join("srv/alice")).unwrap();
    fs::set_permissions(r.join("srv/alice-real"), fs::Permissions::from_mode(0o775)).unwrap();
    let s = collect_ssh_keys(&h.fs).unwrap();
    let a = file(&s, "/srv/alice/.ssh/authorized_keys");
    assert_eq!(fps(a), vec![(1, RSA1), (2, SK1)]);
    assert_eq!(a.flags, vec!["home_group_writable"]);
}

#[test]
fn missing_sshd_config_means_defaults_and_missing_passwd_fails_the_section() {
    let h = host();
    let r = h.fs.root().to_path_buf();
    fs::remove_file(r.join("etc/ssh/sshd_config")).unwrap();
    let s = collect_ssh_keys(&h.fs).unwrap();
    let sshd = s.sshd.as_ref().unwrap();
    assert_eq!(
        sshd.authorized_keys_patterns,
        vec![".ssh/authorized_keys", ".ssh/authorized_keys2"]
    );
    assert_eq!(sshd.problems.len(), 1);
    assert!(sshd.problems[0].reason.contains("not found"));
    assert!(sshd.config_files.is_empty());
    // Default patterns: the files in homes are still found.
    assert_eq!(fps(file(&s, "/root/.ssh/authorized_keys")), vec![(2, ED1)]);

    fs::remove_file(r.join("etc/passwd")).unwrap();
    let mut c = SshKeysCollector;
    let ctx = Context { fs: h.fs.clone() };
    match c.collect(&ctx) {
        Err(SectionError::Failed(why)) => assert!(why.contains("/etc/passwd"), "{why}"),
        other => panic!("expected a failed section, got {other:?}"),
    }
}

#[test]
fn anchors() {
    assert_eq!(
        split_anchor("/srv/a/", "/srv/a//.ssh/k"),
        ("/srv/a".into(), ".ssh/k".into(), true)
    );
    assert_eq!(
        split_anchor("/", "/.ssh/k"),
        ("/".into(), ".ssh/k".into(), true)
    );
    assert_eq!(
        split_anchor("/home/a", "/etc/ssh/keys/a"),
        ("/etc/ssh/keys".into(), "a".into(), false)
    );
    assert_eq!(
        split_anchor("/home/a", "/home/ab/k"),
        ("/home/ab".into(), "k".into(), false)
    );
}
