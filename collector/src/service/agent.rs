//! The Agent service: Report, Enroll, Renew, Commands.

use std::pin::Pin;

use driftwatch_common::identity::{Identity, validate_name};
use driftwatch_common::proto::agent_server::Agent;
use driftwatch_common::proto::{
    Command, CommandResult, EnrollRequest, EnrollResponse, HostSummary, Label, RenewRequest,
    RenewResponse, ReportAck, ReportRequest,
};
use driftwatch_common::time::now_ms;
use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info, info_span, warn};

use super::State;
use crate::error::ServiceError;
use crate::ratelimit::Limited;
use crate::store::{CandidateOutcome, PutOutcome};
use crate::tls_incoming::PeerInfo;
use crate::tokens;

pub struct AgentService {
    pub state: State,
}

/// A readable, unique host id: the hostname (sanitized) and 6 random hex.
pub fn new_host_id(hostname: &str) -> String {
    let mut base: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = "host".into();
    }
    let mut r = [0u8; 3];
    SystemRandom::new()
        .fill(&mut r)
        .expect("system RNG available");
    format!("{base}-{}", hex::encode(r))
}

fn not_after_ms(validity: std::time::Duration) -> i64 {
    now_ms() + validity.as_millis() as i64
}

impl AgentService {
    /// A host's upload of its image's bake-time baseline is a candidate,
    /// never the baseline by itself: one hostile host (any holder of the
    /// image's enrollment token) must not decide drift for every host of
    /// an image. It counts only for the image its own snapshot runs.
    async fn image_baseline(
        &self,
        host_id: &str,
        image_id: &str,
        b: driftwatch_common::proto::Baseline,
    ) -> Result<(), ServiceError> {
        if b.image_id.is_empty() || validate_name(&b.image_id).is_err() {
            warn!(image = %b.image_id, "ignoring an image baseline without a valid image id");
            return Ok(());
        }
        if b.image_id != image_id {
            warn!(image = %b.image_id, own_image = %image_id, "ignoring an image baseline for an image this host's snapshot does not run");
            return Ok(());
        }
        let (id, quorum) = (host_id.to_string(), self.state.baseline_quorum);
        let outcome = self
            .state
            .blocking(move |s| s.put_baseline_candidate(&id, &b, quorum))
            .await?;
        // Confirmed or not, drift has something new to say about the image.
        self.state.evaluator.data_changed();
        self.state
            .bus
            .publish(crate::fleet_bus::FleetEvent::DataChanged);
        match &outcome {
            CandidateOutcome::Confirmed { hosts } => {
                info!(image = %image_id, hosts = hosts.len(), "image baseline confirmed by agreeing hosts");
            }
            CandidateOutcome::AlreadyDecided { same: false } => {
                warn!(image = %image_id, "this host's bake-time baseline differs from the image's: its image may have been tampered with")
            }
            _ => info!(image = %image_id, ?outcome, "image baseline candidate received"),
        }
        Ok(())
    }

    /// Report without the metrics: authorize, validate, store, wait until durable.
    async fn store_report(&self, req: Request<ReportRequest>) -> Result<ReportAck, ServiceError> {
        let host_id = self.state.require_live_host(&req)?;
        let span = info_span!("rpc", method = "Report", host = %host_id);
        async move {
            let mut snapshot = req
                .into_inner()
                .snapshot
                .ok_or_else(|| ServiceError::InvalidArgument("report carries no snapshot".into()))?;
            if snapshot.seq == 0 {
                return Err(ServiceError::InvalidArgument("snapshot seq must start at 1".into()));
            }
            // Identity comes from the certificate, never from the message;
            // a message that claims another host is refused outright.
            if !snapshot.host_id.is_empty() && snapshot.host_id != host_id {
                return Err(ServiceError::PermissionDenied(format!(
                    "certificate is for host {host_id} but the snapshot claims host {}: an agent reports only as itself",
                    snapshot.host_id
                )));
            }
            snapshot.host_id = host_id.clone();
            enforce_caps(&mut snapshot)?;
            let seq = snapshot.seq;
            let image_baseline = snapshot.image_baseline.take();
            let id = host_id.clone();
            // Only a report that carries an ssh_keys body changes the key
            // index; the snapshot is moved into the store task and back.
            let (outcome, snapshot) = self
                .state
                .blocking(move |s| s.put_snapshot(&id, &snapshot, now_ms()).map(|o| (o, snapshot)))
                .await?;
            if let PutOutcome::NeedFull(need_full) = outcome {
                debug!(seq, ?need_full, "asking for full sections");
                return Ok(ReportAck { seq, duplicate: false, need_full });
            }
            if let Some(b) = image_baseline {
                self.image_baseline(&host_id, &snapshot.image_id, *b).await?;
            }
            if matches!(outcome, PutOutcome::Stored { changed: true }) {
                self.state.evaluator.data_changed();
            } else {
                self.state.evaluator.reported(&host_id);
            }
            // Acknowledge only once durable, also for a duplicate: its first
            // copy may still be in the batch being synced.
            self.state.durable().await?;
            if matches!(outcome, PutOutcome::Stored { .. }) && crate::keyindex::ssh_keys_body(&snapshot).is_some() {
                self.state.keys.write().expect("not poisoned").update(&host_id, &snapshot);
            }
            if matches!(outcome, PutOutcome::Stored { .. }) {
                self.state.raid.write().expect("not poisoned").update(&host_id, &snapshot);
                self.state.metrics.agent_spool_dropped.inc_by(snapshot.spool_dropped);
            }
            // Only a report that changed stable content: the unchanged
            // reports that are nearly all of the traffic tell nobody.
            if matches!(outcome, PutOutcome::Stored { changed: true }) {
                self.state.bus.publish(crate::fleet_bus::FleetEvent::HostChanged { host_id: host_id.clone() });
            }
            // Fixed field values: tests and log pipelines match on them.
            let (stored, changed) = match outcome {
                PutOutcome::Stored { changed } => ("stored", changed),
                _ => ("duplicate", false),
            };
            debug!(seq, outcome = stored, changed, "report stored");
            Ok(ReportAck { seq, duplicate: outcome == PutOutcome::Duplicate, need_full: vec![] })
        }
        .instrument(span)
        .await
    }
}

/// The agent's caps, applied again to what arrived (common/src/caps.rs): an
/// agent that sends more (an old or a hostile one) is cut the same way and
/// the section says "by the collector". Cutting rather than refusing keeps
/// the rest of the snapshot, and the delta rule holds by itself: the stored
/// hash is recomputed from the cut section, so a later hash-only resend of
/// the agent's uncut hash matches nothing stored and is answered `need_full`.
fn enforce_caps(snapshot: &mut driftwatch_common::proto::Snapshot) -> Result<(), ServiceError> {
    use driftwatch_common::caps;
    if snapshot.sections.len() > caps::SECTIONS {
        return Err(ServiceError::InvalidArgument(format!(
            "snapshot has {} sections, over the cap of {}",
            snapshot.sections.len(),
            caps::SECTIONS
        )));
    }
    if snapshot.labels.len() > caps::LABELS {
        return Err(ServiceError::InvalidArgument(format!(
            "snapshot has {} labels, over the cap of {}",
            snapshot.labels.len(),
            caps::LABELS
        )));
    }
    for s in snapshot.sections.iter_mut().filter(|s| !s.hash_only) {
        let cut = caps::enforce(s, Some("the collector"));
        if !cut.is_empty() {
            warn!(section = %s.name, truncated = %cut.message(), "report over the caps: cut before storing");
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn report(&self, req: Request<ReportRequest>) -> Result<Response<ReportAck>, Status> {
        let started = std::time::Instant::now();
        let bytes = req.get_ref().encoded_len() as u64;
        let m = &self.state.metrics;
        match self.store_report(req).await {
            Ok(ack) => {
                let outcome = if !ack.need_full.is_empty() {
                    "need_full"
                } else if ack.duplicate {
                    "duplicate"
                } else {
                    "new"
                };
                m.reports_received
                    .get_or_create(&[("outcome", outcome)])
                    .inc();
                m.report_bytes.inc_by(bytes);
                m.report_seconds.observe(started.elapsed().as_secs_f64());
                Ok(Response::new(ack))
            }
            Err(e) => {
                m.rejected(&e);
                Err(e.into())
            }
        }
    }

    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let remote = req.extensions().get::<PeerInfo>().map(|p| p.remote);
        let span = info_span!("rpc", method = "Enroll", remote = ?remote);
        async move {
            if let Some(addr) = remote
                && let Err(limited) = self.state.enroll_limit.check(addr.ip(), now_ms())
            {
                warn!(%addr, ?limited, "enrollment rate limit hit");
                let msg = match limited {
                    Limited::Address { wait_s } => format!(
                        "too many enrollment attempts from {}: retry in {wait_s}s",
                        addr.ip()
                    ),
                    Limited::Network { network, bits, wait_s } => format!(
                        "too many enrollment attempts from network {network}/{bits}: retry in {wait_s}s"
                    ),
                };
                return Err(ServiceError::ResourceExhausted(msg).into());
            }
            let EnrollRequest { token, csr_pem, facts, previous_host_id, previous_cert_pem, previous_signature } =
                req.into_inner();
            let facts = facts.unwrap_or_default();
            let token_id = tokens::id_of(&token).ok_or(tokens::TokenError::Invalid).map_err(ServiceError::from)?.to_string();
            // The token first: a caller without a valid one costs a hash and
            // one read, never CA work (checked again, and counted, below).
            let tid = token_id.clone();
            let record = self.state.blocking(move |s| s.token(&tid)).await?;
            let now = now_ms();
            record
                .as_ref()
                .ok_or(tokens::TokenError::Invalid)
                .and_then(|r| tokens::check(r, &token, now))
                .map_err(ServiceError::from)?;
            // Then the CSR, before spending a token use on it: parsing and
            // verifying its self-signature signs nothing.
            driftwatch_common::pki::Ca::check_csr(&csr_pem)
                .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
            let host_id = new_host_id(&facts.hostname);
            let (tid, t) = (token_id.clone(), token.clone());
            let record = self
                .state
                .blocking(move |s| s.consume_token(&tid, &t, now_ms()))
                .await?
                .map_err(ServiceError::from)?;
            let validity = self.state.enrolled_validity;
            let issued = self
                .state
                .ca
                .sign_csr(&csr_pem, &Identity::Host(host_id.clone()), validity)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            let labels = vec![Label { key: "group".into(), value: record.group.clone() }];
            // Lineage only with proof: any token holder could otherwise
            // name any host as its predecessor.
            let (previous, unverified, why) = if previous_host_id.is_empty() {
                (String::new(), String::new(), String::new())
            } else if let Err(e) = validate_name(&previous_host_id) {
                (String::new(), String::new(), format!("invalid host id: {e}"))
            } else {
                match driftwatch_common::lineage::verify(
                    self.state.ca.cert_pem(),
                    &previous_host_id,
                    &csr_pem,
                    &previous_cert_pem,
                    &previous_signature,
                ) {
                    Ok(()) => (previous_host_id, String::new(), String::new()),
                    Err(e) => {
                        warn!(claimed = %previous_host_id, reason = %e, "previous host id not proven: recorded as unverified, not as lineage");
                        (String::new(), previous_host_id, e.to_string())
                    }
                }
            };
            let now = now_ms();
            let host = HostSummary {
                host_id: host_id.clone(),
                hostname: facts.hostname.clone(),
                labels: labels.clone(),
                enrollment_labels: labels.clone(),
                first_seen_ms: now,
                enrolled_ms: now,
                token_id: record.id.clone(),
                facts: Some(facts),
                previous_host_id: previous.clone(),
                unverified_previous_host_id: unverified,
                unverified_previous_reason: why,
                ..Default::default()
            };
            self.state.blocking(move |s| s.enroll_host(&host)).await?;
            self.state.durable().await?;
            self.state.metrics.enrollments.inc();
            info!(host = %host_id, token = %record.id, group = %record.group, previous = %previous, "host enrolled");
            Ok(Response::new(EnrollResponse {
                host_id,
                cert_pem: issued.cert_pem,
                not_after_ms: not_after_ms(validity),
                labels,
            }))
        }
        .instrument(span)
        .await
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let host_id = self.state.require_live_host(&req)?;
        let RenewRequest { csr_pem, facts: _ } = req.into_inner();
        let validity = self.state.enrolled_validity;
        let issued = self
            .state
            .ca
            .sign_csr(&csr_pem, &Identity::Host(host_id.clone()), validity)
            .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        info!(host = %host_id, "certificate renewed");
        Ok(Response::new(RenewResponse {
            cert_pem: issued.cert_pem,
            not_after_ms: not_after_ms(validity),
        }))
    }

    type CommandsStream = Pin<Box<dyn Stream<Item = Result<Command, Status>> + Send + 'static>>;

    async fn commands(
        &self,
        req: Request<Streaming<CommandResult>>,
    ) -> Result<Response<Self::CommandsStream>, Status> {
        let host_id = self.state.require_live_host(&req)?;
        let (tx, rx) = mpsc::channel(16);
        let id = self.state.streams.register(&host_id, tx);
        let state = self.state.clone();
        let mut inbound = req.into_inner();
        tokio::spawn(
            async move {
                debug!("command stream open");
                super::sweeps::on_connect(&state, &host_id).await;
                while let Ok(Some(result)) = inbound.message().await {
                    debug!(command = %result.command_id, status = %result.status, "command result");
                    super::sweeps::on_result(&state, &host_id, result).await;
                }
                state.streams.unregister(&host_id, id);
                debug!("command stream closed");
            }
            .instrument(info_span!("rpc", method = "Commands")),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_readable_unique_and_valid() {
        let a = new_host_id("web-07.prod.example.com");
        assert!(a.starts_with("web-07-prod-example-com-"), "{a}");
        assert!(validate_name(&a).is_ok());
        assert_ne!(a, new_host_id("web-07.prod.example.com"));
        assert!(new_host_id("").starts_with("host-"));
        assert!(validate_name(&new_host_id("ünï côde!!")).is_ok());
    }
}
