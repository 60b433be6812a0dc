//! Helpers over the snapshot model (the generated `Snapshot`/`Section`
//! messages): status names, section lookup, summaries.

use crate::proto::{HostSection, Label, Section, SectionStatus, Snapshot, section::Body};

pub const STATUS_OK: &str = "ok";
pub const STATUS_UNSUPPORTED: &str = "unsupported";
pub const STATUS_ERROR: &str = "error";

/// A section that collected fine, with its stable hash.
pub fn ok_section(name: &str, body: Body, duration_us: u64) -> Section {
    with_hash(Section {
        name: name.to_string(),
        status: STATUS_OK.into(),
        error: String::new(),
        duration_us,
        hash: String::new(),
        hash_only: false,
        body_collected_at_ms: 0,
        body: Some(body),
    })
}

fn with_hash(mut s: Section) -> Section {
    s.hash = crate::stable::section_hash(&s);
    s
}

/// A section that could not be collected; the rest of the snapshot stands.
pub fn failed_section(name: &str, status: &str, error: String, duration_us: u64) -> Section {
    with_hash(Section {
        name: name.to_string(),
        status: status.to_string(),
        error,
        duration_us,
        hash: String::new(),
        hash_only: false,
        body_collected_at_ms: 0,
        body: None,
    })
}

pub fn find_section<'a>(snapshot: &'a Snapshot, name: &str) -> Option<&'a Section> {
    snapshot.sections.iter().find(|s| s.name == name)
}

pub fn host_section(snapshot: &Snapshot) -> Option<&HostSection> {
    match find_section(snapshot, "host")?.body.as_ref()? {
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
                ok_section("processes", Body::Processes(ProcessesSection::default()), 5),
                failed_section("raid", STATUS_UNSUPPORTED, "no md".into(), 1),
            ],
            ..Default::default()
        };
        assert_eq!(find_section(&snap, "raid").unwrap().error, "no md");
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
