//! `driftwatch-collector`: serves agents and admins; bootstraps the PKI.
//! Thin: parse arguments, load config, init logging, run the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use driftwatch_collector::config::{self, FileConfig, Overrides};
use driftwatch_collector::server::{Collector, shutdown_signal};
use driftwatch_common::identity::{Identity, validate_name};
use driftwatch_common::logging::{self, LogFormat};
use driftwatch_common::pki;

/// The driftwatch collector: receives agents' snapshots over mutual TLS,
/// stores them durably, and answers the `driftwatch` admin CLI.
#[derive(Debug, Parser)]
#[command(name = "driftwatch-collector", version, max_term_width = 100)]
struct Args {
    /// Log format: human or json
    #[arg(long, global = true, default_value = "human", value_parser = LogFormat::parse)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
enum PkiCommand {
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

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_format, "info");
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driftwatch-collector: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_config(
    path: Option<&PathBuf>,
    flags: Overrides,
) -> Result<driftwatch_collector::server::ServeConfig> {
    let file: FileConfig = match path {
        Some(p) => driftwatch_common::config::load_toml(p)?,
        None => FileConfig::default(),
    };
    config::build(file, flags).map_err(anyhow::Error::msg)
}

fn real_main(args: Args) -> Result<()> {
    match args.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            pki_dir,
            policy,
        } => {
            let cfg = load_config(
                config.as_ref(),
                Overrides {
                    listen,
                    data_dir,
                    pki_dir,
                    policy,
                },
            )?;
            let rt = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
            rt.block_on(async {
                let collector = Collector::bind(cfg).await?;
                collector.run(shutdown_signal()).await?;
                Ok(())
            })
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
