//! `driftwatch keys`: find a key across the fleet, sweep it off every host,
//! and read the sweeps' audit log.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::proto::{
    FindKeysRequest, GetSweepRequest, KeySelector, ListHostsRequest, ListSweepsRequest,
    StartSweepRequest, SweepJob,
};
use driftwatch_common::time::{format_ms, parse_duration};
use tonic::transport::Channel;

use super::conn::{Conn, explain_status};
use super::{Incomplete, print_json};
use crate::render::table::{Table, clip};

/// The selector both `find` and `sweep` take, as clap parsed it.
pub struct KeyChoice {
    pub fingerprint: Option<String>,
    pub pubkey: Option<std::path::PathBuf>,
    pub comment: Option<String>,
}

/// The fingerprint of the public key in an OpenSSH `.pub` file, as
/// `ssh-keygen -lf` prints it.
pub fn pubkey_fingerprint(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key file {}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} holds no key", path.display()))?;
    // A certificate (id_ed25519-cert.pub) names the key it certifies, as
    // the agents' fingerprints of certificate lines do.
    let key = match ssh_key::PublicKey::from_openssh(line) {
        Ok(k) => k,
        Err(_) => ssh_key::Certificate::from_openssh(line)
            .map(|c| ssh_key::PublicKey::from(c.public_key().clone()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} is not an OpenSSH public key (`type base64 [comment]`, like id_ed25519.pub)",
                    path.display()
                )
            })?,
    };
    Ok(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}

impl KeyChoice {
    pub fn selector(&self) -> Result<KeySelector> {
        Ok(match (&self.fingerprint, &self.pubkey, &self.comment) {
            (Some(fp), None, None) => KeySelector {
                fingerprint: fp.trim().to_string(),
                ..Default::default()
            },
            (None, Some(p), None) => KeySelector {
                fingerprint: pubkey_fingerprint(p)?,
                ..Default::default()
            },
            (None, None, Some(c)) => KeySelector {
                comment: c.clone(),
                ..Default::default()
            },
            _ => bail!("name the key by exactly one of --fingerprint, --pubkey or --comment"),
        })
    }
}

fn describe(sel: &KeySelector) -> String {
    if sel.fingerprint.is_empty() {
        format!("comment {:?}", sel.comment)
    } else {
        sel.fingerprint.clone()
    }
}

pub async fn find(conn: &Conn, key: &KeyChoice, json: bool, out: &mut dyn Write) -> Result<()> {
    let selector = key.selector()?;
    let mut client = AdminClient::new(conn.channel().await?);
    let resp = client
        .find_keys(FindKeysRequest {
            selector: Some(selector.clone()),
        })
        .await
        .map_err(|s| explain_status("searching for the key", &s))?
        .into_inner();
    if json {
        return print_json(out, &resp);
    }
    if resp.locations.is_empty() {
        writeln!(
            out,
            "{} is on no host (latest snapshots of {} host{})",
            describe(&selector),
            resp.hosts_indexed,
            if resp.hosts_indexed == 1 { "" } else { "s" }
        )?;
        return Ok(());
    }
    let mut t = Table::new([
        "HOST", "HOSTNAME", "USER", "FILE", "LINE", "OPTIONS", "COMMENT",
    ]);
    for l in &resp.locations {
        t.row([
            if l.host_revoked {
                format!("{} (revoked)", l.host_id)
            } else {
                l.host_id.clone()
            },
            l.hostname.clone(),
            l.user.clone(),
            l.path.clone(),
            l.line.to_string(),
            clip(&l.options.join(","), 40),
            clip(&l.comment, 40),
        ]);
    }
    write!(out, "{}", t.render())?;
    if resp.locations.iter().any(|l| l.host_revoked) {
        writeln!(
            out,
            "(revoked): the collector refuses that host's agent, so a sweep cannot reach it; re-image it or remove the key by hand"
        )?;
    }
    Ok(())
}

pub struct SweepArgs {
    pub remove: bool,
    pub yes: bool,
    pub timeout: String,
    pub expires: String,
}

/// Lists the hosts the sweep will touch and asks on the terminal.
async fn confirm(client: &mut AdminClient<Channel>, sel: &KeySelector) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to remove keys without confirmation: there is no terminal to ask on; pass --yes to confirm (e.g. in scripts)"
        );
    }
    let hosts = client
        .list_hosts(ListHostsRequest {})
        .await
        .map_err(|s| explain_status("listing hosts", &s))?
        .into_inner()
        .hosts;
    let found = client
        .find_keys(FindKeysRequest {
            selector: Some(sel.clone()),
        })
        .await
        .map_err(|s| explain_status("searching for the key", &s))?
        .into_inner()
        .locations;
    let live: Vec<_> = hosts.iter().filter(|h| h.revoked_ms == 0).collect();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "This removes {} from every key file of every user on these {} hosts\n(each re-scans its own files; offline hosts run it when they reconnect):",
        describe(sel),
        live.len()
    )?;
    let mut t = Table::new(["HOST", "HOSTNAME", "CONNECTED", "LINES IN LATEST SNAPSHOT"]);
    for h in &live {
        let n = found.iter().filter(|l| l.host_id == h.host_id).count();
        t.row([
            h.host_id.clone(),
            h.hostname.clone(),
            if h.connected { "yes" } else { "no (pending)" }.into(),
            n.to_string(),
        ]);
    }
    write!(err, "{}", t.render())?;
    write!(err, "Proceed? Type 'yes' to remove: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("sweep cancelled: nothing was changed");
    }
    Ok(())
}

pub async fn sweep(
    conn: &Conn,
    key: &KeyChoice,
    args: &SweepArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let selector = key.selector()?;
    let timeout = parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let expires = parse_duration(&args.expires).map_err(anyhow::Error::msg)?;
    let mut client = AdminClient::new(conn.channel().await?);
    if args.remove && !args.yes {
        confirm(&mut client, &selector).await?;
    }
    let job = client
        .start_sweep(StartSweepRequest {
            selector: Some(selector),
            remove: args.remove,
            ttl_s: expires.as_secs().max(1),
        })
        .await
        .map_err(|s| explain_status("starting the sweep", &s))?
        .into_inner();
    eprintln!(
        "sweep {} {} on {} hosts",
        job.id,
        if job.remove {
            "started"
        } else {
            "(dry run) started"
        },
        job.hosts.len()
    );
    let job = follow(&mut client, job, timeout).await?;
    report(&job, json, out)
}

/// Polls the job until no host is pending or `timeout` passes, printing
/// progress to stderr (stdout stays clean for --json).
async fn follow(
    client: &mut AdminClient<Channel>,
    mut job: SweepJob,
    timeout: Duration,
) -> Result<SweepJob> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let now = (job.hosts_done, job.hosts_pending, job.hosts_failed);
        if last != Some(now) {
            eprintln!(
                "  {} done, {} pending, {} failed (of {})",
                job.hosts_done,
                job.hosts_pending,
                job.hosts_failed,
                job.hosts.len()
            );
            last = Some(now);
        }
        if job.hosts_pending == 0 || Instant::now() >= deadline {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        job = client
            .get_sweep(GetSweepRequest { id: job.id.clone() })
            .await
            .map_err(|s| explain_status("reading the sweep", &s))?
            .into_inner();
    }
}

/// The summary table (or JSON), then an [`Incomplete`] error when any host
/// failed, is pending or expired: the exit code scripts act on.
fn report(job: &SweepJob, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        print_json(out, job)?;
    } else {
        writeln!(
            out,
            "sweep {} ({}) of {} by {} at {}",
            job.id,
            if job.remove { "remove" } else { "dry run" },
            describe(&job.selector.clone().unwrap_or_default()),
            job.requested_by,
            format_ms(job.created_ms)
        )?;
        let mut t = Table::new([
            "HOST", "HOSTNAME", "STATUS", "USER", "FILE", "LINES", "RESULT",
        ]);
        for h in &job.hosts {
            if h.files.is_empty() {
                let msg = if h.status == "pending" {
                    format!("waiting for the host (until {})", format_ms(job.expires_ms))
                } else {
                    h.message.clone()
                };
                t.row([
                    h.host_id.clone(),
                    h.hostname.clone(),
                    h.status.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    msg,
                ]);
            }
            for f in &h.files {
                let lines: Vec<String> = f.lines.iter().map(u32::to_string).collect();
                let result = if f.message.is_empty() {
                    f.status.clone()
                } else {
                    format!("{}: {}", f.status, clip(&f.message, 80))
                };
                t.row([
                    h.host_id.clone(),
                    h.hostname.clone(),
                    h.status.clone(),
                    f.user.clone(),
                    f.path.clone(),
                    if lines.is_empty() {
                        "-".into()
                    } else {
                        lines.join(",")
                    },
                    result,
                ]);
            }
        }
        write!(out, "{}", t.render())?;
        writeln!(
            out,
            "{} done, {} pending, {} failed, {} expired; {} line(s) removed",
            job.hosts_done,
            job.hosts_pending,
            job.hosts_failed,
            job.hosts_expired,
            job.lines_removed
        )?;
    }
    if job.hosts_failed + job.hosts_pending + job.hosts_expired > 0 {
        return Err(Incomplete {
            message: format!(
                "sweep {}: {} host(s) failed, {} still pending, {} expired (`driftwatch keys sweep-status {}` follows it)",
                job.id, job.hosts_failed, job.hosts_pending, job.hosts_expired, job.id
            ),
        }
        .into());
    }
    Ok(())
}

pub async fn sweeps(conn: &Conn, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut client = AdminClient::new(conn.channel().await?);
    let resp = client
        .list_sweeps(ListSweepsRequest {})
        .await
        .map_err(|s| explain_status("listing sweeps", &s))?
        .into_inner();
    if json {
        return print_json(out, &resp);
    }
    if resp.sweeps.is_empty() {
        writeln!(
            out,
            "no sweeps yet: `driftwatch keys sweep --help` says how"
        )?;
        return Ok(());
    }
    let mut t = Table::new([
        "ID", "CREATED", "BY", "KEY", "MODE", "DONE", "PENDING", "FAILED", "EXPIRED", "LINES",
    ]);
    for j in &resp.sweeps {
        t.row([
            j.id.clone(),
            format_ms(j.created_ms),
            j.requested_by.clone(),
            describe(&j.selector.clone().unwrap_or_default()),
            if j.remove { "remove" } else { "dry run" }.into(),
            j.hosts_done.to_string(),
            j.hosts_pending.to_string(),
            j.hosts_failed.to_string(),
            j.hosts_expired.to_string(),
            j.lines_removed.to_string(),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

pub async fn sweep_status(conn: &Conn, id: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut client = AdminClient::new(conn.channel().await?);
    let job = client
        .get_sweep(GetSweepRequest { id: id.into() })
        .await
        .map_err(|s| explain_status(&format!("reading sweep {id}"), &s))?
        .into_inner();
    report(&job, json, out)
}
