use std::io::Write;

use anyhow::Result;
use driftwatch_common::proto::{
    ApproveBaselineRequest, DiffRequest, DriftRequest, Finding, HistoryRequest,
    ListBaselinesRequest, SectionChanges, SetBaselineRequest,
};
use driftwatch_common::time::{format_age, format_ms, now_ms};

use super::conn::Conn;
use super::output::{Csv, Format};
use super::print_json;
use crate::render::count;
use crate::render::table::{Table, clip};
use driftwatch_common::severity::Severity;

fn write_changes(out: &mut dyn Write, sections: &[SectionChanges], indent: &str) -> Result<()> {
    let width = sections.iter().map(|s| s.section.len()).max().unwrap_or(0);
    for s in sections {
        for c in &s.changes {
            writeln!(out, "{indent}{:<width$}  {}", s.section, c.text)?;
        }
    }
    Ok(())
}

pub struct HistoryArgs<'a> {
    pub host: &'a str,
    pub since_ms: i64,
    pub sections: Vec<String>,
    pub limit: u32,
}

pub async fn history(
    conn: &Conn,
    a: HistoryArgs<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let host = a.host;
    let resp = conn
        .call(&format!("history of {host}"), async |mut c| {
            c.history(HistoryRequest {
                host: host.into(),
                since_ms: a.since_ms,
                sections: a.sections,
                limit: a.limit,
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    if resp.entries.is_empty() {
        writeln!(out, "{}: no stored change in that period", resp.host_id)?;
    }
    for e in &resp.entries {
        let n: usize = e.sections.iter().map(|s| s.changes.len()).sum();
        writeln!(
            out,
            "seq {}  {}  {}",
            e.seq,
            format_ms(e.collected_at_ms),
            count(n as u64, "change")
        )?;
        write_changes(out, &e.sections, "  ")?;
    }
    Ok(())
}

pub struct DiffArgs<'a> {
    pub host: &'a str,
    pub other: Option<&'a str>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub baseline: Option<&'a str>,
}

pub async fn diff(conn: &Conn, a: DiffArgs<'_>, json: bool, out: &mut dyn Write) -> Result<()> {
    let resp = conn
        .call(&format!("diff of {}", a.host), async |mut c| {
            c.diff(DiffRequest {
                host: a.host.into(),
                other_host: a.other.unwrap_or_default().into(),
                from: a.from.unwrap_or_default(),
                to: a.to.unwrap_or_default(),
                baseline: a.baseline.unwrap_or_default().into(),
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    writeln!(out, "--- {}\n+++ {}", resp.from, resp.to)?;
    if resp.sections.is_empty() {
        writeln!(out, "no differences")?;
    }
    write_changes(out, &resp.sections, "")
}

pub struct DriftArgs<'a> {
    pub host: Option<&'a str>,
    pub group: Option<&'a str>,
    pub min_severity: Option<Severity>,
    pub all: bool,
    pub fail_on: Option<Severity>,
}

/// Returns whether an open finding is at or above `--fail-on`.
pub async fn drift(
    conn: &Conn,
    a: DriftArgs<'_>,
    format: Format,
    out: &mut dyn Write,
) -> Result<bool> {
    let fail_at = a.fail_on;
    let resp = conn
        .call("drift", async |mut c| {
            c.drift(DriftRequest {
                host: a.host.unwrap_or_default().into(),
                group: a.group.unwrap_or_default().into(),
                min_severity: a
                    .min_severity
                    .map(|s| s.as_str())
                    .unwrap_or_default()
                    .into(),
                all: a.all,
            })
            .await
        })
        .await?;
    // A word this build does not know counts as the lowest.
    let failing = fail_at.is_some_and(|r| {
        resp.findings
            .iter()
            .any(|f| f.resolved_ms == 0 && Severity::of(&f.severity).unwrap_or(Severity::Info) >= r)
    });
    if !resp.policy_error.is_empty() {
        eprintln!("warning: {}", resp.policy_error);
    }
    match format {
        Format::Json => print_json(out, &resp)?,
        Format::Csv => write_csv(out, &resp.findings)?,
        Format::Table => write_table(out, &resp.findings)?,
    }
    Ok(failing)
}

/// `drift --format csv`: one row per finding, the message whole; times in
/// RFC 3339 (`resolved` empty while open).
pub fn write_csv(out: &mut dyn Write, findings: &[Finding]) -> Result<()> {
    let mut c = Csv::new(
        out,
        &[
            "severity",
            "host_id",
            "hostname",
            "kind",
            "section",
            "item",
            "rule",
            "first_seen",
            "last_seen",
            "resolved",
            "message",
            "id",
        ],
    )?;
    for f in findings {
        c.row([
            f.severity.as_str(),
            &f.host_id,
            &f.hostname,
            &f.kind,
            &f.section,
            &f.item,
            &f.rule,
            &format_ms(f.first_seen_ms),
            &format_ms(f.last_seen_ms),
            &format_ms(f.resolved_ms),
            &f.message,
            &f.id,
        ])?;
    }
    c.finish()
}

fn write_table(out: &mut dyn Write, findings: &[Finding]) -> Result<()> {
    if findings.is_empty() {
        writeln!(out, "no findings")?;
        return Ok(());
    }
    let now = now_ms();
    // The host id is the identity: clones share a hostname.
    let mut t = Table::new([
        "SEVERITY", "HOST ID", "HOSTNAME", "KIND", "SECTION", "SINCE", "FINDING",
    ]);
    for f in findings {
        let sev = if f.resolved_ms > 0 {
            format!("resolved ({})", f.severity)
        } else {
            f.severity.to_uppercase()
        };
        let since = if f.resolved_ms > 0 {
            format_age(f.resolved_ms, now)
        } else {
            format_age(f.first_seen_ms, now)
        };
        t.row([
            sev,
            f.host_id.clone(),
            f.hostname.clone(),
            f.kind.clone(),
            f.section.clone(),
            since,
            clip(&f.message, 110),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

pub async fn baseline_set(
    conn: &Conn,
    name: &str,
    host: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = conn
        .call(&format!("setting baseline {name}"), async |mut c| {
            c.set_baseline(SetBaselineRequest {
                name: name.into(),
                from_host: host.into(),
            })
            .await
        })
        .await?;
    if json {
        print_json(out, &resp)?;
    } else {
        writeln!(
            out,
            "baseline {name} set from {host}; hosts labelled baseline={name} are compared with it"
        )?;
    }
    Ok(())
}

pub async fn baseline_approve(
    conn: &Conn,
    image_id: &str,
    host: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = conn
        .call(
            &format!("approving image {image_id}'s baseline"),
            async |mut c| {
                c.approve_baseline(ApproveBaselineRequest {
                    image_id: image_id.into(),
                    from_host: host.into(),
                })
                .await
            },
        )
        .await?;
    if json {
        print_json(out, &resp)?;
    } else {
        writeln!(
            out,
            "image {image_id}'s baseline is now what {host} uploaded; its hosts are compared with it"
        )?;
    }
    Ok(())
}

pub async fn baseline_list(conn: &Conn, json: bool, out: &mut dyn Write) -> Result<()> {
    let resp = conn
        .call("listing baselines", async |mut c| {
            c.list_baselines(ListBaselinesRequest {}).await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let mut t = Table::new(["NAME", "IMAGE", "CREATED", "SOURCE"]);
    for b in &resp.baselines {
        t.row([
            b.name.clone(),
            b.image_id.clone(),
            format_ms(b.created_ms),
            b.source.clone(),
        ]);
    }
    write!(
        out,
        "{}",
        if t.is_empty() {
            "no baselines\n".to_string()
        } else {
            t.render()
        }
    )?;
    if !resp.candidates.is_empty() {
        let mut c = Table::new(["IMAGE", "UPLOADED BY", "CONTENT", "STATE"]);
        for x in &resp.candidates {
            let decided = resp.baselines.iter().any(|b| b.image_id == x.image_id);
            c.row([
                x.image_id.clone(),
                x.host_id.clone(),
                x.content_hash.chars().take(12).collect(),
                match (decided, x.differs_from_baseline) {
                    (false, _) => "unconfirmed".to_string(),
                    (true, true) => "DIFFERS from the image's baseline".to_string(),
                    (true, false) => "matches".to_string(),
                },
            ]);
        }
        write!(out, "\nuploaded bake-time baselines:\n{}", c.render())?;
    }
    Ok(())
}
