//! The key index: where every key line is (host, user, file, line), from
//! each host's latest snapshot. Built from the store at start and kept
//! current by the Report path, so `keys find` never reads snapshots.
//!
//! Both selectors are lookups: fingerprint → hosts and comment → hosts,
//! then only those hosts' lines are looked at, so a query costs what it
//! finds, not the fleet (a comment scan of 100,000 hosts took ~70 ms).
//! Lines are stored compactly (strings shared per host and file, and
//! fingerprints and comments shared with the lookup maps) and turned into
//! `KeyLocation`s only for an answer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use driftwatch_common::keysel;
use driftwatch_common::proto::{
    AuthorizedKeysFile, KeyCommandHost, KeyLocation, KeySelector, Snapshot, SshKeysSection,
    UnreadKeyFile, section::Body,
};

use crate::store::{Store, StoreError};

/// What a line is, for an operator deciding whether a sweep covers it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An authorized_keys line: a sweep removes it.
    Key,
    /// An authorized_keys `cert-authority` line: certificates the key
    /// signed log in; a sweep removes the line.
    CertAuthority,
    /// A key in sshd's TrustedUserCAKeys file: certificates it signed log
    /// in as any principal they name; a sweep does not touch that file.
    TrustedUserCa,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::CertAuthority => "cert_authority",
            Kind::TrustedUserCa => "trusted_user_ca_keys",
        }
    }
}

/// One key line.
struct Line {
    line: u32,
    kind: Kind,
    fingerprint: Arc<str>,
    comment: Arc<str>,
    key_type: Box<str>,
    /// As `name` or `name=value`.
    options: Box<[Box<str>]>,
}

/// One key file's lines.
struct File {
    user: Box<str>,
    path: Box<str>,
    lines: Vec<Line>,
}

struct HostKeys {
    seq: u64,
    collected_at_ms: i64,
    hostname: Box<str>,
    files: Vec<File>,
    /// sshd's AuthorizedKeysCommand and its user, when set: keys no file
    /// shows.
    command: Option<(Box<str>, Box<str>)>,
    /// Key files not read completely (user, path, why): a key may be in
    /// them, so a search that finds nothing proves nothing there.
    unread: Vec<(Box<str>, Box<str>, Box<str>)>,
}

/// Why a file was not read completely, or None when it was. Agents before
/// the `incomplete` field only flagged it.
fn unread_reason(f: &AuthorizedKeysFile) -> Option<String> {
    if !f.incomplete.is_empty() {
        return Some(f.incomplete.clone());
    }
    if !f.error.is_empty() {
        return Some(f.error.clone());
    }
    f.flags
        .iter()
        .any(|x| x == "truncated")
        .then(|| "truncated: larger than the agent's read bound".to_string())
}

/// AuthorizedKeysCommand as sshd would run it (global, or in any Match
/// block: some user may get keys from it), with its user.
fn keys_command(section: &SshKeysSection) -> Option<(Box<str>, Box<str>)> {
    let sshd = section.sshd.as_ref()?;
    let set = |v: &str| !v.is_empty() && !v.eq_ignore_ascii_case("none");
    let user = sshd
        .authorized_keys_command_user
        .as_ref()
        .map(|u| u.value.as_str())
        .unwrap_or_default();
    if let Some(c) = sshd
        .authorized_keys_command
        .as_ref()
        .filter(|c| set(&c.value))
    {
        return Some((c.value.as_str().into(), user.into()));
    }
    sshd.match_blocks
        .iter()
        .flat_map(|m| &m.settings)
        .find(|s| s.keyword.eq_ignore_ascii_case("AuthorizedKeysCommand") && set(&s.value))
        .map(|s| {
            (
                format!("{} (in a Match block)", s.value).into_boxed_str(),
                user.into(),
            )
        })
}

/// Value → hosts holding a line with it. The key string is shared with
/// the lines (see `intern`).
type Lookup = HashMap<Arc<str>, HashSet<Arc<str>>>;

#[derive(Default)]
pub struct KeyIndex {
    hosts: HashMap<Arc<str>, HostKeys>,
    by_fingerprint: Lookup,
    by_comment: Lookup,
    /// Hosts with key files not read completely: every answer lists those
    /// files, so they are kept apart instead of found by visiting every
    /// host on every query.
    with_unread: HashSet<Arc<str>>,
}

/// The ssh_keys body of a snapshot, when the report carries one (an
/// unchanged section sent as a hash alone has none: the index stays).
pub fn ssh_keys_body(snap: &Snapshot) -> Option<&SshKeysSection> {
    snap.sections.iter().find_map(|s| match &s.body {
        Some(Body::SshKeys(k)) if s.name == "ssh_keys" => Some(k),
        _ => None,
    })
}

fn hostname_of(snap: &Snapshot) -> String {
    driftwatch_common::snapshot::host_section(snap)
        .map(|h| h.hostname.clone())
        .unwrap_or_default()
}

/// The string `lookup` already holds for `v`, or a new one.
fn intern(lookup: &Lookup, v: &str) -> Arc<str> {
    lookup
        .get_key_value(v)
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| Arc::from(v))
}

fn forget(lookup: &mut Lookup, v: &str, host: &str) {
    if let Some(set) = lookup.get_mut(v) {
        set.remove(host);
        if set.is_empty() {
            lookup.remove(v);
        }
    }
}

impl KeyIndex {
    /// From the latest stored snapshot of every host (only its host and
    /// ssh_keys sections are decoded).
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut idx = KeyIndex::default();
        store.latest_key_views(&mut |host, snap| idx.update(host, snap))?;
        Ok(idx)
    }

    pub fn hosts_indexed(&self) -> usize {
        self.hosts.len()
    }

    /// Replaces a host's entries with those of `snap` when it carries an
    /// ssh_keys body and is newer than what the index holds.
    pub fn update(&mut self, host_id: &str, snap: &Snapshot) {
        let Some(section) = ssh_keys_body(snap) else {
            return;
        };
        // Files cut from the list at the cap: no key is proven absent there.
        let files_cut = snap
            .sections
            .iter()
            .find(|s| s.name == "ssh_keys")
            .map(|s| s.truncated.as_str())
            .filter(|t| t.contains(driftwatch_common::caps::KEY_FILES_WHAT))
            .map(str::to_string);
        if self.hosts.get(host_id).is_some_and(|h| h.seq > snap.seq) {
            return;
        }
        let hostname = match hostname_of(snap) {
            n if !n.is_empty() => n.into_boxed_str(),
            _ => self
                .hosts
                .get(host_id)
                .map(|h| h.hostname.clone())
                .unwrap_or_default(),
        };
        self.remove_host(host_id);
        let host: Arc<str> = Arc::from(host_id);
        let mut files = Vec::with_capacity(section.files.len());
        let trusted = section
            .sshd
            .as_ref()
            .and_then(|s| s.trusted_user_ca_file.as_ref());
        let all = section
            .files
            .iter()
            .map(|f| (f, false))
            .chain(trusted.map(|f: &AuthorizedKeysFile| (f, true)));
        let mut unread = Vec::new();
        for (f, is_trusted_ca) in all {
            if let Some(why) = unread_reason(f) {
                let user = if is_trusted_ca {
                    "(sshd)"
                } else {
                    f.user.as_str()
                };
                unread.push((user.into(), f.path.as_str().into(), why.into_boxed_str()));
            }
            if f.keys.is_empty() {
                continue;
            }
            let mut lines = Vec::with_capacity(f.keys.len());
            for k in &f.keys {
                let kind = if is_trusted_ca {
                    Kind::TrustedUserCa
                } else if k
                    .options
                    .iter()
                    .any(|o| o.name.eq_ignore_ascii_case("cert-authority"))
                {
                    Kind::CertAuthority
                } else {
                    Kind::Key
                };
                let fingerprint = intern(&self.by_fingerprint, &k.fingerprint);
                let comment = intern(&self.by_comment, &k.comment);
                self.by_fingerprint
                    .entry(fingerprint.clone())
                    .or_default()
                    .insert(host.clone());
                // An empty comment is no selector (the RPC refuses it).
                if !comment.is_empty() {
                    self.by_comment
                        .entry(comment.clone())
                        .or_default()
                        .insert(host.clone());
                }
                lines.push(Line {
                    line: k.line,
                    kind,
                    fingerprint,
                    comment,
                    key_type: k.key_type.as_str().into(),
                    options: k
                        .options
                        .iter()
                        .map(|o| {
                            if o.has_value {
                                format!("{}={}", o.name, o.value).into_boxed_str()
                            } else {
                                o.name.as_str().into()
                            }
                        })
                        .collect(),
                });
            }
            files.push(File {
                // The TrustedUserCAKeys file belongs to no user: sshd's.
                user: if is_trusted_ca && f.user.is_empty() {
                    "(sshd)".into()
                } else {
                    f.user.as_str().into()
                },
                path: f.path.as_str().into(),
                lines,
            });
        }
        if let Some(why) = files_cut {
            unread.push((
                "*".into(),
                "(files left out at the cap)".into(),
                why.into_boxed_str(),
            ));
        }
        if !unread.is_empty() {
            self.with_unread.insert(host.clone());
        }
        self.hosts.insert(
            host,
            HostKeys {
                seq: snap.seq,
                collected_at_ms: snap.collected_at_ms,
                hostname,
                files,
                command: keys_command(section),
                unread,
            },
        );
    }

    /// Hosts whose sshd also asks AuthorizedKeysCommand for keys, sorted by
    /// host id (the index knows snapshots, not revocations).
    pub fn command_hosts(&self) -> Vec<KeyCommandHost> {
        let mut out: Vec<KeyCommandHost> = self
            .hosts
            .iter()
            .filter_map(|(id, h)| {
                h.command.as_ref().map(|(c, u)| KeyCommandHost {
                    host_id: id.to_string(),
                    hostname: h.hostname.to_string(),
                    command: c.to_string(),
                    command_user: u.to_string(),
                    host_revoked: false,
                })
            })
            .collect();
        out.sort_by(|a, b| a.host_id.cmp(&b.host_id));
        out
    }

    /// Every key file some host could not read completely, sorted by host
    /// id, user, path.
    pub fn unread_files(&self) -> Vec<UnreadKeyFile> {
        let mut out: Vec<UnreadKeyFile> = self
            .with_unread
            .iter()
            .filter_map(|id| self.hosts.get(id).map(|h| (id, h)))
            .flat_map(|(id, h)| {
                h.unread.iter().map(|(user, path, why)| UnreadKeyFile {
                    host_id: id.to_string(),
                    hostname: h.hostname.to_string(),
                    user: user.to_string(),
                    path: path.to_string(),
                    reason: why.to_string(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.host_id, &a.user, &a.path).cmp(&(&b.host_id, &b.user, &b.path)));
        out
    }

    pub fn remove_host(&mut self, host_id: &str) {
        self.with_unread.remove(host_id);
        if let Some(old) = self.hosts.remove(host_id) {
            for l in old.files.iter().flat_map(|f| &f.lines) {
                forget(&mut self.by_fingerprint, &l.fingerprint, host_id);
                forget(&mut self.by_comment, &l.comment, host_id);
            }
        }
    }

    /// Every line holding a selected key, sorted by host, user, path, line.
    /// Each fingerprint and comment is a lookup of the hosts holding it;
    /// only their lines are read.
    pub fn find(&self, sel: &KeySelector) -> Vec<KeyLocation> {
        let mut hosts: HashSet<&Arc<str>> = HashSet::new();
        for fp in keysel::fingerprints(sel) {
            hosts.extend(self.by_fingerprint.get(fp).into_iter().flatten());
        }
        for c in keysel::comments(sel) {
            hosts.extend(self.by_comment.get(c).into_iter().flatten());
        }
        let matches = |l: &Line| keysel::matches(sel, &l.fingerprint, &l.comment);
        let mut out = Vec::new();
        for host_id in hosts {
            let Some(h) = self.hosts.get(host_id) else {
                continue;
            };
            for f in &h.files {
                for l in f.lines.iter().filter(|l| matches(l)) {
                    out.push(KeyLocation {
                        host_id: host_id.to_string(),
                        hostname: h.hostname.to_string(),
                        user: f.user.to_string(),
                        path: f.path.to_string(),
                        line: l.line,
                        fingerprint: l.fingerprint.to_string(),
                        comment: l.comment.to_string(),
                        key_type: l.key_type.to_string(),
                        options: l.options.iter().map(|o| o.to_string()).collect(),
                        seq: h.seq,
                        collected_at_ms: h.collected_at_ms,
                        // The index knows snapshots, not revocations.
                        host_revoked: false,
                        kind: l.kind.as_str().into(),
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.host_id, &a.user, &a.path, a.line).cmp(&(&b.host_id, &b.user, &b.path, b.line))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{AuthorizedKey, AuthorizedKeysFile, Section};

    fn snap(seq: u64, keys: &[(&str, &str)]) -> Snapshot {
        let files = vec![AuthorizedKeysFile {
            user: "alice".into(),
            path: "/home/alice/.ssh/authorized_keys".into(),
            keys: keys
                .iter()
                .enumerate()
                .map(|(i, (fp, c))| AuthorizedKey {
                    line: i as u32 + 1,
                    fingerprint: fp.to_string(),
                    comment: c.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }];
        Snapshot {
            seq,
            sections: vec![Section {
                name: "ssh_keys".into(),
                status: "ok".into(),
                body: Some(Body::SshKeys(SshKeysSection {
                    files,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn fp(s: &str) -> KeySelector {
        KeySelector {
            fingerprint: s.into(),
            ..Default::default()
        }
    }

    #[test]
    fn follows_the_latest_body_and_ignores_hash_only_reports() {
        let mut idx = KeyIndex::default();
        idx.update(
            "h1",
            &snap(1, &[("SHA256:a", "bob@x"), ("SHA256:b", "eve")]),
        );
        idx.update("h2", &snap(1, &[("SHA256:a", "bob@x")]));
        assert_eq!(idx.find(&fp("SHA256:a")).len(), 2);
        let by_comment = KeySelector {
            comment: "eve".into(),
            ..Default::default()
        };
        assert_eq!(idx.find(&by_comment)[0].host_id, "h1");
        // The key left h1.
        idx.update("h1", &snap(2, &[("SHA256:b", "eve")]));
        let hits = idx.find(&fp("SHA256:a"));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].host_id, "h2");
        // A report without an ssh_keys body (delta: unchanged) keeps h1's entries.
        let mut bare = snap(3, &[]);
        bare.sections[0].body = None;
        idx.update("h1", &bare);
        assert_eq!(idx.find(&by_comment).len(), 1);
        // An older snapshot never overwrites a newer one.
        idx.update("h2", &snap(0, &[]));
        assert_eq!(idx.find(&fp("SHA256:a")).len(), 1);
        assert!(idx.find(&KeySelector::default()).is_empty());
    }

    #[test]
    fn comments_are_looked_up_exactly_and_follow_updates() {
        let mut idx = KeyIndex::default();
        idx.update(
            "h1",
            &snap(1, &[("SHA256:a", "bob@x"), ("SHA256:b", "bob@x")]),
        );
        idx.update("h2", &snap(1, &[("SHA256:c", "bob@xy"), ("SHA256:d", "")]));
        let comment = |c: &str| KeySelector {
            comment: c.into(),
            ..Default::default()
        };
        // Two lines on one host, none from the host whose comment only
        // starts the same; an empty comment is not a selector.
        let hits = idx.find(&comment("bob@x"));
        assert_eq!(
            hits.iter()
                .map(|l| (l.host_id.as_str(), l.line))
                .collect::<Vec<_>>(),
            [("h1", 1), ("h1", 2)]
        );
        assert!(idx.find(&comment("bob")).is_empty());
        assert_eq!(idx.find(&comment("bob@xy"))[0].fingerprint, "SHA256:c");
        // bob's key left h1: the comment no longer finds it there.
        idx.update("h1", &snap(2, &[("SHA256:e", "eve@y")]));
        assert!(idx.find(&comment("bob@x")).is_empty());
        assert_eq!(idx.find(&comment("eve@y"))[0].seq, 2);
        // Removing every host leaves no lookup entries behind.
        idx.remove_host("h1");
        idx.remove_host("h2");
        assert_eq!(idx.hosts_indexed(), 0);
        assert!(idx.by_fingerprint.is_empty() && idx.by_comment.is_empty());
    }

    #[test]
    fn a_location_carries_everything_the_line_said() {
        let mut idx = KeyIndex::default();
        let mut s = snap(4, &[("SHA256:a", "ops@corp")]);
        s.collected_at_ms = 77;
        s.sections.push(driftwatch_common::snapshot::ok_section(
            Body::Host(driftwatch_common::proto::HostSection {
                hostname: "web-1".into(),
                ..Default::default()
            }),
            0,
        ));
        if let Some(Body::SshKeys(k)) = &mut s.sections[0].body {
            let key = &mut k.files[0].keys[0];
            key.key_type = "ssh-ed25519".into();
            key.options = vec![
                driftwatch_common::proto::KeyOption {
                    name: "from".into(),
                    value: "10.0.0.0/8".into(),
                    has_value: true,
                },
                driftwatch_common::proto::KeyOption {
                    name: "no-pty".into(),
                    ..Default::default()
                },
            ];
        }
        idx.update("h1", &s);
        // A later snapshot without a hostname keeps the one known.
        let mut later = s.clone();
        later.seq = 5;
        later.sections.truncate(1);
        idx.update("h1", &later);
        let l = &idx.find(&fp("SHA256:a"))[0];
        assert_eq!(
            (
                l.host_id.as_str(),
                l.hostname.as_str(),
                l.user.as_str(),
                l.path.as_str(),
                l.line,
                l.comment.as_str(),
                l.key_type.as_str(),
                l.seq,
                l.collected_at_ms
            ),
            (
                "h1",
                "web-1",
                "alice",
                "/home/alice/.ssh/authorized_keys",
                1,
                "ops@corp",
                "ssh-ed25519",
                5,
                77
            )
        );
        assert_eq!(l.options, ["from=10.0.0.0/8", "no-pty"]);
    }

    /// Not a timing assertion: prints how long a lookup takes over 10,000
    /// hosts (run with --nocapture to see it).
    #[test]
    fn ten_thousand_hosts_measurement() {
        let mut idx = KeyIndex::default();
        for h in 0..10_000u32 {
            let mut keys: Vec<(String, String)> = (0..10)
                .map(|k| (format!("SHA256:host{h}key{k}"), format!("user{k}@h{h}")))
                .collect();
            if h % 100 == 0 {
                keys.push(("SHA256:leaver".into(), "leaver@corp".into()));
            }
            let keys: Vec<(&str, &str)> =
                keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            idx.update(&format!("host-{h:05}"), &snap(1, &keys));
        }
        let t = std::time::Instant::now();
        let by_fp = idx.find(&fp("SHA256:leaver"));
        let fp_time = t.elapsed();
        let t = std::time::Instant::now();
        let by_comment = idx.find(&KeySelector {
            comment: "leaver@corp".into(),
            ..Default::default()
        });
        let comment_time = t.elapsed();
        assert_eq!(by_fp.len(), 100);
        assert_eq!(by_comment.len(), 100);
        eprintln!(
            "keys find over 10000 hosts x 10 keys: fingerprint {fp_time:?}, comment scan {comment_time:?}"
        );
    }

    /// A set of fingerprints and comments is one query; each line says what
    /// it is (a key, a cert-authority line, a TrustedUserCAKeys key), and
    /// hosts using AuthorizedKeysCommand are named.
    #[test]
    fn sets_kinds_and_key_commands() {
        use driftwatch_common::proto::{KeyOption, SshdSetting, SshdSettings};
        let mut s = snap(
            1,
            &[("SHA256:a", "al@x"), ("SHA256:b", "bo@y"), ("SHA256:c", "")],
        );
        let Some(Body::SshKeys(k)) = &mut s.sections[0].body else {
            unreachable!()
        };
        k.files[0].keys[1].options.push(KeyOption {
            name: "cert-authority".into(),
            ..Default::default()
        });
        k.sshd = Some(SshdSettings {
            trusted_user_ca_file: Some(AuthorizedKeysFile {
                path: "/etc/ssh/ca.pub".into(),
                keys: vec![AuthorizedKey {
                    line: 1,
                    fingerprint: "SHA256:c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            authorized_keys_command: Some(SshdSetting {
                keyword: "AuthorizedKeysCommand".into(),
                value: "/usr/bin/keys-from-ldap %u".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut idx = KeyIndex::default();
        idx.update("h1", &s);
        idx.update("h2", &snap(1, &[("SHA256:z", "bo@y")]));
        let sel = KeySelector {
            fingerprints: vec!["SHA256:b".into(), "SHA256:c".into()],
            comments: vec!["al@x".into()],
            ..Default::default()
        };
        let got: Vec<(String, String, String)> = idx
            .find(&sel)
            .into_iter()
            .map(|l| (l.host_id, l.fingerprint, l.kind))
            .collect();
        let want = |h: &str, f: &str, k: &str| (h.to_string(), f.to_string(), k.to_string());
        assert_eq!(
            got,
            vec![
                want("h1", "SHA256:c", "trusted_user_ca_keys"),
                want("h1", "SHA256:a", "key"),
                want("h1", "SHA256:b", "cert_authority"),
                want("h1", "SHA256:c", "key"),
            ]
        );
        let cmds = idx.command_hosts();
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].command, "/usr/bin/keys-from-ldap %u");
    }

    fn s_again(s: &Snapshot) -> Snapshot {
        Snapshot {
            seq: 3,
            ..s.clone()
        }
    }

    #[test]
    fn key_files_cut_at_the_cap_are_answered_as_unread() {
        let mut idx = KeyIndex::default();
        let mut s = snap(1, &[("SHA256:a", "bob@x")]);
        if let Some(Body::SshKeys(k)) = &mut s.sections[0].body {
            k.files = vec![k.files[0].clone(); driftwatch_common::caps::KEY_FILES + 2];
        }
        let cut = driftwatch_common::caps::enforce(&mut s.sections[0], None);
        assert_eq!(cut.total(), 2);
        idx.update("h1", &s);
        let u = idx.unread_files();
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].path, "(files left out at the cap)");
        assert_eq!(u[0].reason, s.sections[0].truncated);
        assert!(
            u[0].reason
                .contains("2 authorized_keys files beyond the cap")
        );
    }

    #[test]
    fn files_not_read_completely_are_answered_with_why() {
        let mut idx = KeyIndex::default();
        let mut s = snap(1, &[("SHA256:a", "bob@x")]);
        if let Some(Body::SshKeys(k)) = &mut s.sections[0].body {
            k.files[0].incomplete = "larger than 1048576 bytes".into();
            k.files.push(AuthorizedKeysFile {
                user: "eve".into(),
                path: "/home/eve/.ssh/authorized_keys".into(),
                error: "/home/eve/.ssh: is a symbolic link".into(),
                ..Default::default()
            });
        }
        idx.update("h1", &s);
        idx.update("h2", &snap(1, &[("SHA256:a", "bob@x")]));
        let u = idx.unread_files();
        assert_eq!(u.len(), 2, "{u:?}");
        assert_eq!((u[0].host_id.as_str(), u[0].user.as_str()), ("h1", "alice"));
        assert_eq!(u[0].reason, "larger than 1048576 bytes");
        assert_eq!(u[1].user, "eve");
        assert!(u[1].reason.contains("symbolic link"));
        // A newer, complete snapshot clears them; so does a forgotten host.
        idx.update("h1", &snap(2, &[]));
        assert!(idx.unread_files().is_empty());
        idx.update("h1", &s_again(&s));
        assert_eq!(idx.unread_files().len(), 2);
        idx.remove_host("h1");
        assert!(idx.unread_files().is_empty());
    }
}
