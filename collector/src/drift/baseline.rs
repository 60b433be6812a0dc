//! Baseline drift: a host against a named baseline (a golden host's
//! snapshot, chosen with the host label `baseline=NAME`) or against the
//! baseline baked into its machine image (same image id).

use std::collections::BTreeMap;

use driftwatch_common::proto::{Baseline, Section, Snapshot};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use driftwatch_common::vocab::CollectionStatus;

use super::Draft;
use super::items::items;

/// The baseline a host is compared with, if any.
pub fn for_host<'a>(
    labels: &[driftwatch_common::proto::Label],
    image_id: &str,
    baselines: &'a [Baseline],
) -> Option<&'a Baseline> {
    if let Some(l) = labels.iter().find(|l| l.key == "baseline") {
        return baselines.iter().find(|b| b.name == l.value);
    }
    if image_id.is_empty() {
        return None;
    }
    baselines.iter().find(|b| b.image_id == image_id)
}

pub fn evaluate<'a>(b: &'a Baseline, snap: &'a Snapshot) -> Vec<Draft> {
    let Some(base) = &b.snapshot else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let collected = |sections: &'a [Section], kind: SectionKind| {
        sections
            .iter()
            .find(|s| s.name == kind.name() && CollectionStatus::is_ok(s))
    };
    // Only what a host was set up with: `SectionKind::in_baseline`.
    for &kind in SectionKind::ALL.iter().filter(|k| k.in_baseline()) {
        let (Some(old), Some(new)) = (
            collected(&base.sections, kind),
            collected(&snap.sections, kind),
        ) else {
            continue;
        };
        let om: BTreeMap<_, _> = items(old).into_iter().map(|i| (i.key.clone(), i)).collect();
        let nm: BTreeMap<_, _> = items(new).into_iter().map(|i| (i.key.clone(), i)).collect();
        let rule = format!("baseline {}", b.name);
        let sev = |what: &str| match (kind, what) {
            (SectionKind::SshKeys | SectionKind::Accounts, "baseline_added") => Severity::Medium,
            (SectionKind::Packages, "baseline_changed") => Severity::Info,
            _ => Severity::Low,
        };
        for (k, i) in &nm {
            match om.get(k) {
                None => out.push(Draft {
                    kind: "baseline_added",
                    section: Some(kind),
                    item: k.clone(),
                    severity: sev("baseline_added"),
                    rule: rule.clone(),
                    message: format!("{} not in {rule}", i.text),
                }),
                Some(o) if o.value != i.value => out.push(Draft {
                    kind: "baseline_changed",
                    section: Some(kind),
                    item: k.clone(),
                    severity: sev("baseline_changed"),
                    rule: rule.clone(),
                    message: format!("{k}: {} in {rule}, now {}", o.value, i.value),
                }),
                _ => {}
            }
        }
        for (k, i) in &om {
            if !nm.contains_key(k) {
                out.push(Draft {
                    kind: "baseline_removed",
                    section: Some(kind),
                    item: k.clone(),
                    severity: sev("baseline_removed"),
                    rule: rule.clone(),
                    message: format!("{} from {rule} is gone", i.text),
                });
            }
        }
    }
    out
}

/// Per image without a baseline yet: (hosts that uploaded one, distinct
/// contents among them).
pub fn unconfirmed(
    baselines: &[Baseline],
    candidates: &[driftwatch_common::proto::BaselineCandidate],
) -> BTreeMap<String, (Vec<String>, usize)> {
    let mut out: BTreeMap<String, (Vec<String>, std::collections::BTreeSet<&str>)> =
        BTreeMap::new();
    for c in candidates {
        if baselines.iter().any(|b| b.image_id == c.image_id) {
            continue;
        }
        let e = out.entry(c.image_id.clone()).or_default();
        e.0.push(c.host_id.clone());
        e.1.insert(&c.content_hash);
    }
    out.into_iter()
        .map(|(k, (h, c))| (k, (h, c.len())))
        .collect()
}

/// Said on every host of an image whose bake-time baseline no quorum of
/// agreeing hosts (nor an operator) has confirmed: its baseline drift is
/// not being judged.
pub fn unconfirmed_draft(image_id: &str, hosts: &[String], contents: usize) -> Draft {
    let conflict = if contents > 1 {
        format!(", {contents} different contents")
    } else {
        String::new()
    };
    Draft {
        kind: "baseline_unconfirmed",
        section: None,
        item: image_id.to_string(),
        severity: if contents > 1 {
            Severity::Medium
        } else {
            Severity::Info
        },
        rule: format!("baseline image-{image_id}"),
        message: format!(
            "image {image_id}'s bake-time baseline is unconfirmed ({} host(s) uploaded one{conflict}): no baseline drift is judged until enough hosts agree or `driftwatch baseline approve {image_id} --from-host HOST`",
            hosts.len()
        ),
    }
}
