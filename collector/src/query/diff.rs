//! `driftwatch diff`: two points of one host's history, two hosts, or a
//! host against a baseline. One synchronous function over the store, so
//! the handler runs it on one blocking thread and tests on a real store.

use driftwatch_common::proto::{Baseline, DiffRequest, DiffResponse, HostSummary, Snapshot};
use driftwatch_common::time::format_ms;

use super::resolve_host;
use crate::error::ServiceError;
use crate::service::history;
use crate::store::Store;

fn name(h: &HostSummary) -> String {
    format!("{} ({})", h.host_id, h.hostname)
}

fn at(s: &Snapshot) -> String {
    format!("seq {} ({})", s.seq, format_ms(s.collected_at_ms))
}

pub fn latest(store: &dyn Store, id: &str) -> Result<Snapshot, ServiceError> {
    store
        .latest_snapshot(id)?
        .ok_or_else(|| ServiceError::NotFound(format!("host {id} has no snapshot yet")))
}

/// A named baseline, or with "image" the one baked into the host's image.
pub fn baseline_for(
    store: &dyn Store,
    host: &HostSummary,
    name: &str,
) -> Result<Baseline, ServiceError> {
    let all = store.baselines()?;
    let found = if name == "image" {
        all.into_iter()
            .find(|b| !host.image_id.is_empty() && b.image_id == host.image_id)
    } else {
        all.into_iter().find(|b| b.name == name)
    };
    found.ok_or_else(|| {
        ServiceError::NotFound(format!(
            "no baseline {name:?} for {}: `driftwatch baseline list` shows them; `baseline set NAME --from-host HOST` makes one",
            host.host_id
        ))
    })
}

/// Answers a diff request. `---` is the older point, the other host's
/// counterpart (`diff A B`: A) or the baseline; `+++` the newer point.
pub fn diff(
    store: &dyn Store,
    hosts: &[HostSummary],
    req: &DiffRequest,
) -> Result<DiffResponse, ServiceError> {
    let a_host = resolve_host(hosts, &req.host)?;
    let id = &a_host.host_id;
    if !req.other_host.is_empty() {
        let a = latest(store, id)?;
        let b_host = resolve_host(hosts, &req.other_host)?;
        let b = latest(store, &b_host.host_id)?;
        return Ok(DiffResponse {
            from: format!("{} {}", name(&a_host), at(&a)),
            to: format!("{} {}", name(&b_host), at(&b)),
            sections: history::compare(&a.sections, &b.sections),
        });
    }
    if !req.baseline.is_empty() {
        // A baseline is what the host should have: `---`, the host `+++`.
        let a = latest(store, id)?;
        let b = baseline_for(store, &a_host, &req.baseline)?;
        let base = b.snapshot.map(|s| s.sections).unwrap_or_default();
        return Ok(DiffResponse {
            from: format!(
                "baseline {} ({}, set {})",
                b.name,
                b.source,
                format_ms(b.created_ms)
            ),
            to: format!("{} {}", name(&a_host), at(&a)),
            sections: history::compare(&base, &a.sections),
        });
    }
    let records = store.history(id, 0)?;
    if records.is_empty() {
        return Err(ServiceError::NotFound(format!(
            "host {id} has no stored snapshot"
        )));
    }
    let last_seq = a_host.last_seq;
    let to_i = if req.to.is_empty() {
        records.len() - 1
    } else {
        history::pick(&records, last_seq, &req.to)?
    };
    let from_i = if !req.from.is_empty() {
        history::pick(&records, last_seq, &req.from)?
    } else if to_i > 0 {
        to_i - 1
    } else {
        return Err(ServiceError::NotFound(format!(
            "{} has only one stored snapshot at or before that point (seq {}): nothing to compare it with",
            name(&a_host),
            records[to_i].seq
        )));
    };
    let describe = |i: usize, asked: &str| {
        let r = &records[i];
        let mut d = format!(
            "{} seq {} ({})",
            name(&a_host),
            r.seq,
            format_ms(r.collected_at_ms)
        );
        // The record in force at an asked point may be older: say so.
        if !asked.is_empty() && asked != r.seq.to_string() {
            d.push_str(&format!(", in force at {asked}"));
        }
        d
    };
    Ok(DiffResponse {
        from: describe(from_i, &req.from),
        to: describe(to_i, &req.to),
        sections: history::diff_records(store, &records, from_i, to_i)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::testgen::{Gen, sections};

    use crate::store::SledStore;

    fn report(store: &SledStore, host: &str, seq: u64, seed: u64) {
        let snap = Snapshot {
            seq,
            agent_epoch: 1,
            collected_at_ms: seq as i64 * 1000,
            sections: sections(&mut Gen::new(seed)),
            ..Default::default()
        };
        store.put_snapshot(host, &snap, seq as i64 * 1000).unwrap();
    }

    fn ask(host: &str) -> DiffRequest {
        DiffRequest {
            host: host.into(),
            ..Default::default()
        }
    }

    #[test]
    fn history_points_other_hosts_and_baselines() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        report(&store, "h1", 1, 1);
        report(&store, "h1", 2, 2);
        report(&store, "h2", 1, 1);
        let hosts = store.list_hosts().unwrap();

        // No points: the last change, named by seq.
        let d = diff(&store, &hosts, &ask("h1")).unwrap();
        assert!(d.from.contains("seq 1") && d.to.contains("seq 2"), "{d:?}");
        assert!(!d.sections.is_empty(), "different seeds, different content");

        // h1 now against h2, which reports what h1 first did.
        let d = diff(
            &store,
            &hosts,
            &DiffRequest {
                other_host: "h2".into(),
                ..ask("h1")
            },
        )
        .unwrap();
        assert!(
            d.from.starts_with("h1 ") && d.to.starts_with("h2 "),
            "{d:?}"
        );
        let h1 = store.latest_snapshot("h1").unwrap().unwrap();
        let h2 = store.latest_snapshot("h2").unwrap().unwrap();
        assert!(!d.sections.is_empty());
        assert_eq!(d.sections, history::compare(&h1.sections, &h2.sections));
        assert_eq!(
            diff(
                &store,
                &hosts,
                &DiffRequest {
                    from: "1".into(),
                    to: "1".into(),
                    ..ask("h1")
                }
            )
            .unwrap()
            .sections,
            vec![]
        );

        let b = Baseline {
            name: "gold".into(),
            snapshot: Some(Box::new(store.latest_snapshot("h2").unwrap().unwrap())),
            ..Default::default()
        };
        store.put_baseline(&b, true).unwrap();
        let d = diff(
            &store,
            &hosts,
            &DiffRequest {
                baseline: "gold".into(),
                ..ask("h2")
            },
        )
        .unwrap();
        assert!(d.from.starts_with("baseline gold"), "{d:?}");
        assert_eq!(d.sections, vec![]);
    }

    #[test]
    fn what_cannot_be_compared_is_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        report(&store, "h1", 1, 1);
        let hosts = store.list_hosts().unwrap();
        let e = diff(&store, &hosts, &ask("h1")).unwrap_err();
        assert!(
            matches!(&e, ServiceError::NotFound(m) if m.contains("only one stored snapshot")),
            "{e}"
        );
        let e = diff(
            &store,
            &hosts,
            &DiffRequest {
                baseline: "nope".into(),
                ..ask("h1")
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("driftwatch baseline list"), "{e}");
        let e = diff(&store, &hosts, &ask("ghost")).unwrap_err();
        assert!(matches!(e, ServiceError::NotFound(_)), "{e}");
        let e = diff(
            &store,
            &hosts,
            &DiffRequest {
                from: "7".into(),
                ..ask("h1")
            },
        )
        .unwrap_err();
        assert!(matches!(e, ServiceError::NotFound(_)), "{e}");
    }
}
