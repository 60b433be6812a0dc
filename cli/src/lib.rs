//! The `driftwatch` admin CLI: argument definitions and command handlers.
//! Output goes to a writer so tests can read it; tables for people,
//! `--json` (field names are the proto's) for scripts.

mod audit;
pub mod conn;
mod drift;
mod hosts;
mod keys;
mod notify;
pub mod output;
pub mod render;
mod report;
mod tokens;
pub mod values;

use std::io::Write;

use anyhow::Result;
use clap::{Parser, Subcommand};
use driftwatch_common::severity::Severity;

use crate::render::SortBy;

/// driftwatch: what your Linux servers really run, and where they drifted.
///
/// Connects to a driftwatch collector over mutual TLS with an admin
/// certificate. Connection settings come from flags, then DRIFTWATCH_*
/// environment variables, then ~/.config/driftwatch/cli.toml (keys:
/// collector, ca, cert, key).
///
/// The certificate's role decides what it may do (`driftwatch-collector pki
/// admin --name NAME --role ROLE` issues one): viewer reads (hosts, host,
/// history, diff, drift, baselines, keys find, sweeps, audit); operator also
/// sweeps keys, sets and approves baselines, revokes and forgets hosts and
/// sends test notifications; admin also manages enrollment tokens and takes
/// backups. A certificate issued before roles existed is an admin. A refused
/// command names the role it needs.
///
/// Exit codes: 0 success; 1 the answer is bad news a script asked about
/// (`drift --fail-on` found something, a key sweep did not finish on every
/// host); 2 bad usage; 3 the command could not be done (connection,
/// certificate, unknown host: message on stderr).
#[derive(Debug, Parser)]
#[command(name = "driftwatch", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub conn: conn::ConnArgs,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every host: id, hostname, OS, labels, last seen, and the status
    /// of each section of its latest snapshot (`hosts revoke HOST` revokes,
    /// `hosts forget HOST` removes a gone or revoked host's data)
    Hosts {
        /// Only hosts with this label (repeatable: all must match)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = values::label)]
        labels: Vec<(String, String)>,
        /// Only hosts in this state (repeatable: any may match)
        #[arg(long = "state", value_enum, ignore_case = true)]
        states: Vec<values::HostState>,
        /// Output: table, json (as --json) or csv (one row per host)
        #[arg(long, value_enum, ignore_case = true)]
        format: Option<output::Format>,
        #[command(subcommand)]
        command: Option<HostsCommand>,
    },
    /// What changed on a host, snapshot by snapshot
    History {
        /// Host id, or hostname when it names exactly one host
        host: String,
        /// Only changes since then: a time (2026-11-26T04:00:00Z) or a
        /// duration ago (2h, 7d)
        #[arg(long, value_name = "TIME", value_parser = values::time)]
        since: Option<i64>,
        /// Only changes in these sections (repeatable)
        #[arg(long = "section", short = 's', value_parser = values::section(), ignore_case = true)]
        sections: Vec<String>,
        /// Only the newest N snapshots that changed something (0 = all)
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Differences, item by item: a host between two of its snapshots
    /// (default: the last two), two hosts now (HOST is `---`, OTHER_HOST
    /// `+++`), or a baseline (`---`) and a host (`+++`)
    Diff {
        host: String,
        /// Compare with this host's latest snapshot
        other_host: Option<String>,
        /// A sequence number (as `history` shows), a time (RFC 3339) or a
        /// duration ago (2h, 7d); default: the snapshot before --to
        #[arg(long, value_name = "POINT", value_parser = values::point, conflicts_with_all = ["other_host", "baseline"])]
        from: Option<values::Point>,
        /// Like --from; default: the latest snapshot
        #[arg(long, value_name = "POINT", value_parser = values::point, conflicts_with_all = ["other_host", "baseline"])]
        to: Option<values::Point>,
        /// Compare with a named baseline, or `image` for the baseline baked
        /// into the host's machine image
        #[arg(long, conflicts_with = "other_host")]
        baseline: Option<String>,
    },
    /// Findings: peer outliers and gaps, baseline and policy drift, stale hosts
    Drift {
        /// Host id, or hostname when it names exactly one host
        #[arg(long)]
        host: Option<String>,
        /// Only hosts whose group label is this
        #[arg(long)]
        group: Option<String>,
        /// Only findings at or above this severity
        #[arg(long, value_parser = values::severity(), ignore_case = true)]
        min_severity: Option<Severity>,
        /// Include resolved findings
        #[arg(long)]
        all: bool,
        /// Exit 1 when an open finding at or above this severity exists
        /// (for cron and CI)
        #[arg(long, value_parser = values::severity(), ignore_case = true)]
        fail_on: Option<Severity>,
        /// Output: table, json (as --json) or csv (one row per finding)
        #[arg(long, value_enum, ignore_case = true)]
        format: Option<output::Format>,
    },
    /// Reference snapshots hosts are compared with
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Enrollment tokens that let new machines get a host certificate
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Inspect one host
    Host {
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Find SSH keys across the fleet and sweep them off every host
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// What admins did: revokes, forgets, tokens, baselines, sweeps, backups
    /// and test notifications, each with who (certificate name and role),
    /// when, on what, and whether it worked; newest first. Any role may read
    /// it
    Audit {
        /// Only actions since then: a time (2026-11-26T04:00:00Z) or a
        /// duration ago (2h, 7d)
        #[arg(long, value_name = "TIME", value_parser = values::time)]
        since: Option<i64>,
        /// At most N entries, newest first (at most 10000)
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Write the fleet report: one self-contained HTML page (no external
    /// script, font or link) with hosts by group against sections coloured
    /// by their worst open finding, each host's detail on click, the open
    /// findings, keys on more than one host and RAID state. With --json the
    /// same data is printed too
    Report {
        /// The HTML file to write (replaced when it exists)
        #[arg(long, value_name = "FILE")]
        html: std::path::PathBuf,
    },
    /// Webhook notifications of findings (`[[notify]]` in collector.toml)
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test event to every receiver (or one) through the collector's
    /// outbox, and say how its first delivery attempt went (exit 1 when a
    /// receiver did not take it)
    Test {
        /// Only the `[[notify]]` block with this name
        #[arg(long)]
        name: Option<String>,
    },
}

/// Which keys: any of these, together (a line holding any one matches).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = true)]
pub struct KeyArgs {
    /// SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...);
    /// repeatable
    #[arg(long = "fingerprint", value_name = "SHA256:...")]
    pub fingerprints: Vec<String>,
    /// A file of public keys in authorized_keys format, every key on it
    /// (a .pub file, an authorized_keys file, https://github.com/USER.keys
    /// saved); `-` reads standard input
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<std::path::PathBuf>,
    /// A key's comment, matched exactly (bob@laptop); repeatable
    #[arg(long = "comment")]
    pub comments: Vec<String>,
}

impl KeyArgs {
    fn choice(self) -> keys::KeyChoice {
        keys::KeyChoice {
            fingerprints: self.fingerprints,
            pubkey: self.pubkey,
            comments: self.comments,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every host, user, file and line holding the keys, per key, from the
    /// latest snapshots; also what a sweep cannot remove (a cert-authority
    /// line trusting the key, sshd's TrustedUserCAKeys, AuthorizedKeysCommand)
    Find {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Sweep the keys off every host: each agent re-scans its live key files
    /// and (with --remove) deletes exactly the lines holding them, keeping a
    /// backup beside each file. Without --remove it is a dry run that lists
    /// what would go. Offline hosts run it when they reconnect, until it
    /// expires. Exit code 1 when a host failed or is still pending.
    Sweep {
        #[command(flatten)]
        key: KeyArgs,
        /// Remove the lines (default: dry run, nothing changes)
        #[arg(long)]
        remove: bool,
        /// Do not ask for confirmation (needed without a terminal)
        #[arg(long)]
        yes: bool,
        /// How long to wait for hosts before printing the summary
        #[arg(long, default_value = "60s", value_parser = values::duration)]
        timeout: std::time::Duration,
        /// How long offline hosts may still pick the sweep up
        #[arg(long, default_value = "7d", value_parser = values::duration)]
        expires: std::time::Duration,
    },
    /// List sweeps: who asked, when, which key, how far each got
    Sweeps,
    /// One sweep's audit log: per host and file, what happened (exit code 1
    /// when a host failed, is pending or expired)
    SweepStatus { id: String },
}

/// A sweep that did not finish everywhere: the binary exits with
/// [`EXIT_INCOMPLETE`] so scripts can tell it from an error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Incomplete {
    pub message: String,
}

pub const EXIT_INCOMPLETE: u8 = 1;

/// Bad usage found after parsing (exit 2): a key file that holds no key or
/// a malformed line, a confirmation that cannot be asked without a terminal.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The exit code for an error: 1 an unfinished sweep, 2 bad usage (ours,
/// or a value the collector refused as invalid), 3 anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Incomplete>().is_some() {
        EXIT_INCOMPLETE
    } else if e.downcast_ref::<Usage>().is_some()
        || e.downcast_ref::<conn::RpcError>()
            .is_some_and(|r| r.code == tonic::Code::InvalidArgument)
    {
        2
    } else {
        3
    }
}

/// Whether the error is stdout going away (`driftwatch hosts | head`):
/// the reader has what it wanted, so the command ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Revoke a host: its certificate is refused from now on, open agent
    /// streams are closed at once, and it leaves peer statistics. Asks for
    /// confirmation on a terminal
    Revoke {
        /// Host id, or hostname when it names exactly one host
        host: String,
        /// Do not ask for confirmation (needed without a terminal)
        #[arg(long)]
        yes: bool,
    },
    /// Remove a gone or revoked host and everything stored about it (latest
    /// snapshot, history, findings). A fresh or stale host is refused unless
    /// revoked first: its agent would only report again. Asks for
    /// confirmation on a terminal
    Forget {
        /// Host id, or hostname when it names exactly one host
        host: String,
        /// Do not ask for confirmation (needed without a terminal)
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Make a host's latest snapshot the baseline NAME; hosts labelled
    /// baseline=NAME are then compared with it
    Set {
        name: String,
        #[arg(long)]
        from_host: String,
    },
    /// List baselines (named ones and those baked into machine images) and
    /// the bake-time baselines hosts uploaded that no image has confirmed
    List,
    /// Make the bake-time baseline HOST uploaded the baseline of image
    /// IMAGE_ID (without it, an image's baseline needs `baseline_quorum`
    /// agreeing hosts and no contradicting one)
    Approve {
        image_id: String,
        #[arg(long)]
        from_host: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is printed once and stored only as a hash
    Create {
        /// Group label every host enrolled with it gets (group=G)
        #[arg(long)]
        group: String,
        /// Lifetime, e.g. 1h, 7d (at most 366 days)
        #[arg(long, value_parser = values::ttl)]
        ttl: std::time::Duration,
        /// How many hosts may enroll with it (0 = unlimited until expiry)
        #[arg(long, default_value_t = 0)]
        uses: u32,
    },
    /// List tokens with their state (active, expired, used_up, revoked)
    List,
    /// Revoke a token by id: no further host can enroll with it
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Show a host's latest snapshot, section by section
    Show {
        /// Host id, or hostname when it names exactly one host
        host: String,
        /// Only these sections (repeatable)
        #[arg(long = "section", short = 's', value_parser = values::section(), ignore_case = true)]
        sections: Vec<String>,
        /// Order process tables by pid, mem (also: rss, memory) or cpu
        #[arg(long, value_parser = values::sort, default_value = "pid")]
        sort: SortBy,
        /// Show at most N rows of long tables (0 = all)
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
}

impl Cli {
    /// Whether the output is JSON (`--json`, or `--format json` where a
    /// command takes it): the binary escapes control characters the JSON way
    /// then, so the document stays valid.
    pub fn prints_json(&self) -> bool {
        let format = match &self.command {
            Command::Hosts { format, .. } | Command::Drift { format, .. } => *format,
            _ => None,
        };
        self.json || format == Some(output::Format::Json)
    }
}

/// `--json` output: the response as pretty JSON (field names are the proto's).
pub(crate) fn print_json<T: serde::Serialize>(out: &mut dyn Write, v: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Runs a parsed command, writing results to `out`. `Ok(true)` means the
/// command worked and found what `--fail-on` asked about (exit 1).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<bool> {
    let conn = cli.conn.resolve()?;
    let json = cli.json;
    let done = |r: Result<()>| r.map(|()| false);
    match cli.command {
        Command::Hosts {
            labels,
            states,
            format,
            command: None,
        } => {
            let filter = hosts::Filter { labels, states };
            let format = output::Format::resolve(json, format)?;
            done(hosts::list(&conn, &filter, format, out).await)
        }
        Command::Hosts {
            command: Some(HostsCommand::Revoke { host, yes }),
            ..
        } => done(hosts::revoke(&conn, &host, yes, json, out).await),
        Command::Hosts {
            command: Some(HostsCommand::Forget { host, yes }),
            ..
        } => done(hosts::forget(&conn, &host, yes, json, out).await),
        Command::Host {
            command:
                HostCommand::Show {
                    host,
                    sections,
                    sort,
                    limit,
                },
        } => {
            let opts = crate::render::Options { sort, limit };
            done(hosts::show(&conn, &host, sections, &opts, json, out).await)
        }
        Command::Tokens { command } => done(match command {
            TokensCommand::Create { group, ttl, uses } => {
                tokens::create(&conn, &group, ttl, uses, json, out).await
            }
            TokensCommand::List => tokens::list(&conn, json, out).await,
            TokensCommand::Revoke { id } => tokens::revoke(&conn, &id, json, out).await,
        }),
        Command::History {
            host,
            since,
            sections,
            limit,
        } => {
            let a = drift::HistoryArgs {
                host: &host,
                since_ms: since.unwrap_or(0),
                sections,
                limit,
            };
            done(drift::history(&conn, a, json, out).await)
        }
        Command::Diff {
            host,
            other_host,
            from,
            to,
            baseline,
        } => {
            let a = drift::DiffArgs {
                host: &host,
                other: other_host.as_deref(),
                from: from.map(|p| p.0),
                to: to.map(|p| p.0),
                baseline: baseline.as_deref(),
            };
            done(drift::diff(&conn, a, json, out).await)
        }
        Command::Drift {
            host,
            group,
            min_severity,
            all,
            fail_on,
            format,
        } => {
            let format = output::Format::resolve(json, format)?;
            let a = drift::DriftArgs {
                host: host.as_deref(),
                group: group.as_deref(),
                min_severity,
                all,
                fail_on,
            };
            drift::drift(&conn, a, format, out).await
        }
        Command::Baseline { command } => done(match command {
            BaselineCommand::Set { name, from_host } => {
                drift::baseline_set(&conn, &name, &from_host, json, out).await
            }
            BaselineCommand::List => drift::baseline_list(&conn, json, out).await,
            BaselineCommand::Approve {
                image_id,
                from_host,
            } => drift::baseline_approve(&conn, &image_id, &from_host, json, out).await,
        }),
        Command::Keys { command } => done(match command {
            KeysCommand::Find { key } => keys::find(&conn, &key.choice(), json, out).await,
            KeysCommand::Sweep {
                key,
                remove,
                yes,
                timeout,
                expires,
            } => {
                let args = keys::SweepArgs {
                    remove,
                    yes,
                    timeout,
                    expires,
                };
                keys::sweep(&conn, &key.choice(), &args, json, out).await
            }
            KeysCommand::Sweeps => keys::sweeps(&conn, json, out).await,
            KeysCommand::SweepStatus { id } => keys::sweep_status(&conn, &id, json, out).await,
        }),
        Command::Notify {
            command: NotifyCommand::Test { name },
        } => notify::test(&conn, name.as_deref(), json, out).await,
        Command::Audit { since, limit } => {
            done(audit::list(&conn, since.unwrap_or(0), limit, json, out).await)
        }
        Command::Report { html } => done(report::report(&conn, &html, json, out).await),
    }
}

/// Asks on the terminal before something that cannot be undone; without a
/// terminal (a script) only `--yes` proceeds, and saying so is bad usage.
/// `what` is the action ("revoke host web-01"), `then` what follows from it.
pub(crate) fn confirm(what: &str, then: &str, yes: bool) -> Result<()> {
    use std::io::{BufRead, IsTerminal};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Usage(format!(
            "refusing to {what} without confirmation ({then}): there is no terminal to ask on; pass --yes to confirm (e.g. in scripts)"
        ))
        .into());
    }
    let mut err = std::io::stderr().lock();
    write!(err, "This will {what}: {then}. Type 'yes' to proceed: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("cancelled: nothing was changed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_are_grouped_after_the_command_own() {
        let mut cli = Cli::command();
        // Global flags reach subcommands only when the whole tree is built.
        cli.build();
        let find = cli
            .find_subcommand_mut("keys")
            .and_then(|k| k.find_subcommand_mut("find"))
            .unwrap();
        let help = find.render_help().to_string();
        let heading = help.find("Connection:").expect(&help);
        for own in ["--fingerprint", "--comment", "--json"] {
            assert!(help.find(own).unwrap() < heading, "{own} in\n{help}");
        }
        for conn in ["--collector", "--ca", "--cert", "--key", "--cli-config"] {
            assert!(help.find(conn).unwrap() > heading, "{conn} in\n{help}");
        }
    }

    #[test]
    fn missing_certificate_says_what_to_do() {
        let args = conn::ConnArgs {
            collector: Some("https://x:1".into()),
            ca: Some("/ca.pem".into()),
            config: Some("/nonexistent-but-unused".into()),
            ..Default::default()
        };
        // An explicit config that does not exist is itself an error…
        assert!(args.resolve().is_err());
        let args = conn::ConnArgs {
            config: None,
            ..args
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(
            err.contains("--cert/--key") && err.contains("DRIFTWATCH_CERT"),
            "{err}"
        );
    }
}
