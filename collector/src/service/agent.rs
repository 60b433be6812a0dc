use driftwatch_common::proto::agent_server::Agent;
use driftwatch_common::proto::{ReportAck, ReportRequest};
use driftwatch_common::time::now_ms;
use tonic::{Request, Response, Status};
use tracing::{Instrument, debug, info_span};

use super::State;
use crate::auth;
use crate::error::ServiceError;
use crate::store::PutOutcome;

pub struct AgentService {
    pub state: State,
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn report(&self, req: Request<ReportRequest>) -> Result<Response<ReportAck>, Status> {
        let host_id = auth::require_host(&req)?;
        let span = info_span!("rpc", method = "Report", host = %host_id);
        async move {
            let mut snapshot = req.into_inner().snapshot.ok_or_else(|| {
                ServiceError::InvalidArgument("report carries no snapshot".into())
            })?;
            if snapshot.seq == 0 {
                return Err(
                    ServiceError::InvalidArgument("snapshot seq must start at 1".into()).into(),
                );
            }
            // Identity comes from the certificate, never from the message.
            snapshot.host_id = host_id.clone();
            let seq = snapshot.seq;
            let id = host_id.clone();
            let outcome = self
                .state
                .blocking(move |s| s.put_snapshot(&id, &snapshot, now_ms()))
                .await?;
            // Acknowledge only once durable, also for a duplicate: its first
            // copy may still be in the batch being synced.
            self.state
                .commit
                .commit()
                .await
                .map_err(ServiceError::Internal)?;
            debug!(seq, ?outcome, "report stored");
            Ok(Response::new(ReportAck {
                seq,
                duplicate: outcome == PutOutcome::Duplicate,
            }))
        }
        .instrument(span)
        .await
    }
}
