//! Two collectors in one process over one real sled store, joined by a
//! [`LocalHub`]: what one does reaches the agents and indexes of the
//! other through events, and through the catch-up when no event came.

use std::sync::Arc;
use std::time::Duration;

use driftwatch_common::pki::Ca;
use driftwatch_common::proto::{Command, KeySelector, Snapshot, StartSweepRequest};
use tokio::sync::mpsc;
use tonic::Status;

use super::*;
use crate::evaluator::Evaluator;
use crate::service::State;
use crate::store::{SledStore, Store};

const FP: &str = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8";
const FP2: &str = "SHA256:c2Vjb25kS2V5Rm9yVGhlRmxlZXRCdXNUZXN0c0FCQ0R";

fn keys_snapshot(seq: u64, fps: &[&str]) -> Snapshot {
    Snapshot {
        seq,
        agent_epoch: 1,
        interval_s: 60,
        ..crate::drift::tests::keys(fps)
    }
}

struct Two {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    a: State,
    b: State,
}

/// Collectors A and B on one store; B's appliers run, A publishes (A's own
/// appliers would only skip its events).
fn two(hosts: &[&str]) -> Two {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    for h in hosts {
        store
            .put_snapshot(h, &keys_snapshot(1, &[FP]), 1_000)
            .unwrap();
    }
    let hub = LocalHub::new();
    let state = |bus: LocalBus| {
        let ca = Ca::generate("fleet test").unwrap();
        let ev = Evaluator::new(Default::default(), None);
        let mut s = State::new(store.clone(), ca, ev).unwrap();
        s.bus = Arc::new(bus);
        s
    };
    let (a, b) = (state(hub.join()), state(hub.join()));
    let seen = CatchUp::baseline(store.as_ref()).unwrap();
    tokio::spawn(apply::run(b.clone(), seen));
    Two {
        _dir: dir,
        store,
        a,
        b,
    }
}

type Inbound = mpsc::Receiver<Result<Command, Status>>;

fn connect(s: &State, host: &str) -> Inbound {
    let (tx, rx) = mpsc::channel(8);
    s.streams.register(host, tx);
    rx
}

async fn next(rx: &mut Inbound, within: Duration) -> Result<Command, Status> {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("something arrives in time")
        .expect("stream still open")
}

async fn found(s: &State, fp: &str) -> Vec<String> {
    let sel = KeySelector {
        fingerprint: fp.into(),
        ..Default::default()
    };
    let mut hosts: Vec<String> = crate::service::sweeps::find_keys(s, Some(sel))
        .unwrap()
        .locations
        .into_iter()
        .map(|l| l.host_id)
        .collect();
    hosts.dedup();
    hosts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_started_on_a_reaches_an_agent_held_by_b_and_is_marked_sent() {
    let t = two(&["h1", "h2"]);
    let mut on_a = connect(&t.a, "h1");
    let mut on_b = connect(&t.b, "h2");
    tokio::time::sleep(Duration::from_millis(50)).await; // B's applier subscribed
    let req = StartSweepRequest {
        selector: Some(KeySelector {
            fingerprint: FP.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let job = crate::service::sweeps::start(&t.a, "admin", req)
        .await
        .unwrap();
    assert_eq!(
        next(&mut on_a, Duration::from_secs(2)).await.unwrap().id,
        job.id
    );
    assert_eq!(
        next(&mut on_b, Duration::from_secs(2)).await.unwrap().id,
        job.id,
        "pushed by B within 2 s"
    );
    let sent = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let e = t.store.sweep_host(&job.id, "h2").unwrap().unwrap();
            if e.sent_ms > 0 {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("B records that it sent the sweep");
    assert_eq!(sent.status, "pending");
    assert!(
        on_a.try_recv().is_err(),
        "A's own event does not push the sweep to A's host again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_a_closes_the_stream_on_b_and_b_refuses_the_host() {
    let t = two(&["h1"]);
    let mut on_b = connect(&t.b, "h1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    // An event naming a host the store does not say is revoked changes
    // nothing: the store is the truth, not the message.
    t.a.bus.publish(FleetEvent::HostRevoked {
        host_id: "h1".into(),
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!t.b.is_revoked("h1") && t.b.streams.is_connected("h1"));

    t.store.revoke_host("h1", "vera", 2_000).unwrap().unwrap();
    t.a.bus.publish(FleetEvent::HostRevoked {
        host_id: "h1".into(),
    });
    let err = next(&mut on_b, Duration::from_secs(1))
        .await
        .expect_err("closed with a status");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(t.b.is_revoked("h1"));
    assert!(!t.b.streams.is_connected("h1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reported_through_a_are_found_through_b() {
    let t = two(&["h1"]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(found(&t.b, FP2).await, Vec::<String>::new());
    t.store
        .put_snapshot("h1", &keys_snapshot(2, &[FP2]), 2_000)
        .unwrap();
    t.a.bus.publish(FleetEvent::HostChanged {
        host_id: "h1".into(),
    });
    tokio::time::timeout(Duration::from_secs(2), async {
        while found(&t.b, FP2).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("B's key index learns of the report A stored");
    assert_eq!(
        found(&t.b, FP).await,
        Vec::<String>::new(),
        "the old key left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_up_finds_what_no_event_said() {
    let t = two(&["h1", "h2", "h3"]);
    let mut seen = CatchUp::baseline(t.store.as_ref()).unwrap();
    let mut h1_on_b = connect(&t.b, "h1");
    let mut h2_on_b = connect(&t.b, "h2");
    // Written by "another collector" whose events were lost.
    t.store.revoke_host("h1", "vera", 2_000).unwrap().unwrap();
    t.store
        .put_snapshot("h3", &keys_snapshot(2, &[FP2]), 2_000)
        .unwrap();
    let job = driftwatch_common::proto::SweepJob {
        id: "sw-lost".into(),
        selector: Some(KeySelector {
            fingerprint: FP.into(),
            ..Default::default()
        }),
        created_ms: 2_000,
        expires_ms: i64::MAX,
        hosts: ["h2", "h3"]
            .iter()
            .map(|h| driftwatch_common::proto::SweepHost {
                host_id: h.to_string(),
                status: "pending".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    t.store.put_sweep(&job).unwrap();
    t.store.forget_host("h1").unwrap();

    catch_up(&t.b, &mut seen).await.unwrap();
    assert_eq!(
        next(&mut h1_on_b, Duration::from_secs(1))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied,
        "revoked (and forgotten) h1 is cut off"
    );
    assert!(t.b.is_revoked("h1"));
    assert_eq!(
        next(&mut h2_on_b, Duration::from_secs(1)).await.unwrap().id,
        "sw-lost"
    );
    assert_eq!(found(&t.b, FP2).await, ["h3"]);
    assert!(
        !found(&t.b, FP).await.contains(&"h1".to_string()),
        "a forgotten host leaves the key index"
    );
    // A second pass finds nothing new: the sweep is not pushed again.
    catch_up(&t.b, &mut seen).await.unwrap();
    assert!(h2_on_b.try_recv().is_err());
}
