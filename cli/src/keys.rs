//! `driftwatch keys`: find a key across the fleet, sweep it off every host,
//! and read the sweeps' audit log.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::proto::{
    FindKeysRequest, GetSweepRequest, KeySelector, ListHostsRequest, ListSweepsRequest,
    StartSweepRequest, SweepJob,
};
use driftwatch_common::time::format_ms;
use tonic::transport::Channel;

use super::conn::{Conn, explain_status};
use super::{Incomplete, Usage, print_json};
use crate::render::count;
use crate::render::table::{Table, clip};

/// The selector both `find` and `sweep` take, as clap parsed it.
pub struct KeyChoice {
    pub fingerprints: Vec<String>,
    pub pubkey: Option<std::path::PathBuf>,
    pub comments: Vec<String>,
}

/// One key asked about, and how to name it to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A fingerprint, with where it came from ("leaver.pub line 2: bob@x").
    Fingerprint {
        fingerprint: String,
        from: String,
    },
    Comment(String),
}

impl Wanted {
    fn holds(&self, fingerprint: &str, comment: &str) -> bool {
        match self {
            Wanted::Fingerprint { fingerprint: f, .. } => f == fingerprint,
            Wanted::Comment(c) => !comment.is_empty() && c == comment,
        }
    }

    fn name(&self) -> String {
        match self {
            Wanted::Fingerprint { fingerprint, from } if from.is_empty() => fingerprint.clone(),
            Wanted::Fingerprint { fingerprint, from } => format!("{fingerprint} ({from})"),
            Wanted::Comment(c) => format!("comment {c:?}"),
        }
    }
}

/// The fingerprint of `type base64 [comment]`, or of the key a
/// certificate certifies, as `ssh-keygen -lf` prints it.
fn key_fingerprint(text: &str) -> Option<(String, String)> {
    if let Ok(k) = ssh_key::PublicKey::from_openssh(text) {
        return Some((
            k.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
            k.comment().to_string(),
        ));
    }
    // A certificate (id_ed25519-cert.pub) names the key it certifies, as
    // the agents' fingerprints of certificate lines do.
    let c = ssh_key::Certificate::from_openssh(text).ok()?;
    let k = ssh_key::PublicKey::from(c.public_key().clone());
    Some((
        k.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
        c.comment().to_string(),
    ))
}

/// One authorized_keys line: as sshd reads it, the key itself, or else an
/// options field (up to the first blank outside double quotes) and then the
/// key.
fn line_fingerprint(line: &str) -> Option<(String, String)> {
    if let Some(k) = key_fingerprint(line) {
        return Some(k);
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return key_fingerprint(line[i..].trim_start()),
            _ => {}
        }
    }
    None
}

/// Every key of an authorized_keys-format text (a `.pub` file, an
/// authorized_keys file, a `https://github.com/USER.keys` export): blank
/// and `#` lines skipped, options and comments allowed. A line that is not
/// a key is an error naming it: skipping it would leave that key on every
/// server while the answer says "on no host".
pub fn parse_pubkeys(text: &str, source: &str) -> Result<Vec<Wanted>, super::Usage> {
    let mut out: Vec<Wanted> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let (fingerprint, comment) = line_fingerprint(line).ok_or_else(|| {
            super::Usage(format!(
                "{source} line {n} is not an OpenSSH public key (`[options] type base64 [comment]`, like id_ed25519.pub): {:?}",
                crate::render::table::clip(line, 60)
            ))
        })?;
        let from = if comment.is_empty() {
            format!("{source} line {n}")
        } else {
            format!("{source} line {n}: {comment}")
        };
        if !out.iter().any(|w| w.holds(&fingerprint, "")) {
            out.push(Wanted::Fingerprint { fingerprint, from });
        }
    }
    if out.is_empty() {
        return Err(super::Usage(format!(
            "{source} holds no key (only blank or # lines)"
        )));
    }
    Ok(out)
}

/// A key export is a few kilobytes; more than this is not one (a device, a
/// wrong file), and reading it whole would only cost memory.
const MAX_PUBKEY_BYTES: u64 = 1 << 20;

fn read_bounded(r: impl std::io::Read, source: &str) -> Result<String> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut r.take(MAX_PUBKEY_BYTES + 1), &mut buf)
        .with_context(|| format!("cannot read public keys from {source}"))?;
    if buf.len() as u64 > MAX_PUBKEY_BYTES {
        return Err(Usage(format!(
            "{source} is larger than {} KiB: not a public key file",
            MAX_PUBKEY_BYTES / 1024
        ))
        .into());
    }
    String::from_utf8(buf)
        .map_err(|_| Usage(format!("{source} is not UTF-8 text: not a public key file")).into())
}

impl KeyChoice {
    /// Every key asked about, in the order given: --pubkey's keys, then
    /// --fingerprint, then --comment.
    pub fn wanted(&self) -> Result<Vec<Wanted>> {
        let mut out = Vec::new();
        if let Some(p) = &self.pubkey {
            let (reader, source): (Box<dyn std::io::Read>, String) = if p.as_os_str() == "-" {
                (Box::new(std::io::stdin()), "standard input".into())
            } else {
                let f = std::fs::File::open(p).map_err(|e| {
                    Usage(format!("cannot read public key file {}: {e}", p.display()))
                })?;
                (Box::new(f), p.display().to_string())
            };
            let text = read_bounded(reader, &source)?;
            out.extend(parse_pubkeys(&text, &source)?);
        }
        for f in &self.fingerprints {
            out.push(Wanted::Fingerprint {
                fingerprint: f.trim().to_string(),
                from: String::new(),
            });
        }
        out.extend(self.comments.iter().cloned().map(Wanted::Comment));
        if out.is_empty() {
            return Err(super::Usage(
                "name the key by --fingerprint, --pubkey or --comment".into(),
            )
            .into());
        }
        Ok(out)
    }
}

/// The selector for the collector: only the repeated fields, so an agent
/// that knows only a single key refuses rather than sweeping one of them.
pub fn selector(wanted: &[Wanted]) -> KeySelector {
    let mut sel = KeySelector::default();
    for w in wanted {
        match w {
            Wanted::Fingerprint { fingerprint, .. } => sel.fingerprints.push(fingerprint.clone()),
            Wanted::Comment(c) => sel.comments.push(c.clone()),
        }
    }
    sel
}

fn describe(sel: &KeySelector) -> String {
    driftwatch_common::keysel::describe(sel)
}

fn kind_text(kind: &str) -> &'static str {
    match kind {
        "cert_authority" => "cert-authority",
        "trusted_user_ca_keys" => "TrustedUserCAKeys",
        _ => "key",
    }
}

pub async fn find(conn: &Conn, key: &KeyChoice, json: bool, out: &mut dyn Write) -> Result<()> {
    let wanted = key.wanted()?;
    let selector = selector(&wanted);
    let resp = conn
        .call("searching for the key", async |mut c| {
            c.find_keys(FindKeysRequest {
                selector: Some(selector.clone()),
            })
            .await
        })
        .await?;
    if json {
        return print_json(out, &resp);
    }
    let total = wanted.len();
    let mut found_keys = 0;
    for (i, w) in wanted.iter().enumerate() {
        let here: Vec<_> = resp
            .locations
            .iter()
            .filter(|l| w.holds(&l.fingerprint, &l.comment))
            .collect();
        let prefix = if total > 1 {
            format!("key {} of {total}: ", i + 1)
        } else {
            String::new()
        };
        if here.is_empty() {
            writeln!(out, "{prefix}{} is on no host", w.name())?;
            continue;
        }
        found_keys += 1;
        let mut hosts: Vec<&str> = here.iter().map(|l| l.host_id.as_str()).collect();
        hosts.dedup();
        writeln!(
            out,
            "{prefix}{}: {} on {}",
            w.name(),
            count(here.len() as u64, "line"),
            count(hosts.len() as u64, "host")
        )?;
        let mut t = Table::new([
            "HOST ID", "HOSTNAME", "USER", "FILE", "LINE", "KIND", "OPTIONS", "COMMENT",
        ]);
        for l in &here {
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
                kind_text(&l.kind).into(),
                clip(&l.options.join(","), 40),
                clip(&l.comment, 40),
            ]);
        }
        write!(out, "{}", t.render())?;
    }
    writeln!(
        out,
        "{} of {} found (latest snapshots of {})",
        found_keys,
        count(total as u64, "key"),
        count(resp.hosts_indexed, "host")
    )?;
    if resp.locations.iter().any(|l| l.host_revoked) {
        writeln!(
            out,
            "(revoked): the collector refuses that host's agent, so a sweep cannot reach it; re-image it or remove the key by hand"
        )?;
    }
    if resp.locations.iter().any(|l| l.kind == "cert_authority") {
        writeln!(
            out,
            "cert-authority: the line trusts every certificate the key signed; a sweep removes the line, but certificates it signed may be trusted elsewhere (TrustedUserCAKeys)"
        )?;
    }
    if resp
        .locations
        .iter()
        .any(|l| l.kind == "trusted_user_ca_keys")
    {
        writeln!(
            out,
            "TrustedUserCAKeys: sshd trusts every certificate the key signed, for any user the certificate names; a sweep does not touch that file: remove the key there and revoke its certificates (RevokedKeys)"
        )?;
    }
    if !resp.command_hosts.is_empty() {
        writeln!(
            out,
            "{} also get keys from AuthorizedKeysCommand, which no file shows and a sweep cannot cover; check that program's source of keys:",
            count(resp.command_hosts.len() as u64, "host")
        )?;
        let mut t = Table::new(["HOST ID", "HOSTNAME", "COMMAND", "RUNS AS"]);
        for h in &resp.command_hosts {
            t.row([
                h.host_id.clone(),
                h.hostname.clone(),
                clip(&h.command, 60),
                h.command_user.clone(),
            ]);
        }
        write!(out, "{}", t.render())?;
    }
    if !resp.unread_files.is_empty() {
        let mut hosts: Vec<&str> = resp
            .unread_files
            .iter()
            .map(|f| f.host_id.as_str())
            .collect();
        hosts.dedup();
        writeln!(
            out,
            "not proven on {}: {} could not be read completely, so the key may be in them (a sweep re-reads them to the end or fails that host):",
            count(hosts.len() as u64, "host"),
            count(resp.unread_files.len() as u64, "key file")
        )?;
        let mut t = Table::new(["HOST ID", "HOSTNAME", "USER", "FILE", "WHY"]);
        for f in &resp.unread_files {
            t.row([
                f.host_id.clone(),
                f.hostname.clone(),
                f.user.clone(),
                f.path.clone(),
                f.reason.clone(),
            ]);
        }
        write!(out, "{}", t.render())?;
    }
    Ok(())
}

pub struct SweepArgs {
    pub remove: bool,
    pub yes: bool,
    pub timeout: Duration,
    pub expires: Duration,
}

/// Lists the hosts the sweep will touch and asks on the terminal.
async fn confirm(client: &mut AdminClient<Channel>, sel: &KeySelector) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Usage(
            "refusing to remove keys without confirmation: there is no terminal to ask on; pass --yes to confirm (e.g. in scripts)".into(),
        )
        .into());
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
        "This removes {} from every key file of every user on these {}\n(each re-scans its own files; offline hosts run it when they reconnect):",
        describe(sel),
        count(live.len() as u64, "host")
    )?;
    let mut t = Table::new([
        "HOST ID",
        "HOSTNAME",
        "CONNECTED",
        "LINES IN LATEST SNAPSHOT",
    ]);
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
    let wanted = key.wanted()?;
    let selector = selector(&wanted);
    let (timeout, expires) = (args.timeout, args.expires);
    // One connection for the confirmation, the start and the polling.
    let mut client = conn.admin().await?;
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
        "sweep {} {} on {}",
        job.id,
        if job.remove {
            "started"
        } else {
            "(dry run) started"
        },
        count(job.hosts.len() as u64, "host")
    );
    let job = follow(&mut client, job, timeout).await?;
    report(&job, Some(&wanted), json, out)
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
                count(job.hosts.len() as u64, "host")
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
fn report(
    job: &SweepJob,
    wanted: Option<&[Wanted]>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
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
            "HOST ID", "HOSTNAME", "STATUS", "USER", "FILE", "LINES", "RESULT",
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
                    format!("{}: {}", f.status, f.message)
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
        per_key(job, wanted, out)?;
        writeln!(
            out,
            "{} done, {} pending, {} failed, {} expired; {} {}",
            job.hosts_done,
            job.hosts_pending,
            job.hosts_failed,
            job.hosts_expired,
            count(job.lines_removed, "line"),
            if job.remove {
                "removed"
            } else {
                "would be removed"
            }
        )?;
    }
    if job.hosts_failed + job.hosts_pending + job.hosts_expired > 0 {
        return Err(Incomplete {
            message: format!(
                "sweep {}: {} failed, {} still pending, {} expired (`driftwatch keys sweep-status {}` follows it)",
                job.id,
                count(job.hosts_failed, "host"),
                job.hosts_pending,
                job.hosts_expired,
                job.id
            ),
        }
        .into());
    }
    Ok(())
}

/// Per key asked about: on which host and file, which lines went (or
/// would go). From the agents' answers (each line's fingerprint), not the
/// snapshots. `sweep-status` knows the fingerprints only, not their source.
fn per_key(job: &SweepJob, wanted: Option<&[Wanted]>, out: &mut dyn Write) -> Result<()> {
    let sel = job.selector.clone().unwrap_or_default();
    let listed: Vec<Wanted> = match wanted {
        Some(w) => w.to_vec(),
        None => driftwatch_common::keysel::fingerprints(&sel)
            .map(|f| Wanted::Fingerprint {
                fingerprint: f.to_string(),
                from: String::new(),
            })
            .collect(),
    };
    if listed.len() < 2 {
        return Ok(());
    }
    let verb = if job.remove {
        "removed"
    } else {
        "would remove"
    };
    writeln!(out, "per key:")?;
    for w in &listed {
        let Wanted::Fingerprint { fingerprint, .. } = w else {
            writeln!(
                out,
                "  {}: lines matched by comment are in the table",
                w.name()
            )?;
            continue;
        };
        let mut places = Vec::new();
        for h in &job.hosts {
            for f in h
                .files
                .iter()
                .filter(|f| f.status == "removed" || f.status == "would_remove")
            {
                let lines: Vec<String> = f
                    .lines
                    .iter()
                    .zip(&f.line_fingerprints)
                    .filter(|(_, fp)| *fp == fingerprint)
                    .map(|(l, _)| l.to_string())
                    .collect();
                if !lines.is_empty() {
                    places.push(format!("{} {}:{}", h.host_id, f.path, lines.join(",")));
                }
            }
        }
        if places.is_empty() {
            writeln!(out, "  {}: in no key file the hosts answered for", w.name())?;
        } else {
            writeln!(out, "  {}: {verb} {}", w.name(), places.join("; "))?;
        }
    }
    Ok(())
}

pub async fn sweeps(conn: &Conn, json: bool, out: &mut dyn Write) -> Result<()> {
    let resp = conn
        .call("listing sweeps", async |mut c| {
            c.list_sweeps(ListSweepsRequest {}).await
        })
        .await?;
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
    let job = conn
        .call(&format!("reading sweep {id}"), async |mut c| {
            c.get_sweep(GetSweepRequest { id: id.into() }).await
        })
        .await?;
    report(&job, None, json, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJr3PHt5FWncy1NESBWmLjAjeouLelJ5pwqz4S6JAtX";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFGaZjV6L2nYF6/Dul1F5LFditV8mprXVyl8kGvOhIFk";

    fn fps(w: &[Wanted]) -> Vec<&str> {
        w.iter()
            .map(|w| match w {
                Wanted::Fingerprint { fingerprint, .. } => fingerprint.as_str(),
                Wanted::Comment(c) => c.as_str(),
            })
            .collect()
    }

    /// Every key of the file counts, with options and comments, and the
    /// same key twice is asked about once.
    #[test]
    fn every_key_of_an_export_is_read() {
        let text = format!(
            "# bob's keys\n\n{K1} bob@laptop\nfrom=\"10.0.0.0/8\",no-pty {K2}\n  {K1} again\n"
        );
        let w = parse_pubkeys(&text, "bob.keys").unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        let Wanted::Fingerprint { from, .. } = &w[0] else {
            unreachable!()
        };
        assert_eq!(from, "bob.keys line 3: bob@laptop");
        assert!(
            fps(&w)
                .iter()
                .all(|f| f.starts_with("SHA256:") && f.len() == 50)
        );
        assert_ne!(fps(&w)[0], fps(&w)[1]);
        let sel = selector(&w);
        assert_eq!(sel.fingerprints.len(), 2);
        assert!(sel.fingerprint.is_empty(), "only the repeated fields");
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let text = format!("{K1} a\nssh-ed25519 AAAAnotbase64!! b\n{K2}\n");
        let e = parse_pubkeys(&text, "bob.keys").unwrap_err().to_string();
        assert!(e.contains("bob.keys line 2"), "{e}");
        let e = parse_pubkeys("# nothing\n\n", "x.pub")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no key"), "{e}");
    }
}
