//! The `driftwatch-collector` command line: clap definitions and what each
//! command does. In the library so the binary stays thin and the man page
//! and completion generator (`driftwatch-gen-docs`) can reach the definitions.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use driftwatch_common::identity::{Identity, Role, validate_name};
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
        /// Store in PostgreSQL instead of a data dir:
        /// postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA.pem
        /// (or host=/run/postgresql for a unix socket). Never a password in
        /// it: see --store-password-file
        #[arg(long)]
        store: Option<String>,
        /// File (mode 0600) holding the store's password [default: PGPASSWORD,
        /// then PGPASSFILE or ~/.pgpass]
        #[arg(long)]
        store_password_file: Option<PathBuf>,
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
    /// Verify a data dir: open it (schema version, sled's files), decode
    /// every record, print counts per tree and every problem. Exit 0 when
    /// sound, 1 when records are damaged, 3 when it cannot be opened
    /// (damaged files, or a running collector holds it: back that one up
    /// with `backup` and check the restored copy)
    Check {
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Write a consistent backup of a collector's store to OUT (mode 0600).
    /// From a running collector over its admin API (connection flags or
    /// DRIFTWATCH_* as for `driftwatch`), or with --data-dir from a
    /// stopped one's data dir
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// Read this data dir directly (no collector may be running on it)
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        conn: driftwatch_cli::conn::ConnArgs,
    },
    /// Restore a backup into an empty (or missing) data dir; the file is
    /// verified whole before anything is written
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
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
    /// Issue an admin certificate (driftwatch://admin/NAME?role=ROLE) into
    /// OUT/NAME.pem and OUT/NAME-key.pem
    Admin {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        /// What the certificate may do: viewer (read hosts, history, diff,
        /// drift, keys, sweeps, baselines, audit), operator (also sweeps,
        /// baselines, revoking and forgetting hosts, test notifications) or
        /// admin (also enrollment tokens and backups). A certificate issued
        /// before roles existed counts as admin
        #[arg(long, value_parser = Role::parse)]
        role: Role,
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
            store,
            store_password_file,
            pki_dir,
            metrics_listen,
            policy,
        } => {
            let cfg = load_config(
                config.as_ref(),
                Overrides {
                    listen,
                    data_dir,
                    store,
                    store_password_file,
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
            let data = match &cfg.store {
                Some(s) => crate::store::pg::url::parse(&s.url)?.to_string(),
                None => cfg.data_dir.display().to_string(),
            };
            eprintln!(
                "{}: ok (listen {}, data {data})",
                config.display(),
                cfg.listen,
            );
            Ok(())
        }
        Command::Pki { command } => pki_command(command),
        Command::Check { data_dir } => {
            driftwatch_common::private_files::owner_only_umask();
            check(&data_dir)
        }
        Command::Backup {
            out,
            data_dir,
            conn,
        } => {
            driftwatch_common::private_files::owner_only_umask();
            backup(&out, data_dir.as_deref(), &conn)
        }
        Command::Restore { from, data_dir } => {
            driftwatch_common::private_files::owner_only_umask();
            let counts = crate::store::backup::restore(&from, &data_dir)
                .map_err(|e| Exit::new(3, format!("restoring {}: {e}", from.display())))?;
            eprintln!(
                "restored {} into {}: {}",
                from.display(),
                data_dir.display(),
                describe(&counts)
            );
            Ok(())
        }
    }
}

/// A command's outcome with its own exit code (check: 1 damaged records,
/// 3 could not be done).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    fn new(code: u8, message: String) -> Exit {
        Exit { code, message }
    }
}

fn describe(counts: &crate::store::backup::Counts) -> String {
    counts
        .iter()
        .filter(|(t, _)| !t.starts_with("__sled"))
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(dir: &std::path::Path) -> Result<()> {
    let store = crate::store::SledStore::open(dir)
        .map_err(|e| Exit::new(3, format!("checking {}: {e}", dir.display())))?;
    let r = crate::store::backup::check(&store)
        .map_err(|e| Exit::new(3, format!("checking {}: {e}", dir.display())))?;
    eprintln!("{}: {}", dir.display(), describe(&r.counts));
    for (tree, key, why) in &r.problems {
        eprintln!("damaged: {tree} {key:?}: {why}");
    }
    if r.problem_count > 0 {
        return Err(Exit::new(
            1,
            format!(
                "{} damaged record(s) in {} (listed above, at most {}): restore the last backup into an empty dir with `driftwatch-collector restore`",
                r.problem_count,
                dir.display(),
                crate::store::backup::MAX_PROBLEMS
            ),
        )
        .into());
    }
    eprintln!("ok: every record decodes");
    Ok(())
}

fn backup(
    out: &std::path::Path,
    data_dir: Option<&std::path::Path>,
    conn: &driftwatch_cli::conn::ConnArgs,
) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = out.with_extension("partial");
    let fail = |e: String| Exit::new(3, format!("backup to {}: {e}", out.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| fail(format!("{}: {e}", partial.display())))?;
    let mut write = || -> Result<String> {
        match data_dir {
            Some(dir) => {
                let store = crate::store::SledStore::open(dir).map_err(|e| fail(e.to_string()))?;
                let mut w = std::io::BufWriter::new(&mut file);
                let counts = store.export(&mut w).map_err(|e| fail(e.to_string()))?;
                w.flush().map_err(|e| fail(e.to_string()))?;
                Ok(describe(&counts))
            }
            None => {
                let c = conn.resolve().map_err(|e| fail(e.to_string()))?;
                let rt =
                    tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
                rt.block_on(async {
                    let ch = driftwatch_common::client::connect(&c.url, &c.files)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    let mut client = driftwatch_common::proto::admin_client::AdminClient::new(ch)
                        .max_decoding_message_size(4 << 20);
                    let mut stream = client
                        .backup(driftwatch_common::proto::BackupRequest {})
                        .await
                        .map_err(|s| {
                            fail(driftwatch_common::client::explain_status("backing up", &s))
                        })?
                        .into_inner();
                    let mut bytes = 0usize;
                    while let Some(chunk) = stream.message().await.map_err(|s| {
                        fail(driftwatch_common::client::explain_status("backing up", &s))
                    })? {
                        bytes += chunk.data.len();
                        file.write_all(&chunk.data)
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    Ok(format!("{bytes} bytes from {}", c.url))
                })
            }
        }
    };
    let result = write();
    let what = match result {
        Ok(w) => w,
        Err(e) => {
            // Nothing half-written is left behind to be taken for a backup.
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    file.sync_all().map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&partial, out).map_err(|e| fail(e.to_string()))?;
    eprintln!("wrote {}: {what}", out.display());
    Ok(())
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
        PkiCommand::Admin {
            dir,
            name,
            role,
            out,
        } => {
            validate_name(&name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
            let out = out.unwrap_or_else(|| dir.clone());
            let (cert, key) = pki::issue_client_files(
                &dir,
                &Identity::admin(name.clone(), role),
                &out,
                &format!("{name}.pem"),
                &format!("{name}-key.pem"),
            )?;
            eprintln!(
                "wrote {} and {} (role {role})",
                cert.display(),
                key.display()
            );
        }
    }
    Ok(())
}
