//! Policy rules over sshd settings, listening sockets and pending updates
//! (the `[sshd]`, `[listening]` and `[updates]` tables of the policy file).
//! Pure: a host's snapshot in, drafts out.

use driftwatch_common::proto::{ListeningSection, SshdSetting, SshdSettings, UpdatesSection};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;

use super::Draft;
use super::policy::{Listening, Sshd, Updates};

const DAY_MS: i64 = 86_400_000;

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

fn at(s: &SshdSetting) -> String {
    if s.file.is_empty() {
        "sshd's default".into()
    } else {
        format!("{}:{}", s.file, s.line)
    }
}

pub fn sshd(p: &Sshd, s: &SshdSettings) -> Vec<Draft> {
    let mut out = Vec::new();
    // (keyword, where, setting): the global value and every Match block's.
    let mut seen: Vec<(&str, String, &SshdSetting)> = Vec::new();
    for (kw, global) in [
        ("passwordauthentication", &s.password_authentication),
        ("permitrootlogin", &s.permit_root_login),
    ] {
        if let Some(g) = global {
            seen.push((kw, "globally".into(), g));
        }
        for b in &s.match_blocks {
            for x in b
                .settings
                .iter()
                .filter(|x| x.keyword.eq_ignore_ascii_case(kw))
            {
                seen.push((kw, format!("in Match {}", b.criteria), x));
            }
        }
    }
    for (kw, place, x) in seen {
        let value = x.value.to_ascii_lowercase();
        match kw {
            "passwordauthentication" => {
                if let Some(want) = &p.password_authentication
                    && !value.eq_ignore_ascii_case(want)
                {
                    out.push(d(
                        SectionKind::SshKeys,
                        format!("sshd PasswordAuthentication {place}"),
                        Severity::High,
                        "sshd.password_authentication",
                        format!("sshd PasswordAuthentication is {value} {place} ({}), policy requires {want}", at(x)),
                    ));
                }
            }
            _ => {
                if !p.permit_root_login.is_empty()
                    && !p
                        .permit_root_login
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(&value))
                {
                    out.push(d(
                        SectionKind::SshKeys,
                        format!("sshd PermitRootLogin {place}"),
                        Severity::High,
                        "sshd.permit_root_login",
                        format!(
                            "sshd PermitRootLogin is {value} {place} ({}), policy allows {}",
                            at(x),
                            p.permit_root_login.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// A port spec: "tcp/22", "udp/53".
fn port_matches(spec: &str, protocol: &str, port: u32) -> bool {
    match spec.split_once('/') {
        Some((proto, p)) => proto.eq_ignore_ascii_case(protocol) && p.parse() == Ok(port),
        None => false,
    }
}

pub fn listening(p: &Listening, group: Option<&str>, l: &ListeningSection) -> Vec<Draft> {
    let allowed = group
        .and_then(|g| p.allowed_ports.get(g))
        .or_else(|| p.allowed_ports.get("*"));
    let Some(allowed) = allowed else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in l.sockets.iter().filter(|s| s.scope != "loopback") {
        if allowed.iter().any(|a| port_matches(a, &s.protocol, s.port)) {
            continue;
        }
        let by: Vec<&str> = s.owners.iter().map(|o| o.exe.as_str()).collect();
        out.push(d(
            SectionKind::Listening,
            format!("{} {}:{}", s.protocol, s.address, s.port),
            Severity::High,
            "listening.allowed_ports",
            format!(
                "{}/{} open on {} ({}) by {} is not an allowed port for group {}",
                s.protocol,
                s.port,
                s.address,
                s.scope,
                if by.is_empty() {
                    "no process seen".to_string()
                } else {
                    by.join(",")
                },
                group.unwrap_or("(none)")
            ),
        ));
    }
    out
}

pub fn updates(p: &Updates, u: &UpdatesSection, now_ms: i64) -> Vec<Draft> {
    let mut out = Vec::new();
    if let Some(max) = p.max_pending_security
        && u.security_count > max
    {
        let names: Vec<&str> = u
            .updates
            .iter()
            .filter(|x| x.security)
            .take(10)
            .map(|x| x.name.as_str())
            .collect();
        out.push(d(
            SectionKind::Updates,
            "pending security updates".into(),
            Severity::High,
            "updates.max_pending_security",
            format!(
                "{} pending security updates (policy allows {max}): {}{}",
                u.security_count,
                names.join(", "),
                if u.security_count > 10 { ", …" } else { "" }
            ),
        ));
    }
    if let Some(days) = p.max_index_age_days
        && u.index_refreshed_ms > 0
    {
        let age = (now_ms - u.index_refreshed_ms) / DAY_MS;
        if age > days as i64 {
            out.push(d(
                SectionKind::Updates,
                "apt indexes".into(),
                Severity::Medium,
                "updates.max_index_age_days",
                format!("apt indexes last refreshed {age} days ago (policy allows {days}): pending updates may be missing"),
            ));
        }
    }
    if let (Some(grace), Some(r)) = (p.reboot_grace_days, u.reboot.as_ref())
        && r.required
    {
        // An unknown start counts as past the grace: it cannot be proven within it.
        let age = if r.since_ms > 0 {
            (now_ms - r.since_ms) / DAY_MS
        } else {
            i64::MAX
        };
        if age > grace as i64 {
            let since = if r.since_ms > 0 {
                format!("for {age} days")
            } else {
                "since an unknown time".into()
            };
            out.push(d(
                SectionKind::Updates,
                "reboot required".into(),
                Severity::Medium,
                "updates.reboot_grace_days",
                format!(
                    "reboot required {since} (grace {grace} days): {}",
                    r.reasons.join("; ")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{ListeningSocket, PendingUpdate, RebootStatus, SshdMatchBlock};

    fn set(kw: &str, v: &str, file: &str) -> SshdSetting {
        SshdSetting {
            keyword: kw.into(),
            value: v.into(),
            file: file.into(),
            line: 3,
        }
    }

    #[test]
    fn sshd_rules_apply_globally_and_in_match_blocks() {
        let p: super::super::policy::Policy = super::super::policy::parse(
            "[sshd]\npassword_authentication = \"no\"\npermit_root_login = [\"no\", \"prohibit-password\"]\n",
        )
        .unwrap();
        let mut s = SshdSettings {
            password_authentication: Some(set("PasswordAuthentication", "yes", "")),
            permit_root_login: Some(set("PermitRootLogin", "prohibit-password", "")),
            ..Default::default()
        };
        let f = sshd(&p.sshd, &s);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].message,
            "sshd PasswordAuthentication is yes globally (sshd's default), policy requires no"
        );
        s.password_authentication =
            Some(set("PasswordAuthentication", "no", "/etc/ssh/sshd_config"));
        assert!(sshd(&p.sshd, &s).is_empty());
        s.match_blocks.push(SshdMatchBlock {
            criteria: "Address 10.0.0.0/8".into(),
            settings: vec![
                set("PasswordAuthentication", "yes", "/etc/ssh/sshd_config"),
                set("PermitRootLogin", "yes", "/etc/ssh/sshd_config"),
            ],
            ..Default::default()
        });
        let f: Vec<String> = sshd(&p.sshd, &s).into_iter().map(|d| d.item).collect();
        assert_eq!(
            f,
            [
                "sshd PasswordAuthentication in Match Address 10.0.0.0/8",
                "sshd PermitRootLogin in Match Address 10.0.0.0/8"
            ]
        );
    }

    #[test]
    fn ports_per_group_ignore_loopback() {
        let p: super::super::policy::Policy = super::super::policy::parse(
            "[listening]\nallowed_ports = { web = [\"tcp/22\", \"tcp/443\"], \"*\" = [\"tcp/22\"] }\n",
        )
        .unwrap();
        let sock = |proto: &str, port, scope: &str| ListeningSocket {
            protocol: proto.into(),
            port,
            scope: scope.into(),
            address: "0.0.0.0".into(),
            ..Default::default()
        };
        let l = ListeningSection {
            sockets: vec![
                sock("tcp", 22, "all"),
                sock("tcp", 443, "all"),
                sock("tcp", 5432, "loopback"),
                sock("udp", 443, "all"),
            ],
            ..Default::default()
        };
        let items = |g| {
            listening(&p.listening, g, &l)
                .into_iter()
                .map(|d| d.item)
                .collect::<Vec<_>>()
        };
        assert_eq!(items(Some("web")), ["udp 0.0.0.0:443"]);
        assert_eq!(items(Some("db")), ["tcp 0.0.0.0:443", "udp 0.0.0.0:443"]);
        assert_eq!(items(None), ["tcp 0.0.0.0:443", "udp 0.0.0.0:443"]);
        let none = super::super::policy::parse("").unwrap();
        assert!(listening(&none.listening, Some("web"), &l).is_empty());
    }

    #[test]
    fn security_updates_index_age_and_reboot_grace() {
        let p: super::super::policy::Policy = super::super::policy::parse(
            "[updates]\nmax_pending_security = 1\nmax_index_age_days = 7\nreboot_grace_days = 3\n",
        )
        .unwrap();
        let now = 100 * DAY_MS;
        let up = |sec| PendingUpdate {
            name: "jq".into(),
            security: sec,
            ..Default::default()
        };
        let mut u = UpdatesSection {
            updates: vec![up(true), up(false)],
            security_count: 1,
            index_refreshed_ms: now - 7 * DAY_MS,
            reboot: Some(RebootStatus {
                required: true,
                since_ms: now - 3 * DAY_MS,
                reasons: vec!["/var/run/reboot-required exists".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            updates(&p.updates, &u, now).is_empty(),
            "all at their limits"
        );
        u.security_count = 2;
        u.updates.push(up(true));
        u.index_refreshed_ms = now - 8 * DAY_MS;
        u.reboot.as_mut().unwrap().since_ms = now - 4 * DAY_MS;
        let msgs: Vec<String> = updates(&p.updates, &u, now)
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(
            msgs,
            [
                "2 pending security updates (policy allows 1): jq, jq",
                "apt indexes last refreshed 8 days ago (policy allows 7): pending updates may be missing",
                "reboot required for 4 days (grace 3 days): /var/run/reboot-required exists",
            ]
        );
    }
}
