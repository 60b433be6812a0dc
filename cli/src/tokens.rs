use std::io::Write;

use anyhow::Result;
use driftwatch_common::proto::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest, Token};
use driftwatch_common::time::format_ms;

use super::conn::Conn;
use super::print_json;
use crate::render::table::Table;

fn uses(t: &Token) -> String {
    if t.uses_max == 0 {
        format!("{}/unlimited", t.uses)
    } else {
        format!("{}/{}", t.uses, t.uses_max)
    }
}

pub async fn create(
    conn: &Conn,
    group: &str,
    ttl: std::time::Duration,
    max_uses: u32,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = conn
        .call("creating a token", async |mut c| {
            c.create_token(CreateTokenRequest {
                group: group.into(),
                ttl_s: ttl.as_secs().max(1),
                uses: max_uses,
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let info = resp.info.unwrap_or_default();
    writeln!(out, "{}", resp.token)?;
    writeln!(
        out,
        "\ntoken {} for group {:?}, expires {}, uses {}.\nThis is the only time the token is shown: store it now (e.g. in the image's agent config).",
        info.id,
        info.group,
        format_ms(info.expires_ms),
        uses(&info)
    )?;
    Ok(())
}

pub async fn list(conn: &Conn, json: bool, out: &mut dyn Write) -> Result<()> {
    let resp = conn
        .call("listing tokens", async |mut c| {
            c.list_tokens(ListTokensRequest {}).await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    if resp.tokens.is_empty() {
        writeln!(
            out,
            "no enrollment tokens: `driftwatch tokens create --group G --ttl 7d` makes one"
        )?;
        return Ok(());
    }
    let mut t = Table::new(["ID", "GROUP", "STATE", "USES", "CREATED", "EXPIRES", "BY"]);
    for k in &resp.tokens {
        t.row([
            k.id.clone(),
            k.group.clone(),
            k.state.clone(),
            uses(k),
            format_ms(k.created_ms),
            format_ms(k.expires_ms),
            k.created_by.clone(),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

pub async fn revoke(conn: &Conn, id: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let resp = conn
        .call(&format!("revoking token {id}"), async |mut c| {
            c.revoke_token(RevokeTokenRequest { id: id.into() }).await
        })
        .await?;
    if json {
        print_json(out, &resp)?;
    } else {
        writeln!(
            out,
            "token {id} revoked: no further host can enroll with it (hosts already enrolled keep their identity)"
        )?;
    }
    Ok(())
}
