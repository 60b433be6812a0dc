//! `driftwatch report --html FILE`: the fleet on one page, from the Admin
//! calls every other command makes (hosts, drift, and each host's ssh_keys
//! and raid sections): no RPC of its own, so any collector that answers
//! `hosts` and `host show` can be reported on.

pub mod html;
pub mod model;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use driftwatch_common::proto::{DriftRequest, GetHostRequest, ListHostsRequest};
use driftwatch_common::time::now_ms;

use crate::conn::{Conn, explain_status};
use crate::print_json;
use crate::render::count;
use model::HostData;

/// The sections the report reads of each host; the rest of a snapshot
/// (processes, packages) is not fetched.
const SECTIONS: &[&str] = &["ssh_keys", "raid"];

pub async fn report(conn: &Conn, html: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let hosts = conn
        .call("listing hosts", async |mut c| {
            c.list_hosts(ListHostsRequest {}).await
        })
        .await?
        .hosts;
    let drift = conn
        .call("listing findings", async |mut c| {
            c.drift(DriftRequest::default()).await
        })
        .await?;
    if !drift.policy_error.is_empty() {
        eprintln!("warning: {}", drift.policy_error);
    }
    // One connection for every host's sections, not a handshake each.
    let mut client = conn.admin().await?;
    let mut data = Vec::with_capacity(hosts.len());
    for summary in hosts {
        let answer = client
            .get_host(GetHostRequest {
                host: summary.host_id.clone(),
                sections: SECTIONS.iter().map(|s| s.to_string()).collect(),
            })
            .await;
        let sections = match answer {
            Ok(a) => a
                .into_inner()
                .snapshot
                .map(|s| s.sections)
                .unwrap_or_default(),
            // Forgotten between the list and now: it is gone from the fleet.
            Err(s) if s.code() == tonic::Code::NotFound => continue,
            Err(s) => {
                return Err(explain_status(
                    &format!("reading host {}", summary.host_id),
                    &s,
                ));
            }
        };
        data.push(HostData { summary, sections });
    }
    let report = model::build(data, drift.findings, now_ms());
    let page = html::render(&report);
    std::fs::write(html, page)
        .with_context(|| format!("writing the report to {}", html.display()))?;
    if json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "wrote {}: {}, {}, {} on more than one host, {} reporting RAID",
        html.display(),
        count(report.hosts, "host"),
        count(report.findings.len() as u64, "open finding"),
        count(report.shared_keys.len() as u64, "key"),
        count(report.raid.len() as u64, "host"),
    )?;
    Ok(())
}
