//! Decoding a key blob with the `ssh-key` crate: type, size and fingerprint
//! as `ssh-keygen -lf` shows them, and certificate details.

use base64ct::{Base64, Encoding};
use driftwatch_common::proto::CertificateInfo;
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, Mpint, PublicKey};

/// Key types sshd accepts in authorized_keys (OpenSSH 9.x, without the
/// experimental XMSS which is not compiled in by default).
const PLAIN: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-ed25519",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
];
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// Is `t` a key type sshd knows, plain or certificate?
pub fn is_known_type(t: &str) -> bool {
    PLAIN.contains(&t)
        || t.strip_suffix(CERT_SUFFIX).is_some_and(|base| {
            // sk-* cert names drop the @openssh.com of the plain name.
            PLAIN.contains(&base) || PLAIN.contains(&format!("{base}@openssh.com").as_str())
        })
}

/// What a decoded key gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub label: String,
    pub bits: u32,
    pub fingerprint: String,
    pub certificate: Option<CertificateInfo>,
}

/// Decodes the base64 blob of a key whose line says `key_type`.
pub fn decode(key_type: &str, blob_b64: &str) -> Result<Decoded, String> {
    // Decoded size is at most 3/4 of the text.
    let mut buf = vec![0u8; blob_b64.len() / 4 * 3 + 3];
    let blob = Base64::decode(blob_b64, &mut buf)
        .map_err(|_| "key data is not valid base64".to_string())?;
    if key_type.ends_with(CERT_SUFFIX) {
        let super::cert::Cert { key, info } = super::cert::decode(blob)?;
        let actual = key.algorithm().to_certificate_type();
        if actual != key_type {
            return Err(mismatch(key_type, &actual));
        }
        Ok(Decoded {
            label: format!("{}-CERT", label(&key)),
            bits: bits(&key),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            certificate: Some(info),
        })
    } else {
        let pk =
            PublicKey::from_bytes(blob).map_err(|e| format!("key data does not decode: {e}"))?;
        let actual = pk.algorithm();
        if actual.as_str() != key_type {
            return Err(mismatch(key_type, actual.as_str()));
        }
        let key = pk.key_data();
        Ok(Decoded {
            label: label(key).into(),
            bits: bits(key),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            certificate: None,
        })
    }
}

fn mismatch(said: &str, actual: &str) -> String {
    format!("key type mismatch: the line says {said} but the key data is {actual}")
}

/// ssh-keygen's short type name.
fn label(k: &KeyData) -> &'static str {
    match k {
        KeyData::Dsa(_) => "DSA",
        KeyData::Ecdsa(_) => "ECDSA",
        KeyData::Ed25519(_) => "ED25519",
        KeyData::Rsa(_) => "RSA",
        KeyData::SkEcdsaSha2NistP256(_) => "ECDSA-SK",
        KeyData::SkEd25519(_) => "ED25519-SK",
        _ => "UNKNOWN",
    }
}

/// Key size as ssh-keygen reports it: modulus bits for RSA, p bits for DSA,
/// the curve size for ECDSA, 256 for Ed25519.
fn bits(k: &KeyData) -> u32 {
    match k {
        KeyData::Dsa(d) => mpint_bits(&d.p),
        KeyData::Rsa(r) => mpint_bits(&r.n),
        KeyData::Ecdsa(e) => match e.curve() {
            ssh_key::EcdsaCurve::NistP256 => 256,
            ssh_key::EcdsaCurve::NistP384 => 384,
            ssh_key::EcdsaCurve::NistP521 => 521,
        },
        KeyData::SkEcdsaSha2NistP256(_) | KeyData::Ed25519(_) | KeyData::SkEd25519(_) => 256,
        _ => 0,
    }
}

fn mpint_bits(m: &Mpint) -> u32 {
    let Some(bytes) = m.as_positive_bytes() else {
        return 0;
    };
    let bytes: &[u8] = {
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        &bytes[first..]
    };
    match bytes.first() {
        None => 0,
        Some(&top) => (bytes.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_include_certs_and_fido() {
        for t in [
            "ssh-rsa",
            "sk-ssh-ed25519@openssh.com",
            "ssh-ed25519-cert-v01@openssh.com",
            "sk-ssh-ed25519-cert-v01@openssh.com",
            "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
            "ssh-dss-cert-v01@openssh.com",
        ] {
            assert!(is_known_type(t), "{t}");
        }
        assert!(!is_known_type("name@example.com"));
        assert!(!is_known_type("ssh-rsa-cert-v02@openssh.com"));
    }

    #[test]
    fn bad_base64_and_garbage_blobs_are_errors() {
        assert!(decode("ssh-rsa", "...").unwrap_err().contains("base64"));
        // Valid base64 of bytes that are no key.
        assert!(
            decode("ssh-rsa", "aGVsbG8gd29ybGQ=")
                .unwrap_err()
                .contains("does not decode")
        );
    }
}
