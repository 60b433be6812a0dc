//! `driftwatch audit`: the collector's trail of admin actions.

use std::io::Write;

use anyhow::Result;
use driftwatch_common::proto::ListAuditRequest;

use super::conn::Conn;
use super::print_json;

pub async fn list(
    conn: &Conn,
    since_ms: i64,
    limit: u32,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = conn
        .call("reading the audit trail", async |mut c| {
            c.list_audit(ListAuditRequest { since_ms, limit }).await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    write!(out, "{}", crate::render::audit::audit(&resp))?;
    Ok(())
}
