//! Item-by-item differences between two versions of a host (or two hosts).

use std::collections::BTreeMap;

use driftwatch_common::proto::{Change, Section, SectionChanges};
use driftwatch_common::section::SectionKind;

use super::items::{Item, items};

fn by_key(s: Option<&Section>) -> BTreeMap<String, Item> {
    s.map(items)
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.key.clone(), i))
        .collect()
}

/// Per section, in report order: what `new` added, removed and changed
/// relative to `old`. Sections present on neither side are skipped; a
/// section whose status changed says so first.
pub fn diff(old: &[Section], new: &[Section]) -> Vec<SectionChanges> {
    let mut names: Vec<&str> = SectionKind::ALL.iter().map(|k| k.name()).collect();
    for s in old.iter().chain(new) {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let (o, n) = (
            old.iter().find(|s| s.name == name),
            new.iter().find(|s| s.name == name),
        );
        if o.is_none() && n.is_none() {
            continue;
        }
        let mut changes = Vec::new();
        let status = |s: Option<&Section>| {
            s.map(|s| s.status.clone())
                .unwrap_or_else(|| "absent".into())
        };
        let (os, ns) = (status(o), status(n));
        if os != ns && o.is_some() {
            changes.push(Change {
                kind: "changed".into(),
                key: "status".into(),
                old: os.clone(),
                new: ns.clone(),
                text: format!(
                    "~ status {os} -> {ns}{}",
                    n.filter(|s| !s.error.is_empty())
                        .map(|s| format!(": {}", s.error))
                        .unwrap_or_default()
                ),
            });
        }
        let (om, nm) = (by_key(o), by_key(n));
        for (k, i) in &nm {
            match om.get(k) {
                None => changes.push(Change {
                    kind: "added".into(),
                    key: k.clone(),
                    old: String::new(),
                    new: i.value.clone(),
                    text: format!("+ {}", i.text),
                }),
                Some(prev) if prev.value != i.value => changes.push(Change {
                    kind: "changed".into(),
                    key: k.clone(),
                    old: prev.value.clone(),
                    new: i.value.clone(),
                    text: format!("~ {}: {} -> {}", i.key, prev.value, i.value),
                }),
                Some(_) => {}
            }
        }
        for (k, i) in &om {
            if !nm.contains_key(k) {
                changes.push(Change {
                    kind: "removed".into(),
                    key: k.clone(),
                    old: i.value.clone(),
                    new: String::new(),
                    text: format!("- {}", i.text),
                });
            }
        }
        if !changes.is_empty() {
            out.push(SectionChanges {
                section: name.to_string(),
                changes,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::section::Body;
    use driftwatch_common::proto::{Package, PackagesSection};
    use driftwatch_common::snapshot::{failed_section, ok_section};
    use driftwatch_common::vocab::CollectionStatus;

    fn pkgs(list: &[(&str, &str)]) -> Section {
        ok_section(
            Body::Packages(PackagesSection {
                packages: list
                    .iter()
                    .map(|(n, v)| Package {
                        name: n.to_string(),
                        version: v.to_string(),
                        architecture: "amd64".into(),
                        installed: true,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            0,
        )
    }

    #[test]
    fn added_removed_changed_in_words() {
        let d = diff(
            &[pkgs(&[("a", "1"), ("b", "1")])],
            &[pkgs(&[("a", "2"), ("c", "1")])],
        );
        assert_eq!(d.len(), 1);
        let texts: Vec<&str> = d[0].changes.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["~ a:amd64: 1 -> 2", "+ c:amd64 1", "- b:amd64 1"]
        );
        assert!(diff(&[pkgs(&[("a", "1")])], &[pkgs(&[("a", "1")])]).is_empty());
    }

    #[test]
    fn a_section_that_starts_failing_is_a_change() {
        let d = diff(
            &[pkgs(&[("a", "1")])],
            &[failed_section(
                SectionKind::Packages,
                CollectionStatus::Error,
                "dpkg status unreadable".into(),
                0,
            )],
        );
        assert_eq!(
            d[0].changes[0].text,
            "~ status ok -> error: dpkg status unreadable"
        );
        assert_eq!(d[0].changes[1].kind, "removed");
    }
}
