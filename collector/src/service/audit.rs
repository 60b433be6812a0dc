//! The audit trail: what admins did, recorded by the handlers that did
//! it and read back by `driftwatch audit`.

use driftwatch_common::proto::{AuditEntry, ListAuditRequest, ListAuditResponse};
use driftwatch_common::time::now_ms;
use tonic::Status;
use tracing::{error, info};

use super::State;
use crate::auth::AdminCaller;
use crate::error::ServiceError;

/// Entries answered when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most entries one request may ask for: an answer stays a few MB.
pub const MAX_LIMIT: u32 = 10_000;

pub async fn list(state: &State, req: ListAuditRequest) -> Result<ListAuditResponse, ServiceError> {
    let limit = match req.limit {
        0 => DEFAULT_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(ServiceError::InvalidArgument(format!(
                "--limit {n} is over {MAX_LIMIT}: narrow it with --since, or page back by the oldest time shown"
            )));
        }
        n => n,
    } as usize;
    let since = req.since_ms;
    let (entries, truncated) = state.blocking(move |s| s.audit(since, limit)).await?;
    Ok(ListAuditResponse { entries, truncated })
}

/// Runs an admin action and records its outcome (see [`record`]);
/// `target` names what it acted on, from its answer when it succeeded
/// (a new token's or sweep's id).
pub async fn audited<T>(
    state: &State,
    caller: &AdminCaller,
    action: impl std::future::Future<Output = Result<T, Status>>,
    target: impl FnOnce(Option<&T>) -> String,
) -> Result<T, Status> {
    let result = action.await;
    let t = target(result.as_ref().ok());
    record(state, caller, &t, result.as_ref().map(drop)).await;
    result
}

/// Writes one entry for an action that has run, and waits until it is
/// durable. The action stands either way: when its entry cannot be
/// stored (the disk the action itself just wrote to failed) that is
/// logged as an error rather than reported as the action failing.
pub async fn record(
    state: &State,
    caller: &AdminCaller,
    target: &str,
    outcome: Result<(), &Status>,
) {
    let (outcome, detail) = match outcome {
        Ok(()) => ("ok", String::new()),
        Err(s) => ("failed", format!("{:?}: {}", s.code(), s.message())),
    };
    let entry = AuditEntry {
        at_ms: now_ms(),
        admin: caller.name.clone(),
        role: caller.role.to_string(),
        action: caller.method.name().to_string(),
        target: target.to_string(),
        outcome: outcome.to_string(),
        detail,
    };
    let e = entry.clone();
    let stored = match state.blocking(move |s| s.put_audit(&e)).await {
        Ok(()) => state.durable().await,
        Err(err) => Err(err),
    };
    match stored {
        Ok(()) => {
            info!(admin = %entry.admin, role = %entry.role, action = %entry.action, target = %entry.target, outcome = %entry.outcome, "audit")
        }
        Err(err) => {
            error!(error = %err, admin = %entry.admin, action = %entry.action, target = %entry.target, outcome = %entry.outcome, "the audit entry of an admin action could not be stored")
        }
    }
}
