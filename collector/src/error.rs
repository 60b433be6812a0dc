//! The one place where domain errors become gRPC statuses. Internal details
//! are logged here and never sent to the client.

use thiserror::Error;
use tonic::Status;
use tracing::error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A revoked host's certificate: PermissionDenied on the wire, counted
    /// apart in metrics.
    #[error("{0}")]
    Revoked(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is valid but the target is not in a state that allows
    /// it (forgetting a host that still reports).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::tokens::TokenError> for ServiceError {
    fn from(e: crate::tokens::TokenError) -> Self {
        ServiceError::Unauthenticated(e.to_string())
    }
}

/// What a client is told when the collector's disk is full.
pub const DISK_FULL: &str = "the collector's storage is full: it takes no writes until space is freed on its data dir, and resumes by itself (an agent keeps the report spooled and resends it)";

/// What a client is told when the store's database cannot be reached.
pub const DATABASE_DOWN: &str = "the collector's database is unreachable: nothing was stored or acknowledged; retry later (an agent keeps the report spooled and resends it)";

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        match e {
            ServiceError::Unauthenticated(m) => Status::unauthenticated(m),
            ServiceError::PermissionDenied(m) | ServiceError::Revoked(m) => {
                Status::permission_denied(m)
            }
            ServiceError::NotFound(m) => Status::not_found(m),
            ServiceError::InvalidArgument(m) => Status::invalid_argument(m),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(m),
            ServiceError::Unavailable(m) => Status::unavailable(m),
            ServiceError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ServiceError::Store(e) if e.is_disk_full() => {
                error!(error = %e, "storage full");
                Status::resource_exhausted(DISK_FULL)
            }
            // Not an outage: this store does not do that (backup on PostgreSQL).
            ServiceError::Store(StoreError::Unsupported(m)) => Status::failed_precondition(m),
            ServiceError::Store(e) if e.is_unavailable() => {
                error!(error = %e, "database unreachable");
                Status::unavailable(DATABASE_DOWN)
            }
            ServiceError::Store(e) => {
                error!(error = %e, "storage failure");
                Status::internal("collector storage failure; see the collector log")
            }
            ServiceError::Internal(m) => {
                error!(error = %m, "internal error");
                Status::internal("internal collector error; see the collector log")
            }
        }
    }
}
