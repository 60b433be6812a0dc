//! The Admin service's one door. Every request to it passes here before
//! tonic decodes a byte of its body: the path names an [`AdminMethod`]
//! (any other path is refused), the verified certificate names an admin
//! whose role is at least the method's, and the handler receives that
//! caller as an [`AdminCaller`] in the request's extensions. A handler
//! cannot be reached another way: `AdminService` is constructed only
//! wrapped in this gate (`service::admin::serve`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use driftwatch_common::identity::{Identity, Role};
use tonic::Status;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;

use crate::error::ServiceError;
use crate::tls_incoming::PeerInfo;
use driftwatch_common::admin_method::AdminMethod;

/// The caller the gate let through: who, with which role, calling what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    pub name: String,
    pub role: Role,
    pub method: AdminMethod,
}

impl AdminCaller {
    /// The caller the gate verified. Fails closed: a request that did not
    /// pass the gate carries none.
    pub fn of<T>(req: &tonic::Request<T>) -> Result<AdminCaller, ServiceError> {
        req.extensions()
            .get::<AdminCaller>()
            .cloned()
            .ok_or_else(|| {
                ServiceError::Internal("an Admin handler was reached without the gate".into())
            })
    }
}

impl std::fmt::Display for AdminCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Decides one request from its path and the connection's certificate.
pub fn authorize(
    path: &str,
    identity: Option<&Result<Identity, String>>,
    revoked: &RwLock<HashSet<String>>,
) -> Result<AdminCaller, Status> {
    let method = AdminMethod::from_path(path).ok_or_else(|| {
        Status::unimplemented(format!(
            "{path} is not an Admin method this collector serves (a CLI newer than the collector?)"
        ))
    })?;
    let need = method.required_role();
    let needs = format!("{method} needs role {need}");
    let issue = format!("`driftwatch-collector pki admin --name NAME --role {need}` issues one");
    let identity = match identity {
        None => {
            return Err(Status::unauthenticated(format!(
                "{needs}; you presented no client certificate, so you have no role ({issue})"
            )));
        }
        Some(Err(e)) => {
            return Err(Status::unauthenticated(format!(
                "{needs}; your certificate names no identity of ours, so it has no role ({e}; {issue})"
            )));
        }
        Some(Ok(identity)) => identity,
    };
    match identity {
        Identity::Host(id) => {
            let revoked = if revoked.read().expect("not poisoned").contains(id) {
                ", revoked"
            } else {
                ""
            };
            Err(Status::permission_denied(format!(
                "{needs}; your certificate {identity} is a host certificate{revoked}, not an admin certificate, so it has no role ({issue})"
            )))
        }
        Identity::Admin { name, role } if *role < need => Err(Status::permission_denied(format!(
            "{needs}; your certificate {name} has role {role} (an admin issues one with `driftwatch-collector pki admin --name {name} --role {need}`)"
        ))),
        Identity::Admin { name, role } => Ok(AdminCaller {
            name: name.clone(),
            role: *role,
            method,
        }),
    }
}

/// Wraps the generated Admin server; see the module comment.
#[derive(Clone)]
pub struct AdminGate<S> {
    inner: S,
    revoked: Arc<RwLock<HashSet<String>>>,
}

impl<S> AdminGate<S> {
    pub fn new(inner: S, revoked: Arc<RwLock<HashSet<String>>>) -> Self {
        AdminGate { inner, revoked }
    }
}

impl<S: NamedService> NamedService for AdminGate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tonic::codegen::Service<Request<B>> for AdminGate<S>
where
    S: tonic::codegen::Service<
            Request<B>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match authorize(
            req.uri().path(),
            req.extensions()
                .get::<PeerInfo>()
                .and_then(|p| p.identity.as_deref()),
            &self.revoked,
        ) {
            Ok(caller) => {
                tracing::debug!(admin = %caller.name, role = %caller.role, method = %caller.method, "admin call");
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::info!(path = req.uri().path(), code = ?status.code(), reason = status.message(), "admin call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_exactly_the_methods_at_or_below_it() {
        let revoked = RwLock::default();
        for role in Role::ALL {
            let p = Ok(Identity::admin("alice", role));
            for m in AdminMethod::ALL {
                let r = authorize(&m.path(), Some(&p), &revoked);
                if role >= m.required_role() {
                    let c = r.unwrap();
                    assert_eq!((c.name.as_str(), c.role, c.method), ("alice", role, *m));
                } else {
                    let s = r.unwrap_err();
                    assert_eq!(s.code(), tonic::Code::PermissionDenied);
                    let want = format!(
                        "{m} needs role {}; your certificate alice has role {role} ",
                        m.required_role()
                    );
                    assert!(s.message().starts_with(&want), "{}", s.message());
                }
            }
        }
    }

    #[test]
    fn no_certificate_a_foreign_name_and_hosts_are_refused_naming_the_role() {
        let revoked = RwLock::new(HashSet::from(["gone-1".to_string()]));
        let cases = [
            (None, tonic::Code::Unauthenticated, "no client certificate"),
            (
                Some(Err("no driftwatch:// URI SAN".to_string())),
                tonic::Code::Unauthenticated,
                "no driftwatch:// URI SAN",
            ),
            (
                Some(Ok(Identity::Host("web-1".into()))),
                tonic::Code::PermissionDenied,
                "your certificate driftwatch://host/web-1 is a host certificate, not",
            ),
            (
                Some(Ok(Identity::Host("gone-1".into()))),
                tonic::Code::PermissionDenied,
                "driftwatch://host/gone-1 is a host certificate, revoked,",
            ),
        ];
        for (p, code, says) in cases {
            for m in AdminMethod::ALL {
                let s = authorize(&m.path(), p.as_ref(), &revoked).unwrap_err();
                assert_eq!(s.code(), code, "{m}: {s:?}");
                assert!(s.message().contains(says), "{m}: {}", s.message());
                let needs = format!("{m} needs role {};", m.required_role());
                assert!(s.message().starts_with(&needs), "{}", s.message());
                assert!(s.message().contains("no role"), "{}", s.message());
            }
        }
    }

    #[test]
    fn a_path_outside_the_table_is_refused_even_for_an_admin() {
        let p = Ok(Identity::admin("root", Role::Admin));
        let s = authorize(
            "/driftwatch.v1.Admin/DropEverything",
            Some(&p),
            &RwLock::default(),
        )
        .unwrap_err();
        assert_eq!(s.code(), tonic::Code::Unimplemented);
    }
}
