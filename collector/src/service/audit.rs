//! The audit trail: what admins did, read back by `driftwatch audit`.

use driftwatch_common::proto::{ListAuditRequest, ListAuditResponse};

use super::State;
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
