//! The agent end of the `Commands` stream: held open while the agent runs,
//! so the collector knows it is connected and can push work to it (sweeps),
//! and can cut it off at once on revocation.

use std::collections::HashMap;
use std::time::Duration;

use driftwatch_common::client::{connect, explain_status};
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{Command, CommandResult};
use driftwatch_common::tls::ClientFiles;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{error, info, warn};

use crate::hostfs::HostFs;

/// What the stream needs besides the connection.
pub struct Executor {
    pub fs: HostFs,
    /// Asks the run loop for a snapshot now (after a sweep changed files).
    pub collect_now: mpsc::Sender<()>,
    /// Results of commands already run by this process, by id: a command
    /// pushed again (the stream dropped before its result arrived) is
    /// answered from here and never run twice.
    done: HashMap<String, CommandResult>,
}

impl Executor {
    pub fn new(fs: HostFs, collect_now: mpsc::Sender<()>) -> Self {
        Executor {
            fs,
            collect_now,
            done: HashMap::new(),
        }
    }

    async fn execute(&mut self, cmd: Command) -> CommandResult {
        if let Some(r) = self.done.get(&cmd.id) {
            return r.clone();
        }
        let result = match (cmd.kind.as_str(), cmd.sweep) {
            ("sweep", Some(sweep)) => {
                let fs = self.fs.clone();
                let id = cmd.id.clone();
                info!(command = %id, remove = sweep.remove, "sweep started");
                let r = tokio::task::spawn_blocking(move || crate::sweep::run(&fs, &id, &sweep))
                    .await
                    .unwrap_or_else(|e| CommandResult {
                        command_id: cmd.id.clone(),
                        status: "failed".into(),
                        message: format!("sweep task failed: {e}"),
                        files: vec![],
                    });
                info!(command = %r.command_id, status = %r.status, message = %r.message, "sweep finished");
                if r.files.iter().any(|f| f.status == "removed") {
                    // The fleet view should show the result at once; a full
                    // channel means a collection is already due.
                    let _ = self.collect_now.try_send(());
                }
                r
            }
            (kind, _) => CommandResult {
                command_id: cmd.id.clone(),
                status: "unsupported".into(),
                message: format!("this agent does not know command kind {kind:?}"),
                files: vec![],
            },
        };
        self.done.insert(cmd.id, result.clone());
        result
    }
}

/// Keeps one stream open, reconnecting with backoff; runs until aborted.
pub async fn hold_stream(url: String, files: ClientFiles, mut exec: Executor) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match once(&url, &files, &mut exec).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err((revoked, msg)) => {
                if revoked {
                    // Refused until re-enrolled: once an hour is enough to
                    // notice, and keeps the log readable.
                    error!(error = %msg, "the collector refused this host's certificate; retrying in an hour");
                    backoff = crate::run::REFUSED_RETRY;
                    tokio::time::sleep(backoff.mul_f64(0.9 + fastrand::f64() * 0.2)).await;
                    continue;
                } else {
                    warn!(error = %msg, "command stream lost");
                }
            }
        }
        tokio::time::sleep(backoff.mul_f64(0.9 + fastrand::f64() * 0.2)).await;
        backoff = (backoff * 2).min(Duration::from_secs(300));
    }
}

async fn once(url: &str, files: &ClientFiles, exec: &mut Executor) -> Result<(), (bool, String)> {
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
                let result = exec.execute(cmd).await;
                if tx.send(result).await.is_err() {
                    return Err((
                        false,
                        "command stream closed before a result was sent".into(),
                    ));
                }
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
