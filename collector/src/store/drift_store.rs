//! Findings and baselines on sled. Trees: `findings` (finding id →
//! Finding), `baselines` (name → Baseline, stable sections only).

use driftwatch_common::proto::{Baseline, Finding, Snapshot};
use driftwatch_common::stable::stable_section;

use super::StoreError;
use super::sled_store::{SledStore, decode, encode};

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
    pub(super) fn put_baseline_inner(
        &self,
        b: &Baseline,
        overwrite: bool,
    ) -> Result<bool, StoreError> {
        let mut b = b.clone();
        if let Some(s) = &b.snapshot {
            b.snapshot = Some(Box::new(Snapshot {
                sections: s.sections.iter().map(stable_section).collect(),
                ..(**s).clone()
            }));
        }
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
