//! Reliability from the outside: kill -9, an outage and a network partition
//! must not cost or duplicate a report; hostile bytes must not stop the
//! collector; an oversized report gets a clear answer. The Docker tests run
//! the real images (tests/src/fleet.rs); under CI=true a missing Docker
//! engine fails them.

use std::collections::BTreeMap;
use std::time::Duration;

use driftwatch_tests::fleet::{Fleet, docker_or_skip};

/// Seqs the collector stored (not duplicates) for `host`, in the order it
/// stored them, from its JSON debug log across restarts.
fn stored_order(fleet: &Fleet, host: &str) -> Vec<u64> {
    fleet
        .log_events(&fleet.collector_name(), "report stored")
        .iter()
        .filter(|e| e["span"]["host"] == host && e["outcome"] == "stored")
        .filter_map(|e| e["seq"].as_u64())
        .collect()
}

/// The newest seq the agent container spooled so far.
fn agent_spooled(fleet: &Fleet, host: &str) -> u64 {
    fleet
        .log_events(&fleet.agent_name(host), "snapshot spooled")
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Every seq 1..=n stored exactly once and in increasing order.
fn assert_complete_in_order(fleet: &Fleet, host: &str, n: u64) {
    let order = stored_order(fleet, host);
    let want: Vec<u64> = (1..=n).collect();
    assert_eq!(
        &order[..n as usize],
        &want[..],
        "{host}: the collector stored seqs in this order: {order:?}"
    );
    let (last, stored) = fleet.host_seqs(host).expect("host known");
    assert_eq!(stored, last, "{host}: every seq up to {last} stored once");
    let mut seen = BTreeMap::new();
    for s in &order {
        *seen.entry(*s).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|&c| c == 1),
        "{host}: a seq was stored twice: {order:?}"
    );
}

#[test]
fn kill_9_right_after_an_ack_keeps_the_acknowledged_snapshot() {
    if !docker_or_skip("kill_9_right_after_an_ack") {
        return;
    }
    let mut fleet = Fleet::create();
    fleet.start_collector();
    for seq in 1..=2u64 {
        let out = fleet.agent_once("web-1", &["--section", "host"]);
        assert!(
            out.status.success(),
            "agent --once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The ack is in; no grace: SIGKILL now, then the same data volume again.
        fleet.kill_collector();
        fleet.restart_collector();
        assert_eq!(
            fleet.host_seqs("web-1"),
            Some((seq, seq)),
            "snapshot {seq} was acknowledged before kill -9 and must survive it"
        );
    }
}

#[test]
fn snapshots_taken_while_the_collector_is_down_arrive_in_order_once() {
    if !docker_or_skip("collector_down") {
        return;
    }
    let mut fleet = Fleet::create();
    fleet.start_collector();
    fleet.start_agent("web-1", &["--interval", "1s", "--section", "host"]);
    fleet.wait_for("first reports", Duration::from_secs(30), || {
        fleet.host_seqs("web-1").is_some_and(|(l, _)| l >= 2)
    });
    fleet.kill_collector();
    let before = agent_spooled(&fleet, "web-1");
    std::thread::sleep(Duration::from_secs(5));
    let during = agent_spooled(&fleet, "web-1");
    assert!(
        during >= before + 3,
        "the agent kept collecting while the collector was down ({before} → {during})"
    );
    fleet.restart_collector();
    fleet.wait_for("the backlog to arrive", Duration::from_secs(60), || {
        fleet.host_seqs("web-1").is_some_and(|(l, _)| l >= during)
    });
    assert_complete_in_order(&fleet, "web-1", during);
}

#[test]
fn a_partition_across_several_agents_loses_and_duplicates_nothing() {
    if !docker_or_skip("partition") {
        return;
    }
    let hosts = ["web-1", "web-2", "db-1"];
    let mut fleet = Fleet::create();
    fleet.start_collector();
    for h in hosts {
        fleet.start_agent(h, &["--interval", "1s", "--section", "host"]);
    }
    fleet.wait_for("every agent reported", Duration::from_secs(30), || {
        hosts
            .iter()
            .all(|h| fleet.host_seqs(h).is_some_and(|(l, _)| l >= 2))
    });
    fleet.partition_collector();
    std::thread::sleep(Duration::from_secs(6));
    let during: Vec<u64> = hosts.iter().map(|h| agent_spooled(&fleet, h)).collect();
    // While cut off, nothing new reaches the collector.
    for (h, &n) in hosts.iter().zip(&during) {
        let (last, _) = fleet.host_seqs(h).unwrap();
        assert!(
            last + 3 <= n,
            "{h}: collector has {last} while the agent is at {n}"
        );
    }
    fleet.heal_collector();
    fleet.wait_for("every backlog to arrive", Duration::from_secs(90), || {
        hosts
            .iter()
            .zip(&during)
            .all(|(h, &n)| fleet.host_seqs(h).is_some_and(|(l, _)| l >= n))
    });
    for (h, &n) in hosts.iter().zip(&during) {
        assert_complete_in_order(&fleet, h, n);
    }
}

#[test]
fn the_demo_compose_file_is_valid_for_the_installed_docker_compose() {
    if !docker_or_skip("compose_file") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker");
    let out = std::process::Command::new("docker-compose")
        .args(["-p", "driftwatch-demo-check", "-f"])
        .arg(dir.join("compose.yaml"))
        .args(["config", "--services"])
        .env("DRIFTWATCH_DEMO_PKI", "/nonexistent-pki")
        .output()
        .expect("docker-compose is installed (scripts/ci-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut services: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    services.sort();
    assert_eq!(services, ["collector", "db-1", "web-1", "web-2"]);
}
