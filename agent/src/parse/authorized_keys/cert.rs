//! OpenSSH certificates (PROTOCOL.certkeys), read field by field with the
//! ssh-key crate's own types: the crate's `Certificate` refuses the whole
//! certificate for one field it dislikes (a validity of "forever", 2^64-1,
//! which ssh-keygen writes when signing without -V; a key id that is not
//! UTF-8; options out of order), and the key would vanish from the
//! inventory. Here only the certified key must decode; every other field
//! that does not is named in `undecoded` and the rest is still reported.

use driftwatch_common::proto::CertificateInfo;
use sha2::{Digest, Sha256};
use ssh_encoding::{Decode, Encode};
use ssh_key::certificate::OptionsMap;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, Signature};

/// The certified key and what the certificate says about it.
pub struct Cert {
    pub key: KeyData,
    pub info: CertificateInfo,
}

/// Decodes a certificate blob. Fails only when the certified key itself
/// cannot be read (then there is no fingerprint to report).
pub fn decode(blob: &[u8]) -> Result<Cert, String> {
    let mut r = blob;
    let cert_type = String::decode(&mut r).map_err(|e| format!("certificate type: {e}"))?;
    let alg = Algorithm::new_certificate(&cert_type)
        .map_err(|e| format!("certificate type {cert_type:?}: {e}"))?;
    Vec::<u8>::decode(&mut r).map_err(|e| format!("certificate nonce: {e}"))?;
    // The certified key's fields follow with no algorithm name of their own;
    // KeyData reads them once the plain name is put in front.
    let mut plain = Vec::new();
    alg.as_str()
        .encode(&mut plain)
        .map_err(|e| format!("certified key: {e}"))?;
    plain.extend_from_slice(r);
    let mut kr = plain.as_slice();
    let key =
        KeyData::decode(&mut kr).map_err(|e| format!("certified key does not decode: {e}"))?;
    r = &r[r.len() - kr.len()..];

    let mut info = CertificateInfo::default();
    let mut f = Fields {
        r,
        undecoded: Vec::new(),
        stopped: false,
    };
    if let Some(serial) = f.read::<u64>("serial") {
        info.serial = serial;
    }
    if let Some(t) = f.read::<u32>("certificate type") {
        info.cert_type = match t {
            1 => "user".into(),
            2 => "host".into(),
            n => {
                f.undecoded.push(format!(
                    "certificate type: {n} is neither user (1) nor host (2)"
                ));
                String::new()
            }
        };
    }
    if let Some(id) = f.read::<Vec<u8>>("key id") {
        info.key_id = f.text("key id", &id);
    }
    if let Some(list) = f.read::<Vec<u8>>("principals") {
        let mut lr = list.as_slice();
        while !lr.is_empty() {
            match Vec::<u8>::decode(&mut lr) {
                Ok(p) => {
                    let p = f.text("principal", &p);
                    info.principals.push(p);
                }
                Err(e) => {
                    f.undecoded.push(format!("principals: {e}"));
                    break;
                }
            }
        }
    }
    // Read as plain u64: OpenSSH's range is all of it, 2^64-1 meaning forever.
    if let Some(t) = f.read::<u64>("valid after") {
        info.valid_after = t;
    }
    if let Some(t) = f.read::<u64>("valid before") {
        info.valid_before = t;
    }
    f.check::<OptionsMap>("critical options");
    f.check::<OptionsMap>("extensions");
    f.read::<Vec<u8>>("reserved");
    if let Some(ca) = f.read::<Vec<u8>>("signing CA key") {
        info.ca_fingerprint = match KeyData::decode(&mut ca.as_slice()) {
            Ok(k) => k.fingerprint(HashAlg::Sha256).to_string(),
            Err(e) => {
                // ssh-keygen hashes the key's bytes; so can we without decoding it.
                f.undecoded.push(format!(
                    "signing CA key: {e} (fingerprint taken over its bytes)"
                ));
                raw_fingerprint(&ca)
            }
        };
    }
    if let Some(sig) = f.read::<Vec<u8>>("signature")
        && let Err(e) = Signature::decode(&mut sig.as_slice())
    {
        f.undecoded.push(format!("signature: {e}"));
    }
    if !f.stopped && !f.r.is_empty() {
        f.undecoded
            .push(format!("{} trailing bytes after the signature", f.r.len()));
    }
    info.undecoded = f.undecoded;
    Ok(Cert { key, info })
}

/// The fields after the key, read in order; the first that cannot be read
/// ends the reading (its length is unknown, so is where the next starts).
struct Fields<'a> {
    r: &'a [u8],
    undecoded: Vec<String>,
    stopped: bool,
}

impl Fields<'_> {
    fn read<T: Decode<Error = ssh_encoding::Error>>(&mut self, name: &str) -> Option<T> {
        if self.stopped {
            return None;
        }
        match T::decode(&mut self.r) {
            Ok(v) => Some(v),
            Err(e) => {
                self.stopped = true;
                self.undecoded
                    .push(format!("{name}: {e} (it and the fields after it not read)"));
                None
            }
        }
    }

    /// A length-prefixed field read with the crate's type, named when the
    /// crate refuses its content.
    fn check<T: Decode<Error = ssh_key::Error>>(&mut self, name: &str) {
        let Some(body) = self.read::<Vec<u8>>(name) else {
            return;
        };
        let mut framed = Vec::new();
        if body.encode(&mut framed).is_ok()
            && let Err(e) = T::decode(&mut framed.as_slice())
        {
            self.undecoded.push(format!("{name}: {e}"));
        }
    }

    /// Text as OpenSSH keeps it (bytes); named when it is not UTF-8.
    fn text(&mut self, name: &str, b: &[u8]) -> String {
        match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let s = String::from_utf8_lossy(b).into_owned();
                self.undecoded
                    .push(format!("{name} is not UTF-8 (shown as {s:?})"));
                s
            }
        }
    }
}

fn raw_fingerprint(blob: &[u8]) -> String {
    use base64ct::{Base64Unpadded, Encoding};
    format!(
        "SHA256:{}",
        Base64Unpadded::encode_string(&Sha256::digest(blob))
    )
}
