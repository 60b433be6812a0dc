//! The agent's identity in its state directory, for machines baked from an
//! image: no identity in the image, a key made on the host at first boot,
//! enrollment with a token, renewal before expiry, and a new identity when
//! the machine facts it was issued for no longer match (a cloned disk).
//!
//! Layout: `<state>/identity/{agent-key.pem, agent.pem, identity.json}`;
//! identity.json is written last, so its presence means the set is whole.

use std::fs;
use std::path::{Path, PathBuf};

use driftwatch_common::client::{ConnectError, connect, explain_status};
use driftwatch_common::pki;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{EnrollRequest, MachineFacts, RenewRequest};
use driftwatch_common::time::now_ms;
use driftwatch_common::tls::ClientFiles;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use crate::collect::host::read_host;
use crate::failover::{CollectorSet, MoveReason};
use crate::hostfs::HostFs;
use crate::state::{StateError, write_atomic};

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error(
        "no identity in {dir} and no enrollment token: pass --enroll-token/--enroll-token-file (or enroll_token in the config), or --cert/--key"
    )]
    NoToken { dir: PathBuf },
    #[error("enrollment failed: {0}")]
    Enroll(String),
    #[error("certificate renewal failed: {0}")]
    Renew(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("identity file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot read token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Facts {
    pub machine_id: String,
    pub product_uuid: String,
    pub cloud_instance_id: String,
    pub hostname: String,
}

impl Facts {
    pub fn read(fs: &HostFs) -> Facts {
        let h = read_host(fs);
        Facts {
            machine_id: h.machine_id,
            product_uuid: h.product_uuid,
            cloud_instance_id: h.cloud_instance_id,
            hostname: h.hostname,
        }
    }

    fn to_proto(&self) -> MachineFacts {
        MachineFacts {
            machine_id: self.machine_id.clone(),
            product_uuid: self.product_uuid.clone(),
            cloud_instance_id: self.cloud_instance_id.clone(),
            hostname: self.hostname.clone(),
        }
    }
}

/// Why `now` is not the machine `recorded` was issued to, if it is not. A
/// fact counts only when both sides have it: an unreadable DMI uuid on one
/// boot must not make a host re-enroll. The hostname is not a fact (it is
/// renamed legitimately).
pub fn mismatch(recorded: &Facts, now: &Facts) -> Option<String> {
    [
        (
            "cloud instance id",
            &recorded.cloud_instance_id,
            &now.cloud_instance_id,
        ),
        (
            "DMI product uuid",
            &recorded.product_uuid,
            &now.product_uuid,
        ),
        ("machine-id", &recorded.machine_id, &now.machine_id),
    ]
    .into_iter()
    .find(|(_, a, b)| !a.is_empty() && !b.is_empty() && a != b)
    .map(|(what, a, b)| format!("{what} was {a}, now {b}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    host_id: String,
    facts: Facts,
    issued_ms: i64,
    not_after_ms: i64,
}

/// A usable identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub host_id: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    issued_ms: i64,
    not_after_ms: i64,
}

impl Identity {
    pub fn client_files(&self, ca: &Path) -> ClientFiles {
        ClientFiles {
            ca: ca.to_path_buf(),
            cert: Some(self.cert.clone()),
            key: Some(self.key.clone()),
        }
    }

    /// Renew once two thirds of the lifetime have passed.
    pub fn renewal_due(&self, now: i64) -> bool {
        let life = (self.not_after_ms - self.issued_ms).max(0);
        now >= self.not_after_ms - life / 3
    }
}

/// The identity a re-enrolling host had, set aside in `dir`.
struct Previous {
    host_id: String,
    dir: PathBuf,
}

pub struct IdentityDir {
    state_dir: PathBuf,
    dir: PathBuf,
}

/// Where the token comes from.
#[derive(Debug, Clone, Default)]
pub struct TokenSource {
    pub token: Option<String>,
    pub file: Option<PathBuf>,
}

impl TokenSource {
    fn get(&self) -> Result<Option<String>, IdentityError> {
        if let Some(t) = &self.token {
            return Ok(Some(t.trim().to_string()));
        }
        match &self.file {
            Some(p) => fs::read_to_string(p)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|source| IdentityError::TokenFile {
                    path: p.clone(),
                    source,
                }),
            None => Ok(None),
        }
    }
}

impl IdentityDir {
    pub fn new(state_dir: &Path) -> Self {
        IdentityDir {
            state_dir: state_dir.to_path_buf(),
            dir: state_dir.join("identity"),
        }
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("identity.json")
    }

    fn load(&self) -> Result<Option<(Record, Identity)>, IdentityError> {
        let path = self.record_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(IdentityError::Corrupt {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let rec: Record = serde_json::from_slice(&bytes).map_err(|e| IdentityError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let id = Identity {
            host_id: rec.host_id.clone(),
            cert: self.dir.join(pki::AGENT_CERT),
            key: self.dir.join(pki::AGENT_KEY),
            issued_ms: rec.issued_ms,
            not_after_ms: rec.not_after_ms,
        };
        Ok(Some((rec, id)))
    }

    fn save(&self, key_pem: &str, cert_pem: &str, rec: &Record) -> Result<Identity, IdentityError> {
        fs::create_dir_all(&self.dir).map_err(|source| StateError::Io {
            path: self.dir.clone(),
            source,
        })?;
        write_atomic(&self.dir.join(pki::AGENT_KEY), key_pem.as_bytes(), 0o600)?;
        write_atomic(&self.dir.join(pki::AGENT_CERT), cert_pem.as_bytes(), 0o644)?;
        write_atomic(
            &self.record_path(),
            &serde_json::to_vec_pretty(rec).expect("plain struct"),
            0o644,
        )?;
        Ok(self.load()?.expect("just written").1)
    }

    /// The identity to report with: the stored one when it belongs to this
    /// machine, else a fresh enrollment (recording the old host id as
    /// lineage, and setting the old host's spool and counters aside so a
    /// clone never reports the original's snapshots as its own).
    pub async fn ensure(
        &self,
        collectors: &CollectorSet,
        ca: &Path,
        tokens: &TokenSource,
        fs_: &HostFs,
    ) -> Result<Identity, IdentityError> {
        let facts = Facts::read(fs_);
        let mut previous = None;
        if let Some((rec, id)) = self.load()? {
            match mismatch(&rec.facts, &facts) {
                None => return Ok(id),
                Some(why) => {
                    warn!(host = %rec.host_id, reason = %why, "machine facts changed (cloned disk?): enrolling as a new host");
                    let aside = self.set_aside()?;
                    previous = Some(Previous {
                        host_id: rec.host_id,
                        dir: aside,
                    });
                }
            }
        }
        let token =
            tokens
                .get()?
                .filter(|t| !t.is_empty())
                .ok_or_else(|| IdentityError::NoToken {
                    dir: self.dir.clone(),
                })?;
        self.enroll(collectors, ca, &token, facts, previous).await
    }

    /// Renames the identity, spool and counters aside; returns where the
    /// identity went (its key proves lineage at the next enrollment).
    fn set_aside(&self) -> Result<PathBuf, IdentityError> {
        let suffix = format!("replaced-{}", now_ms());
        for name in ["identity", "spool", "counters.json"] {
            let from = self.state_dir.join(name);
            if from.exists() {
                let to = self.state_dir.join(format!("{name}.{suffix}"));
                fs::rename(&from, &to).map_err(|source| StateError::Io { path: from, source })?;
            }
        }
        Ok(self.state_dir.join(format!("identity.{suffix}")))
    }

    /// Proof that this host held `previous`'s identity: its certificate and
    /// a signature by its key over the enrollment. None when the files are
    /// unreadable (the collector then records the claim as unverified).
    fn lineage_proof(previous: &Previous, csr_pem: &str) -> Option<(String, Vec<u8>)> {
        let read = |name: &str| fs::read_to_string(previous.dir.join(name));
        let proof = read(pki::AGENT_CERT).and_then(|cert| Ok((cert, read(pki::AGENT_KEY)?)));
        match proof {
            Ok((cert, key)) => {
                match driftwatch_common::lineage::sign(&key, &previous.host_id, csr_pem) {
                    Ok(sig) => Some((cert, sig)),
                    Err(e) => {
                        warn!(dir = %previous.dir.display(), error = %e, "cannot prove lineage");
                        None
                    }
                }
            }
            Err(e) => {
                warn!(dir = %previous.dir.display(), error = %e, "cannot prove lineage: previous identity unreadable");
                None
            }
        }
    }

    async fn enroll(
        &self,
        collectors: &CollectorSet,
        ca: &Path,
        token: &str,
        facts: Facts,
        previous: Option<Previous>,
    ) -> Result<Identity, IdentityError> {
        let (key_pem, csr_pem) = pki::new_key_and_csr()?;
        let (previous_cert_pem, previous_signature) = previous
            .as_ref()
            .and_then(|p| Self::lineage_proof(p, &csr_pem))
            .unwrap_or_default();
        let previous = previous.map(|p| p.host_id).unwrap_or_default();
        let files = ClientFiles {
            ca: ca.to_path_buf(),
            cert: None,
            key: None,
        };
        let req = EnrollRequest {
            token: token.to_string(),
            csr_pem,
            facts: Some(facts.to_proto()),
            previous_host_id: previous.clone(),
            previous_cert_pem,
            previous_signature,
        };
        // Each collector once, from the one in use: an enrollment must not
        // fail while another collector of the fleet is up.
        let mut attempt = 1;
        let resp = loop {
            let pick = collectors.current();
            let last = attempt >= collectors.len();
            attempt += 1;
            let ch = match connect(&pick.url, &files).await {
                Ok(ch) => ch,
                Err(e) => match MoveReason::of_connect(&e) {
                    Some(reason) if !last => {
                        collectors.failed(&pick, reason, &e.to_string());
                        continue;
                    }
                    _ => return Err(e.into()),
                },
            };
            match AgentClient::new(ch).enroll(req.clone()).await {
                Ok(r) => break r.into_inner(),
                Err(s) => match MoveReason::of_code(s.code()) {
                    Some(reason) if !last => {
                        collectors.failed(&pick, reason, &explain_status("enrolling", &s));
                    }
                    _ => return Err(IdentityError::Enroll(explain_status("enrolling", &s))),
                },
            }
        };
        let rec = Record {
            host_id: resp.host_id.clone(),
            facts,
            issued_ms: now_ms(),
            not_after_ms: resp.not_after_ms,
        };
        let id = self.save(&key_pem, &resp.cert_pem, &rec)?;
        info!(host = %id.host_id, previous = %previous, "enrolled");
        Ok(id)
    }

    /// Renews when due: a new key and certificate for the same host id.
    pub async fn renew_if_due(
        &self,
        url: &str,
        ca: &Path,
        current: &Identity,
    ) -> Result<Option<Identity>, IdentityError> {
        if !current.renewal_due(now_ms()) {
            return Ok(None);
        }
        let (rec, _) = self
            .load()?
            .ok_or_else(|| IdentityError::Renew("identity vanished from the state dir".into()))?;
        let (key_pem, csr_pem) = pki::new_key_and_csr()?;
        let mut client = AgentClient::new(connect(url, &current.client_files(ca)).await?);
        let resp = client
            .renew(RenewRequest {
                csr_pem,
                facts: Some(rec.facts.to_proto()),
            })
            .await
            .map_err(|s| IdentityError::Renew(explain_status("renewing", &s)))?
            .into_inner();
        let rec = Record {
            issued_ms: now_ms(),
            not_after_ms: resp.not_after_ms,
            ..rec
        };
        let id = self.save(&key_pem, &resp.cert_pem, &rec)?;
        info!(host = %id.host_id, "certificate renewed");
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(m: &str, p: &str, c: &str) -> Facts {
        Facts {
            machine_id: m.into(),
            product_uuid: p.into(),
            cloud_instance_id: c.into(),
            hostname: "x".into(),
        }
    }

    #[test]
    fn only_facts_known_on_both_sides_count() {
        assert_eq!(mismatch(&f("m", "p", "i-1"), &f("m", "p", "i-1")), None);
        assert!(
            mismatch(&f("m", "p", "i-1"), &f("m", "p", "i-2"))
                .unwrap()
                .contains("cloud instance id")
        );
        assert!(
            mismatch(&f("m", "p1", ""), &f("m", "p2", ""))
                .unwrap()
                .contains("product uuid")
        );
        // An unreadable fact is not a different machine.
        assert_eq!(mismatch(&f("m", "p", ""), &f("m", "", "")), None);
        // Renamed host, same machine.
        let mut renamed = f("m", "p", "");
        renamed.hostname = "new".into();
        assert_eq!(mismatch(&f("m", "p", ""), &renamed), None);
    }

    #[test]
    fn renewal_is_due_with_a_third_left() {
        let id = Identity {
            host_id: "h".into(),
            cert: "c".into(),
            key: "k".into(),
            issued_ms: 0,
            not_after_ms: 300,
        };
        assert!(!id.renewal_due(199));
        assert!(id.renewal_due(200));
    }
}
