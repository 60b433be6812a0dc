//! Agent failover between two real collectors sharing one PKI (one CA, the
//! same server names: what a TCP load balancer in front of them needs): an
//! agent given both reports to the first; kill -9 of that one sends its
//! reports and its command stream to the other within a bound, and every
//! snapshot it spooled is acknowledged by one of them, in order, none
//! stored twice by the same collector.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_tests::prom::scrape;
use driftwatch_tests::*;

/// (seq, outcome) of each "report stored" event for `host`, in log order.
fn acks(c: &CollectorProc, host: &str) -> Vec<(u64, String)> {
    c.events("report stored")
        .iter()
        .filter(|e| e["span"]["host"] == host)
        .filter_map(|e| Some((e["seq"].as_u64()?, e["outcome"].as_str()?.to_string())))
        .collect()
}

/// Seqs the agent logged as spooled and as acknowledged, so far.
fn agent_seqs(log: &Path, message: &str) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == message)
        .filter_map(|e| e["seq"].as_u64())
        .collect()
}

fn connected_on(pki: &Pki, c: &CollectorProc, host: &str) -> bool {
    let (code, v, _) = cli_any(pki, &c.url, &["hosts"]);
    code == Some(0)
        && v["hosts"].as_array().is_some_and(|hs| {
            hs.iter()
                .any(|h| h["host_id"] == host && h["connected"] == true)
        })
}

#[test]
fn kill_9_of_the_collector_in_use_moves_the_agent_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let (cert, key) = pki.issue_host("web-1", &tmp.path().join("web-1"));
    let root = tmp.path().join("root");
    fake_root(&root, "web-1", "1111", "uuid-1");
    // Two collectors, one PKI dir: the same CA and server certificate,
    // each with its own store (sled); they do not share state here.
    let filter = "info,driftwatch_collector=debug";
    let a = CollectorProc::start_json_log(&pki, &tmp.path().join("a"), &[], filter);
    let b = CollectorProc::start_json_log(&pki, &tmp.path().join("b"), &[], filter);

    let state = tmp.path().join("state");
    let log = tmp.path().join("agent.log");
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut agent = Command::new(bin("driftwatch-agent"))
        .args(["--log-format", "json", "run", "--interval", "1s"])
        .args(["--collector", &a.url, "--collector", &b.url, "--ca"])
        .arg(pki.ca())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .args(["--section", "host", "--metrics-listen", &metrics])
        .env("RUST_LOG", "info,driftwatch_agent=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start agent");

    wait_for(30, "three reports stored by the first collector", || {
        (acks(&a, "web-1").len() >= 3).then_some(())
    });
    wait_for(
        15,
        "the agent's command stream on the first collector",
        || connected_on(&pki, &a, "web-1").then_some(()),
    );
    assert!(
        acks(&b, "web-1").is_empty(),
        "the first address is tried first"
    );

    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    let spooled_at_kill = agent_seqs(&log, "snapshot spooled")
        .into_iter()
        .max()
        .unwrap();

    wait_for(30, "a report stored by the second collector", || {
        (!acks(&b, "web-1").is_empty()).then_some(())
    });
    let moved_in = killed.elapsed();
    eprintln!("failover: first report stored by the second collector {moved_in:?} after kill -9");
    // 1 s between attempts, a 1 s interval, ±10% jitter: well under the
    // 30 s the fleet target allows.
    assert!(
        moved_in < Duration::from_secs(10),
        "the agent took {moved_in:?} to report to the second collector"
    );
    wait_for(30, "the command stream on the second collector", || {
        connected_on(&pki, &b, "web-1").then_some(())
    });

    // The backlog and a few more snapshots arrive; then everything the
    // agent spooled has been acknowledged and its spool is empty.
    let target = spooled_at_kill + 3;
    let mut last_spooled = 0;
    wait_for(
        60,
        "every spooled snapshot acknowledged by the second",
        || {
            last_spooled = agent_seqs(&log, "snapshot spooled").into_iter().max()?;
            let acked_b = acks(&b, "web-1").iter().map(|(s, _)| *s).max()?;
            let spool_empty = std::fs::read_dir(state.join("spool"))
                .ok()?
                .next()
                .is_none();
            (last_spooled >= target && acked_b >= last_spooled && spool_empty).then_some(())
        },
    );
    let exposition = scrape(&metrics);
    agent.kill().unwrap();
    agent.wait().unwrap();

    let acked: BTreeSet<u64> = agent_seqs(&log, "acknowledged").into_iter().collect();
    let (on_a, on_b) = (acks(&a, "web-1"), acks(&b, "web-1"));
    let mut stored: BTreeMap<(char, u64), usize> = BTreeMap::new();
    for (c, list) in [('a', &on_a), ('b', &on_b)] {
        for (seq, outcome) in list.iter() {
            if outcome == "stored" {
                *stored.entry((c, *seq)).or_default() += 1;
            }
        }
    }
    assert!(
        stored.values().all(|&n| n == 1),
        "a collector stored a seq twice: a={on_a:?} b={on_b:?}"
    );
    let seen: BTreeSet<u64> = on_a.iter().chain(&on_b).map(|(s, _)| *s).collect();
    let want: BTreeSet<u64> = (1..=last_spooled).collect();
    assert_eq!(
        seen, want,
        "every spooled seq reached a collector: a={on_a:?} b={on_b:?}"
    );
    assert!(
        want.is_subset(&acked),
        "the agent saw every seq acknowledged: {acked:?}"
    );
    // Only the report in flight at the kill can be on both: written by the
    // first, its ack lost with it, sent again to the second.
    let on_both: Vec<u64> = on_a
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| on_b.iter().any(|(t, _)| t == s))
        .collect();
    assert!(on_both.len() <= 1, "stored on both: {on_both:?}");
    let b_order: Vec<u64> = on_b.iter().map(|(s, _)| *s).collect();
    assert!(
        b_order.windows(2).all(|w| w[0] < w[1]),
        "the second collector got the backlog in order: {b_order:?}"
    );

    // The agent says where it is and why it moved.
    assert_eq!(
        exposition.value("driftwatch_agent_collector_in_use", &[("url", &b.url)]),
        1.0
    );
    assert_eq!(
        exposition.value("driftwatch_agent_collector_in_use", &[("url", &a.url)]),
        0.0
    );
    let moves: f64 = [
        "unreachable",
        "tls",
        "unavailable",
        "timed_out",
        "stream_lost",
    ]
    .iter()
    .map(|r| exposition.value("driftwatch_agent_collector_moves_total", &[("reason", r)]))
    .sum();
    assert_eq!(moves, 1.0, "one move, by one part, the other followed");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("moving to another collector")
                && l.contains(&a.url)
                && l.contains(&b.url)),
        "the agent logs the move with both addresses:\n{text}"
    );
}
