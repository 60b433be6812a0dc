//! Items of the sections that say who gets in and who becomes root:
//! `accounts` (a user with uid and shell, a group's members) and `sudoers`
//! (one rule per principal and command, in sudoers' own notation).

use driftwatch_common::proto::{AccountsSection, SudoRule, SudoersSection};
use driftwatch_common::section::SectionKind;

use super::items::Item;

pub(super) fn accounts(a: &AccountsSection) -> Vec<Item> {
    let mut v = Vec::new();
    for u in &a.users {
        let peer = format!("user {} uid={} shell={}", u.name, u.uid, u.shell);
        let mut value = format!(
            "uid={} gid={} shell={} password={}",
            u.uid, u.gid, u.shell, u.password_state
        );
        if !u.expires.is_empty() {
            value.push_str(&format!(" expires={}", u.expires));
        }
        v.push(Item {
            section: SectionKind::Accounts,
            key: format!("user {}", u.name),
            value,
            peer: Some(peer.clone()),
            text: peer,
        });
    }
    for g in &a.groups {
        let key = format!("group {}", g.name);
        v.push(Item {
            section: SectionKind::Accounts,
            key: key.clone(),
            value: format!("gid={}", g.gid),
            peer: Some(format!("{key} gid={}", g.gid)),
            text: format!("{key} gid={}", g.gid),
        });
        // One item per member, so one extra member of sudo is one finding
        // on one host rather than a changed group everywhere.
        for m in &g.members {
            let key = format!("member {} {m}", g.name);
            v.push(Item {
                section: SectionKind::Accounts,
                key: key.clone(),
                value: String::new(),
                peer: Some(key.clone()),
                text: format!("{m} in group {}", g.name),
            });
        }
    }
    v
}

/// A rule in sudoers' notation: `alice ALL=(ALL) NOPASSWD: ALL`.
pub fn rule_text(r: &SudoRule) -> String {
    let runas = if r.runas_groups.is_empty() {
        r.runas_users.join(",")
    } else {
        format!("{}:{}", r.runas_users.join(","), r.runas_groups.join(","))
    };
    let nopasswd = if r.nopasswd { "NOPASSWD: " } else { "" };
    format!(
        "{} {}=({runas}) {nopasswd}{}",
        r.principal,
        r.hosts.join(","),
        r.command
    )
}

pub(super) fn sudoers(s: &SudoersSection) -> Vec<Item> {
    let mut v: Vec<Item> = s
        .rules
        .iter()
        .map(|r| {
            let text = rule_text(r);
            Item {
                section: SectionKind::Sudoers,
                key: text.clone(),
                value: r.file.clone(),
                peer: Some(text.clone()),
                text,
            }
        })
        .collect();
    for f in s.files.iter().filter(|f| !f.refused.is_empty()) {
        let key = format!("refused {}", f.path);
        v.push(Item {
            section: SectionKind::Sudoers,
            key: key.clone(),
            value: f.refused.clone(),
            peer: None,
            text: format!("{key}: {}", f.refused),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::section::Body;
    use driftwatch_common::proto::{LocalGroup, LocalUser};
    use driftwatch_common::snapshot::ok_section;

    use super::super::items::items;
    use super::*;

    #[test]
    fn accounts_are_users_groups_and_memberships() {
        let s = ok_section(
            Body::Accounts(AccountsSection {
                users: vec![LocalUser {
                    name: "alice".into(),
                    uid: 1001,
                    gid: 1001,
                    shell: "/bin/bash".into(),
                    password_state: "set".into(),
                    ..Default::default()
                }],
                groups: vec![LocalGroup {
                    name: "sudo".into(),
                    gid: 27,
                    members: vec!["alice".into()],
                    admin: true,
                }],
                ..Default::default()
            }),
            0,
        );
        let peers: Vec<String> = items(&s).into_iter().filter_map(|i| i.peer).collect();
        assert_eq!(
            peers,
            vec![
                "group sudo gid=27",
                "member sudo alice",
                "user alice uid=1001 shell=/bin/bash"
            ]
        );
    }
}
