//! The `driftwatch-agent` command line: clap definitions, flag and config
//! file merging, and what each command does. In the library so the binary
//! stays thin and the man page and completion generator
//! (`driftwatch-gen-docs`) can reach the definitions.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};
use driftwatch_common::config::parse_label;
use driftwatch_common::logging::LogFormat;
use driftwatch_common::time::parse_duration;

use crate::collect::{Collectors, Context as CollectCtx};
use crate::config::FileConfig;
use crate::hostfs::HostFs;
use crate::identity::TokenSource;
use crate::run::{
    self, DEFAULT_FULL_REFRESH, DEFAULT_INTERVAL, DEFAULT_SPOOL_MAX_BYTES, IdentitySource,
    RunConfig,
};

/// The driftwatch agent: reports processes, containers, SSH keys, logging
/// configuration, RAID health and packages to a driftwatch collector over
/// mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "driftwatch-agent", version, max_term_width = 100)]
pub struct Cli {
    /// Log format: human or json (logs go to stderr)
    #[arg(long, global = true, default_value = "human", value_parser = LogFormat::parse)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect one snapshot and print it; no network
    Collect {
        /// Read the host filesystem mounted here instead of / (processes
        /// always come from the agent's own PID namespace)
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Only these sections (repeatable); default all
        #[arg(long = "section", short = 's')]
        sections: Vec<String>,
        /// Print the snapshot as JSON (field names are the proto's);
        /// without it, a per-section summary
        #[arg(long)]
        json: bool,
    },
    /// Report to the collector every interval (or once with --once)
    Run(Box<RunArgs>),
    /// Enroll with a token and exit (run does this by itself when needed);
    /// prints the host id
    Enroll(Box<RunArgs>),
    /// Check a config file (and the flags given with it) and exit; no
    /// network (for ExecStartPre)
    Validate(Box<RunArgs>),
    /// The bake-time baseline of a machine image
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Run while building an image (e.g. a Packer provisioner): collects a
    /// snapshot and stores it in the state dir; the first agent that reports
    /// from the image uploads it, and every host built from the image is
    /// compared with it (`driftwatch diff HOST --baseline image`)
    Capture {
        /// Read the image's filesystem mounted here instead of /
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The agent's state dir inside the image
        #[arg(long, default_value = "/var/lib/driftwatch")]
        state_dir: PathBuf,
        /// Identifies the image (e.g. the Packer build's name and time)
        /// [default: a random img-… id]
        #[arg(long)]
        image_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file (TOML); flags win over it
    #[arg(long)]
    config: Option<PathBuf>,
    /// Collector URL, e.g. https://collector.example:7443; repeat it for
    /// several collectors of one fleet: the agent uses the first that
    /// answers and moves to the next when the one in use is down
    #[arg(long = "collector", value_name = "URL")]
    collectors: Vec<String>,
    /// CA certificate the collector's certificate must chain to
    #[arg(long)]
    ca: Option<PathBuf>,
    /// This host's certificate (URI SAN driftwatch://host/ID); without
    /// --cert/--key the identity lives in the state dir (enrolled with a token)
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// This host's private key (mode 0600)
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Enrollment token from `driftwatch tokens create` (prefer
    /// --enroll-token-file: command lines are visible to other users)
    #[arg(long, conflicts_with = "cert")]
    enroll_token: Option<String>,
    /// File holding the enrollment token
    #[arg(long, conflicts_with = "cert")]
    enroll_token_file: Option<PathBuf>,
    /// Where the sequence counter and the spool live
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Read the host filesystem mounted here instead of /
    #[arg(long)]
    root: Option<PathBuf>,
    /// Time between reports, e.g. 30s, 5m (±10% jitter) [default: 60s]
    #[arg(long)]
    interval: Option<String>,
    /// Label KEY=VALUE for this host (repeatable), e.g. group=web
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Only these sections (repeatable); default all
    #[arg(long = "section", short = 's')]
    sections: Vec<String>,
    /// Most bytes of unacknowledged snapshots kept on disk [default: 64 MiB]
    #[arg(long)]
    spool_max_bytes: Option<u64>,
    /// Unchanged sections are sent as a hash; they still go in full this
    /// often so volatile values (RSS, health, sync progress) stay fresh
    /// [default: 15m]
    #[arg(long)]
    full_refresh: Option<String>,
    /// Serve Prometheus metrics (plain HTTP, GET /metrics) on this address,
    /// e.g. 127.0.0.1:9465 [default: off]
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Report one snapshot and exit: 0 once acknowledged, 1 otherwise
    #[arg(long)]
    once: bool,
}

/// Runs a parsed command line (what `main` does once logging and the
/// runtime are up).
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Collect {
            root,
            sections,
            json,
        } => collect(root, sections, json).await,
        Command::Baseline {
            command:
                BaselineCommand::Capture {
                    root,
                    state_dir,
                    image_id,
                },
        } => capture_baseline(root, state_dir, image_id).await,
        Command::Enroll(args) => {
            let cfg = run_config(*args)?;
            if matches!(cfg.identity, IdentitySource::Files { .. }) {
                return Err(anyhow!(
                    "enroll makes its own key and certificate: drop --cert/--key"
                ));
            }
            let set = crate::failover::CollectorSet::new(cfg.collectors.clone());
            let (_, id) = run::resolve_identity(&cfg, &set).await?;
            let id = id.expect("enrolled identity");
            use std::io::Write;
            writeln!(std::io::stdout(), "{}", id.host_id)?;
            Ok(())
        }
        Command::Validate(args) => {
            let what = args
                .config
                .as_ref()
                .map_or_else(|| "flags".to_string(), |p| p.display().to_string());
            let cfg = run_config(*args)?;
            if !cfg.ca.is_file() {
                return Err(anyhow!(
                    "CA certificate {} does not exist",
                    cfg.ca.display()
                ));
            }
            eprintln!(
                "{what}: ok (collector {}, state {}, interval {}s)",
                cfg.collectors.join(", "),
                cfg.state_dir.display(),
                cfg.interval.as_secs()
            );
            Ok(())
        }
        Command::Run(args) => {
            let once = args.once;
            let cfg = run_config(*args)?;
            if once {
                run::run_once(cfg).await?;
                Ok(())
            } else {
                run::run_forever(cfg, driftwatch_common::signal::shutdown()).await?;
                Ok(())
            }
        }
    }
}

async fn collect(root: PathBuf, sections: Vec<String>, json: bool) -> Result<()> {
    let collectors = Collectors::new(&sections).map_err(anyhow::Error::msg)?;
    let ctx = CollectCtx {
        fs: HostFs::new(root),
    };
    let (_, snap) = run::collect_snapshot(collectors, ctx, &[]).await;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &snap).context("writing JSON")?;
        use std::io::Write;
        writeln!(out)?;
    } else {
        use std::io::Write;
        for s in &snap.sections {
            writeln!(
                out,
                "{:<12} {:<12} {:>8.1} ms  {}",
                s.name,
                s.status,
                s.duration_us as f64 / 1000.0,
                s.error
            )?;
        }
    }
    Ok(())
}

/// Flags over the config file, validated into what `run` needs.
pub fn run_config(a: RunArgs) -> Result<RunConfig> {
    let file: FileConfig = match &a.config {
        Some(p) => driftwatch_common::config::load_toml(p)?,
        None => FileConfig::default(),
    };
    let need = |v: Option<PathBuf>, flag: &str| {
        v.ok_or_else(|| anyhow!("missing {flag}: pass it or set it in --config"))
    };
    let collectors = collector_urls(a.collectors, file.collector, file.collectors)?;
    let interval = match a.interval.or(file.interval) {
        Some(s) => parse_duration(&s).map_err(anyhow::Error::msg)?,
        None => DEFAULT_INTERVAL,
    };
    if interval < std::time::Duration::from_secs(1) {
        return Err(anyhow!("--interval must be at least 1s"));
    }
    let metrics_listen = a
        .metrics_listen
        .or(file.metrics_listen)
        .map(|s| {
            s.parse::<std::net::SocketAddr>()
                .map_err(|_| anyhow!("metrics_listen {s:?} is not HOST:PORT, e.g. 127.0.0.1:9465"))
        })
        .transpose()?;
    let mut labels: Vec<(String, String)> = file.labels.into_iter().collect();
    labels.extend(a.labels);
    for (k, v) in &labels {
        parse_label(&format!("{k}={v}")).map_err(anyhow::Error::msg)?;
    }
    let identity = match (a.cert.or(file.cert), a.key.or(file.key)) {
        (Some(cert), Some(key)) => IdentitySource::Files { cert, key },
        (None, None) => IdentitySource::Enrolled(TokenSource {
            token: a.enroll_token.or(file.enroll_token),
            file: a.enroll_token_file.or(file.enroll_token_file),
        }),
        _ => {
            return Err(anyhow!(
                "--cert and --key go together (or use neither, to enroll with a token)"
            ));
        }
    };
    Ok(RunConfig {
        collectors,
        ca: need(a.ca.or(file.ca), "--ca")?,
        identity,
        state_dir: need(a.state_dir.or(file.state_dir), "--state-dir")?,
        root: a.root.or(file.root).unwrap_or_else(|| PathBuf::from("/")),
        interval,
        labels,
        sections: if a.sections.is_empty() {
            file.sections.unwrap_or_default()
        } else {
            a.sections
        },
        spool_max_bytes: a
            .spool_max_bytes
            .or(file.spool_max_bytes)
            .unwrap_or(DEFAULT_SPOOL_MAX_BYTES),
        full_refresh: match a.full_refresh.or(file.full_refresh) {
            Some(s) => parse_duration(&s).map_err(anyhow::Error::msg)?,
            None => DEFAULT_FULL_REFRESH,
        },
        metrics_listen,
    })
}

/// The collector addresses: the flags when given, else the config file's
/// `collector` followed by its `collectors` list; each an https URL with
/// a host and port, said once.
fn collector_urls(
    flags: Vec<String>,
    one: Option<String>,
    list: Option<Vec<String>>,
) -> Result<Vec<String>> {
    let urls: Vec<String> = if flags.is_empty() {
        one.into_iter().chain(list.unwrap_or_default()).collect()
    } else {
        flags
    };
    if urls.is_empty() {
        return Err(anyhow!(
            "missing --collector https://HOST:PORT: pass it (repeat it for several collectors) or set collector or collectors in --config"
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(urls.len());
    for u in urls {
        let uri: tonic::transport::Uri = u
            .parse()
            .map_err(|_| anyhow!("collector URL {u:?} is not a URL: expected https://HOST:PORT"))?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(anyhow!(
                "collector URL {u:?} must be https://HOST:PORT (driftwatch only speaks mutual TLS)"
            ));
        }
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

async fn capture_baseline(
    root: PathBuf,
    state_dir: PathBuf,
    image_id: Option<String>,
) -> Result<()> {
    let image_id = image_id.unwrap_or_else(crate::baseline::new_image_id);
    driftwatch_common::identity::validate_name(&image_id)
        .map_err(|e| anyhow!("invalid --image-id: {e}"))?;
    let collectors = Collectors::new(&[]).map_err(anyhow::Error::msg)?;
    let (_, snap) = run::collect_snapshot(
        collectors,
        CollectCtx {
            fs: HostFs::new(root),
        },
        &[],
    )
    .await;
    let path = crate::baseline::write(
        &state_dir,
        &image_id,
        snap,
        driftwatch_common::time::now_ms(),
    )?;
    use std::io::Write;
    writeln!(std::io::stdout(), "{image_id}")?;
    tracing::info!(image = %image_id, path = %path.display(), "baseline written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::collector_urls;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_win_and_the_file_joins_collector_with_collectors() {
        assert_eq!(
            collector_urls(
                v(&["https://a:7443", "https://b:7443"]),
                Some("https://f:7443".into()),
                None
            )
            .unwrap(),
            v(&["https://a:7443", "https://b:7443"])
        );
        assert_eq!(
            collector_urls(
                vec![],
                Some("https://a:7443".into()),
                Some(v(&["https://b:7443", "https://a:7443"]))
            )
            .unwrap(),
            v(&["https://a:7443", "https://b:7443"]),
            "said once, in order"
        );
        let e = collector_urls(vec![], None, Some(vec![])).unwrap_err();
        assert!(e.to_string().contains("missing --collector"), "{e}");
        let e = collector_urls(v(&["http://a:7443"]), None, None).unwrap_err();
        assert!(e.to_string().contains("must be https://"), "{e}");
    }
}
