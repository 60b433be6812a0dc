//! Who is calling: derived from the client certificate's URI SAN, never from
//! a message field.

use std::fmt;

use thiserror::Error;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub const URI_SCHEME: &str = "driftwatch://";

/// What an admin certificate may do. Each role may do everything the
/// ones before it may (the order is the derive's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads: hosts, history, diffs, drift, key search, sweeps, baselines,
    /// the audit trail.
    Viewer,
    /// Also acts on hosts: sweeps, baselines, revoking and forgetting
    /// hosts, test notifications.
    Operator,
    /// Also manages enrollment tokens and takes backups.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use viewer, operator or admin"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity a certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An agent: `driftwatch://host/<host-id>`.
    Host(String),
    /// An operator: `driftwatch://admin/<name>?role=<role>`. A certificate
    /// issued before roles existed (`driftwatch://admin/<name>`) keeps the
    /// rights it was issued with: [`Role::Admin`].
    Admin { name: String, role: Role },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("client certificate is not valid DER X.509: {0}")]
    BadCertificate(String),
    #[error("client certificate carries no driftwatch:// URI SAN")]
    NoIdentity,
    #[error("client certificate carries more than one driftwatch:// URI SAN")]
    AmbiguousIdentity,
    #[error(
        "invalid identity URI {0:?}: expected driftwatch://host/<id> or driftwatch://admin/<name>?role=<viewer|operator|admin>"
    )]
    BadUri(String),
}

impl Identity {
    pub fn admin(name: impl Into<String>, role: Role) -> Self {
        Identity::Admin {
            name: name.into(),
            role,
        }
    }

    /// The host id or admin name.
    pub fn name(&self) -> &str {
        match self {
            Identity::Host(name) | Identity::Admin { name, .. } => name,
        }
    }

    /// The role is a query so that a collector from before roles refuses
    /// such a certificate (the name check fails on `?`) instead of reading
    /// it as a full admin; a second URI SAN would have done the same
    /// (two driftwatch:// names are refused), a SAN of another scheme
    /// would have been ignored by it.
    pub fn uri(&self) -> String {
        match self {
            Identity::Host(id) => format!("{URI_SCHEME}host/{id}"),
            Identity::Admin { name, role } => format!("{URI_SCHEME}admin/{name}?role={role}"),
        }
    }

    pub fn parse_uri(uri: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::BadUri(uri.to_string());
        let rest = uri.strip_prefix(URI_SCHEME).ok_or_else(bad)?;
        let (kind, rest) = rest.split_once('/').ok_or_else(bad)?;
        let (name, query) = match rest.split_once('?') {
            Some((name, query)) => (name, Some(query)),
            None => (rest, None),
        };
        validate_name(name).map_err(|_| bad())?;
        match (kind, query) {
            ("host", None) => Ok(Identity::Host(name.to_string())),
            ("admin", None) => Ok(Identity::admin(name, Role::Admin)),
            ("admin", Some(q)) => {
                // Exactly one parameter, exactly this spelling: anything
                // else is a certificate we did not issue.
                let role = q.strip_prefix("role=").ok_or_else(bad)?;
                Ok(Identity::admin(name, Role::parse(role).map_err(|_| bad())?))
            }
            _ => Err(bad()),
        }
    }

    /// Reads the identity from a DER certificate's subjectAltName.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let mut found = None;
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name
                    && uri.starts_with(URI_SCHEME)
                {
                    if found.is_some() {
                        return Err(IdentityError::AmbiguousIdentity);
                    }
                    found = Some(Identity::parse_uri(uri)?);
                }
            }
        }
        found.ok_or(IdentityError::NoIdentity)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Host ids and admin names: 1–128 characters of `[A-Za-z0-9._-]`, so they
/// are safe in URIs, file names and sled keys.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err(format!("{name:?} must be 1 to 128 characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{name:?} contains {c:?}: use only letters, digits, '.', '_' and '-'"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{name:?} must not start with '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips() {
        let mut ids = vec![Identity::Host("web-01".into())];
        ids.extend(Role::ALL.map(|r| Identity::admin("alice", r)));
        for id in ids {
            assert_eq!(Identity::parse_uri(&id.uri()).unwrap(), id);
        }
        assert_eq!(
            Identity::admin("bob", Role::Viewer).uri(),
            "driftwatch://admin/bob?role=viewer"
        );
    }

    #[test]
    fn an_admin_certificate_from_before_roles_keeps_full_rights() {
        assert_eq!(
            Identity::parse_uri("driftwatch://admin/ops").unwrap(),
            Identity::admin("ops", Role::Admin)
        );
    }

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn bad_uris_are_refused() {
        for uri in [
            "https://host/x",
            "driftwatch://host/",
            "driftwatch://root/x",
            "driftwatch://host/a/b",
            "driftwatch://host/..",
            "driftwatch://admin/bob smith",
            "driftwatch://host/web-01?role=admin",
            "driftwatch://admin/bob?role=root",
            "driftwatch://admin/bob?role=",
            "driftwatch://admin/bob?",
            "driftwatch://admin/bob?role=viewer&role=admin",
            "driftwatch://admin/bob?role=Viewer",
            "driftwatch://admin/bob?x=1&role=viewer",
            "driftwatch://admin/?role=viewer",
        ] {
            assert!(Identity::parse_uri(uri).is_err(), "{uri} accepted");
        }
    }
}
