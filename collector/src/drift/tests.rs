use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::*;
use driftwatch_common::snapshot::ok_section;

use super::*;

fn host(id: &str, group: &str, last_seen: i64) -> HostSummary {
    HostSummary {
        host_id: id.into(),
        hostname: id.into(),
        labels: vec![Label {
            key: "group".into(),
            value: group.into(),
        }],
        last_seen_ms: last_seen,
        interval_s: 60,
        ..Default::default()
    }
}

/// A snapshot with only an ssh_keys section: root's keys by fingerprint.
pub(crate) fn keys(fps: &[&str]) -> Snapshot {
    Snapshot {
        sections: vec![ok_section(
            Body::SshKeys(SshKeysSection {
                files: vec![AuthorizedKeysFile {
                    user: "root".into(),
                    path: "/root/.ssh/authorized_keys".into(),
                    keys: fps
                        .iter()
                        .map(|f| AuthorizedKey {
                            key_type: "ssh-ed25519".into(),
                            fingerprint: f.to_string(),
                            comment: format!("{f}@x"),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            0,
        )],
        ..Default::default()
    }
}

const NOW: i64 = 100_000_000;

fn kinds(f: &[Finding], host: &str) -> Vec<(String, String)> {
    let mut v: Vec<_> = f
        .iter()
        .filter(|f| f.host_id == host)
        .map(|f| (f.kind.clone(), f.item.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn peers_flag_minority_items_and_majority_gaps() {
    let hs = [
        host("a", "web", NOW),
        host("b", "web", NOW),
        host("c", "web", NOW),
        host("d", "web", NOW),
        host("x", "db", NOW),
    ];
    let snaps = [
        keys(&["K1", "K2"]),
        keys(&["K1", "K2"]),
        keys(&["K1", "K2", "EVIL"]),
        keys(&["K1"]),
        keys(&["EVIL"]),
    ];
    let views: Vec<HostView> = hs
        .iter()
        .zip(&snaps)
        .map(|(h, s)| HostView {
            summary: h,
            snapshot: Some(s),
        })
        .collect();
    let f = evaluate(
        &views,
        &[],
        &policy::Policy::default(),
        &Settings::default(),
        NOW,
    );
    assert_eq!(
        kinds(&f, "c"),
        vec![("peer_outlier".into(), "root EVIL".into())]
    );
    assert_eq!(
        kinds(&f, "d"),
        vec![("peer_missing".into(), "root K2".into())]
    );
    assert!(
        kinds(&f, "a").is_empty() && kinds(&f, "x").is_empty(),
        "{f:?}"
    );
    let evil = f.iter().find(|f| f.host_id == "c").unwrap();
    assert_eq!(
        (evil.severity.as_str(), evil.rule.as_str()),
        ("high", "group=web")
    );
    assert_eq!(
        evil.message,
        "only 1 of 4 hosts in group=web have root  ssh-ed25519 EVIL EVIL@x"
    );
}

#[test]
fn stale_and_gone_hosts_and_gone_leave_peer_statistics() {
    let s = Settings::default();
    let mut h = host("a", "web", NOW - 200_000);
    assert_eq!(host_state(&h, &s, NOW), "stale");
    h.last_seen_ms = NOW - 25 * 3_600_000;
    assert_eq!(host_state(&h, &s, NOW), "gone");
    h.revoked_ms = 1;
    assert_eq!(host_state(&h, &s, NOW), "revoked");

    // Three fresh hosts with K1 and one gone host with EVIL: no outlier for
    // the gone one, and the gone one is not "missing" K1.
    let hs = [
        host("a", "web", NOW),
        host("b", "web", NOW),
        host("c", "web", NOW),
        host("g", "web", NOW - 30 * 3_600_000),
    ];
    let snaps = [keys(&["K1"]), keys(&["K1"]), keys(&["K1"]), keys(&["EVIL"])];
    let views: Vec<HostView> = hs
        .iter()
        .zip(&snaps)
        .map(|(h, s)| HostView {
            summary: h,
            snapshot: Some(s),
        })
        .collect();
    let f = evaluate(&views, &[], &policy::Policy::default(), &s, NOW);
    assert_eq!(kinds(&f, "g"), vec![("gone".into(), "".into())]);
    assert!(f.iter().all(|f| f.host_id == "g"), "{f:?}");
}

#[test]
fn baselines_by_label_or_image() {
    let b = Baseline {
        name: "golden".into(),
        image_id: "img-1".into(),
        snapshot: Some(Box::new(keys(&["K1", "K2"]))),
        ..Default::default()
    };
    let mut h = host("a", "web", NOW);
    h.image_id = "img-1".into();
    let snap = keys(&["K1", "NEW"]);
    let f = evaluate(
        &[HostView {
            summary: &h,
            snapshot: Some(&snap),
        }],
        std::slice::from_ref(&b),
        &policy::Policy::default(),
        &Settings::default(),
        NOW,
    );
    assert_eq!(
        kinds(&f, "a"),
        vec![
            ("baseline_added".into(), "root NEW".into()),
            ("baseline_removed".into(), "root K2".into())
        ]
    );
    h.image_id.clear();
    assert!(baseline::for_host(&h.labels, &h.image_id, std::slice::from_ref(&b)).is_none());
    h.labels.push(Label {
        key: "baseline".into(),
        value: "golden".into(),
    });
    assert!(baseline::for_host(&h.labels, &h.image_id, &[b]).is_some());
}

#[test]
fn findings_resolve_themselves_and_reopen_as_new_episodes() {
    let p = policy::parse("[ssh_keys]\nforbidden_fingerprints = [\"EVIL\"]\n").unwrap();
    let h = host("a", "web", NOW);
    let bad = keys(&["EVIL"]);
    let good = keys(&["K1"]);
    let eval = |snap: &Snapshot, now: i64| {
        evaluate(
            &[HostView {
                summary: &h,
                snapshot: Some(snap),
            }],
            &[],
            &p,
            &Settings::default(),
            now,
        )
    };

    let first = reconcile(&[], eval(&bad, NOW), NOW);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind.as_str(), first[0].severity.as_str()),
        ("policy", "critical")
    );
    let again = reconcile(&first, eval(&bad, NOW + 10), NOW + 10);
    assert_eq!(
        (again[0].first_seen_ms, again[0].last_seen_ms),
        (NOW, NOW + 10)
    );
    let resolved = reconcile(&again, eval(&good, NOW + 20), NOW + 20);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].resolved_ms, NOW + 20);
    let reopened = reconcile(&resolved, eval(&bad, NOW + 30), NOW + 30);
    assert_eq!(
        (reopened[0].resolved_ms, reopened[0].first_seen_ms),
        (0, NOW + 30)
    );
}
