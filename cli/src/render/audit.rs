//! `driftwatch audit` as a table. Targets and failure details hold what
//! admins typed and what hosts reported (a hostname in an error), so every
//! cell goes through the table's escaping.

use driftwatch_common::proto::ListAuditResponse;
use driftwatch_common::time::format_ms;

use super::table::Table;

/// The trail, newest first, and a closing line when the limit cut it.
pub fn audit(resp: &ListAuditResponse) -> String {
    if resp.entries.is_empty() {
        return "no admin actions recorded in that span\n".into();
    }
    let mut t = Table::new([
        "TIME", "ADMIN", "ROLE", "ACTION", "TARGET", "OUTCOME", "DETAIL",
    ]);
    for e in &resp.entries {
        t.row([
            format_ms(e.at_ms),
            e.admin.clone(),
            e.role.clone(),
            e.action.clone(),
            e.target.clone(),
            e.outcome.clone(),
            e.detail.clone(),
        ]);
    }
    let mut out = t.render();
    if resp.truncated {
        let oldest = resp.entries.last().map_or(0, |e| e.at_ms);
        out.push_str(&format!(
            "({} newest shown; older ones match too: raise --limit, or narrow --since; the oldest shown is from {})\n",
            super::count_of(resp.entries.len() as u64, "entry", "entries"),
            format_ms(oldest)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::AuditEntry;

    fn entry(target: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            at_ms: 1_764_000_000_000,
            admin: "alice".into(),
            role: "operator".into(),
            action: "RevokeHost".into(),
            target: target.into(),
            outcome: if detail.is_empty() { "ok" } else { "failed" }.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn control_characters_in_targets_and_details_are_shown_escaped() {
        let resp = ListAuditResponse {
            entries: vec![
                entry("host web-1", ""),
                entry(
                    "host \u{1b}[2Jevil",
                    "NotFound: no host \"\u{1b}]0;x\u{7}\"",
                ),
            ],
            truncated: true,
        };
        let out = audit(&resp);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("host \\e[2Jevil"), "{out}");
        assert!(out.contains("2025-11-24T16:00:00Z"), "{out}");
        assert_eq!(out.lines().count(), 4, "header, two rows, the cut: {out}");
        assert!(out.contains("2 entries newest shown"), "{out}");
    }

    #[test]
    fn an_empty_trail_says_so() {
        assert!(audit(&ListAuditResponse::default()).contains("no admin actions"));
    }
}
