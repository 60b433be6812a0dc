//! TLS material: PEM loading with permission checks, the collector's rustls
//! server config (TLS 1.3 only, client certificates verified against the CA
//! but optional at the handshake so `Enroll` can run without one), and the
//! tonic client config used by the agent and the CLI.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "private key {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}`"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{what} holds no PEM certificate")]
    NoCertificate { what: String },
    #[error("{what} holds no PEM private key: {reason}")]
    NoKey { what: String, reason: String },
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// Reads a certificate file.
pub fn read_cert_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a private key, refusing one that group or others can read: a key
/// that leaked to other local users is no longer an identity.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate {
            what: "PEM input".into(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what: "PEM input".into(),
        });
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::NoKey {
        what: "PEM input".into(),
        reason: e.to_string(),
    })
}

/// The collector's server side: TLS 1.3 only, ALPN h2, client certificates
/// checked against `ca_pem` when presented.
pub fn server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs_from_pem(ca_pem)? {
        roots
            .add(ca)
            .map_err(|e| TlsError::Config(format!("bad CA certificate: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs_from_pem(cert_pem)?, key_from_pem(key_pem)?)
        .map_err(|e| TlsError::Config(format!("server certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Files a client presents: the CA to verify the collector with, and an
/// optional certificate and key to prove who it is.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A tonic client TLS config; `domain` is the name the collector's
/// certificate must carry.
pub fn client_config(
    files: &ClientFiles,
    domain: &str,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    let ca = read_cert_file(&files.ca)?;
    certs_from_pem(&ca).map_err(|_| TlsError::NoCertificate {
        what: files.ca.display().to_string(),
    })?;
    let mut cfg = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .domain_name(domain);
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        let cert_pem = read_cert_file(cert)?;
        certs_from_pem(&cert_pem).map_err(|_| TlsError::NoCertificate {
            what: cert.display().to_string(),
        })?;
        let key_pem = read_key_file(key)?;
        key_from_pem(&key_pem).map_err(|e| match e {
            TlsError::NoKey { reason, .. } => TlsError::NoKey {
                what: key.display().to_string(),
                reason,
            },
            other => other,
        })?;
        cfg = cfg.identity(tonic::transport::Identity::from_pem(cert_pem, key_pem));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn group_readable_keys_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_key_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_key_file(&path).is_ok());
    }

    #[test]
    fn server_config_is_tls13_with_h2() {
        let dir = tempfile::tempdir().unwrap();
        crate::pki::init(dir.path(), &["localhost".into()]).unwrap();
        let r = |f: &str| fs::read(dir.path().join(f)).unwrap();
        let cfg = server_config(&r("ca.pem"), &r("server.pem"), &r("server-key.pem")).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(server_config(&r("ca.pem"), &r("server.pem"), &r("admin-key.pem")).is_err());
    }
}
