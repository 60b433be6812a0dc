//! The policy file (TOML on the collector): what every host must and must
//! not have. Parsed strictly (unknown keys are errors); evaluated against a
//! host's latest snapshot by pure functions.

use std::collections::BTreeMap;

use driftwatch_common::proto::Snapshot;
use driftwatch_common::proto::section::Body;
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use driftwatch_common::vocab::CollectionStatus;
use serde::Deserialize;

use super::Draft;
use super::items::items;
use driftwatch_common::debversion as version;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub ssh_keys: SshKeys,
    #[serde(default)]
    pub containers: Containers,
    #[serde(default)]
    pub raid: Raid,
    #[serde(default)]
    pub logs: Logs,
    #[serde(default)]
    pub processes: Processes,
    #[serde(default)]
    pub packages: Packages,
    #[serde(default)]
    pub accounts: Accounts,
    #[serde(default)]
    pub sudoers: Sudoers,
    #[serde(default)]
    pub sshd: Sshd,
    #[serde(default)]
    pub listening: Listening,
    #[serde(default)]
    pub updates: Updates,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sudoers {
    /// "No NOPASSWD ALL except listed users": a rule that runs any
    /// command as root without a password is high, unless its principal
    /// (`deploy`, `%ops`) is in `nopasswd_all_allowed`.
    #[serde(default)]
    pub forbid_nopasswd_all: bool,
    #[serde(default)]
    pub nopasswd_all_allowed: Vec<String>,
}

/// sshd settings every host must have, as the agent reports them (values
/// lower-cased, sshd's defaults filled in). Checked globally and in every
/// Match block that sets the keyword: a block turning password logins
/// back on for some connections violates the rule too.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sshd {
    /// "no" or "yes".
    pub password_authentication: Option<String>,
    /// Accepted values: ["no", "prohibit-password"].
    #[serde(default)]
    pub permit_root_login: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// "No uid 0 but root": any other account with uid 0 is critical.
    #[serde(default)]
    pub forbid_extra_root: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listening {
    /// Group label value → ports hosts of that group may listen on beyond
    /// loopback: "tcp/22", "udp/123". "*" for a host whose group has no
    /// entry; a host matched by neither is not judged.
    #[serde(default)]
    pub allowed_ports: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Updates {
    /// More pending security updates than this is a finding.
    pub max_pending_security: Option<u64>,
    /// Indexes older than this (days before the snapshot) are stale.
    pub max_index_age_days: Option<u64>,
    /// A reboot required for longer than this (days) is a finding.
    pub reboot_grace_days: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeys {
    #[serde(default)]
    pub forbidden_fingerprints: Vec<String>,
    /// Case-insensitive substrings of key comments (e.g. "alice@").
    #[serde(default)]
    pub forbidden_comments: Vec<String>,
    /// When not empty, any key not listed is a finding.
    #[serde(default)]
    pub allowed_fingerprints: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Containers {
    /// Pinned by digest or image id, not by tag.
    #[serde(default)]
    pub require_pinned: bool,
    #[serde(default)]
    pub forbid_latest: bool,
    #[serde(default)]
    pub forbid_unhealthy: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raid {
    #[serde(default)]
    pub require_healthy: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// Every file under /var/log covered by a rotation rule.
    #[serde(default)]
    pub require_rotation: bool,
    /// Forwarding targets every host must have: "host" or "host:port".
    #[serde(default)]
    pub require_forward: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processes {
    /// "exe" or "user exe" (exe is the full path, or the name in brackets).
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub forbidden: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// package name → lowest acceptable version (dpkg ordering).
    #[serde(default)]
    pub minimum: BTreeMap<String, String>,
}

pub fn parse(text: &str) -> Result<Policy, String> {
    driftwatch_common::config::parse_toml(text)
}

fn d(section: SectionKind, item: String, severity: Severity, rule: &str, message: String) -> Draft {
    Draft {
        kind: "policy",
        section: Some(section),
        item,
        severity,
        rule: rule.to_string(),
        message,
    }
}

fn process_matches(pattern: &str, user: &str, exe: &str) -> bool {
    match pattern.split_once(' ') {
        Some((u, e)) => u == user && e == exe,
        None => pattern == exe,
    }
}

/// Policy findings for one host's latest snapshot. Ages are measured to
/// the snapshot's collection time, not the clock: evaluation stays a pure
/// function of stored data (a host that stops reporting is stale anyway).
pub fn evaluate(p: &Policy, snap: &Snapshot) -> Vec<Draft> {
    let mut out = Vec::new();
    let group = snap
        .labels
        .iter()
        .find(|l| l.key == "group")
        .map(|l| l.value.as_str());
    for s in snap.sections.iter().filter(|s| CollectionStatus::is_ok(s)) {
        match &s.body {
            Some(Body::SshKeys(k)) => {
                if let Some(sshd) = &k.sshd {
                    out.extend(super::policy_netsec::sshd(&p.sshd, sshd));
                }
                for f in &k.files {
                    for key in f.keys.iter().filter(|k| !k.fingerprint.is_empty()) {
                        let item = format!("{} {}", f.user, key.fingerprint);
                        let what = format!(
                            "{} {} ({}) in {} of {}",
                            key.key_type, key.fingerprint, key.comment, f.path, f.user
                        );
                        if p.ssh_keys.forbidden_fingerprints.contains(&key.fingerprint) {
                            out.push(d(
                                SectionKind::SshKeys,
                                item.clone(),
                                Severity::Critical,
                                "ssh_keys.forbidden_fingerprints",
                                format!("forbidden key {what}"),
                            ));
                        } else if let Some(c) = p
                            .ssh_keys
                            .forbidden_comments
                            .iter()
                            .find(|c| key.comment.to_lowercase().contains(&c.to_lowercase()))
                        {
                            out.push(d(
                                SectionKind::SshKeys,
                                item.clone(),
                                Severity::Critical,
                                "ssh_keys.forbidden_comments",
                                format!("key matching forbidden comment {c:?}: {what}"),
                            ));
                        } else if !p.ssh_keys.allowed_fingerprints.is_empty()
                            && !p.ssh_keys.allowed_fingerprints.contains(&key.fingerprint)
                        {
                            out.push(d(
                                SectionKind::SshKeys,
                                item,
                                Severity::High,
                                "ssh_keys.allowed_fingerprints",
                                format!("key not on the allowed list: {what}"),
                            ));
                        }
                    }
                }
            }
            Some(Body::Containers(c)) => {
                for k in &c.containers {
                    if p.containers.require_pinned && !k.pinned {
                        out.push(d(
                            SectionKind::Containers,
                            k.name.clone(),
                            Severity::Medium,
                            "containers.require_pinned",
                            format!(
                                "container {} runs {} by a moving reference ({}), not a digest",
                                k.name, k.image, k.reference_kind
                            ),
                        ));
                    }
                    if p.containers.forbid_latest
                        && (k.reference_kind == "latest" || k.reference_kind == "untagged")
                    {
                        out.push(d(
                            SectionKind::Containers,
                            k.name.clone(),
                            Severity::Medium,
                            "containers.forbid_latest",
                            format!("container {} runs {} (latest)", k.name, k.image),
                        ));
                    }
                    let unhealthy = k.health.as_ref().is_some_and(|h| h.status == "unhealthy");
                    if p.containers.forbid_unhealthy && unhealthy {
                        out.push(d(
                            SectionKind::Containers,
                            k.name.clone(),
                            Severity::High,
                            "containers.forbid_unhealthy",
                            format!("container {} is unhealthy and still running", k.name),
                        ));
                    }
                }
            }
            Some(Body::Raid(r))
                if p.raid.require_healthy && r.verdict != "healthy" && !r.verdict.is_empty() =>
            {
                let sev = if r.verdict == "failed" || r.verdict == "degraded" {
                    Severity::Critical
                } else {
                    Severity::High
                };
                out.push(d(
                    SectionKind::Raid,
                    "raid".into(),
                    sev,
                    "raid.require_healthy",
                    format!("RAID is {}", r.verdict),
                ));
            }
            Some(Body::LogConfig(l)) => {
                if p.logs.require_rotation {
                    for u in &l.unrotated {
                        out.push(d(
                            SectionKind::LogConfig,
                            format!("unrotated {}", u.path),
                            Severity::Low,
                            "logs.require_rotation",
                            format!("{} is not covered by any logrotate rule", u.path),
                        ));
                    }
                }
                for want in &p.logs.require_forward {
                    let (host, port) = match want.rsplit_once(':') {
                        Some((h, p)) if p.parse::<u32>().is_ok() => (h, p.parse::<u32>().ok()),
                        _ => (want.as_str(), None),
                    };
                    let found = l.forwards.iter().any(|f| {
                        !f.commented && f.target == host && port.is_none_or(|p| p == f.port)
                    });
                    if !found {
                        out.push(d(
                            SectionKind::LogConfig,
                            format!("forward {want}"),
                            Severity::Medium,
                            "logs.require_forward",
                            format!("logs are not forwarded to {want}"),
                        ));
                    }
                }
            }
            Some(Body::Processes(_)) => {
                let procs = items(s);
                let has = |pat: &str| {
                    procs.iter().any(|i| {
                        let (user, exe) = i.key.split_once(' ').unwrap_or(("", &i.key));
                        process_matches(pat, user, exe)
                    })
                };
                for req in &p.processes.required {
                    if !has(req) {
                        out.push(d(
                            SectionKind::Processes,
                            req.clone(),
                            Severity::High,
                            "processes.required",
                            format!("required process {req} is not running"),
                        ));
                    }
                }
                for bad in &p.processes.forbidden {
                    if has(bad) {
                        out.push(d(
                            SectionKind::Processes,
                            bad.clone(),
                            Severity::High,
                            "processes.forbidden",
                            format!("forbidden process {bad} is running"),
                        ));
                    }
                }
            }
            Some(Body::Accounts(a)) if p.accounts.forbid_extra_root => {
                for u in a.users.iter().filter(|u| u.extra_root) {
                    out.push(d(
                        SectionKind::Accounts,
                        format!("user {}", u.name),
                        Severity::Critical,
                        "accounts.forbid_extra_root",
                        format!(
                            "{} has uid 0: a second root (shell {}, password {})",
                            u.name, u.shell, u.password_state
                        ),
                    ));
                }
            }
            Some(Body::Sudoers(su)) if p.sudoers.forbid_nopasswd_all => {
                for r in su.rules.iter().filter(|r| {
                    r.nopasswd
                        && r.grants_root
                        && r.command == "ALL"
                        && !p.sudoers.nopasswd_all_allowed.contains(&r.principal)
                }) {
                    let text = super::access_items::rule_text(r);
                    out.push(d(
                        SectionKind::Sudoers,
                        text.clone(),
                        Severity::High,
                        "sudoers.forbid_nopasswd_all",
                        format!(
                            "{text} ({}:{}): root without a password for {} (not in nopasswd_all_allowed)",
                            r.file, r.line, r.principal
                        ),
                    ));
                }
            }
            Some(Body::Packages(pk)) => {
                for (name, min) in &p.packages.minimum {
                    for x in pk
                        .packages
                        .iter()
                        .filter(|x| x.installed && &x.name == name)
                    {
                        if version::compare(&x.version, min).is_lt() {
                            out.push(d(
                                SectionKind::Packages,
                                format!("{}:{}", x.name, x.architecture),
                                Severity::High,
                                "packages.minimum",
                                format!("{} {} is older than the minimum {min}", x.name, x.version),
                            ));
                        }
                    }
                }
            }
            Some(Body::Listening(l)) => {
                out.extend(super::policy_netsec::listening(&p.listening, group, l));
            }
            Some(Body::Updates(u)) => {
                out.extend(super::policy_netsec::updates(
                    &p.updates,
                    u,
                    snap.collected_at_ms,
                ));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{Package, PackagesSection};
    use driftwatch_common::snapshot::ok_section;

    #[test]
    fn strict_parsing_and_minimum_versions() {
        assert!(
            parse("[packages]\nminimun = {}")
                .unwrap_err()
                .contains("minimun")
        );
        let p = parse("[packages]\nminimum = { openssl = \"3.0.11-1~deb12u2\" }\n").unwrap();
        let snap = |v: &str| Snapshot {
            sections: vec![ok_section(
                Body::Packages(PackagesSection {
                    packages: vec![Package {
                        name: "openssl".into(),
                        version: v.into(),
                        architecture: "amd64".into(),
                        installed: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                0,
            )],
            ..Default::default()
        };
        let f = evaluate(&p, &snap("3.0.9-1"));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].message,
            "openssl 3.0.9-1 is older than the minimum 3.0.11-1~deb12u2"
        );
        assert!(evaluate(&p, &snap("3.0.11-1~deb12u2")).is_empty());
        assert!(evaluate(&p, &snap("3.0.13-1~deb12u1")).is_empty());
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;
    use driftwatch_common::proto::{AccountsSection, LocalUser};
    use driftwatch_common::snapshot::ok_section;

    fn users(names: &[(&str, u32)]) -> Snapshot {
        let users = names
            .iter()
            .map(|(n, uid)| LocalUser {
                name: n.to_string(),
                uid: *uid,
                extra_root: *uid == 0 && *n != "root",
                ..Default::default()
            })
            .collect();
        Snapshot {
            sections: vec![ok_section(
                Body::Accounts(AccountsSection {
                    users,
                    ..Default::default()
                }),
                0,
            )],
            ..Default::default()
        }
    }

    #[test]
    fn no_uid_0_but_root() {
        let p = parse("[accounts]\nforbid_extra_root = true\n").unwrap();
        let f = evaluate(&p, &users(&[("root", 0), ("toor", 0), ("al", 1000)]));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].item.as_str(), f[0].severity),
            ("user toor", Severity::Critical)
        );
        assert!(evaluate(&p, &users(&[("root", 0), ("al", 1000)])).is_empty());
        let off = parse("").unwrap();
        assert!(evaluate(&off, &users(&[("toor", 0)])).is_empty());
    }

    #[test]
    fn no_nopasswd_all_except_listed_users() {
        use driftwatch_common::proto::{SudoRule, SudoersSection};
        let rule = |who: &str, nopasswd: bool| SudoRule {
            principal: who.into(),
            hosts: vec!["ALL".into()],
            runas_users: vec!["ALL".into()],
            command: "ALL".into(),
            nopasswd,
            grants_root: true,
            ..Default::default()
        };
        let snap = Snapshot {
            sections: vec![ok_section(
                Body::Sudoers(SudoersSection {
                    rules: vec![
                        rule("deploy", true),
                        rule("alice", true),
                        rule("bob", false),
                    ],
                    ..Default::default()
                }),
                0,
            )],
            ..Default::default()
        };
        let p =
            parse("[sudoers]\nforbid_nopasswd_all = true\nnopasswd_all_allowed = [\"deploy\"]\n")
                .unwrap();
        let f = evaluate(&p, &snap);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].item, "alice ALL=(ALL) NOPASSWD: ALL");
        assert_eq!(f[0].severity, Severity::High);
    }
}

#[cfg(test)]
mod example {
    /// The example shipped in deploy/examples must stay valid.
    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../../../deploy/examples/policy.toml");
        let p = super::parse(text).unwrap();
        assert!(p.containers.require_pinned && p.raid.require_healthy);
        assert_eq!(p.packages.minimum.len(), 2);
        assert!(p.accounts.forbid_extra_root && p.sudoers.forbid_nopasswd_all);
    }
}
