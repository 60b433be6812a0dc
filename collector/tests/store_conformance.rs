//! One store conformance suite: every case runs against sled (a temp dir)
//! and against PostgreSQL (a cluster tests/src/pg.rs starts), through the
//! `Store` trait only, and must give the same answers. Cases that race
//! run from threads, as the services call the store from tokio's blocking
//! pool; `two_collectors` runs two PgStore instances on one database, as
//! two collectors would.

use driftwatch_collector::store::pg::{self, PgStore};
use driftwatch_collector::store::{CandidateOutcome, PutOutcome, SledStore, Store};
use driftwatch_collector::tokens::{self, TokenError};
use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{
    AuditEntry, AuthorizedKey, AuthorizedKeysFile, Baseline, Finding, HostSection, HostSummary,
    Label, NotifyEvent, Package, PackagesSection, Snapshot, SshKeysSection, SweepHost, SweepJob,
};
use driftwatch_common::snapshot::ok_section;
use driftwatch_tests::pg::{PgCluster, PgOptions};

fn no_env(_: &str) -> Option<String> {
    None
}

/// A running cluster and a store on it; the store goes first.
struct OnPg {
    store: PgStore,
    cluster: PgCluster,
}

fn open_pg(pg: &PgCluster) -> PgStore {
    let t = pg::target(&pg.url(), Some(&pg.password_file("store.pw")), &no_env).unwrap();
    PgStore::open(&t).unwrap()
}

fn on_pg(opts: PgOptions) -> Option<OnPg> {
    let cluster = PgCluster::start_with(opts)?;
    Some(OnPg {
        store: open_pg(&cluster),
        cluster,
    })
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sled {
            $(#[test]
            fn $case() {
                let dir = tempfile::tempdir().unwrap();
                let store = super::SledStore::open(dir.path()).unwrap();
                super::$case(&store);
            })*
        }
        mod postgres {
            $(#[test]
            fn $case() {
                let Some(pg) = super::on_pg(Default::default()) else { return };
                super::$case(&pg.store);
                drop(pg.store);
                drop(pg.cluster);
            })*
        }
    };
}

conformance!(
    stores_dedups_and_keeps_history,
    unchanged_reports_add_no_history_and_retention_prunes,
    a_delta_for_unknown_sections_asks_for_them,
    tokens_race_for_their_last_uses,
    enrollment_labels_lineage_and_revocation,
    sweeps_first_final_result_wins,
    outbox_in_order_per_receiver,
    audit_newest_first_bounded,
    forget_leaves_only_a_revocation,
    baseline_candidates_need_a_quorum,
    key_views_carry_host_and_keys,
    backup_is_sled_only,
);

fn snap(seq: u64, uptime: u64, pkgs: &[&str]) -> Snapshot {
    Snapshot {
        seq,
        agent_epoch: 7,
        labels: vec![Label {
            key: "group".into(),
            value: "web".into(),
        }],
        sections: vec![
            ok_section(
                Body::Host(HostSection {
                    hostname: "h".into(),
                    uptime_s: uptime,
                    ..Default::default()
                }),
                1,
            ),
            ok_section(
                Body::Packages(PackagesSection {
                    packages: pkgs
                        .iter()
                        .map(|n| Package {
                            name: n.to_string(),
                            version: "1".into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                1,
            ),
        ],
        ..Default::default()
    }
}

fn delta(mut s: Snapshot) -> Snapshot {
    for x in &mut s.sections {
        x.body = None;
        x.hash_only = true;
    }
    s
}

fn stored(changed: bool) -> PutOutcome {
    PutOutcome::Stored { changed }
}

fn stores_dedups_and_keeps_history(s: &dyn Store) {
    assert_eq!(
        s.put_snapshot("h1", &snap(1, 1, &["a"]), 1000).unwrap(),
        stored(true)
    );
    assert_eq!(
        s.put_snapshot("h1", &snap(2, 2, &["b"]), 2000).unwrap(),
        stored(true)
    );
    assert_eq!(
        s.put_snapshot("h1", &snap(2, 2, &["b"]), 3000).unwrap(),
        PutOutcome::Duplicate
    );
    assert_eq!(
        s.put_snapshot("h1", &snap(1, 9, &["old"]), 4000).unwrap(),
        PutOutcome::Duplicate,
        "a replay of an older seq"
    );
    s.sync().unwrap();
    let h = s.host("h1").unwrap().unwrap();
    assert_eq!(
        (h.hostname.as_str(), h.last_seq, h.snapshots_stored),
        ("h", 2, 2)
    );
    assert_eq!((h.first_seen_ms, h.last_seen_ms), (1000, 2000));
    assert_eq!(h.labels.len(), 1);
    let latest = s.latest_snapshot("h1").unwrap().unwrap();
    assert_eq!(latest.seq, 2);
    assert!(s.latest_snapshot("nobody").unwrap().is_none());
    assert_eq!(s.list_hosts().unwrap().len(), 1);
    let hist = s.history("h1", 0).unwrap();
    assert_eq!(hist.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(hist[1].received_ms, 2000);
    // Sections are content-addressed: the latest's packages by its hash.
    let pk = &latest.sections[1];
    let by_hash = s.section_by_hash(&pk.hash).unwrap().unwrap();
    assert_eq!(by_hash.body, pk.body);
    assert!(s.section_by_hash("no-such-hash").unwrap().is_none());
}

fn unchanged_reports_add_no_history_and_retention_prunes(s: &dyn Store) {
    assert_eq!(
        s.put_snapshot("h", &snap(1, 1, &["a"]), 1_000).unwrap(),
        stored(true)
    );
    for seq in 2..=101 {
        let outcome = s
            .put_snapshot("h", &delta(snap(seq, seq, &["a"])), 1_000 + seq as i64)
            .unwrap();
        assert_eq!(outcome, stored(false), "seq {seq}");
    }
    assert_eq!(s.history("h", 0).unwrap().len(), 1);
    assert_eq!(
        s.latest_snapshot("h").unwrap().unwrap().seq,
        1,
        "an unchanged report does not rewrite the latest snapshot"
    );
    assert_eq!(
        s.put_snapshot("h", &snap(121, 1, &["a", "b"]), 5_000)
            .unwrap(),
        stored(true)
    );
    assert_eq!(
        s.put_snapshot("h", &snap(121, 1, &["a", "b"]), 5_000)
            .unwrap(),
        PutOutcome::Duplicate
    );
    assert_eq!(
        s.put_snapshot("h", &delta(snap(121, 1, &["a", "b"])), 5_000)
            .unwrap(),
        PutOutcome::Duplicate,
        "a replayed delta is a duplicate on the fast path too"
    );
    let mut restarted = snap(1, 1, &["a", "b"]);
    restarted.agent_epoch = 8;
    assert_eq!(
        s.put_snapshot("h", &restarted, 6_000).unwrap(),
        stored(false)
    );
    let hist = s.history("h", 0).unwrap();
    assert_eq!(hist.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 121]);
    let h = s.host("h").unwrap().unwrap();
    assert_eq!(
        (h.snapshots_stored, h.changes_stored, h.last_seq),
        (103, 2, 1)
    );
    assert_eq!(h.agent_epoch, 8);
    // The old record goes, its now-unreferenced packages section too.
    assert_eq!(s.prune(4_000).unwrap(), (1, 1));
    assert_eq!(s.history("h", 0).unwrap().len(), 1);
    assert_eq!(
        s.prune(i64::MAX).unwrap(),
        (0, 0),
        "the newest record always stays"
    );
    assert_eq!(
        s.history("h", 2_000_000).unwrap().len(),
        0,
        "since filters by collection time"
    );
}

fn a_delta_for_unknown_sections_asks_for_them(s: &dyn Store) {
    assert_eq!(
        s.put_snapshot("new", &delta(snap(1, 1, &["a"])), 1)
            .unwrap(),
        PutOutcome::NeedFull(vec!["host".into(), "packages".into()])
    );
    assert!(s.host("new").unwrap().is_none(), "nothing stored");
    // Another host's packages are known by their hash: only host is asked.
    s.put_snapshot("other", &snap(1, 1, &["a"]), 1).unwrap();
    let mut d = snap(1, 5, &["a"]);
    d.sections[1].body = None;
    d.sections[1].hash_only = true;
    d.sections[1].hash = s.latest_snapshot("other").unwrap().unwrap().sections[1]
        .hash
        .clone();
    assert_eq!(s.put_snapshot("new", &d, 2).unwrap(), stored(true));
    let full = s.latest_snapshot("new").unwrap().unwrap();
    assert!(matches!(&full.sections[1].body, Some(Body::Packages(p)) if p.packages.len() == 1));
}

fn tokens_race_for_their_last_uses(s: &dyn Store) {
    let (secret, rec) = tokens::generate("web", 60_000, 5, "admin", 0);
    s.create_token(&rec).unwrap();
    let won = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|t| {
        for _ in 0..4 {
            t.spawn(|| {
                for _ in 0..5 {
                    if s.consume_token(&rec.id, &secret, 1).unwrap().is_ok() {
                        won.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(won.into_inner(), 5, "20 attempts, 5 uses");
    assert_eq!(s.token(&rec.id).unwrap().unwrap().uses, 5);
    assert!(matches!(
        s.consume_token(&rec.id, &secret, 2).unwrap(),
        Err(TokenError::UsedUp { .. })
    ));
    assert_eq!(
        s.consume_token(&rec.id, "dwt_wrong", 2).unwrap(),
        Err(TokenError::Invalid)
    );
    assert_eq!(
        s.consume_token("00000000", &secret, 2).unwrap(),
        Err(TokenError::Invalid)
    );
    let r = s.revoke_token(&rec.id, 9).unwrap().unwrap();
    assert_eq!(r.revoked_ms, 9);
    assert_eq!(
        s.revoke_token(&rec.id, 10).unwrap().unwrap().revoked_ms,
        9,
        "first revocation stays"
    );
    assert!(s.revoke_token("nope", 9).unwrap().is_none());
    assert_eq!(s.list_tokens().unwrap().len(), 1);
}

fn enrollment_labels_lineage_and_revocation(s: &dyn Store) {
    let web = Label {
        key: "group".into(),
        value: "web".into(),
    };
    s.enroll_host(&HostSummary {
        host_id: "h1".into(),
        enrollment_labels: vec![web.clone()],
        ..Default::default()
    })
    .unwrap();
    let mut sn = snap(1, 1, &["a"]);
    sn.labels = vec![
        Label {
            key: "group".into(),
            value: "db".into(),
        },
        Label {
            key: "env".into(),
            value: "prod".into(),
        },
    ];
    s.put_snapshot("h1", &sn, 5).unwrap();
    let h = s.host("h1").unwrap().unwrap();
    let got: Vec<_> = h
        .labels
        .iter()
        .map(|l| format!("{}={}", l.key, l.value))
        .collect();
    assert_eq!(got, ["env=prod", "group=web"]);
    s.enroll_host(&HostSummary {
        host_id: "h2".into(),
        previous_host_id: "h1".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.host("h1").unwrap().unwrap().successor_host_ids, ["h2"]);
    let r = s.revoke_host("h1", "alice", 9).unwrap().unwrap();
    assert_eq!((r.revoked_ms, r.revoked_by.as_str()), (9, "alice"));
    assert_eq!(
        s.revoke_host("h1", "bob", 10).unwrap().unwrap().revoked_by,
        "alice"
    );
    assert!(s.revoke_host("nope", "alice", 9).unwrap().is_none());
    let ids: Vec<String> = s
        .list_hosts()
        .unwrap()
        .into_iter()
        .map(|h| h.host_id)
        .collect();
    assert_eq!(ids, ["h1", "h2"], "in id order");
}

fn sweep(id: &str, hosts: &[&str]) -> SweepJob {
    SweepJob {
        id: id.into(),
        requested_by: "ops".into(),
        expires_ms: 10_000,
        hosts: hosts
            .iter()
            .map(|h| SweepHost {
                host_id: h.to_string(),
                status: "pending".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn sweeps_first_final_result_wins(s: &dyn Store) {
    s.put_sweep(&sweep("s1", &["b", "a", "c"])).unwrap();
    s.put_sweep(&sweep("s2", &["a"])).unwrap();
    let job = s.get_sweep("s1").unwrap().unwrap();
    let ids: Vec<&str> = job.hosts.iter().map(|h| h.host_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"], "sorted by host id");
    assert!(
        s.sweep_headers()
            .unwrap()
            .iter()
            .all(|j| j.hosts.is_empty())
    );
    assert_eq!(s.list_sweeps().unwrap().len(), 2);
    assert_eq!(
        s.mark_sweep_sent("s1", &["a".into(), "zz".into(), "c".into()], 77)
            .unwrap(),
        2,
        "hosts not in the job are skipped"
    );
    // Eight threads deliver a final result for host b at once.
    let finish = |who: String| {
        move |e: &mut SweepHost| {
            if e.status != "pending" {
                return false;
            }
            e.status = "done".into();
            e.message = who.clone();
            true
        }
    };
    let results: Vec<SweepHost> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let f = finish(format!("result {i}"));
                t.spawn(move || s.update_sweep_host("s1", "b", &f).unwrap().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let kept = s.sweep_host("s1", "b").unwrap().unwrap();
    assert_eq!(kept.status, "done");
    assert!(
        results.iter().all(|r| r.message == kept.message),
        "every caller sees the one result that won: {results:?}"
    );
    assert_eq!(s.sweep_host("s1", "a").unwrap().unwrap().sent_ms, 77);
    assert_eq!(
        s.sweep_host("s2", "a").unwrap().unwrap().sent_ms,
        0,
        "another job's entry"
    );
    assert!(
        s.update_sweep_host("s1", "nobody", &|_| true)
            .unwrap()
            .is_none()
    );
    assert!(s.get_sweep("none").unwrap().is_none());
    // A rewrite replaces the host list.
    s.put_sweep(&sweep("s1", &["d"])).unwrap();
    assert_eq!(s.get_sweep("s1").unwrap().unwrap().hosts.len(), 1);
}

fn event(receiver: &str, key: &str) -> NotifyEvent {
    NotifyEvent {
        receiver: receiver.into(),
        idempotency_key: key.into(),
        event: "opened".into(),
        ..Default::default()
    }
}

fn outbox_in_order_per_receiver(s: &dyn Store) {
    let f = Finding {
        id: "f1".into(),
        host_id: "h".into(),
        ..Default::default()
    };
    s.put_findings_and_queue(
        std::slice::from_ref(&f),
        &[event("a", "1"), event("b", "x"), event("a", "2")],
    )
    .unwrap();
    s.put_findings_and_queue(&[], &[event("a", "3"), event("ab", "y")])
        .unwrap();
    assert_eq!(s.findings().unwrap(), vec![f]);
    let keys = |r: &str| -> Vec<String> {
        s.queued(r, 10)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.idempotency_key)
            .collect()
    };
    assert_eq!(keys("a"), ["1", "2", "3"]);
    assert_eq!(keys("b"), ["x"]);
    assert_eq!(
        keys("ab"),
        ["y"],
        "a name that is a prefix of another is its own queue"
    );
    assert_eq!(s.queued("a", 2).unwrap().len(), 2);
    s.put_findings_and_queue(&[], &[event("a", "4")]).unwrap();
    assert_eq!(s.trim_queue("a", 2).unwrap(), 2, "the oldest go");
    assert_eq!(keys("a"), ["3", "4"]);
    let (first, _) = s.queued("a", 1).unwrap().remove(0);
    s.dequeue(&first).unwrap();
    assert_eq!(keys("a"), ["4"]);
    let lengths: Vec<(String, u64)> = s.queue_lengths().unwrap().into_iter().collect();
    assert_eq!(
        lengths,
        [("a".into(), 1), ("ab".into(), 1), ("b".into(), 1)]
    );
    // Findings are replaced by id.
    let changed = Finding {
        id: "f1".into(),
        host_id: "h".into(),
        kind: "changed".into(),
        ..Default::default()
    };
    s.put_findings(std::slice::from_ref(&changed)).unwrap();
    assert_eq!(s.findings().unwrap(), vec![changed]);
}

fn audit_newest_first_bounded(s: &dyn Store) {
    for (t, target) in [
        (-5, "before-1970"),
        (10, "a"),
        (20, "b"),
        (20, "c"),
        (30, "d"),
    ] {
        s.put_audit(&AuditEntry {
            at_ms: t,
            admin: "alice".into(),
            target: target.into(),
            ..Default::default()
        })
        .unwrap();
    }
    let targets = |v: &[AuditEntry]| v.iter().map(|e| e.target.clone()).collect::<Vec<_>>();
    let (all, more) = s.audit(i64::MIN, 100).unwrap();
    assert_eq!(targets(&all), ["d", "c", "b", "a", "before-1970"]);
    assert!(!more);
    let (two, more) = s.audit(i64::MIN, 2).unwrap();
    assert_eq!(targets(&two), ["d", "c"]);
    assert!(more, "the limit cut it");
    let (since, _) = s.audit(20, 100).unwrap();
    assert_eq!(targets(&since), ["d", "c", "b"]);
}

fn forget_leaves_only_a_revocation(s: &dyn Store) {
    for host in ["a", "b"] {
        s.put_snapshot(host, &snap(1, 1, &["x"]), 1).unwrap();
        s.put_snapshot(host, &snap(2, 2, &["y"]), 2).unwrap();
    }
    s.put_findings(&[Finding {
        id: "f1".into(),
        host_id: "a".into(),
        ..Default::default()
    }])
    .unwrap();
    s.revoke_host("a", "alice", 3).unwrap();
    let (h, removed) = s.forget_host("a").unwrap().unwrap();
    assert_eq!(h.host_id, "a");
    assert_eq!(removed, 3, "two history records and a finding");
    assert!(s.host("a").unwrap().is_none());
    assert!(s.latest_snapshot("a").unwrap().is_none());
    assert!(s.history("a", 0).unwrap().is_empty());
    assert!(s.findings().unwrap().is_empty());
    assert_eq!(s.history("b", 0).unwrap().len(), 2, "b untouched");
    assert!(s.forget_host("a").unwrap().is_none());
    assert_eq!(s.forgotten_revoked_ids().unwrap(), ["a"]);
    s.forget_host("b").unwrap().unwrap();
    assert_eq!(
        s.forgotten_revoked_ids().unwrap(),
        ["a"],
        "b was never revoked"
    );
}

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

fn baseline_candidates_need_a_quorum(s: &dyn Store) {
    let (good, bad) = (upload("img", "baked"), upload("img", "forged"));
    let pending = |agreeing, contents| CandidateOutcome::Pending { agreeing, contents };
    assert_eq!(
        s.put_baseline_candidate("evil", &bad, 2).unwrap(),
        pending(1, 1)
    );
    assert_eq!(
        s.put_baseline_candidate("a", &good, 2).unwrap(),
        pending(1, 2)
    );
    assert_eq!(
        s.put_baseline_candidate("b", &good, 2).unwrap(),
        pending(2, 2),
        "contradicted"
    );
    assert!(s.baseline("image-img").unwrap().is_none());
    s.put_baseline_candidate("evil", &upload("other", "x"), 2)
        .unwrap();
    assert_eq!(
        s.put_baseline_candidate("a", &good, 2).unwrap(),
        CandidateOutcome::Confirmed {
            hosts: vec!["a".into(), "b".into()]
        }
    );
    let b = s.baseline("image-img").unwrap().unwrap();
    assert_eq!(b.source, "image-bake (confirmed by 2 hosts: a, b)");
    assert_eq!(
        s.put_baseline_candidate("c", &bad, 2).unwrap(),
        CandidateOutcome::AlreadyDecided { same: false }
    );
    let listed = s.baseline_candidates().unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.host_id == "c" && c.differs_from_baseline),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|c| c.host_id == "a" && !c.differs_from_baseline),
        "{listed:?}"
    );
    s.enroll_host(&HostSummary {
        host_id: "r".into(),
        revoked_ms: 1,
        ..Default::default()
    })
    .unwrap();
    s.put_baseline_candidate("r", &upload("third", "x"), 1)
        .unwrap();
    assert!(
        s.baseline("image-third").unwrap().is_none(),
        "a revoked host's vote is void"
    );
    assert!(
        s.approve_image_baseline("third", "nobody", "alice")
            .unwrap()
            .is_none()
    );
    let a = s
        .approve_image_baseline("third", "r", "alice")
        .unwrap()
        .unwrap();
    assert!(a.source.contains("approved by alice"), "{}", a.source);
    // Operator baselines: kept unless overwritten.
    let mine = Baseline {
        name: "web".into(),
        ..upload("", "one")
    };
    assert!(s.put_baseline(&mine, false).unwrap());
    assert!(
        !s.put_baseline(
            &Baseline {
                created_ms: 9,
                ..mine.clone()
            },
            false
        )
        .unwrap()
    );
    assert_eq!(s.baseline("web").unwrap().unwrap().created_ms, 5);
    assert!(
        s.put_baseline(
            &Baseline {
                created_ms: 9,
                ..mine
            },
            true
        )
        .unwrap()
    );
    assert_eq!(s.baseline("web").unwrap().unwrap().created_ms, 9);
    assert_eq!(s.baselines().unwrap().len(), 3);
}

fn key_views_carry_host_and_keys(s: &dyn Store) {
    for (host, fp) in [("k2", "SHA256:two"), ("k1", "SHA256:one")] {
        let mut sn = snap(3, 99, &["bash"]);
        sn.collected_at_ms = 1234;
        sn.sections.push(ok_section(
            Body::SshKeys(SshKeysSection {
                files: vec![AuthorizedKeysFile {
                    user: "bob".into(),
                    path: "/home/bob/.ssh/authorized_keys".into(),
                    keys: vec![AuthorizedKey {
                        line: 2,
                        fingerprint: fp.into(),
                        comment: "bob@laptop".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            1,
        ));
        s.put_snapshot(host, &sn, 5).unwrap();
    }
    let mut seen = Vec::new();
    s.latest_key_views(&mut |h, v| seen.push((h.to_string(), v.clone())))
        .unwrap();
    assert_eq!(
        seen.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    let (_, view) = &seen[0];
    assert_eq!((view.seq, view.collected_at_ms), (3, 1234));
    let names: Vec<&str> = view.sections.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["host", "ssh_keys"], "packages are not decoded");
    assert!(
        matches!(&view.sections[1].body, Some(Body::SshKeys(k)) if k.files[0].keys[0].fingerprint == "SHA256:one")
    );
}

fn backup_is_sled_only(s: &dyn Store) {
    match s.backup_to_file() {
        Ok((path, _)) => {
            assert!(path.exists(), "sled writes a backup file");
            std::fs::remove_file(path).unwrap();
        }
        Err(e) => assert!(e.to_string().contains("pg_dump"), "{e}"),
    }
}

/// Two collectors on one database receive the same resent report at once:
/// it is stored once, the other is told duplicate; both race for a token's
/// last use: exactly one wins.
#[test]
fn two_collectors_store_a_report_once_and_take_a_last_use_once() {
    let Some(pg) = PgCluster::start() else { return };
    let a = open_pg(&pg);
    let b = open_pg(&pg);
    let stores: [&dyn Store; 2] = [&a, &b];
    stores[0].put_snapshot("h", &snap(1, 1, &["a"]), 1).unwrap();
    for seq in 2..=21u64 {
        // Even seqs change packages (the full path), odd ones come as
        // deltas of unchanged content (the fast path).
        let report = if seq % 2 == 0 {
            snap(seq, seq, &["a", if seq % 4 == 0 { "b" } else { "c" }])
        } else {
            delta(snap(
                seq,
                seq,
                &["a", if (seq - 1) % 4 == 0 { "b" } else { "c" }],
            ))
        };
        let outcomes: Vec<PutOutcome> = std::thread::scope(|t| {
            let hs: Vec<_> = stores
                .iter()
                .map(|s| {
                    let r = report.clone();
                    t.spawn(move || s.put_snapshot("h", &r, seq as i64).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored_n = outcomes
            .iter()
            .filter(|o| matches!(o, PutOutcome::Stored { .. }))
            .count();
        let dup_n = outcomes
            .iter()
            .filter(|o| **o == PutOutcome::Duplicate)
            .count();
        assert_eq!((stored_n, dup_n), (1, 1), "seq {seq}: {outcomes:?}");
    }
    let h = stores[1].host("h").unwrap().unwrap();
    assert_eq!(
        (h.last_seq, h.snapshots_stored),
        (21, 21),
        "each seq stored once"
    );
    assert_eq!(
        h.changes_stored, 11,
        "one record per change: seq 1 and every even seq"
    );
    assert_eq!(stores[0].history("h", 0).unwrap().len(), 11);

    for round in 0..10 {
        let (secret, rec) = tokens::generate("web", 60_000, 1, "admin", 0);
        a.create_token(&rec).unwrap();
        let wins: usize = std::thread::scope(|t| {
            let hs: Vec<_> = stores
                .iter()
                .map(|s| {
                    let (id, sec) = (rec.id.clone(), secret.clone());
                    t.spawn(move || usize::from(s.consume_token(&id, &sec, 1).unwrap().is_ok()))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "round {round}: the last use is taken once");
    }
}

/// A sync is a WAL flush: with the WAL writer slowed to 10 s, writes are
/// committed but not flushed until `sync` returns, and then they are.
#[test]
fn sync_flushes_the_wal_through_every_earlier_commit() {
    let Some(pg) = on_pg(PgOptions {
        settings: vec![("wal_writer_delay".into(), "10000ms".into())],
        ..Default::default()
    }) else {
        return;
    };
    let flushed = |lsn: &str| {
        pg.cluster.psql_as_superuser(
            "postgres",
            &format!("SELECT pg_current_wal_flush_lsn() >= '{lsn}'::pg_lsn"),
        ) == "t"
    };
    pg.store.sync().unwrap();
    let mut unflushed_seen = false;
    for seq in 1..=5 {
        pg.store
            .put_snapshot("h", &snap(seq, seq, &["a", &seq.to_string()]), 1)
            .unwrap();
        let lsn = pg
            .cluster
            .psql_as_superuser("postgres", "SELECT pg_current_wal_insert_lsn()");
        unflushed_seen |= !flushed(&lsn);
        pg.store.sync().unwrap();
        assert!(flushed(&lsn), "after sync the WAL is flushed through {lsn}");
    }
    assert!(
        unflushed_seen,
        "reports commit without a flush of their own (else sync proves nothing)"
    );
}

/// A database migrated by a newer collector is refused with a message;
/// opening twice migrates once.
#[test]
fn a_newer_schema_is_refused() {
    let Some(pg) = on_pg(Default::default()) else {
        return;
    };
    let again = open_pg(&pg.cluster);
    drop(again);
    assert_eq!(
        pg.cluster
            .psql_as_superuser("driftwatch", "SELECT count(*) FROM schema_version"),
        pg::SCHEMA_VERSION.to_string()
    );
    pg.cluster.psql_as_superuser(
        "driftwatch",
        &format!(
            "INSERT INTO schema_version VALUES ({}, 0, 'future')",
            pg::SCHEMA_VERSION + 1
        ),
    );
    let t = pg::target(
        &pg.cluster.url(),
        Some(&pg.cluster.password_file("pw2")),
        &no_env,
    )
    .unwrap();
    let e = PgStore::open(&t)
        .err()
        .expect("a newer schema must not open")
        .to_string();
    assert!(
        e.contains("upgrade this collector")
            && e.contains(&format!("version {}", pg::SCHEMA_VERSION + 1)),
        "{e}"
    );
}
