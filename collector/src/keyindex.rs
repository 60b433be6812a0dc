//! The key index: fingerprint → where the key is (host, user, file, line),
//! from each host's latest snapshot. Built from the store at start and kept
//! current by the Report path, so `keys find` never reads snapshots.

use std::collections::{BTreeSet, HashMap};

use driftwatch_common::proto::{KeyLocation, KeySelector, Snapshot, SshKeysSection, section::Body};

use crate::store::{Store, StoreError};

#[derive(Default)]
struct HostKeys {
    seq: u64,
    keys: Vec<KeyLocation>,
}

#[derive(Default)]
pub struct KeyIndex {
    hosts: HashMap<String, HostKeys>,
    by_fingerprint: HashMap<String, BTreeSet<String>>,
}

/// The ssh_keys body of a snapshot, when the report carries one (an
/// unchanged section sent as a hash alone has none: the index stays).
pub fn ssh_keys_body(snap: &Snapshot) -> Option<&SshKeysSection> {
    snap.sections.iter().find_map(|s| match &s.body {
        Some(Body::SshKeys(k)) if s.name == "ssh_keys" => Some(k),
        _ => None,
    })
}

fn hostname_of(snap: &Snapshot) -> String {
    driftwatch_common::snapshot::host_section(snap)
        .map(|h| h.hostname.clone())
        .unwrap_or_default()
}

impl KeyIndex {
    /// From the latest stored snapshot of every host.
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut idx = KeyIndex::default();
        for h in store.list_hosts()? {
            if let Some(snap) = store.latest_snapshot(&h.host_id)? {
                idx.update(&h.host_id, &snap);
            }
        }
        Ok(idx)
    }

    pub fn hosts_indexed(&self) -> usize {
        self.hosts.len()
    }

    /// Replaces a host's entries with those of `snap` when it carries an
    /// ssh_keys body and is newer than what the index holds.
    pub fn update(&mut self, host_id: &str, snap: &Snapshot) {
        let Some(section) = ssh_keys_body(snap) else {
            return;
        };
        if self.hosts.get(host_id).is_some_and(|h| h.seq > snap.seq) {
            return;
        }
        let hostname = match hostname_of(snap) {
            n if !n.is_empty() => n,
            _ => self
                .hosts
                .get(host_id)
                .and_then(|h| h.keys.first())
                .map(|k| k.hostname.clone())
                .unwrap_or_default(),
        };
        let mut keys = Vec::new();
        for f in &section.files {
            for k in &f.keys {
                keys.push(KeyLocation {
                    host_id: host_id.to_string(),
                    hostname: hostname.clone(),
                    user: f.user.clone(),
                    path: f.path.clone(),
                    line: k.line,
                    fingerprint: k.fingerprint.clone(),
                    comment: k.comment.clone(),
                    key_type: k.key_type.clone(),
                    options: k
                        .options
                        .iter()
                        .map(|o| {
                            if o.has_value {
                                format!("{}={}", o.name, o.value)
                            } else {
                                o.name.clone()
                            }
                        })
                        .collect(),
                    seq: snap.seq,
                    collected_at_ms: snap.collected_at_ms,
                });
            }
        }
        self.remove_host(host_id);
        for k in &keys {
            self.by_fingerprint
                .entry(k.fingerprint.clone())
                .or_default()
                .insert(host_id.to_string());
        }
        self.hosts.insert(
            host_id.to_string(),
            HostKeys {
                seq: snap.seq,
                keys,
            },
        );
    }

    pub fn remove_host(&mut self, host_id: &str) {
        if let Some(old) = self.hosts.remove(host_id) {
            for k in old.keys {
                if let Some(set) = self.by_fingerprint.get_mut(&k.fingerprint) {
                    set.remove(host_id);
                    if set.is_empty() {
                        self.by_fingerprint.remove(&k.fingerprint);
                    }
                }
            }
        }
    }

    /// Every line holding the selected key, sorted by host, user, path, line.
    /// A fingerprint is a lookup; a comment scans the entries (comments are
    /// free text, and a scan of every key of 10,000 hosts is milliseconds).
    pub fn find(&self, sel: &KeySelector) -> Vec<KeyLocation> {
        let mut out: Vec<KeyLocation> = if !sel.fingerprint.is_empty() {
            self.by_fingerprint
                .get(&sel.fingerprint)
                .into_iter()
                .flatten()
                .filter_map(|h| self.hosts.get(h))
                .flat_map(|h| h.keys.iter())
                .filter(|k| k.fingerprint == sel.fingerprint)
                .cloned()
                .collect()
        } else if !sel.comment.is_empty() {
            self.hosts
                .values()
                .flat_map(|h| h.keys.iter())
                .filter(|k| k.comment == sel.comment)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        out.sort_by(|a, b| {
            (&a.host_id, &a.user, &a.path, a.line).cmp(&(&b.host_id, &b.user, &b.path, b.line))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{AuthorizedKey, AuthorizedKeysFile, Section};

    fn snap(seq: u64, keys: &[(&str, &str)]) -> Snapshot {
        let files = vec![AuthorizedKeysFile {
            user: "alice".into(),
            path: "/home/alice/.ssh/authorized_keys".into(),
            keys: keys
                .iter()
                .enumerate()
                .map(|(i, (fp, c))| AuthorizedKey {
                    line: i as u32 + 1,
                    fingerprint: fp.to_string(),
                    comment: c.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }];
        Snapshot {
            seq,
            sections: vec![Section {
                name: "ssh_keys".into(),
                status: "ok".into(),
                body: Some(Body::SshKeys(SshKeysSection {
                    files,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn fp(s: &str) -> KeySelector {
        KeySelector {
            fingerprint: s.into(),
            ..Default::default()
        }
    }

    #[test]
    fn follows_the_latest_body_and_ignores_hash_only_reports() {
        let mut idx = KeyIndex::default();
        idx.update(
            "h1",
            &snap(1, &[("SHA256:a", "bob@x"), ("SHA256:b", "eve")]),
        );
        idx.update("h2", &snap(1, &[("SHA256:a", "bob@x")]));
        assert_eq!(idx.find(&fp("SHA256:a")).len(), 2);
        let by_comment = KeySelector {
            comment: "eve".into(),
            ..Default::default()
        };
        assert_eq!(idx.find(&by_comment)[0].host_id, "h1");
        // The key left h1.
        idx.update("h1", &snap(2, &[("SHA256:b", "eve")]));
        let hits = idx.find(&fp("SHA256:a"));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].host_id, "h2");
        // A report without an ssh_keys body (delta: unchanged) keeps h1's entries.
        let mut bare = snap(3, &[]);
        bare.sections[0].body = None;
        idx.update("h1", &bare);
        assert_eq!(idx.find(&by_comment).len(), 1);
        // An older snapshot never overwrites a newer one.
        idx.update("h2", &snap(0, &[]));
        assert_eq!(idx.find(&fp("SHA256:a")).len(), 1);
        assert!(idx.find(&KeySelector::default()).is_empty());
    }

    /// Not a timing assertion: prints how long a lookup takes over 10,000
    /// hosts (run with --nocapture to see it).
    #[test]
    fn ten_thousand_hosts_measurement() {
        let mut idx = KeyIndex::default();
        for h in 0..10_000u32 {
            let mut keys: Vec<(String, String)> = (0..10)
                .map(|k| (format!("SHA256:host{h}key{k}"), format!("user{k}@h{h}")))
                .collect();
            if h % 100 == 0 {
                keys.push(("SHA256:leaver".into(), "leaver@corp".into()));
            }
            let keys: Vec<(&str, &str)> =
                keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            idx.update(&format!("host-{h:05}"), &snap(1, &keys));
        }
        let t = std::time::Instant::now();
        let by_fp = idx.find(&fp("SHA256:leaver"));
        let fp_time = t.elapsed();
        let t = std::time::Instant::now();
        let by_comment = idx.find(&KeySelector {
            comment: "leaver@corp".into(),
            ..Default::default()
        });
        let comment_time = t.elapsed();
        assert_eq!(by_fp.len(), 100);
        assert_eq!(by_comment.len(), 100);
        eprintln!(
            "keys find over 10000 hosts x 10 keys: fingerprint {fp_time:?}, comment scan {comment_time:?}"
        );
    }
}
