//! Proof that a re-enrolling host held its previous identity: the agent
//! signs the enrollment (the previous host id and the new CSR) with the
//! previous certificate's private key, which it keeps aside
//! (`identity.replaced-<ms>/`), and sends that certificate along. The
//! collector accepts `previous_host_id` as lineage only when the
//! certificate was issued by its own CA for exactly that host id and the
//! signature verifies with its key; anything else is an unverified claim.
//! The certificate may have expired: lineage is about who held the key,
//! not about whether it may still report.

use rcgen::{KeyPair, SigningKey};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::Identity;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LineageError {
    #[error("no proof sent (no previous certificate and signature)")]
    NoProof,
    #[error("previous certificate: {0}")]
    BadCertificate(String),
    #[error("previous certificate was not issued by this collector's CA")]
    NotOurCa,
    #[error("previous certificate is for {found}, not {claimed}")]
    OtherHost { claimed: String, found: String },
    #[error("signature does not verify with the previous certificate's key")]
    BadSignature,
    #[error("signing with the previous key: {0}")]
    Sign(String),
}

/// What is signed: bound to the claimed host id and to the new key's CSR,
/// so a proof cannot be replayed for another enrollment.
pub fn message(previous_host_id: &str, csr_pem: &str) -> Vec<u8> {
    let mut m = b"driftwatch lineage v1\0".to_vec();
    m.extend_from_slice(previous_host_id.as_bytes());
    m.push(0);
    m.extend_from_slice(csr_pem.as_bytes());
    m
}

/// Signs the lineage message with the previous identity's key (PEM).
pub fn sign(
    previous_key_pem: &str,
    previous_host_id: &str,
    csr_pem: &str,
) -> Result<Vec<u8>, LineageError> {
    let key = KeyPair::from_pem(previous_key_pem).map_err(|e| LineageError::Sign(e.to_string()))?;
    key.sign(&message(previous_host_id, csr_pem))
        .map_err(|e| LineageError::Sign(e.to_string()))
}

fn der_of(pem: &str) -> Result<Vec<u8>, LineageError> {
    crate::tls::certs_from_pem(pem.as_bytes())
        .map_err(|e| LineageError::BadCertificate(e.to_string()))?
        .into_iter()
        .next()
        .map(|c| c.to_vec())
        .ok_or_else(|| LineageError::BadCertificate("no certificate in PEM".into()))
}

/// Checks a proof against the collector's CA certificate (PEM).
pub fn verify(
    ca_pem: &str,
    previous_host_id: &str,
    csr_pem: &str,
    previous_cert_pem: &str,
    signature: &[u8],
) -> Result<(), LineageError> {
    if previous_cert_pem.is_empty() || signature.is_empty() {
        return Err(LineageError::NoProof);
    }
    let ca_der = der_of(ca_pem)?;
    let (_, ca) = X509Certificate::from_der(&ca_der)
        .map_err(|e| LineageError::BadCertificate(format!("CA: {e}")))?;
    let cert_der = der_of(previous_cert_pem)?;
    let (_, cert) = X509Certificate::from_der(&cert_der)
        .map_err(|e| LineageError::BadCertificate(e.to_string()))?;
    // Our CA signs with ECDSA P-256 / SHA-256 (rcgen's default key).
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        ca.public_key().subject_public_key.as_ref(),
    )
    .verify(cert.tbs_certificate.as_ref(), cert.signature_value.as_ref())
    .map_err(|_| LineageError::NotOurCa)?;
    let found = Identity::from_cert_der(&cert_der)
        .map_err(|e| LineageError::BadCertificate(e.to_string()))?;
    if found != Identity::Host(previous_host_id.to_string()) {
        return Err(LineageError::OtherHost {
            claimed: previous_host_id.to_string(),
            found: found.uri(),
        });
    }
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.as_ref(),
    )
    .verify(&message(previous_host_id, csr_pem), signature)
    .map_err(|_| LineageError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Ca;

    #[test]
    fn only_the_previous_hosts_key_from_our_ca_proves_lineage() {
        let ca = Ca::generate("test CA").unwrap();
        let old = ca.issue_client(&Identity::Host("web-1".into())).unwrap();
        let old_key = old.key_pem.clone().unwrap();
        let (_, csr) = crate::pki::new_key_and_csr().unwrap();
        let sig = sign(&old_key, "web-1", &csr).unwrap();
        assert_eq!(
            verify(ca.cert_pem(), "web-1", &csr, &old.cert_pem, &sig),
            Ok(())
        );

        // Claiming another host with one's own certificate.
        let sig2 = sign(&old_key, "db-1", &csr).unwrap();
        assert!(matches!(
            verify(ca.cert_pem(), "db-1", &csr, &old.cert_pem, &sig2),
            Err(LineageError::OtherHost { .. })
        ));
        // A replay for another CSR.
        let (_, other_csr) = crate::pki::new_key_and_csr().unwrap();
        assert_eq!(
            verify(ca.cert_pem(), "web-1", &other_csr, &old.cert_pem, &sig),
            Err(LineageError::BadSignature)
        );
        // A certificate from another CA, made for the claimed id.
        let rogue = Ca::generate("rogue").unwrap();
        let forged = rogue.issue_client(&Identity::Host("web-1".into())).unwrap();
        let fsig = sign(forged.key_pem.as_ref().unwrap(), "web-1", &csr).unwrap();
        assert_eq!(
            verify(ca.cert_pem(), "web-1", &csr, &forged.cert_pem, &fsig),
            Err(LineageError::NotOurCa)
        );
        assert_eq!(
            verify(ca.cert_pem(), "web-1", &csr, "", &[]),
            Err(LineageError::NoProof)
        );
    }
}
