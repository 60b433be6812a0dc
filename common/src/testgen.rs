//! Random snapshot sections for property tests (stable form, diff, store
//! round trips). Seeded, so a failing case is reproduced by its seed. Every
//! section kind is generated with the fields its stable form clears filled
//! in too (pids, RSS, CPU, uptime, container state, sync progress, drive
//! error counters, /var/log sizes), and with repeated identities (several
//! processes of one executable) so grouping is exercised.

use crate::proto::section::Body;
use crate::proto::*;
use crate::section::SectionKind;
use crate::snapshot::ok_section;

/// A small, seeded random source with the helpers the generators share.
pub struct Gen(fastrand::Rng);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }
    fn n(&mut self, max: usize) -> usize {
        self.0.usize(0..=max)
    }
    fn u32(&mut self) -> u32 {
        self.0.u32(..)
    }
    fn u64(&mut self) -> u64 {
        self.0.u64(..1 << 40)
    }
    fn bool(&mut self) -> bool {
        self.0.bool()
    }
    /// One of a few words: collisions between items are wanted.
    fn word(&mut self, words: &[&str]) -> String {
        words[self.0.usize(..words.len())].to_string()
    }
    fn words(&mut self, words: &[&str], max: usize) -> Vec<String> {
        (0..self.n(max)).map(|_| self.word(words)).collect()
    }
}

const USERS: &[&str] = &["root", "www", "al", "bo", ""];
const EXES: &[&str] = &["/usr/sbin/nginx", "/usr/sbin/sshd", "/bin/sh", ""];
const NAMES: &[&str] = &["nginx", "sshd", "sh", "cron"];
const STATES: &[&str] = &["running", "exited", "ok", "degraded", ""];

/// A section of the given kind.
pub fn section(g: &mut Gen, kind: SectionKind) -> Section {
    let body = match kind {
        SectionKind::Host => Body::Host(HostSection {
            hostname: g.word(&["web-1", "db-1"]),
            os_pretty_name: g.word(&["Debian 13", "Ubuntu 24.04"]),
            kernel: g.word(&["6.1.0", "6.12.0"]),
            machine_id: g.word(&["m1", "m2"]),
            uptime_s: g.u64(),
            cpu_count: g.0.u64(1..64),
            memory_total_bytes: g.u64(),
            ..Default::default()
        }),
        SectionKind::Processes => Body::Processes(ProcessesSection {
            processes: (0..g.n(12))
                .map(|_| Process {
                    pid: g.u32(),
                    ppid: g.u32(),
                    user: g.word(USERS),
                    uid: g.0.u32(0..3),
                    name: g.word(NAMES),
                    exe: g.word(EXES),
                    cmdline: g.words(&["-g", "daemon off;", "-D"], 2),
                    rss_bytes: g.u64(),
                    cpu_percent: g.0.f32() * 100.0,
                    cpu_time_ms: g.u64(),
                    start_time: g.u64(),
                    state: g.word(&["S", "R", "Z"]),
                    kernel_thread: g.0.u8(..10) == 0,
                    count: 0,
                })
                .collect(),
        }),
        SectionKind::SshKeys => Body::SshKeys(SshKeysSection {
            files: (0..g.n(3))
                .map(|_| AuthorizedKeysFile {
                    user: g.word(USERS),
                    path: g.word(&[
                        "/home/al/.ssh/authorized_keys",
                        "/root/.ssh/authorized_keys",
                    ]),
                    mode: 0o600,
                    size_bytes: g.u64(),
                    keys: (0..g.n(4))
                        .map(|i| AuthorizedKey {
                            line: i as u32 + 1,
                            key_type: "ssh-ed25519".into(),
                            fingerprint: g.word(&["SHA256:a", "SHA256:b", "SHA256:c"]),
                            comment: g.word(&["al@x", "bo@y", ""]),
                            options: (0..g.n(2))
                                .map(|_| KeyOption {
                                    name: g.word(&["from", "no-pty", "command"]),
                                    value: g.word(&["10.0.0.1", ""]),
                                    has_value: g.bool(),
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        SectionKind::LogConfig => Body::LogConfig(LogConfigSection {
            forwards: (0..g.n(3))
                .map(|_| LogForward {
                    daemon: g.word(&["rsyslog", "syslog-ng"]),
                    target: g.word(&["logs.example", "10.0.0.9"]),
                    port: g.0.u32(1..1000),
                    protocol: g.word(&["udp", "tcp"]),
                    ..Default::default()
                })
                .collect(),
            rotation: (0..g.n(3))
                .map(|_| RotationRule {
                    patterns: g.words(&["/var/log/a.log", "/var/log/b.log"], 2),
                    policy: Some(RotationPolicy {
                        frequency: g.word(&["daily", "weekly"]),
                        rotate: Some(g.0.u32(1..10)),
                        compress: g.bool(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            journald: Some(JournaldSettings {
                storage: g.word(&["persistent", "volatile", ""]),
                ..Default::default()
            }),
            unrotated: (0..g.n(3))
                .map(|_| UnrotatedFile {
                    path: g.word(&["/var/log/x.log", "/var/log/y.log"]),
                    size_bytes: g.u64(),
                })
                .collect(),
            var_log_bytes: g.u64(),
            var_log_partial: g.bool(),
            ..Default::default()
        }),
        SectionKind::Raid => Body::Raid(RaidSection {
            verdict: g.word(&["healthy", "degraded"]),
            md_arrays: (0..g.n(2))
                .map(|i| MdArray {
                    name: format!("md{i}"),
                    level: g.word(&["raid1", "raid5"]),
                    state: g.word(STATES),
                    raid_disks: 2,
                    working_disks: g.0.u32(0..3),
                    sync: g.bool().then(|| MdSync {
                        action: "resync".into(),
                        percent: g.0.f64() * 100.0,
                        done_blocks: g.u64(),
                        speed_kib_s: g.u64(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            controllers: (0..g.n(1))
                .map(|_| RaidController {
                    id: "c0".into(),
                    physical_drives: (0..g.n(3))
                        .map(|i| RaidPhysicalDrive {
                            id: format!("252:{i}"),
                            state: g.word(&["Onln", "Failed"]),
                            media_errors: g.u64(),
                            other_errors: g.u64(),
                            ..Default::default()
                        })
                        .collect(),
                    batteries: (0..g.n(1))
                        .map(|_| RaidBattery {
                            kind: "BBU".into(),
                            charge_percent: g.0.u32(0..101),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        SectionKind::Packages => Body::Packages(PackagesSection {
            source: "dpkg".into(),
            packages: (0..g.n(6))
                .map(|_| Package {
                    name: g.word(&["bash", "curl", "openssl"]),
                    version: g.word(&["1.0", "1.1"]),
                    architecture: g.word(&["amd64", "all"]),
                    installed: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        SectionKind::Containers => Body::Containers(ContainersSection {
            containers: (0..g.n(4))
                .map(|_| Container {
                    id: format!("{:x}", g.u64()),
                    name: g.word(&["web", "db", "cache"]),
                    image: g.word(&["nginx:1.27", "redis:latest"]),
                    image_id: g.word(&["sha256:1", "sha256:2"]),
                    created: format!("{}", g.u64()),
                    started_at: format!("{}", g.u64()),
                    state: g.word(STATES),
                    exit_code: g.0.i64(0..3),
                    restart_count: g.0.i64(0..9),
                    oom_killed: g.bool(),
                    health: g.bool().then(|| ContainerHealth {
                        status: g.word(&["healthy", "unhealthy"]),
                        failing_streak: g.0.i64(0..3),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        SectionKind::Accounts => Body::Accounts(AccountsSection {
            users: (0..g.n(5))
                .map(|_| {
                    let uid = g.word(&["0", "1000", "1001"]).parse().unwrap_or(0);
                    LocalUser {
                        name: g.word(USERS),
                        uid,
                        gid: uid,
                        primary_group: g.word(&["root", "al", ""]),
                        home: g.word(&["/root", "/home/al"]),
                        shell: g.word(&["/bin/bash", "/usr/sbin/nologin"]),
                        login_shell: g.bool(),
                        password_state: g.word(&["set", "locked", "empty", "unknown"]),
                        expires: g.word(&["", "2025-01-31"]),
                        expired: g.bool(),
                        groups: g.words(&["sudo", "adm", "docker"], 2),
                        extra_root: g.bool(),
                        admin_groups: g.words(&["sudo", "wheel"], 1),
                        password_expires: g.word(&["", "now", "2026-03-01"]),
                        password_expired: g.bool(),
                    }
                })
                .collect(),
            groups: (0..g.n(4))
                .map(|_| LocalGroup {
                    name: g.word(&["sudo", "adm", "wheel"]),
                    gid: g.0.u32(0..30),
                    members: g.words(USERS, 3),
                    admin: g.bool(),
                })
                .collect(),
            problems: (0..g.n(1))
                .map(|_| AccountProblem {
                    source: "/etc/passwd".into(),
                    line: g.0.u32(1..9),
                    message: "expected 7 ':'-separated fields, found 2".into(),
                })
                .collect(),
            shadow_read: g.bool(),
        }),
        SectionKind::Sudoers => Body::Sudoers(SudoersSection {
            files: (0..g.n(2))
                .map(|_| SudoersFile {
                    path: g.word(&["/etc/sudoers", "/etc/sudoers.d/ops"]),
                    mode: 0o440,
                    uid: g.0.u32(0..2),
                    refused: g.word(&["", "world-writable"]),
                    included_from: g.word(&["", "/etc/sudoers"]),
                })
                .collect(),
            rules: (0..g.n(4))
                .map(|_| SudoRule {
                    file: "/etc/sudoers".into(),
                    line: g.0.u32(1..40),
                    principal: g.word(&["%sudo", "al", "root", "ALL"]),
                    hosts: vec!["ALL".into()],
                    runas_users: g.words(&["ALL", "root"], 1),
                    runas_groups: g.words(&["ALL"], 1),
                    command: g.word(&["ALL", "/usr/bin/systemctl restart nginx"]),
                    nopasswd: g.bool(),
                    tags: g.words(&["NOPASSWD", "SETENV"], 1),
                    grants_root: g.bool(),
                })
                .collect(),
            defaults: (0..g.n(2))
                .map(|_| SudoDefault {
                    file: "/etc/sudoers".into(),
                    line: g.0.u32(1..40),
                    scope: g.word(&["", ":al"]),
                    name: g.word(&["env_reset", "!authenticate", "secure_path"]),
                    value: g.word(&["", "/usr/bin"]),
                })
                .collect(),
            problems: (0..g.n(1))
                .map(|_| SudoersProblem {
                    file: "/etc/sudoers".into(),
                    line: g.0.u32(1..40),
                    message: "syntax error".into(),
                })
                .collect(),
            valid: g.bool(),
        }),
        SectionKind::Listening => Body::Listening(ListeningSection {
            sockets: (0..g.n(5))
                .map(|_| ListeningSocket {
                    protocol: g.word(&["tcp", "udp"]),
                    family: g.word(&["ipv4", "ipv6"]),
                    address: g.word(&["0.0.0.0", "::", "127.0.0.1", "10.0.0.5"]),
                    port: g.0.u32(1..3) * 22,
                    scope: g.word(&["all", "loopback", "specific"]),
                    uid: g.0.u32(0..2),
                    inode: g.u64(),
                    owners: (0..g.n(3))
                        .map(|_| SocketOwner {
                            pid: g.u32(),
                            exe: g.word(EXES),
                            uid: g.0.u32(0..2),
                            user: g.word(USERS),
                            name: g.word(NAMES),
                        })
                        .collect(),
                })
                .collect(),
            problems: (0..g.n(1))
                .map(|_| ListeningProblem {
                    source: "/proc/net/tcp".into(),
                    line: g.0.u32(1..9),
                    message: "bad line".into(),
                })
                .collect(),
            unowned: g.0.u64(0..3),
        }),
        SectionKind::Updates => Body::Updates(UpdatesSection {
            source: "apt".into(),
            updates: (0..g.n(4))
                .map(|_| PendingUpdate {
                    name: g.word(&["openssl", "bash", "sudo"]),
                    architecture: g.word(&["amd64", "all"]),
                    installed_version: g.word(&["1.0-1", "1.0-2"]),
                    candidate_version: g.word(&["1.0-3", "1.0-3+deb12u1"]),
                    security: g.bool(),
                    suite: g.word(&["bookworm", "bookworm-security"]),
                })
                .collect(),
            security_count: g.0.u64(0..4),
            indexes: (0..g.n(2))
                .map(|_| AptIndex {
                    path: g.word(&[
                        "/var/lib/apt/lists/a_Packages",
                        "/var/lib/apt/lists/b_Packages",
                    ]),
                    suite: g.word(&["bookworm", "bookworm-security"]),
                    release_date_ms: g.u64() as i64,
                    mtime_ms: g.u64() as i64,
                    security: g.bool(),
                    packages: g.u64(),
                    ..Default::default()
                })
                .collect(),
            index_refreshed_ms: g.u64() as i64,
            reboot: Some(RebootStatus {
                required: g.bool(),
                reasons: g.words(&["/var/run/reboot-required exists"], 1),
                running_kernel: g.word(&["6.1.0-25-amd64", "6.1.0-26-amd64"]),
                since_ms: g.0.i64(0..1000),
                ..Default::default()
            }),
            problems: Vec::new(),
        }),
    };
    ok_section(body, g.u64())
}

/// One section of every kind.
pub fn sections(g: &mut Gen) -> Vec<Section> {
    SectionKind::ALL.iter().map(|k| section(g, *k)).collect()
}
