use std::io::Write;

use anyhow::Result;
use driftwatch_common::proto::{
    ForgetHostRequest, GetHostRequest, HostSummary, ListHostsRequest, RevokeHostRequest,
};
use driftwatch_common::time::{format_age, format_ms, now_ms};

use super::conn::Conn;
use super::output::{Csv, Format};
use super::values::HostState;
use super::{confirm, print_json};
use crate::render::{self, count, table::Table};

/// `hosts --label k=v --state S`: every label must match, any state may.
#[derive(Debug, Default)]
pub struct Filter {
    pub labels: Vec<(String, String)>,
    pub states: Vec<HostState>,
}

impl Filter {
    pub fn keeps(&self, h: &HostSummary) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| h.labels.iter().any(|l| &l.key == k && &l.value == v))
            && (self.states.is_empty() || self.states.iter().any(|s| s.as_str() == h.state))
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.states.is_empty()
    }
}

pub async fn list(conn: &Conn, filter: &Filter, format: Format, out: &mut dyn Write) -> Result<()> {
    let mut resp = conn
        .call("listing hosts", async |mut c| {
            c.list_hosts(ListHostsRequest {}).await
        })
        .await?;
    let all = resp.hosts.len();
    resp.hosts.retain(|h| filter.keeps(h));
    match format {
        Format::Json => return print_json(out, &resp),
        Format::Csv => return write_csv(out, &resp.hosts),
        Format::Table => {}
    }
    if resp.hosts.is_empty() {
        if all > 0 && !filter.is_empty() {
            writeln!(out, "no host matches (of {})", count(all as u64, "host"))?;
        } else {
            writeln!(out, "no host has reported yet")?;
        }
        return Ok(());
    }
    let now = now_ms();
    let mut t = Table::new([
        "HOST ID",
        "HOSTNAME",
        "OS",
        "LABELS",
        "STATE",
        "LAST SEEN",
        "STREAM",
        "DROPPED",
        "SECTIONS",
    ]);
    for h in &resp.hosts {
        t.row([
            h.host_id.clone(),
            h.hostname.clone(),
            h.os.clone(),
            labels(h),
            // Anything but fresh needs a look: stale, gone or revoked.
            if h.state == "fresh" || h.state.is_empty() {
                h.state.clone()
            } else {
                format!("! {}", h.state.to_uppercase())
            },
            format_age(h.last_seen_ms, now),
            if h.connected {
                "connected".into()
            } else {
                "-".into()
            },
            // Snapshots the agent's spool had to drop: a gap in history.
            if h.spool_dropped_total > 0 {
                format!("! {}", h.spool_dropped_total)
            } else {
                "0".into()
            },
            sections(h),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

pub async fn revoke(
    conn: &Conn,
    host: &str,
    yes: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    confirm(
        &format!("revoke host {host}"),
        "its certificate is refused from now on, and only re-enrollment gives the machine a new identity",
        yes,
    )?;
    let resp = conn
        .call(&format!("revoking host {host}"), async |mut c| {
            c.revoke_host(RevokeHostRequest {
                host: host.to_string(),
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let h = resp.host.unwrap_or_default();
    writeln!(
        out,
        "host {} ({}) revoked: its certificate is refused from now on; {} closed",
        h.host_id,
        h.hostname,
        count(resp.streams_closed, "open stream")
    )?;
    Ok(())
}

pub async fn forget(
    conn: &Conn,
    host: &str,
    yes: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    confirm(
        &format!("forget host {host}"),
        "its latest snapshot, history and findings are deleted; a revoked host stays refused",
        yes,
    )?;
    let resp = conn
        .call(&format!("forgetting host {host}"), async |mut c| {
            c.forget_host(ForgetHostRequest { host: host.into() }).await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let h = resp.host.unwrap_or_default();
    writeln!(
        out,
        "host {} ({}) forgotten: {} removed{}",
        h.host_id,
        h.hostname,
        count(resp.records_removed, "stored record"),
        if h.revoked_ms > 0 {
            "; its certificate stays refused"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// `hosts --format csv`: one row per host, every value whole (no ages, no
/// marks); times in RFC 3339, empty for never.
pub fn write_csv(out: &mut dyn Write, hosts: &[HostSummary]) -> Result<()> {
    let mut c = Csv::new(
        out,
        &[
            "host_id",
            "hostname",
            "os",
            "group",
            "labels",
            "state",
            "last_seen",
            "connected",
            "spool_dropped",
            "sections",
        ],
    )?;
    for h in hosts {
        let group = h.labels.iter().find(|l| l.key == "group");
        c.row([
            h.host_id.clone(),
            h.hostname.clone(),
            h.os.clone(),
            group.map(|l| l.value.clone()).unwrap_or_default(),
            labels(h),
            h.state.clone(),
            format_ms(h.last_seen_ms),
            h.connected.to_string(),
            h.spool_dropped_total.to_string(),
            h.sections
                .iter()
                .map(|s| format!("{}:{}", s.name, s.status))
                .collect::<Vec<_>>()
                .join(" "),
        ])?;
    }
    c.finish()
}

pub(crate) fn labels(h: &HostSummary) -> String {
    h.labels
        .iter()
        .map(|l| format!("{}={}", l.key, l.value))
        .collect::<Vec<_>>()
        .join(",")
}

/// "7 ok" when all is well; otherwise the sections that are not, named.
fn sections(h: &HostSummary) -> String {
    let ok = h.sections.iter().filter(|s| s.status == "ok").count();
    let mut parts = vec![format!("{ok} ok")];
    for s in h.sections.iter().filter(|s| s.status != "ok") {
        let mark = if s.status == "error" { "!" } else { "" };
        parts.push(format!("{mark}{}:{}", s.name, s.status));
    }
    parts.join(" ")
}

pub async fn show(
    conn: &Conn,
    host: &str,
    sections: Vec<String>,
    opts: &render::Options,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = conn
        .call(&format!("showing host {host}"), async |mut c| {
            c.get_host(GetHostRequest {
                host: host.to_string(),
                sections,
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let h = resp.host.unwrap_or_default();
    writeln!(out, "host     {} ({})", h.hostname, h.host_id)?;
    writeln!(out, "os       {}", h.os)?;
    writeln!(out, "labels   {}", labels(&h))?;
    writeln!(
        out,
        "seen     first {}, last {} ({}), seq {}, {} stored",
        format_ms(h.first_seen_ms),
        format_ms(h.last_seen_ms),
        format_age(h.last_seen_ms, now_ms()),
        h.last_seq,
        count(h.snapshots_stored, "snapshot")
    )?;
    if h.revoked_ms > 0 {
        writeln!(
            out,
            "! REVOKED {} by {}",
            format_ms(h.revoked_ms),
            h.revoked_by
        )?;
    }
    if !h.previous_host_id.is_empty() {
        writeln!(
            out,
            "lineage  re-enrolled from {} (its disk was cloned or its machine changed)",
            h.previous_host_id
        )?;
    }
    if !h.unverified_previous_host_id.is_empty() {
        writeln!(
            out,
            "! claims to be re-enrolled from {} without proof ({}): not recorded as lineage",
            h.unverified_previous_host_id, h.unverified_previous_reason
        )?;
    }
    if !h.successor_host_ids.is_empty() {
        writeln!(
            out,
            "lineage  cloned into {}",
            h.successor_host_ids.join(", ")
        )?;
    }
    if h.spool_dropped_total > 0 {
        writeln!(
            out,
            "! the agent's spool dropped {} while it could not report",
            count(h.spool_dropped_total, "snapshot")
        )?;
    }
    let Some(snap) = resp.snapshot else {
        writeln!(out, "no snapshot stored")?;
        return Ok(());
    };
    writeln!(
        out,
        "snapshot collected {} by agent {}",
        format_ms(snap.collected_at_ms),
        snap.agent_version
    )?;
    let now = now_ms();
    for s in &snap.sections {
        writeln!(out)?;
        let note = render::values_age(s, snap.collected_at_ms, now);
        write!(out, "{}", render::section(s, opts, note.as_deref()))?;
    }
    Ok(())
}
