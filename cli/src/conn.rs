//! Where the CLI connects and with which certificate: flags, then the
//! DRIFTWATCH_* environment (clap reads both), then
//! `~/.config/driftwatch/cli.toml`.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use driftwatch_common::proto::admin_client::AdminClient;
use driftwatch_common::tls::ClientFiles;
use serde::Deserialize;
use std::path::PathBuf;
use tonic::transport::Channel;

#[derive(Debug, Clone, Args, Default)]
pub struct ConnArgs {
    /// Collector URL, e.g. https://collector.example:7443
    #[arg(
        long,
        env = "DRIFTWATCH_COLLECTOR",
        global = true,
        help_heading = "Connection"
    )]
    pub collector: Option<String>,
    /// CA certificate that signed the collector's certificate (ca.pem)
    #[arg(
        long,
        env = "DRIFTWATCH_CA",
        global = true,
        help_heading = "Connection"
    )]
    pub ca: Option<PathBuf>,
    /// Admin client certificate (admin.pem)
    #[arg(
        long,
        env = "DRIFTWATCH_CERT",
        global = true,
        help_heading = "Connection"
    )]
    pub cert: Option<PathBuf>,
    /// Admin client private key (admin-key.pem, mode 0600)
    #[arg(
        long,
        env = "DRIFTWATCH_KEY",
        global = true,
        help_heading = "Connection"
    )]
    pub key: Option<PathBuf>,
    /// CLI config file [default: ~/.config/driftwatch/cli.toml]
    #[arg(
        long = "cli-config",
        env = "DRIFTWATCH_CLI_CONFIG",
        global = true,
        help_heading = "Connection"
    )]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    collector: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Settled connection settings.
#[derive(Debug, Clone)]
pub struct Conn {
    pub url: String,
    pub files: ClientFiles,
}

impl ConnArgs {
    pub fn resolve(&self) -> Result<Conn> {
        let default_path =
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/driftwatch/cli.toml"));
        let file: FileConfig = match (&self.config, default_path) {
            (Some(p), _) => driftwatch_common::config::load_toml(p)?,
            (None, Some(p)) if p.exists() => driftwatch_common::config::load_toml(&p)?,
            _ => FileConfig::default(),
        };
        let url = self.collector.clone().or(file.collector).ok_or_else(|| {
            anyhow!("no collector address: pass --collector https://HOST:PORT or set DRIFTWATCH_COLLECTOR")
        })?;
        let ca = self.ca.clone().or(file.ca).ok_or_else(|| {
            anyhow!("no CA certificate: pass --ca FILE or set DRIFTWATCH_CA (the ca.pem from `driftwatch-collector pki init`)")
        })?;
        let cert = self.cert.clone().or(file.cert);
        let key = self.key.clone().or(file.key);
        match (&cert, &key) {
            (Some(_), Some(_)) => {}
            (None, _) => bail!(
                "no client certificate: pass --cert/--key or set DRIFTWATCH_CERT and DRIFTWATCH_KEY"
            ),
            (Some(_), None) => bail!("no client key: pass --key or set DRIFTWATCH_KEY"),
        }
        Ok(Conn {
            url,
            files: ClientFiles { ca, cert, key },
        })
    }
}

impl Conn {
    pub async fn channel(&self) -> Result<Channel> {
        Ok(driftwatch_common::client::connect(&self.url, &self.files).await?)
    }

    /// The Admin client every command uses, decoding answers as large as
    /// the collector may send.
    pub async fn admin(&self) -> Result<AdminClient<Channel>> {
        Ok(AdminClient::new(self.channel().await?)
            .max_decoding_message_size(driftwatch_common::client::ADMIN_RESPONSE_MAX_BYTES))
    }

    /// One Admin call, the way every command makes it: connect, call, and
    /// turn a refusal into a sentence that starts with `what` ("listing
    /// hosts: …") and keeps the gRPC code for the exit status.
    pub async fn call<R>(
        &self,
        what: &str,
        rpc: impl AsyncFnOnce(AdminClient<Channel>) -> Result<tonic::Response<R>, tonic::Status>,
    ) -> Result<R> {
        let client = self.admin().await?;
        rpc(client)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| explain_status(what, &s))
    }
}

/// A refused or failed call: the sentence for the operator, and the code
/// the exit status is chosen by (InvalidArgument is bad usage).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: tonic::Code,
    pub message: String,
}

/// A gRPC status as an error an operator can act on.
pub fn explain_status(what: &str, s: &tonic::Status) -> anyhow::Error {
    RpcError {
        code: s.code(),
        message: driftwatch_common::client::explain_status(what, s),
    }
    .into()
}
