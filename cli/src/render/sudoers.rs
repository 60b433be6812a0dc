//! `host show --section sudoers`: one row per rule (aliases resolved),
//! the files read or refused, and the problems with their lines.

use driftwatch_common::proto::SudoersSection;

use super::escape;
use super::table::Table;

pub fn render(s: &SudoersSection) -> String {
    let mut out = format!(
        "{} from {}{}\n",
        super::count(s.rules.len() as u64, "rule"),
        super::count(s.files.len() as u64, "file"),
        if s.valid {
            ""
        } else {
            "; NOT VALID: sudo refuses it (see below)"
        }
    );
    let mut t = Table::new(["WHO", "HOSTS", "AS", "COMMAND", "NOPASSWD", "ROOT", "FROM"]);
    for r in &s.rules {
        let runas = if r.runas_groups.is_empty() {
            r.runas_users.join(",")
        } else {
            format!("{}:{}", r.runas_users.join(","), r.runas_groups.join(","))
        };
        t.row([
            r.principal.clone(),
            r.hosts.join(","),
            runas,
            r.command.clone(),
            if r.nopasswd {
                "yes".into()
            } else {
                String::new()
            },
            if r.grants_root {
                "yes".into()
            } else {
                String::new()
            },
            format!("{}:{}", r.file, r.line),
        ]);
    }
    out.push_str(&t.render());
    for f in s.files.iter().filter(|f| !f.refused.is_empty()) {
        out.push_str(&format!(
            "! {} refused: {}\n",
            escape::escape_cell(&f.path),
            escape::escape_cell(&f.refused)
        ));
    }
    for p in &s.problems {
        out.push_str(&format!(
            "! {}:{}: {}\n",
            escape::escape_cell(&p.file),
            p.line,
            escape::escape_cell(&p.message)
        ));
    }
    out
}
