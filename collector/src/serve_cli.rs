//! The `driftwatch-collector` command line: clap definitions and what each
//! command does. In the library so the binary stays thin and the man page
//! and completion generator (`driftwatch-gen-docs`) can reach the definitions.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use driftwatch_common::identity::{Identity, validate_name};
use driftwatch_common::logging::LogFormat;
use driftwatch_common::pki;

use crate::config::{self, FileConfig, Overrides};
use crate::server::Collector;

/// The driftwatch collector: receives agents' snapshots over mutual TLS,
/// stores them durably, and answers the `driftwatch` admin CLI.
#[derive(Debug, Parser)]
#[command(name = "driftwatch-collector", version, max_term_width = 100)]
pub struct Args {
    /// Log format: human or json
    #[arg(long, global = true, default_value = "human", value_parser = LogFormat::parse)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC over TLS 1.3 until SIGTERM/SIGINT
    Serve {
        /// Config file (TOML); flags win over it
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 0.0.0.0:7443]
        #[arg(long)]
        listen: Option<String>,
        /// Where snapshots are stored (sled database)
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PKI directory with ca.pem, server.pem and server-key.pem
        #[arg(long)]
        pki_dir: Option<PathBuf>,
        /// Serve Prometheus metrics (plain HTTP, GET /metrics) on this
        /// address, e.g. 127.0.0.1:9464 [default: off]
        #[arg(long)]
        metrics_listen: Option<String>,
        /// Policy file (TOML) for drift findings; re-read when it changes
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Check a config file and exit (for ExecStartPre)
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Certificate authority: create it, issue certificates
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a CA, a server certificate and an admin certificate in DIR.
    /// Refuses to overwrite an existing CA. Keys are written with mode 0600.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// DNS name or IP address agents use to reach the collector
        /// (repeatable; the first is the certificate's common name)
        #[arg(long = "server-name", required = true)]
        server_names: Vec<String>,
    },
    /// Issue an agent certificate (URI SAN driftwatch://host/ID) into
    /// OUT/agent.pem and OUT/agent-key.pem
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        host_id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue an admin certificate (driftwatch://admin/NAME) into
    /// OUT/NAME.pem and OUT/NAME-key.pem
    Admin {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        /// Output directory [default: the PKI dir]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn load_config(path: Option<&PathBuf>, flags: Overrides) -> Result<crate::server::ServeConfig> {
    let file: FileConfig = match path {
        Some(p) => driftwatch_common::config::load_toml(p)?,
        None => FileConfig::default(),
    };
    config::build(file, flags).map_err(anyhow::Error::msg)
}

/// Descriptors kept for everything but connections: sled's files and the
/// blob files a sync opens, the metrics listener and its clients, the
/// runtime, a descriptor `accept` takes before a connection is refused.
/// Connections never get these, so a flood cannot make a sync fail with
/// EMFILE (it did, at ~1,100 idle connections under a 1,024 limit).
pub const FD_RESERVED: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns how many
/// connections fit under it with [`FD_RESERVED`] kept back: at most
/// `max_connections`, at least 16.
pub fn connections_within_fd_limit(max_connections: usize) -> usize {
    match driftwatch_common::fd_limit::raise_to_hard() {
        Ok(lim) => {
            let fit = lim.soft.saturating_sub(FD_RESERVED).max(16);
            if fit < max_connections as u64 {
                tracing::warn!(
                    open_files = lim.soft,
                    reserved = FD_RESERVED,
                    configured = max_connections,
                    connections = fit,
                    "the open-file limit caps connections below limits.max_connections; \
                     raise the hard limit (LimitNOFILE= in the unit, or ulimit -Hn as root) \
                     or lower limits.max_connections in the config"
                );
                fit as usize
            } else {
                tracing::info!(open_files = lim.soft, "open-file limit");
                max_connections
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            max_connections
        }
    }
}

/// Runs a parsed command line (what `main` does after logging is set up).
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            pki_dir,
            metrics_listen,
            policy,
        } => {
            let cfg = load_config(
                config.as_ref(),
                Overrides {
                    listen,
                    data_dir,
                    pki_dir,
                    metrics_listen,
                    policy,
                },
            )?;
            let mut cfg = cfg;
            cfg.limits.max_connections = connections_within_fd_limit(cfg.limits.max_connections);
            // Before any thread starts: sled creates files later on its own.
            driftwatch_common::private_files::owner_only_umask();
            let rt = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
            let result = rt.block_on(async {
                let collector = Collector::bind(cfg).await?;
                collector.run(driftwatch_common::signal::shutdown()).await?;
                Ok(())
            });
            // A store call stuck in a blocking thread (a failing disk) must
            // not hold the process past shutdown.
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            result
        }
        Command::Validate { config } => {
            let cfg = load_config(Some(&config), Overrides::default())?;
            eprintln!(
                "{}: ok (listen {}, data {})",
                config.display(),
                cfg.listen,
                cfg.data_dir.display()
            );
            Ok(())
        }
        Command::Pki { command } => pki_command(command),
    }
}

fn pki_command(cmd: PkiCommand) -> Result<()> {
    match cmd {
        PkiCommand::Init { dir, server_names } => {
            pki::init(&dir, &server_names)?;
            eprintln!(
                "created CA, server certificate for {} and admin certificate in {}",
                server_names.join(", "),
                dir.display()
            );
        }
        PkiCommand::Issue { dir, host_id, out } => {
            validate_name(&host_id).map_err(|e| anyhow::anyhow!("invalid --host-id: {e}"))?;
            let (cert, key) = pki::issue_client_files(
                &dir,
                &Identity::Host(host_id),
                &out,
                pki::AGENT_CERT,
                pki::AGENT_KEY,
            )?;
            eprintln!("wrote {} and {}", cert.display(), key.display());
        }
        PkiCommand::Admin { dir, name, out } => {
            validate_name(&name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
            let out = out.unwrap_or_else(|| dir.clone());
            let (cert, key) = pki::issue_client_files(
                &dir,
                &Identity::Admin(name.clone()),
                &out,
                &format!("{name}.pem"),
                &format!("{name}-key.pem"),
            )?;
            eprintln!("wrote {} and {}", cert.display(), key.display());
        }
    }
    Ok(())
}
