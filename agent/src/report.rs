//! Building snapshots and delivering the spool to the collector.

use std::time::Duration;

use driftwatch_common::client::{ConnectError, connect_from, explain_status};
use driftwatch_common::proto::agent_client::AgentClient;
use std::collections::HashMap;
use std::time::Instant;

use driftwatch_common::proto::{ReportAck, ReportRequest, Section, Snapshot};
use driftwatch_common::tls::ClientFiles;
use thiserror::Error;
use tonic::transport::Channel;
use tracing::{Instrument, debug, error, info_span};

use crate::failover::{CollectorSet, MoveReason, Pick};
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
    /// This collector cannot serve now (UNAVAILABLE, a connection broken
    /// mid-call): another one may.
    #[error("{0}")]
    Unavailable(String),
    /// The collector refuses this host's certificate (PermissionDenied: it
    /// was revoked). Only re-enrollment helps, so the loop backs off long.
    #[error("{0}")]
    Refused(String),
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
/// any failure, to the collector its [`CollectorSet`] has in use.
pub struct Reporter {
    collectors: CollectorSet,
    files: ClientFiles,
    /// The channel and the collector it goes to.
    client: Option<(AgentClient<Channel>, Pick)>,
    /// Delta state: per section, the stable hash the collector acknowledged
    /// and when the section last travelled in full.
    acked: HashMap<String, (String, Instant)>,
    /// Unchanged sections still travel in full this often, so the
    /// collector's volatile values (RSS, health, sync progress) stay fresh.
    full_refresh: Duration,
    /// Set when an acknowledged snapshot carried the image baseline.
    pub baseline_delivered: bool,
    /// Encoded size of the last report put on the wire (protobuf, before
    /// gRPC framing and TLS), for measuring.
    pub last_wire_bytes: u64,
    /// Local address to connect from (None: the kernel's choice).
    source: Option<std::net::IpAddr>,
}

/// The wire form of a spooled snapshot: sections whose stable hash the
/// collector already acknowledged travel as the hash alone, unless they are
/// due a full refresh or listed in `force_full`.
pub fn delta(
    snap: &Snapshot,
    acked: &HashMap<String, (String, Instant)>,
    full_refresh: Duration,
    force_full: &[String],
    now: Instant,
) -> Snapshot {
    // Built field by field rather than cloned whole and pruned: an unchanged
    // body is most of a snapshot, and the load generator sends this
    // thousands of times a second. The exhaustive patterns make a new proto
    // field a compile error here instead of a silently dropped value.
    let Snapshot {
        host_id,
        seq,
        collected_at_ms,
        agent_version,
        labels,
        sections,
        spool_dropped,
        agent_epoch,
        interval_s,
        image_baseline,
        image_id,
    } = snap;
    let sections = sections
        .iter()
        .map(|s| {
            let unchanged = acked
                .get(&s.name)
                .is_some_and(|(h, at)| *h == s.hash && now.duration_since(*at) < full_refresh);
            if !unchanged || s.hash.is_empty() || force_full.contains(&s.name) {
                return s.clone();
            }
            let Section {
                name,
                status,
                error,
                duration_us,
                hash,
                hash_only: _,
                // The collector's to set, never the agent's.
                body_collected_at_ms: _,
                // Part of the stable form, so the hash stands for them.
                items_truncated: _,
                truncated: _,
                body: _,
            } = s;
            Section {
                name: name.clone(),
                status: status.clone(),
                error: error.clone(),
                duration_us: *duration_us,
                hash: hash.clone(),
                hash_only: true,
                body_collected_at_ms: 0,
                items_truncated: 0,
                truncated: String::new(),
                body: None,
            }
        })
        .collect();
    Snapshot {
        host_id: host_id.clone(),
        seq: *seq,
        collected_at_ms: *collected_at_ms,
        agent_version: agent_version.clone(),
        labels: labels.clone(),
        sections,
        spool_dropped: *spool_dropped,
        agent_epoch: *agent_epoch,
        interval_s: *interval_s,
        image_baseline: image_baseline.clone(),
        image_id: image_id.clone(),
    }
}

impl Reporter {
    pub fn new(collectors: CollectorSet, files: ClientFiles) -> Self {
        Reporter {
            collectors,
            files,
            client: None,
            acked: HashMap::new(),
            full_refresh: Duration::from_secs(900),
            baseline_delivered: false,
            last_wire_bytes: 0,
            source: None,
        }
    }

    /// Connects from this local address. The load generator gives each
    /// simulated agent its own loopback address, as each real agent has
    /// its own: the collector's per-source caps would otherwise count the
    /// whole simulated fleet as one client behind a NAT.
    pub fn with_source(mut self, source: Option<std::net::IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// Forgets the connection (it may be dead): the next send reconnects.
    pub fn reset(&mut self) {
        self.client = None;
    }

    /// Gives up on the connected collector (a delivery hung past its
    /// budget): the next send goes to another one when there are several.
    pub fn abandon(&mut self, reason: MoveReason, detail: &str) {
        if let Some((_, pick)) = self.client.take() {
            self.collectors.failed(&pick, reason, detail);
        }
    }

    pub fn collectors(&self) -> &CollectorSet {
        &self.collectors
    }

    pub fn files(&self) -> &ClientFiles {
        &self.files
    }

    /// The channel to the collector in use. When the command stream moved
    /// the set meanwhile, the open channel is dropped to follow it: both
    /// parts of the agent end up on one collector.
    async fn client(&mut self) -> Result<&mut AgentClient<Channel>, ConnectError> {
        let pick = self.collectors.current();
        if self.client.as_ref().is_some_and(|(_, p)| *p != pick) {
            self.client = None;
        }
        if self.client.is_none() {
            let ch = match connect_from(&pick.url, &self.files, self.source).await {
                Ok(ch) => ch,
                Err(e) => {
                    if let Some(reason) = MoveReason::of_connect(&e) {
                        self.collectors.failed(&pick, reason, &e.to_string());
                    }
                    return Err(e);
                }
            };
            self.collectors.connected(&pick, "report");
            let client = AgentClient::new(ch)
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(64 << 20);
            self.client = Some((client, pick));
        }
        Ok(&mut self.client.as_mut().expect("set above").0)
    }

    /// New certificate files (after renewal): reconnect with them, keep the
    /// delta state.
    pub fn set_files(&mut self, files: ClientFiles) {
        self.files = files;
        self.client = None;
    }

    pub fn with_full_refresh(mut self, every: Duration) -> Self {
        self.full_refresh = every;
        self
    }

    /// Sends one spooled snapshot as a delta; when the collector lacks some
    /// hashes it says which, and those go again in full. Ok once the
    /// collector acknowledged it durably.
    pub async fn send(&mut self, snap: &Snapshot) -> Result<(), DeliverError> {
        let now = Instant::now();
        let mut force_full: Vec<String> = Vec::new();
        for _ in 0..2 {
            let wire = delta(snap, &self.acked, self.full_refresh, &force_full, now);
            self.last_wire_bytes = prost::Message::encoded_len(&wire) as u64;
            let sent: Vec<(String, String, bool)> = wire
                .sections
                .iter()
                .map(|s| (s.name.clone(), s.hash.clone(), s.hash_only))
                .collect();
            let ack = self.send_raw(wire).await?;
            if ack.need_full.is_empty() {
                for (name, hash, hash_only) in sent {
                    let since = match self.acked.get(&name) {
                        Some((h, at)) if hash_only && *h == hash => *at,
                        _ => now,
                    };
                    self.acked.insert(name, (hash, since));
                }
                if snap.image_baseline.is_some() {
                    self.baseline_delivered = true;
                }
                return Ok(());
            }
            debug!(need_full = ?ack.need_full, "collector asked for full sections");
            force_full = ack.need_full;
        }
        Err(DeliverError::Rejected(format!(
            "collector kept asking for full sections of snapshot {}",
            snap.seq
        )))
    }

    async fn send_raw(&mut self, snap: Snapshot) -> Result<ReportAck, DeliverError> {
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
                } else if s.code() == tonic::Code::PermissionDenied {
                    DeliverError::Refused(explain_status(&format!("report of snapshot {seq}"), &s))
                } else if MoveReason::of_code(s.code()).is_some() {
                    DeliverError::Unavailable(explain_status(
                        &format!("report of snapshot {seq}"),
                        &s,
                    ))
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
                Ok(ack.into_inner())
            }
            Err(e) => {
                if let (DeliverError::Unavailable(why), Some((_, pick))) = (&e, &self.client) {
                    self.collectors
                        .failed(pick, MoveReason::Unavailable, why.as_str());
                }
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
            if let Err(e) = self.send(&snap).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::HostSection;
    use driftwatch_common::proto::section::Body;
    use driftwatch_common::snapshot::ok_section;

    #[test]
    fn unchanged_sections_travel_as_hashes_until_refresh() {
        let host = ok_section(
            Body::Host(HostSection {
                hostname: "a".into(),
                ..Default::default()
            }),
            1,
        );
        let snap = Snapshot {
            sections: vec![host.clone()],
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut acked = HashMap::new();
        assert!(
            !delta(&snap, &acked, Duration::from_secs(60), &[], t0).sections[0].hash_only,
            "nothing acked yet"
        );
        acked.insert("host".to_string(), (host.hash.clone(), t0));
        let d = delta(&snap, &acked, Duration::from_secs(60), &[], t0);
        assert!(d.sections[0].hash_only && d.sections[0].body.is_none());
        assert!(prost::Message::encoded_len(&d) < 200);
        assert!(
            !delta(&snap, &acked, Duration::from_secs(60), &["host".into()], t0).sections[0]
                .hash_only
        );
        assert!(
            !delta(
                &snap,
                &acked,
                Duration::from_secs(60),
                &[],
                t0 + Duration::from_secs(61)
            )
            .sections[0]
                .hash_only
        );
        acked.insert("host".to_string(), ("other".into(), t0));
        assert!(
            !delta(&snap, &acked, Duration::from_secs(60), &[], t0).sections[0].hash_only,
            "changed"
        );
    }
}
