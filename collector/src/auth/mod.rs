//! Authorization from the verified client certificate. The TLS layer
//! accepts clients without a certificate (enrollment needs that): Agent
//! RPCs that need an identity ask [`require_host`]; every Admin RPC passes
//! [`AdminGate`] first, which checks the role [`AdminMethod`] names.

mod gate;

pub use driftwatch_common::admin_method::{AdminMethod, Effect};
pub use gate::{AdminCaller, AdminGate};

use driftwatch_common::identity::Identity;
use tonic::Request;

use crate::error::ServiceError;
use crate::tls_incoming::PeerInfo;

pub fn caller<T>(req: &Request<T>) -> Result<Identity, ServiceError> {
    let identity = req
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.identity.clone())
        .ok_or_else(|| {
            ServiceError::Unauthenticated(
                "no client certificate: this RPC needs a certificate issued by the collector's CA"
                    .into(),
            )
        })?;
    identity
        .as_ref()
        .clone()
        .map_err(ServiceError::Unauthenticated)
}

/// The host id of an agent certificate.
pub fn require_host<T>(req: &Request<T>) -> Result<String, ServiceError> {
    match caller(req)? {
        Identity::Host(id) => Ok(id),
        other => Err(ServiceError::PermissionDenied(format!(
            "{other} may not report: this RPC needs a host certificate (driftwatch://host/ID)"
        ))),
    }
}
