//! `host show --section accounts`: one row per user with what makes it a
//! way in (login shell, password state) or a way to root (uid 0, admin
//! groups); groups with members below.

use driftwatch_common::proto::AccountsSection;

use super::escape;
use super::table::Table;

pub fn render(a: &AccountsSection) -> String {
    let logins = a.users.iter().filter(|u| u.login_shell).count();
    let mut out = format!(
        "{} ({logins} with a login shell), {}{}\n",
        super::count(a.users.len() as u64, "user"),
        super::count(a.groups.len() as u64, "group"),
        if a.shadow_read {
            ""
        } else {
            "; shadow not read: password states unknown"
        }
    );
    let mut t = Table::new([
        "USER", "UID", "SHELL", "PASSWORD", "EXPIRES", "ADMIN", "FLAGS",
    ]);
    for u in &a.users {
        let mut flags = Vec::new();
        if u.extra_root {
            flags.push("uid 0 (second root)".to_string());
        }
        if u.expired {
            flags.push("account expired".into());
        }
        if u.password_expired {
            flags.push("password expired".into());
        }
        if !u.login_shell {
            flags.push("no login".into());
        }
        t.row([
            u.name.clone(),
            u.uid.to_string(),
            u.shell.clone(),
            u.password_state.clone(),
            u.expires.clone(),
            u.admin_groups.join(","),
            flags.join(", "),
        ]);
    }
    out.push_str(&t.render());
    let mut g = Table::new(["GROUP", "GID", "MEMBERS"]);
    for x in a.groups.iter().filter(|x| !x.members.is_empty() || x.admin) {
        let name = if x.admin {
            format!("{} (admin)", x.name)
        } else {
            x.name.clone()
        };
        g.row([name, x.gid.to_string(), x.members.join(",")]);
    }
    out.push_str(&g.render());
    for p in &a.problems {
        let at = if p.line > 0 {
            format!("{}:{}", p.source, p.line)
        } else {
            p.source.clone()
        };
        out.push_str(&format!(
            "! {}: {}\n",
            escape::escape_cell(&at),
            escape::escape_cell(&p.message)
        ));
    }
    out
}
