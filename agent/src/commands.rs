//! The agent end of the `Commands` stream: held open while the agent runs,
//! so the collector knows it is connected and can push work to it (sweeps
//! arrive with the sweep issue), and can cut it off at once on revocation.

use std::time::Duration;

use driftwatch_common::client::{connect, explain_status};
use driftwatch_common::proto::CommandResult;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::tls::ClientFiles;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{error, info, warn};

/// Keeps one stream open, reconnecting with backoff; runs until aborted.
pub async fn hold_stream(url: String, files: ClientFiles) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match once(&url, &files).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err((revoked, msg)) => {
                if revoked {
                    error!(error = %msg, "the collector refused this host's certificate");
                    backoff = Duration::from_secs(300);
                } else {
                    warn!(error = %msg, "command stream lost");
                }
            }
        }
        tokio::time::sleep(backoff.mul_f64(0.9 + fastrand::f64() * 0.2)).await;
        backoff = (backoff * 2).min(Duration::from_secs(300));
    }
}

async fn once(url: &str, files: &ClientFiles) -> Result<(), (bool, String)> {
    let ch = connect(url, files)
        .await
        .map_err(|e| (false, e.to_string()))?;
    let (tx, rx) = mpsc::channel::<CommandResult>(16);
    let mut inbound = AgentClient::new(ch)
        .commands(ReceiverStream::new(rx))
        .await
        .map_err(|s| {
            (
                s.code() == tonic::Code::PermissionDenied,
                explain_status("opening the command stream", &s),
            )
        })?
        .into_inner();
    info!("command stream open");
    loop {
        match inbound.message().await {
            Ok(Some(cmd)) => {
                // No command kinds exist yet; say so rather than stay silent.
                let _ = tx
                    .send(CommandResult {
                        command_id: cmd.id.clone(),
                        status: "unsupported".into(),
                        message: format!("this agent does not know command kind {:?}", cmd.kind),
                    })
                    .await;
            }
            Ok(None) => return Ok(()),
            Err(s) => {
                return Err((
                    s.code() == tonic::Code::PermissionDenied,
                    explain_status("command stream", &s),
                ));
            }
        }
    }
}
