//! Reliability from the outside: kill -9, an outage and a network partition
//! must not cost or duplicate a report; hostile bytes must not stop the
//! collector; an oversized report gets a clear answer. The Docker tests run
//! the real images (tests/src/fleet.rs); under CI=true a missing Docker
//! engine fails them.

use std::collections::BTreeMap;
use std::time::Duration;

use driftwatch_tests::fleet::{Fleet, docker_or_skip};

/// The collector's "report stored" debug events for `host` as (seq,
/// outcome), in log order across restarts.
fn acks(fleet: &Fleet, host: &str) -> Vec<(u64, String)> {
    fleet
        .log_events(&fleet.collector_name(), "report stored")
        .iter()
        .filter(|e| e["span"]["host"] == host)
        .filter_map(|e| Some((e["seq"].as_u64()?, e["outcome"].as_str()?.to_string())))
        .collect()
}

/// Each seq at its first acknowledgement, in order. A "duplicate" counts:
/// a kill -9 can land after a report was written but before its ack was
/// logged, and the agent's resend is then acknowledged as a duplicate.
fn first_acks(acks: &[(u64, String)]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    acks.iter()
        .map(|(s, _)| *s)
        .filter(|s| seen.insert(*s))
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

/// Every seq 1..=n stored exactly once and acknowledged in increasing order.
fn assert_complete_in_order(fleet: &Fleet, host: &str, n: u64) {
    // The store shows a seq before its ack is logged (the log line follows
    // the fsync): wait for the log to catch up.
    let mut log = Vec::new();
    fleet.wait_for(
        &format!("{host}: acks of seqs 1..={n} in the collector log"),
        Duration::from_secs(30),
        || {
            log = acks(fleet, host);
            first_acks(&log).len() >= n as usize
        },
    );
    let order = first_acks(&log);
    let want: Vec<u64> = (1..=n).collect();
    assert_eq!(
        &order[..n as usize],
        &want[..],
        "{host}: the collector acknowledged seqs in this order: {log:?}"
    );
    let (last, stored) = fleet.host_seqs(host).expect("host known");
    assert_eq!(stored, last, "{host}: every seq up to {last} stored once");
    let mut seen = BTreeMap::new();
    for (s, outcome) in &log {
        if outcome == "stored" {
            *seen.entry(*s).or_insert(0) += 1;
        }
    }
    assert!(
        seen.values().all(|&c| c == 1),
        "{host}: a seq was stored twice: {log:?}"
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
    let mut during = before;
    fleet.wait_for(
        "the agent to keep collecting while the collector is down",
        Duration::from_secs(30),
        || {
            during = agent_spooled(&fleet, "web-1");
            during >= before + 3
        },
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
    // While cut off, nothing new reaches the collector: every agent gets
    // at least three snapshots ahead of what the collector has.
    let mut during: Vec<u64> = Vec::new();
    fleet.wait_for(
        "every agent three snapshots ahead of the cut-off collector",
        Duration::from_secs(40),
        || {
            during = hosts.iter().map(|h| agent_spooled(&fleet, h)).collect();
            hosts
                .iter()
                .zip(&during)
                .all(|(h, &n)| fleet.host_seqs(h).is_some_and(|(last, _)| last + 3 <= n))
        },
    );
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
    assert_eq!(
        services,
        [
            "collector",
            "db-1",
            "shop-latest",
            "shop-unhealthy",
            "web-1",
            "web-2",
            "web-3"
        ]
    );
}
