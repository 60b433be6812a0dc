//! Who is calling: derived from the client certificate's URI SAN, never from
//! a message field.

use std::fmt;

use thiserror::Error;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub const URI_SCHEME: &str = "driftwatch://";

/// The identity a certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An agent: `driftwatch://host/<host-id>`.
    Host(String),
    /// An operator: `driftwatch://admin/<name>`.
    Admin(String),
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
        "invalid identity URI {0:?}: expected driftwatch://host/<id> or driftwatch://admin/<name>"
    )]
    BadUri(String),
}

impl Identity {
    pub fn uri(&self) -> String {
        match self {
            Identity::Host(id) => format!("{URI_SCHEME}host/{id}"),
            Identity::Admin(name) => format!("{URI_SCHEME}admin/{name}"),
        }
    }

    pub fn parse_uri(uri: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::BadUri(uri.to_string());
        let rest = uri.strip_prefix(URI_SCHEME).ok_or_else(bad)?;
        let (kind, name) = rest.split_once('/').ok_or_else(bad)?;
        validate_name(name).map_err(|_| bad())?;
        match kind {
            "host" => Ok(Identity::Host(name.to_string())),
            "admin" => Ok(Identity::Admin(name.to_string())),
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
        for id in [
            Identity::Host("web-01".into()),
            Identity::Admin("alice".into()),
        ] {
            assert_eq!(Identity::parse_uri(&id.uri()).unwrap(), id);
        }
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
        ] {
            assert!(Identity::parse_uri(uri).is_err(), "{uri} accepted");
        }
    }
}
