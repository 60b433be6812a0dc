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

use crate::failover::{Backoff, CollectorSet, MoveReason, Pick, jittered};
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

/// How a stream attempt ended.
enum Ended {
    /// The collector refuses this host (revoked): no collector will take it.
    Refused(String),
    /// This collector is gone or cannot serve: another may.
    Lost {
        opened: bool,
        reason: MoveReason,
        detail: String,
    },
    /// A failure no other collector cures (our own files).
    Failed(String),
}

/// Keeps one stream open to the collector the set has in use, moving to
/// another when it is lost, with backoff; runs until aborted.
pub async fn hold_stream(collectors: CollectorSet, files: ClientFiles, mut exec: Executor) {
    let mut backoff = Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(300),
        collectors.len(),
    );
    loop {
        let pick = collectors.current();
        let wait = match once(&pick, &files, &mut exec).await {
            Ended::Refused(msg) => {
                // Refused until re-enrolled: once an hour is enough to
                // notice, and keeps the log readable.
                error!(error = %msg, "the collector refused this host's certificate; retrying in an hour");
                crate::run::REFUSED_RETRY
            }
            Ended::Lost {
                opened,
                reason,
                detail,
            } => {
                warn!(collector = %pick.url, error = %detail, "command stream lost");
                if opened {
                    // It worked until now: the next collector is tried
                    // after the first step, not the backoff of old failures.
                    backoff.succeeded();
                }
                collectors.failed(&pick, reason, &detail);
                backoff.failed()
            }
            Ended::Failed(msg) => {
                warn!(error = %msg, "command stream cannot open");
                backoff.failed()
            }
        };
        tokio::time::sleep(jittered(wait)).await;
    }
}

async fn once(pick: &Pick, files: &ClientFiles, exec: &mut Executor) -> Ended {
    let lost = |opened: bool, s: &tonic::Status, what: &str| match s.code() {
        tonic::Code::PermissionDenied => Ended::Refused(explain_status(what, s)),
        code => match MoveReason::of_code(code) {
            Some(reason) => Ended::Lost {
                opened,
                reason: if opened {
                    MoveReason::StreamLost
                } else {
                    reason
                },
                detail: explain_status(what, s),
            },
            None if opened => Ended::Lost {
                opened,
                reason: MoveReason::StreamLost,
                detail: explain_status(what, s),
            },
            None => Ended::Failed(explain_status(what, s)),
        },
    };
    let ch = match connect(&pick.url, files).await {
        Ok(ch) => ch,
        Err(e) => {
            return match MoveReason::of_connect(&e) {
                Some(reason) => Ended::Lost {
                    opened: false,
                    reason,
                    detail: e.to_string(),
                },
                None => Ended::Failed(e.to_string()),
            };
        }
    };
    let (tx, rx) = mpsc::channel::<CommandResult>(16);
    let mut inbound = match AgentClient::new(ch).commands(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return lost(false, &s, "opening the command stream"),
    };
    info!(collector = %pick.url, "command stream open");
    loop {
        match inbound.message().await {
            Ok(Some(cmd)) => {
                let result = exec.execute(cmd).await;
                if tx.send(result).await.is_err() {
                    return Ended::Lost {
                        opened: true,
                        reason: MoveReason::StreamLost,
                        detail: "command stream closed before a result was sent".into(),
                    };
                }
            }
            // A collector ends its streams when it shuts down: another one
            // takes the host's stream meanwhile.
            Ok(None) => {
                return Ended::Lost {
                    opened: true,
                    reason: MoveReason::StreamLost,
                    detail: "the collector ended the command stream".into(),
                };
            }
            Err(s) => return lost(true, &s, "command stream"),
        }
    }
}
