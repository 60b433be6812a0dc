//! `driftwatch notify test`: a test event through the collector's outbox
//! and delivery path, and how its first attempt went per receiver.

use std::io::Write;

use anyhow::Result;
use driftwatch_common::proto::NotifyTestRequest;

use super::conn::Conn;
use super::print_json;
use crate::render::table::Table;

/// Returns whether any receiver did not take it (exit 1).
pub async fn test(
    conn: &Conn,
    name: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool> {
    let resp = conn
        .call("sending a test notification", async |mut c| {
            c.notify_test(NotifyTestRequest {
                name: name.unwrap_or_default().into(),
            })
            .await
        })
        .await?;
    let failed = resp.results.iter().any(|r| !r.delivered);
    if json {
        print_json(out, &resp)?;
        return Ok(failed);
    }
    let mut t = Table::new(["RECEIVER", "RESULT", "HTTP", "TIME", "KEY", "ERROR"]);
    for r in &resp.results {
        let result = if r.delivered {
            "delivered"
        } else if r.rejected {
            "rejected (dropped)"
        } else {
            "not yet (queued, retried)"
        };
        let status = if r.http_status == 0 {
            "-".to_string()
        } else {
            r.http_status.to_string()
        };
        t.row(vec![
            r.name.clone(),
            result.into(),
            status,
            format!("{} ms", r.elapsed_ms),
            r.idempotency_key.clone(),
            r.error.clone(),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(failed)
}
