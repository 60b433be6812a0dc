//! Building snapshots and delivering the spool to the collector.

use std::time::Duration;

use driftwatch_common::client::{ConnectError, connect, explain_status};
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{ReportRequest, Snapshot};
use driftwatch_common::tls::ClientFiles;
use thiserror::Error;
use tonic::transport::Channel;
use tracing::{Instrument, debug, error, info_span};

use crate::spool::{Spool, SpoolError};
use crate::state::{StateDir, StateError};

/// A report RPC never waits longer than this.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum DeliverError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Rejected(String),
    /// Refused for its size: resending cannot help, so it leaves the spool
    /// (counted as dropped) instead of blocking every later snapshot.
    #[error(
        "the collector refuses snapshot {seq} as too large ({detail}); it was dropped from the spool and counted: raise [limits] max_message_bytes on the collector or report fewer sections"
    )]
    TooLarge { seq: u64, detail: String },
    #[error("delivery did not finish within {0:?}; the connection is dropped and retried")]
    TimedOut(Duration),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The agent's side of the wire: a lazily opened channel, reopened after
/// any failure.
pub struct Reporter {
    url: String,
    files: ClientFiles,
    client: Option<AgentClient<Channel>>,
}

impl Reporter {
    pub fn new(url: String, files: ClientFiles) -> Self {
        Reporter {
            url,
            files,
            client: None,
        }
    }

    /// Forgets the connection (it may be dead): the next send reconnects.
    pub fn reset(&mut self) {
        self.client = None;
    }

    pub fn files(&self) -> &ClientFiles {
        &self.files
    }

    async fn client(&mut self) -> Result<&mut AgentClient<Channel>, ConnectError> {
        if self.client.is_none() {
            let ch = connect(&self.url, &self.files).await?;
            self.client = Some(
                AgentClient::new(ch)
                    .max_decoding_message_size(16 << 20)
                    .max_encoding_message_size(64 << 20),
            );
        }
        Ok(self.client.as_mut().expect("set above"))
    }

    /// Sends one snapshot; Ok once the collector acknowledged it durably.
    pub async fn send(&mut self, snap: Snapshot) -> Result<(), DeliverError> {
        let seq = snap.seq;
        let result = async {
            let client = self.client().await?;
            let mut req = tonic::Request::new(ReportRequest {
                snapshot: Some(snap),
            });
            req.set_timeout(REPORT_TIMEOUT);
            client.report(req).await.map_err(|s| {
                if s.code() == tonic::Code::OutOfRange {
                    DeliverError::TooLarge {
                        seq,
                        detail: s.message().to_string(),
                    }
                } else {
                    DeliverError::Rejected(explain_status(&format!("report of snapshot {seq}"), &s))
                }
            })
        }
        .instrument(info_span!("rpc", method = "Report", seq))
        .await;
        match result {
            Ok(ack) => {
                debug!(seq, duplicate = ack.get_ref().duplicate, "acknowledged");
                Ok(())
            }
            Err(e) => {
                self.client = None;
                Err(e)
            }
        }
    }

    /// Sends the spool oldest first, removing each entry once acknowledged.
    /// Stops at the first failure so order is kept. Returns how many went.
    pub async fn drain(
        &mut self,
        spool: &Spool,
        state: &mut StateDir,
    ) -> Result<usize, DeliverError> {
        let mut sent = 0;
        for entry in spool.entries()? {
            let Some(snap) = spool.read(&entry)? else {
                // Unreadable entry: dropping it is the only way forward; count it.
                spool.remove(&entry)?;
                state.add_dropped(1)?;
                continue;
            };
            let dropped = snap.spool_dropped;
            if let Err(e) = self.send(snap).await {
                if matches!(e, DeliverError::TooLarge { .. }) {
                    error!(seq = entry.seq, error = %e, "snapshot refused as too large; dropped");
                    spool.remove(&entry)?;
                    state.add_dropped(1)?;
                }
                return Err(e);
            }
            spool.remove(&entry)?;
            state.dropped_reported(dropped)?;
            sent += 1;
        }
        Ok(sent)
    }
}
