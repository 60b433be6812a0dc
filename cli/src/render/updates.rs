//! The `updates` table: pending updates, security ones marked `!`, the
//! time of the indexes they were computed from, and whether a reboot waits.

use driftwatch_common::proto::UpdatesSection;
use driftwatch_common::time::format_ms;

use super::Options;
use super::table::{Table, clip};

pub fn render(u: &UpdatesSection, opts: &Options) -> String {
    let refreshed = if u.index_refreshed_ms > 0 {
        format!("indexes as of {}", format_ms(u.index_refreshed_ms))
    } else {
        "no apt indexes".to_string()
    };
    let mut out = format!(
        "{} ({} security), {refreshed}\n",
        super::count(u.updates.len() as u64, "pending update"),
        u.security_count
    );
    if let Some(r) = u.reboot.as_ref() {
        if r.required {
            out.push_str(&format!("! reboot required: {}\n", r.reasons.join("; ")));
            if !r.packages.is_empty() {
                out.push_str(&format!("  for {}\n", r.packages.join(" ")));
            }
        } else if !r.running_kernel.is_empty() {
            out.push_str(&format!(
                "no reboot required (kernel {})\n",
                r.running_kernel
            ));
        }
    }
    let shown = if opts.limit > 0 {
        opts.limit.min(u.updates.len())
    } else {
        u.updates.len()
    };
    let mut t = Table::new(["", "NAME", "ARCH", "INSTALLED", "CANDIDATE", "SUITE"]);
    for p in &u.updates[..shown] {
        t.row([
            if p.security { "!" } else { "" }.to_string(),
            p.name.clone(),
            p.architecture.clone(),
            clip(&p.installed_version, 40),
            clip(&p.candidate_version, 40),
            p.suite.clone(),
        ]);
    }
    if !t.is_empty() {
        out.push_str(&t.render());
    }
    if shown < u.updates.len() {
        out.push_str(&format!(
            "… {} more (use --limit 0 for all)\n",
            u.updates.len() - shown
        ));
    }
    for p in &u.problems {
        let at = if p.line > 0 {
            format!("{}:{}", p.source, p.line)
        } else {
            p.source.clone()
        };
        out.push_str(&format!("! {at}: {}\n", p.message));
    }
    out
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::{PendingUpdate, RebootStatus};

    use super::*;

    #[test]
    fn security_rows_and_reboot_are_marked() {
        let u = UpdatesSection {
            source: "apt".into(),
            updates: vec![PendingUpdate {
                name: "jq".into(),
                architecture: "amd64".into(),
                installed_version: "1.6-2.1+deb12u1".into(),
                candidate_version: "1.6-2.1+deb12u3".into(),
                security: true,
                suite: "oldstable-security".into(),
            }],
            security_count: 1,
            index_refreshed_ms: 1_764_000_000_000,
            reboot: Some(RebootStatus {
                required: true,
                reasons: vec!["/var/run/reboot-required exists".into()],
                packages: vec!["libc6".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            render(&u, &Options::default()),
            "1 pending update (1 security), indexes as of 2025-11-24T16:00:00Z\n\
             ! reboot required: /var/run/reboot-required exists\n\
             \u{20} for libc6\n\
             \u{20}  NAME  ARCH   INSTALLED        CANDIDATE        SUITE\n\
             !  jq    amd64  1.6-2.1+deb12u1  1.6-2.1+deb12u3  oldstable-security\n"
        );
    }
}
