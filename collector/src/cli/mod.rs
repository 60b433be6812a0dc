//! The `driftwatch` admin CLI: argument definitions and command handlers.
//! Output goes to a writer so tests can read it; tables for people,
//! `--json` (field names are the proto's) for scripts.

pub mod conn;
mod drift;
mod hosts;
mod keys;
mod tokens;

use std::io::Write;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::render::SortBy;

/// driftwatch: what your Linux servers really run, and where they drifted.
///
/// Connects to a driftwatch collector over mutual TLS with an admin
/// certificate. Connection settings come from flags, then DRIFTWATCH_*
/// environment variables, then ~/.config/driftwatch/cli.toml (keys:
/// collector, ca, cert, key).
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
    /// of each section of its latest snapshot (`hosts revoke HOST` revokes)
    Hosts {
        #[command(subcommand)]
        command: Option<HostsCommand>,
    },
    /// What changed on a host, snapshot by snapshot
    History {
        /// Host id, or hostname when it names exactly one host
        host: String,
        /// Only changes since then: a time (2026-11-26T04:00:00Z) or a
        /// duration ago (2h, 7d)
        #[arg(long)]
        since: Option<String>,
    },
    /// Differences, item by item: a host between two of its snapshots
    /// (default: the last two), two hosts now, or a host and a baseline
    Diff {
        host: String,
        /// Compare with this host's latest snapshot
        other_host: Option<String>,
        /// A sequence number or a time (RFC 3339)
        #[arg(long, conflicts_with_all = ["other_host", "baseline"])]
        from: Option<String>,
        #[arg(long, conflicts_with_all = ["other_host", "baseline"])]
        to: Option<String>,
        /// Compare with a named baseline, or `image` for the baseline baked
        /// into the host's machine image
        #[arg(long, conflicts_with = "other_host")]
        baseline: Option<String>,
    },
    /// Findings: peer outliers and gaps, baseline and policy drift, stale hosts
    Drift {
        #[arg(long)]
        host: Option<String>,
        /// Only hosts whose group label is this
        #[arg(long)]
        group: Option<String>,
        /// info, low, medium, high or critical
        #[arg(long)]
        min_severity: Option<String>,
        /// Include resolved findings
        #[arg(long)]
        all: bool,
        /// Exit 1 when an open finding at or above this severity exists
        /// (for cron and CI)
        #[arg(long)]
        fail_on: Option<String>,
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
    /// Find an SSH key across the fleet and sweep it off every host
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// Which key: exactly one of these.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...)
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// An OpenSSH public key file (id_ed25519.pub); its fingerprint is used
    #[arg(long)]
    pub pubkey: Option<std::path::PathBuf>,
    /// The key's comment, matched exactly (bob@laptop)
    #[arg(long)]
    pub comment: Option<String>,
}

impl KeyArgs {
    fn choice(self) -> keys::KeyChoice {
        keys::KeyChoice {
            fingerprint: self.fingerprint,
            pubkey: self.pubkey,
            comment: self.comment,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every host, user, file and line holding the key, from the latest
    /// snapshots
    Find {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Sweep the key off every host: each agent re-scans its live key files
    /// and (with --remove) deletes exactly the lines holding it, keeping a
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
        #[arg(long, default_value = "60s")]
        timeout: String,
        /// How long offline hosts may still pick the sweep up
        #[arg(long, default_value = "7d")]
        expires: String,
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

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Revoke a host: its certificate is refused from now on, open agent
    /// streams are closed at once, and it leaves peer statistics
    Revoke {
        /// Host id, or hostname when it names exactly one host
        host: String,
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
    /// List baselines (named ones and those baked into machine images)
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is printed once and stored only as a hash
    Create {
        /// Group label every host enrolled with it gets (group=G)
        #[arg(long)]
        group: String,
        /// Lifetime, e.g. 1h, 7d (at most 366 days)
        #[arg(long)]
        ttl: String,
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
        /// Only these sections (repeatable): host, processes, ssh_keys,
        /// log_config, raid, packages, containers
        #[arg(long = "section", short = 's')]
        sections: Vec<String>,
        /// Order process tables by pid, memory (RSS) or CPU
        #[arg(long, value_parser = parse_sort, default_value = "pid")]
        sort: SortBy,
        /// Show at most N rows of long tables (0 = all)
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
}

fn parse_sort(s: &str) -> Result<SortBy, String> {
    match s {
        "pid" => Ok(SortBy::Pid),
        "mem" | "rss" => Ok(SortBy::Mem),
        "cpu" => Ok(SortBy::Cpu),
        _ => Err(format!("unknown sort {s:?}: use pid, mem or cpu")),
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
        Command::Hosts { command: None } => done(hosts::list(&conn, json, out).await),
        Command::Hosts {
            command: Some(HostsCommand::Revoke { host }),
        } => done(hosts::revoke(&conn, &host, json, out).await),
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
                tokens::create(&conn, &group, &ttl, uses, json, out).await
            }
            TokensCommand::List => tokens::list(&conn, json, out).await,
            TokensCommand::Revoke { id } => tokens::revoke(&conn, &id, json, out).await,
        }),
        Command::History { host, since } => {
            done(drift::history(&conn, &host, since.as_deref(), json, out).await)
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
                from: from.as_deref(),
                to: to.as_deref(),
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
        } => {
            let a = drift::DriftArgs {
                host: host.as_deref(),
                group: group.as_deref(),
                min_severity: min_severity.as_deref(),
                all,
                fail_on: fail_on.as_deref(),
            };
            drift::drift(&conn, a, json, out).await
        }
        Command::Baseline { command } => done(match command {
            BaselineCommand::Set { name, from_host } => {
                drift::baseline_set(&conn, &name, &from_host, json, out).await
            }
            BaselineCommand::List => drift::baseline_list(&conn, json, out).await,
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
    }
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
