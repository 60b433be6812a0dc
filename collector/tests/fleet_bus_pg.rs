//! The PostgreSQL fleet bus against a real server (tests/src/pg.rs starts
//! it): two collectors' buses on one database hear each other's events
//! within the 2 s a sweep may take to reach the fleet; exactly one leads,
//! and the other takes over when the leader's session dies; evaluations
//! are one at a time across them; a session killed by the server is made
//! again and hears later events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_collector::fleet_bus::pg::{self as pg_bus, PgBus};
use driftwatch_collector::fleet_bus::{Delivered, FleetBus, FleetEvent};
use driftwatch_collector::store::pg;
use driftwatch_tests::pg::PgCluster;
use tokio::sync::broadcast;

fn bus(pg: &PgCluster) -> Arc<PgBus> {
    let file = pg.password_file("bus.pw");
    let no_env = |_: &str| None;
    PgBus::start(pg::target(&pg.url(), Some(&file), &no_env).unwrap())
}

/// The next event from `origin`, within `within`.
async fn from(
    rx: &mut broadcast::Receiver<Delivered>,
    origin: &str,
    within: Duration,
) -> FleetEvent {
    tokio::time::timeout(within, async {
        loop {
            let d = rx.recv().await.expect("bus open");
            if d.origin == origin {
                return d.event;
            }
        }
    })
    .await
    .expect("the event arrives in time")
}

async fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "waited {secs}s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both sessions LISTEN (the first event could otherwise go before B
/// listens): a probe from each must reach the other.
async fn listening(a: &PgBus, b: &PgBus) {
    let (mut ra, mut rb) = (a.subscribe(), b.subscribe());
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            b.publish(FleetEvent::DataChanged);
            a.publish(FleetEvent::DataChanged);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let heard = |rx: &mut broadcast::Receiver<Delivered>, o: &str| {
                std::iter::from_fn(|| rx.try_recv().ok()).any(|d| d.origin == o)
            };
            if heard(&mut ra, b.origin()) && heard(&mut rb, a.origin()) {
                return;
            }
        }
    })
    .await
    .expect("both sessions listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_collectors_one_leads_and_another_takes_over() {
    let Some(pg) = PgCluster::start() else { return };
    let a = bus(&pg);
    let b = bus(&pg);
    listening(&a, &b).await;

    let mut rb = b.subscribe();
    let sent = Instant::now();
    a.publish(FleetEvent::SweepStarted {
        sweep_id: "sw-1-abcdef".into(),
    });
    assert_eq!(
        from(&mut rb, a.origin(), Duration::from_secs(2)).await,
        FleetEvent::SweepStarted {
            sweep_id: "sw-1-abcdef".into()
        }
    );
    eprintln!("fleet bus: A to B in {:?}", sent.elapsed());

    until(10, "a leader", || a.is_leader() || b.is_leader()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        a.is_leader() ^ b.is_leader(),
        "exactly one leader: a={} b={}",
        a.is_leader(),
        b.is_leader()
    );
    let (leader, other) = if a.is_leader() { (a, b) } else { (b, a) };
    // The server ends the leader's session (as a restarted database or a
    // cut connection would): it knows at once it no longer leads, makes
    // its session again and hears events again; one of the two leads.
    let terminated = pg.psql_as_superuser(
        "driftwatch",
        &format!(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {}",
            (pg_bus::LEADER_KEY >> 32) as u32,
            (pg_bus::LEADER_KEY & 0xffff_ffff) as u32
        ),
    );
    assert_eq!(terminated, "1", "the leader's session holds the lock");
    let mut rl = leader.subscribe();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            other.publish(FleetEvent::HostRevoked {
                host_id: "web-1".into(),
            });
            if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_millis(300), rl.recv()).await
                && d.origin == other.origin()
            {
                return;
            }
        }
    })
    .await
    .expect("a re-made session hears events");
    until(10, "a leader again", || {
        leader.is_leader() || other.is_leader()
    })
    .await;
    assert!(leader.is_leader() ^ other.is_leader(), "still exactly one");

    // The leader goes away for good (its process ends: its session
    // closes); the other takes over within the retry period.
    let (leader, other) = if leader.is_leader() {
        (leader, other)
    } else {
        (other, leader)
    };
    drop(leader);
    let lost = Instant::now();
    until(10, "the other collector to take over", || other.is_leader()).await;
    eprintln!("fleet bus: leadership taken over in {:?}", lost.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_take_turns_across_collectors() {
    let Some(pg) = PgCluster::start() else { return };
    let (a, b) = (bus(&pg), bus(&pg));
    let held = a.evaluation_lock().await;
    let waiting = tokio::time::timeout(Duration::from_millis(500), b.evaluation_lock()).await;
    assert!(waiting.is_err(), "b waits while a evaluates");
    drop(held);
    let _g = tokio::time::timeout(Duration::from_secs(5), b.evaluation_lock())
        .await
        .expect("b evaluates once a is done");
}
