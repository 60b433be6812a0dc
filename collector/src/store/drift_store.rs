//! Findings and baselines on sled. Trees: `findings` (finding id →
//! Finding), `baselines` (name → Baseline, stable sections only),
//! `baseline_candidates` (image id 0x00 host id → that host's upload of
//! the image's bake-time baseline) and `baseline_votes` (host id → the
//! image id of its one candidate).

use std::collections::BTreeMap;

use driftwatch_common::proto::{Baseline, BaselineCandidate, Finding, Snapshot};
use driftwatch_common::stable::stable_section;
use prost::Message;
use sha2::{Digest, Sha256};

use super::sled_store::{SledStore, decode, encode};
use super::{CandidateOutcome, StoreError};

impl SledStore {
    pub(super) fn findings_inner(&self) -> Result<Vec<Finding>, StoreError> {
        self.findings
            .iter()
            .map(|r| {
                let (k, v) = r?;
                decode(&k, &v)
            })
            .collect()
    }

    pub(super) fn put_findings_inner(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for f in findings {
            batch.insert(f.id.as_bytes(), encode(f));
        }
        self.findings.apply_batch(batch)?;
        Ok(())
    }

    pub(super) fn baselines_inner(&self) -> Result<Vec<Baseline>, StoreError> {
        self.baselines
            .iter()
            .map(|r| {
                let (k, v) = r?;
                decode(&k, &v)
            })
            .collect()
    }

    pub(super) fn baseline_inner(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        self.baselines
            .get(name.as_bytes())?
            .map(|v| decode(name.as_bytes(), &v))
            .transpose()
    }

    /// Stores a baseline with its snapshot reduced to stable sections (a
    /// baseline is about what a host should have, not its load). With
    /// `overwrite` false an existing one is kept: the first upload of an
    /// image's bake-time baseline wins. Returns whether it was written.
    pub(super) fn put_candidate_inner(
        &self,
        host_id: &str,
        b: &Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError> {
        // One upload decides at a time: two hosts completing a quorum at
        // once must not both miss it.
        let _one = self.candidates_lock.lock().expect("not poisoned");
        let b = Baseline {
            name: image_baseline_name(&b.image_id),
            source: format!("image-bake (uploaded by {host_id})"),
            ..reduce(b)
        };
        if let Some(old) = self.baseline_votes.get(host_id.as_bytes())?
            && old.as_ref() != b.image_id.as_bytes()
        {
            self.baseline_candidates
                .remove(candidate_key(&String::from_utf8_lossy(&old), host_id))?;
        }
        self.baseline_votes
            .insert(host_id.as_bytes(), b.image_id.as_bytes())?;
        self.baseline_candidates
            .insert(candidate_key(&b.image_id, host_id), encode(&b))?;
        let hash = content_hash(&b);
        if let Some(current) = self.baseline_inner(&b.name)? {
            return Ok(CandidateOutcome::AlreadyDecided {
                same: content_hash(&current) == hash,
            });
        }
        // Content → agreeing live hosts. A revoked host's vote is void.
        let mut by_content: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (host, cand) in self.candidates_of(&b.image_id)? {
            if self.host_record(&host)?.is_some_and(|h| h.revoked_ms > 0) {
                continue;
            }
            by_content
                .entry(content_hash(&cand))
                .or_default()
                .push(host);
        }
        let agreeing = by_content.get(&hash).cloned().unwrap_or_default();
        if quorum > 0 && by_content.len() == 1 && agreeing.len() >= quorum {
            let confirmed = Baseline {
                source: format!(
                    "image-bake (confirmed by {} hosts: {})",
                    agreeing.len(),
                    agreeing.join(", ")
                ),
                ..b
            };
            self.baselines
                .insert(confirmed.name.as_bytes(), encode(&confirmed))?;
            return Ok(CandidateOutcome::Confirmed { hosts: agreeing });
        }
        Ok(CandidateOutcome::Pending {
            agreeing: agreeing.len(),
            contents: by_content.len(),
        })
    }

    fn candidates_of(&self, image_id: &str) -> Result<Vec<(String, Baseline)>, StoreError> {
        let prefix = candidate_key(image_id, "");
        self.baseline_candidates
            .scan_prefix(&prefix)
            .map(|r| {
                let (k, v) = r?;
                let host = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((host, decode(&k, &v)?))
            })
            .collect()
    }

    pub(super) fn candidates_inner(&self) -> Result<Vec<BaselineCandidate>, StoreError> {
        let mut decided: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut out = Vec::new();
        for r in self.baseline_candidates.iter() {
            let (k, v) = r?;
            let b: Baseline = decode(&k, &v)?;
            let split = k.iter().position(|&c| c == 0).unwrap_or(k.len());
            let host_id = String::from_utf8_lossy(&k[(split + 1).min(k.len())..]).into_owned();
            let hash = content_hash(&b);
            let current = match decided.get(&b.name) {
                Some(c) => c.clone(),
                None => {
                    let c = self.baseline_inner(&b.name)?.map(|c| content_hash(&c));
                    decided.insert(b.name.clone(), c.clone());
                    c
                }
            };
            out.push(BaselineCandidate {
                image_id: b.image_id,
                host_id,
                differs_from_baseline: current.as_ref().is_some_and(|c| *c != hash),
                content_hash: hash,
                created_ms: b.created_ms,
            });
        }
        Ok(out)
    }

    pub(super) fn approve_inner(
        &self,
        image_id: &str,
        from_host: &str,
        by: &str,
    ) -> Result<Option<Baseline>, StoreError> {
        let _one = self.candidates_lock.lock().expect("not poisoned");
        let key = candidate_key(image_id, from_host);
        let Some(v) = self.baseline_candidates.get(&key)? else {
            return Ok(None);
        };
        let b: Baseline = decode(&key, &v)?;
        let approved = Baseline {
            source: format!("image-bake (approved by {by} from {from_host}'s upload)"),
            ..b
        };
        self.baselines
            .insert(approved.name.as_bytes(), encode(&approved))?;
        Ok(Some(approved))
    }

    pub(super) fn put_baseline_inner(
        &self,
        b: &Baseline,
        overwrite: bool,
    ) -> Result<bool, StoreError> {
        let b = reduce(b);
        let bytes = encode(&b);
        if overwrite {
            self.baselines.insert(b.name.as_bytes(), bytes)?;
            return Ok(true);
        }
        Ok(self
            .baselines
            .compare_and_swap(b.name.as_bytes(), None as Option<&[u8]>, Some(bytes))?
            .is_ok())
    }
}

pub fn image_baseline_name(image_id: &str) -> String {
    format!("image-{image_id}")
}

fn candidate_key(image_id: &str, host_id: &str) -> Vec<u8> {
    let mut k = image_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(host_id.as_bytes());
    k
}

/// A baseline with its snapshot reduced to stable sections.
pub(super) fn reduce(b: &Baseline) -> Baseline {
    let mut b = b.clone();
    if let Some(s) = &b.snapshot {
        b.snapshot = Some(Box::new(Snapshot {
            sections: s.sections.iter().map(stable_section).collect(),
            ..(**s).clone()
        }));
    }
    b
}

/// What hosts agree on: the image id, bake time and stable snapshot, not
/// who uploaded it (name and source are ours).
pub(super) fn content_hash(b: &Baseline) -> String {
    let bare = Baseline {
        name: String::new(),
        source: String::new(),
        ..b.clone()
    };
    hex::encode(Sha256::digest(bare.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use driftwatch_common::proto::HostSummary;

    fn upload(image: &str, hostname: &str) -> Baseline {
        Baseline {
            image_id: image.into(),
            created_ms: 5,
            snapshot: Some(Box::new(Snapshot {
                agent_version: hostname.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn an_image_baseline_needs_a_quorum_that_nobody_contradicts() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let (good, bad) = (upload("img", "baked"), upload("img", "forged"));
        let pending = |agreeing, contents| CandidateOutcome::Pending { agreeing, contents };
        assert_eq!(
            s.put_candidate_inner("evil", &bad, 2).unwrap(),
            pending(1, 1)
        );
        assert_eq!(s.put_candidate_inner("a", &good, 2).unwrap(), pending(1, 2));
        assert_eq!(
            s.put_candidate_inner("b", &good, 2).unwrap(),
            pending(2, 2),
            "contradicted"
        );
        assert!(s.baseline_inner("image-img").unwrap().is_none());
        // The forger moves its one vote elsewhere: its old candidate goes.
        s.put_candidate_inner("evil", &upload("other", "x"), 2)
            .unwrap();
        assert_eq!(
            s.put_candidate_inner("a", &good, 2).unwrap(),
            CandidateOutcome::Confirmed {
                hosts: vec!["a".into(), "b".into()]
            }
        );
        let b = s.baseline_inner("image-img").unwrap().unwrap();
        assert_eq!(b.source, "image-bake (confirmed by 2 hosts: a, b)");
        assert_eq!(
            s.put_candidate_inner("c", &bad, 2).unwrap(),
            CandidateOutcome::AlreadyDecided { same: false }
        );
        let listed = s.candidates_inner().unwrap();
        assert!(
            listed
                .iter()
                .any(|c| c.host_id == "c" && c.differs_from_baseline),
            "{listed:?}"
        );

        // A revoked host's vote is void; an operator can decide alone.
        s.enroll_host(&HostSummary {
            host_id: "r".into(),
            revoked_ms: 1,
            ..Default::default()
        })
        .unwrap();
        s.put_candidate_inner("r", &upload("third", "x"), 1)
            .unwrap();
        assert!(s.baseline_inner("image-third").unwrap().is_none());
        assert!(
            s.approve_inner("third", "nobody", "alice")
                .unwrap()
                .is_none()
        );
        let a = s.approve_inner("third", "r", "alice").unwrap().unwrap();
        assert!(a.source.contains("approved by alice"), "{}", a.source);
    }
}
