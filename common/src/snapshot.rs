//! Helpers over the snapshot model (the generated `Snapshot`/`Section`
//! messages): section construction and lookup, summaries.

use crate::proto::{HostSection, Label, Section, SectionStatus, Snapshot, section::Body};
use crate::section::SectionKind;
use crate::vocab::CollectionStatus;

/// A section that collected fine, with its stable hash; named after its
/// body's kind, so name and body cannot disagree.
pub fn ok_section(body: Body, duration_us: u64) -> Section {
    with_hash(Section {
        name: SectionKind::of_body(&body).name().to_string(),
        status: CollectionStatus::Ok.as_str().into(),
        error: String::new(),
        duration_us,
        hash: String::new(),
        hash_only: false,
        body_collected_at_ms: 0,
        items_truncated: 0,
        truncated: String::new(),
        body: Some(body),
    })
}

fn with_hash(mut s: Section) -> Section {
    s.hash = crate::stable::section_hash(&s);
    s
}

/// A section that could not be collected; the rest of the snapshot stands.
pub fn failed_section(
    kind: SectionKind,
    status: CollectionStatus,
    error: String,
    duration_us: u64,
) -> Section {
    with_hash(Section {
        name: kind.name().to_string(),
        status: status.as_str().to_string(),
        error,
        duration_us,
        hash: String::new(),
        hash_only: false,
        body_collected_at_ms: 0,
        items_truncated: 0,
        truncated: String::new(),
        body: None,
    })
}

pub fn find_section(snapshot: &Snapshot, kind: SectionKind) -> Option<&Section> {
    snapshot.sections.iter().find(|s| s.name == kind.name())
}

pub fn host_section(snapshot: &Snapshot) -> Option<&HostSection> {
    match find_section(snapshot, SectionKind::Host)?.body.as_ref()? {
        Body::Host(h) => Some(h),
        _ => None,
    }
}

pub fn section_statuses(snapshot: &Snapshot) -> Vec<SectionStatus> {
    snapshot
        .sections
        .iter()
        .map(|s| SectionStatus {
            name: s.name.clone(),
            status: s.status.clone(),
            error: s.error.clone(),
        })
        .collect()
}

/// Keeps only the named sections; all when `names` is empty.
pub fn retain_sections(snapshot: &mut Snapshot, names: &[String]) {
    if !names.is_empty() {
        snapshot
            .sections
            .retain(|s| names.iter().any(|n| n == &s.name));
    }
}

pub fn labels(pairs: &[(String, String)]) -> Vec<Label> {
    let mut labels: Vec<Label> = pairs
        .iter()
        .map(|(k, v)| Label {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    // Sorted and unique by key (last wins) so equal label sets encode equally.
    labels.reverse();
    labels.sort_by(|a, b| a.key.cmp(&b.key));
    labels.dedup_by(|a, b| a.key == b.key);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProcessesSection;

    #[test]
    fn labels_are_sorted_and_last_wins() {
        let l = labels(&[
            ("b".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ]);
        let got: Vec<_> = l
            .iter()
            .map(|l| (l.key.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(got, vec![("a", "2"), ("b", "3")]);
    }

    #[test]
    fn section_lookup_and_filtering() {
        let mut snap = Snapshot {
            sections: vec![
                ok_section(Body::Processes(ProcessesSection::default()), 5),
                failed_section(
                    SectionKind::Raid,
                    CollectionStatus::Unsupported,
                    "no md".into(),
                    1,
                ),
            ],
            ..Default::default()
        };
        assert_eq!(
            find_section(&snap, SectionKind::Raid).unwrap().error,
            "no md"
        );
        assert!(host_section(&snap).is_none());
        let st = section_statuses(&snap);
        assert_eq!(
            (st[1].name.as_str(), st[1].status.as_str()),
            ("raid", "unsupported")
        );
        retain_sections(&mut snap, &["raid".to_string()]);
        assert_eq!(snap.sections.len(), 1);
    }
}
