//! The driftwatch certificate authority, made with rcgen (no openssl).
//!
//! Layout of a PKI directory: `ca.pem`, `ca-key.pem`, `server.pem`,
//! `server-key.pem`, `admin.pem`, `admin-key.pem`. Private keys are written
//! with mode 0600 and never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::identity::{Identity, validate_name};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server-key.pem";
pub const ADMIN_CERT: &str = "admin.pem";
pub const ADMIN_KEY: &str = "admin-key.pem";
pub const AGENT_CERT: &str = "agent.pem";
pub const AGENT_KEY: &str = "agent-key.pem";

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 825;
const CLIENT_VALIDITY_DAYS: i64 = 365;

#[derive(Debug, Error)]
pub enum PkiError {
    #[error(
        "{path} already exists: refusing to overwrite a CA (use another --dir, or remove it deliberately)"
    )]
    CaExists { path: PathBuf },
    #[error(
        "{path} already exists: refusing to overwrite a private key (remove it deliberately, or write elsewhere)"
    )]
    AlreadyExists { path: PathBuf },
    #[error("cannot read {path}: {source} (run `driftwatch-collector pki init --dir DIR` first?)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("certificate signing request is invalid: {0}")]
    BadCsr(String),
}

/// A loaded CA: its certificate and signing key.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A freshly issued certificate and (unless signed from a CSR) its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Option<String>,
}

impl Ca {
    /// Creates a new self-signed CA.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "driftwatch");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY_DAYS * 86_400);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_pem = read(&dir.join(CA_CERT))?;
        let key_pem = read(&dir.join(CA_KEY))?;
        let key = KeyPair::from_pem(&key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Ca { cert_pem, issuer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for the collector; `names` are DNS names or IPs.
    pub fn issue_server(&self, names: &[String]) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names
                .first()
                .map(String::as_str)
                .unwrap_or("driftwatch-collector"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, SERVER_VALIDITY_DAYS * 86_400);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Some(key.serialize_pem()),
        })
    }

    /// A client certificate for a host or an admin, key generated here.
    pub fn issue_client(&self, identity: &Identity) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let params = client_params(identity, CLIENT_VALIDITY_DAYS * 86_400)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Some(key.serialize_pem()),
        })
    }

    /// Signs a CSR for `identity`, valid for `validity`: only the CSR's
    /// public key is used; every name and extension comes from us, never
    /// from the requester.
    /// Parses a CSR and verifies its self-signature, signing nothing: the
    /// cheap check Enroll makes before it spends a token use or CA work.
    pub fn check_csr(csr_pem: &str) -> Result<(), PkiError> {
        CertificateSigningRequestParams::from_pem(csr_pem)
            .map(|_| ())
            .map_err(|e| PkiError::BadCsr(e.to_string()))
    }

    pub fn sign_csr(
        &self,
        csr_pem: &str,
        identity: &Identity,
        validity: std::time::Duration,
    ) -> Result<Issued, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::BadCsr(e.to_string()))?;
        let params = client_params(identity, validity.as_secs().max(1) as i64)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: None,
        })
    }
}

/// A new private key and a CSR for it (PEM both). The collector ignores
/// everything in the CSR but the public key, so it carries no names.
pub fn new_key_and_csr() -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "driftwatch-agent");
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key.serialize_pem(), csr))
}

/// Seconds since the epoch when a PEM certificate stops being valid.
pub fn not_after_ms(cert_pem: &str) -> Option<i64> {
    let der = crate::tls::certs_from_pem(cert_pem.as_bytes())
        .ok()?
        .into_iter()
        .next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

fn client_params(identity: &Identity, validity_secs: i64) -> Result<CertificateParams, PkiError> {
    validate_name(identity.name()).map_err(PkiError::InvalidName)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, identity.uri());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "driftwatch");
    params
        .subject_alt_names
        .push(SanType::URI(identity.uri().try_into()?));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity_secs);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, secs: i64) {
    let now = OffsetDateTime::now_utc();
    // Backdate a little so a host whose clock runs slightly behind accepts it.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::seconds(secs);
}

/// `pki init`: a new CA, a server certificate for `server_names`, and an
/// admin certificate (`driftwatch://admin/admin?role=admin`).
pub fn init(dir: &Path, server_names: &[String]) -> Result<(), PkiError> {
    for f in [CA_CERT, CA_KEY] {
        let path = dir.join(f);
        if path.exists() {
            return Err(PkiError::CaExists { path });
        }
    }
    fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = Ca::generate("driftwatch CA")?;
    let server = ca.issue_server(server_names)?;
    let admin = ca.issue_client(&Identity::admin("admin", crate::identity::Role::Admin))?;
    // The CA key goes first: if anything after fails, a rerun refuses
    // instead of silently making a second CA.
    write_key(&dir.join(CA_KEY), &ca.issuer.key().serialize_pem())?;
    write_public(&dir.join(CA_CERT), ca.cert_pem())?;
    write_issued(dir, SERVER_CERT, SERVER_KEY, &server)?;
    write_issued(dir, ADMIN_CERT, ADMIN_KEY, &admin)?;
    Ok(())
}

/// `pki issue` / `pki admin`: a client certificate into `out`.
pub fn issue_client_files(
    pki_dir: &Path,
    identity: &Identity,
    out: &Path,
    cert_name: &str,
    key_name: &str,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let ca = Ca::load(pki_dir)?;
    let issued = ca.issue_client(identity)?;
    fs::create_dir_all(out).map_err(|source| PkiError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    write_issued(out, cert_name, key_name, &issued)?;
    Ok((out.join(cert_name), out.join(key_name)))
}

fn write_issued(dir: &Path, cert: &str, key: &str, issued: &Issued) -> Result<(), PkiError> {
    if let Some(k) = &issued.key_pem {
        write_key(&dir.join(key), k)?;
    }
    write_public(&dir.join(cert), &issued.cert_pem)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Private keys: created new with 0600, never overwriting an existing file.
pub fn write_key(path: &Path, pem: &str) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                PkiError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                err(e)
            }
        })?;
    f.write_all(pem.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

fn write_public(path: &Path, pem: &str) -> Result<(), PkiError> {
    fs::write(path, pem).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_everything_with_private_keys_0600_and_refuses_twice() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
        for f in [
            CA_CERT,
            CA_KEY,
            SERVER_CERT,
            SERVER_KEY,
            ADMIN_CERT,
            ADMIN_KEY,
        ] {
            let meta = fs::metadata(dir.path().join(f)).unwrap();
            if f.ends_with("-key.pem") {
                assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
            }
        }
        let err = init(dir.path(), &["localhost".into()]).unwrap_err();
        assert!(matches!(err, PkiError::CaExists { .. }), "{err}");
    }

    #[test]
    fn issued_certificates_carry_the_identity_uri() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["localhost".into()]).unwrap();
        let admin = fs::read_to_string(dir.path().join(ADMIN_CERT)).unwrap();
        assert_eq!(
            identity_of_pem(&admin),
            Identity::admin("admin", crate::identity::Role::Admin)
        );

        let out = dir.path().join("web-01");
        let host = Identity::Host("web-01".into());
        let (cert, _) = issue_client_files(dir.path(), &host, &out, AGENT_CERT, AGENT_KEY).unwrap();
        assert_eq!(identity_of_pem(&fs::read_to_string(cert).unwrap()), host);
    }

    #[test]
    fn agent_made_csr_is_signed_for_the_given_host() {
        let ca = Ca::generate("test").unwrap();
        let (_key, csr) = new_key_and_csr().unwrap();
        let issued = ca
            .sign_csr(
                &csr,
                &Identity::Host("h9".into()),
                std::time::Duration::from_secs(30 * 86_400),
            )
            .unwrap();
        assert_eq!(
            identity_of_pem(&issued.cert_pem),
            Identity::Host("h9".into())
        );
        let left = not_after_ms(&issued.cert_pem).unwrap() - crate::time::now_ms();
        assert!(
            (29 * 86_400_000..=31 * 86_400_000).contains(&left),
            "{left}"
        );
    }

    #[test]
    fn csr_signing_ignores_requested_names() {
        let ca = Ca::generate("test").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        req.subject_alt_names
            .push(SanType::URI("driftwatch://admin/root".try_into().unwrap()));
        let csr = req.serialize_request(&key).unwrap().pem().unwrap();
        let host = Identity::Host("h1".into());
        let issued = ca
            .sign_csr(&csr, &host, std::time::Duration::from_secs(30 * 86_400))
            .unwrap();
        assert_eq!(identity_of_pem(&issued.cert_pem), host);
    }

    fn identity_of_pem(pem: &str) -> Identity {
        let der = crate::tls::certs_from_pem(pem.as_bytes())
            .unwrap()
            .remove(0);
        Identity::from_cert_der(&der).unwrap()
    }
}
