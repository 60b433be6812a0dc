//! Items: the stable identities drift is measured in, per section:
//! a key per user, a process's user + executable, a container's
//! image reference and digest, a package and version, a rotation rule, a
//! forwarding target. Pure functions over snapshot sections.

use driftwatch_common::proto::Section;
use driftwatch_common::proto::section::Body;
use driftwatch_common::section::SectionKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub section: SectionKind,
    /// Identity within the section: what "added" and "removed" are about.
    pub key: String,
    /// What "changed" is about, for the same key.
    pub value: String,
    /// The identity compared across peers and with policy; None when the
    /// item is per-host by nature (a RAID array's members, a machine id).
    pub peer: Option<String>,
    /// How a person reads it.
    pub text: String,
}

fn item(
    section: SectionKind,
    key: String,
    value: String,
    peer: Option<String>,
    text: String,
) -> Item {
    Item {
        section,
        key,
        value,
        peer,
        text,
    }
}

/// The items of one section; a failed or unsupported section has none.
pub fn items(s: &Section) -> Vec<Item> {
    let Some(body) = &s.body else {
        return Vec::new();
    };
    let mut out = match body {
        Body::Host(h) => vec![
            item(
                SectionKind::Host,
                "os".into(),
                h.os_pretty_name.clone(),
                Some(format!("os {}", h.os_pretty_name)),
                format!("os {}", h.os_pretty_name),
            ),
            item(
                SectionKind::Host,
                "kernel".into(),
                h.kernel.clone(),
                Some(format!("kernel {}", h.kernel)),
                format!("kernel {}", h.kernel),
            ),
            item(
                SectionKind::Host,
                "hostname".into(),
                h.hostname.clone(),
                None,
                format!("hostname {}", h.hostname),
            ),
        ],
        Body::Processes(p) => {
            let mut counts: std::collections::BTreeMap<(String, String), u32> = Default::default();
            for x in p.processes.iter().filter(|x| !x.kernel_thread) {
                let exe = if x.exe.is_empty() {
                    format!("[{}]", x.name)
                } else {
                    x.exe.clone()
                };
                *counts.entry((x.user.clone(), exe)).or_default() += x.count.max(1);
            }
            counts
                .into_iter()
                .map(|((user, exe), n)| {
                    let key = format!("{user} {exe}");
                    item(
                        SectionKind::Processes,
                        key.clone(),
                        format!("x{n}"),
                        Some(key.clone()),
                        format!("{user}  {exe}  x{n}"),
                    )
                })
                .collect()
        }
        Body::SshKeys(k) => sshd_items(k)
            .into_iter()
            .chain(k.files.iter().flat_map(|f| {
                f.keys
                    .iter()
                    .filter(|k| !k.fingerprint.is_empty())
                    .map(move |k| {
                        let key = format!("{} {}", f.user, k.fingerprint);
                        let opts: Vec<String> = k
                            .options
                            .iter()
                            .map(|o| {
                                if o.has_value {
                                    format!("{}=\"{}\"", o.name, o.value)
                                } else {
                                    o.name.clone()
                                }
                            })
                            .collect();
                        let value = format!("{} {}", f.path, opts.join(","));
                        item(
                            SectionKind::SshKeys,
                            key.clone(),
                            value,
                            Some(key),
                            format!("{}  {} {} {}", f.user, k.key_type, k.fingerprint, k.comment)
                                .trim_end()
                                .to_string(),
                        )
                    })
            }))
            .collect(),
        Body::Packages(p) => p
            .packages
            .iter()
            .filter(|p| p.installed)
            .map(|p| {
                let key = format!("{}:{}", p.name, p.architecture);
                item(
                    SectionKind::Packages,
                    key.clone(),
                    p.version.clone(),
                    Some(format!("{key} {}", p.version)),
                    format!("{key} {}", p.version),
                )
            })
            .collect(),
        Body::Containers(c) => c
            .containers
            .iter()
            .map(|k| {
                let image = format!("{}@{}", k.image, k.image_id);
                let ports: Vec<String> = k
                    .ports
                    .iter()
                    .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
                    .collect();
                let value = format!(
                    "{image} restart={} ports={}",
                    k.restart_policy,
                    ports.join(",")
                );
                item(
                    SectionKind::Containers,
                    k.name.clone(),
                    value,
                    Some(format!("image {image}")),
                    format!("{}  {}", k.name, k.image),
                )
            })
            .collect(),
        Body::LogConfig(l) => {
            let mut v: Vec<Item> = l
                .forwards
                .iter()
                .filter(|f| !f.commented)
                .map(|f| {
                    let key = format!("forward {}://{}:{}", f.protocol, f.target, f.port);
                    item(
                        SectionKind::LogConfig,
                        key.clone(),
                        String::new(),
                        Some(key.clone()),
                        key,
                    )
                })
                .collect();
            for r in &l.rotation {
                let p = r.policy.clone().unwrap_or_default();
                let mut words = vec![
                    p.frequency.clone(),
                    p.rotate.map(|r| format!("rotate {r}")).unwrap_or_default(),
                ];
                if p.compress {
                    words.push("compress".into());
                }
                if p.copytruncate {
                    words.push("copytruncate".into());
                }
                if let Some(s) = p.size_bytes {
                    words.push(format!("size {s}"));
                }
                let key = format!("rotate {}", r.patterns.join(" "));
                let value = words
                    .into_iter()
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                v.push(item(
                    SectionKind::LogConfig,
                    key.clone(),
                    value.clone(),
                    Some(format!("{key} [{value}]")),
                    format!("{key} [{value}]"),
                ));
            }
            if let Some(j) = &l.journald {
                for (name, val) in [
                    ("Storage", &j.storage),
                    ("SystemMaxUse", &j.system_max_use),
                    ("ForwardToSyslog", &j.forward_to_syslog),
                ] {
                    if !val.is_empty() {
                        let key = format!("journald {name}");
                        v.push(item(
                            SectionKind::LogConfig,
                            key.clone(),
                            val.clone(),
                            Some(format!("{key}={val}")),
                            format!("{key}={val}"),
                        ));
                    }
                }
            }
            for u in &l.unrotated {
                let key = format!("unrotated {}", u.path);
                v.push(item(
                    SectionKind::LogConfig,
                    key.clone(),
                    String::new(),
                    None,
                    key,
                ));
            }
            v
        }
        Body::Accounts(a) => super::access_items::accounts(a),
        Body::Sudoers(s) => super::access_items::sudoers(s),
        Body::Listening(l) => l.sockets.iter().map(listening_item).collect(),
        Body::Updates(u) => {
            let mut v: Vec<Item> = u
                .updates
                .iter()
                .map(|p| {
                    let key = format!("pending {}:{}", p.name, p.architecture);
                    let what = format!(
                        "{} -> {}{}",
                        p.installed_version,
                        p.candidate_version,
                        if p.security { " (security)" } else { "" }
                    );
                    item(
                        SectionKind::Updates,
                        key.clone(),
                        what.clone(),
                        Some(format!("{key} {what}")),
                        format!("{key} {what}"),
                    )
                })
                .collect();
            if let Some(r) = u.reboot.as_ref().filter(|r| r.required) {
                v.push(item(
                    SectionKind::Updates,
                    "reboot required".into(),
                    r.reasons.join("; "),
                    None,
                    format!("reboot required: {}", r.reasons.join("; ")),
                ));
            }
            v
        }
        Body::Raid(r) => {
            let mut v: Vec<Item> = r
                .md_arrays
                .iter()
                .map(|a| {
                    let members: Vec<&str> = a.members.iter().map(|m| m.device.as_str()).collect();
                    item(
                        SectionKind::Raid,
                        a.name.clone(),
                        format!("{} [{}] {}", a.level, members.join(" "), a.verdict),
                        None,
                        format!("{} {} {}", a.name, a.level, a.verdict),
                    )
                })
                .collect();
            for c in &r.controllers {
                for d in &c.virtual_drives {
                    let key = format!("vd {}", d.id);
                    v.push(item(
                        SectionKind::Raid,
                        key.clone(),
                        format!("{} {}", d.raid_level, d.verdict),
                        None,
                        format!("{key} {} {}", d.raid_level, d.verdict),
                    ));
                }
            }
            v
        }
    };
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// The sshd settings that decide who gets in, global and per Match
/// block: history shows when one changed, peers when one host differs.
fn sshd_items(k: &driftwatch_common::proto::SshKeysSection) -> Vec<Item> {
    let Some(s) = &k.sshd else {
        return Vec::new();
    };
    let mut v = Vec::new();
    let mut push = |place: &str, x: &driftwatch_common::proto::SshdSetting| {
        let key = format!("sshd {}{place}", x.keyword);
        let text = format!("{key} {}", x.value);
        v.push(item(
            SectionKind::SshKeys,
            key,
            x.value.clone(),
            Some(text.clone()),
            text,
        ));
    };
    for x in [
        &s.password_authentication,
        &s.permit_root_login,
        &s.pubkey_authentication,
    ]
    .into_iter()
    .flatten()
    {
        push("", x);
    }
    for b in &s.match_blocks {
        for x in &b.settings {
            push(&format!(" (Match {})", b.criteria), x);
        }
    }
    v
}

/// A listener: keyed by protocol, address and port on the host; compared
/// across peers by protocol, port, scope and owners (each host has its own
/// addresses, so "specific" stands for all of them).
fn listening_item(x: &driftwatch_common::proto::ListeningSocket) -> Item {
    let mut owners: Vec<String> = x
        .owners
        .iter()
        .map(|o| {
            if o.exe.is_empty() {
                format!("[{}]", o.name)
            } else {
                o.exe.clone()
            }
        })
        .collect();
    owners.sort();
    owners.dedup();
    let by = if owners.is_empty() {
        "no process seen".to_string()
    } else {
        owners.join(",")
    };
    let port = format!("{}/{}", x.protocol, x.port);
    item(
        SectionKind::Listening,
        format!("{} {}:{}", x.protocol, x.address, x.port),
        by.clone(),
        Some(format!("{port} on {} by {by}", x.scope)),
        format!("{port} on {} ({}) by {by}", x.address, x.scope),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{
        AuthorizedKey, AuthorizedKeysFile, KeyOption, Package, PackagesSection, SshKeysSection,
    };
    use driftwatch_common::snapshot::ok_section;

    #[test]
    fn ssh_keys_are_user_and_fingerprint_with_readable_text() {
        let s = ok_section(
            Body::SshKeys(SshKeysSection {
                files: vec![AuthorizedKeysFile {
                    user: "root".into(),
                    path: "/root/.ssh/authorized_keys".into(),
                    keys: vec![AuthorizedKey {
                        key_type: "ssh-ed25519".into(),
                        fingerprint: "SHA256:abc".into(),
                        comment: "alice@laptop".into(),
                        options: vec![KeyOption {
                            name: "from".into(),
                            value: "10.0.0.1".into(),
                            has_value: true,
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            0,
        );
        let it = items(&s);
        assert_eq!(it.len(), 1);
        assert_eq!(it[0].key, "root SHA256:abc");
        assert_eq!(it[0].text, "root  ssh-ed25519 SHA256:abc alice@laptop");
        assert!(it[0].value.contains("from=\"10.0.0.1\""));
    }

    #[test]
    fn only_installed_packages_count() {
        let s = ok_section(
            Body::Packages(PackagesSection {
                packages: vec![
                    Package {
                        name: "bash".into(),
                        version: "5.2".into(),
                        architecture: "amd64".into(),
                        installed: true,
                        ..Default::default()
                    },
                    Package {
                        name: "gone".into(),
                        version: "1".into(),
                        installed: false,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            0,
        );
        let it = items(&s);
        assert_eq!(
            it.iter()
                .map(|i| i.peer.clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["bash:amd64 5.2"]
        );
    }

    /// Two hosts' sshd on their own addresses are one peer identity; the
    /// same port on all interfaces is another; pids do not matter.
    #[test]
    fn listeners_compare_by_scope_port_and_owner() {
        use driftwatch_common::proto::{ListeningSection, ListeningSocket, SocketOwner};
        let sock = |addr: &str, scope: &str, pid| ListeningSocket {
            protocol: "tcp".into(),
            address: addr.into(),
            port: 22,
            scope: scope.into(),
            owners: vec![SocketOwner {
                pid,
                exe: "/usr/sbin/sshd".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let peer = |s: ListeningSocket| {
            let it = items(&ok_section(
                Body::Listening(ListeningSection {
                    sockets: vec![s],
                    ..Default::default()
                }),
                0,
            ));
            (it[0].key.clone(), it[0].peer.clone().unwrap())
        };
        let a = peer(sock("10.0.0.5", "specific", 10));
        let b = peer(sock("10.0.0.6", "specific", 99));
        assert_eq!(a.1, b.1);
        assert_eq!(a.1, "tcp/22 on specific by /usr/sbin/sshd");
        assert_ne!(a.0, b.0);
        assert_ne!(peer(sock("0.0.0.0", "all", 10)).1, a.1);
    }
}
