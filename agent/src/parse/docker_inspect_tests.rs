use super::*;
use crate::testutil::fixture;

fn one(name: &str) -> Container {
    let cs = parse_containers(&fixture(&format!("docker/{name}"))).unwrap();
    assert_eq!(cs.len(), 1, "{name}");
    container(&cs[0], None)
}

fn port(container_port: &str, host_ip: &str, host_port: u32) -> PublishedPort {
    PublishedPort {
        container_port: container_port.into(),
        host_ip: host_ip.into(),
        host_port,
    }
}

#[test]
fn mssql_healthy_with_probe_log_and_compose_labels() {
    let c = one("inspect-mssql-running-healthy-with-health-log.json");
    assert_eq!(c.name, "sqlserver.ctn");
    assert_eq!(c.image, "microsoft/mssql-server-linux:latest");
    assert_eq!(c.reference_kind, "latest");
    assert!(!c.pinned);
    assert_eq!(
        c.image_id,
        "sha256:314918ddaedfedc0345d3191546d800bd7f28bae180541c9b8b45776d322c8c2"
    );
    assert_eq!(c.state, "running");
    assert_eq!(c.created, "2021-02-11T21:41:35.2645907Z");
    assert_eq!(c.started_at, "2021-02-11T21:41:35.8078915Z");
    assert_eq!(c.restart_policy, "no", "an empty policy name means no");
    assert_eq!(c.restart_count, 0);
    let h = c.health.unwrap();
    assert_eq!(h.status, "healthy");
    assert_eq!(h.failing_streak, 0);
    let p = h.last_probe.unwrap();
    assert_eq!(p.start, "2021-02-11T21:42:17.9222687Z", "the newest of 5");
    assert_eq!(p.exit_code, 0);
    assert_eq!(p.output, "-----------\n          1\n\n(1 rows affected)");
    assert!(!p.output_truncated);
    assert_eq!(c.ports, vec![port("1433/tcp", "0.0.0.0", 1433)]);
    assert!(c.mounts.is_empty());
    assert_eq!(c.compose_project, "alembic");
    assert_eq!(c.compose_service, "sqlserver");
    let keys: Vec<&str> = c.labels.iter().map(|l| l.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 12);
    assert_eq!(keys[0], "autoheal");
}

#[test]
fn mongo_failing_probe_while_still_starting() {
    let c = one("inspect-mongo-running-health-starting-failing-streak.json");
    assert_eq!(c.name, "alembic_mongo_1");
    assert_eq!(c.reference_kind, "latest");
    let h = c.health.unwrap();
    assert_eq!(h.status, "starting");
    assert_eq!(h.failing_streak, 2);
    let p = h.last_probe.unwrap();
    assert_eq!(p.exit_code, 1);
    assert!(p.output.contains("Connection refused"), "{}", p.output);
    assert!(p.output.ends_with("exiting with code 1"), "{}", p.output);
    // 27017/tcp is exposed but not published; 80/tcp got a random port.
    assert_eq!(c.ports, vec![port("80/tcp", "0.0.0.0", 49241)]);
    let m: Vec<(&str, &str, bool)> = c
        .mounts
        .iter()
        .map(|m| (m.r#type.as_str(), m.destination.as_str(), m.read_write))
        .collect();
    assert_eq!(
        m,
        vec![
            ("volume", "/data/configdb", true),
            ("volume", "/data/db", true)
        ]
    );
    assert_eq!(
        c.mounts[1].name,
        "7dd2bce9e5d86bd74d040d869e62e9619e50cccc7f6f6229d2d6e431e96e771e"
    );
    assert_eq!(c.compose_service, "mongo");
}

#[test]
fn gluetun_healthy_untagged_reference_no_published_ports() {
    let c = one("inspect-gluetun-running-healthy.json");
    assert_eq!(c.image, "qmcgaw/gluetun");
    assert_eq!(c.reference_kind, "untagged");
    assert!(!c.pinned);
    let h = c.health.unwrap();
    assert_eq!(h.status, "healthy");
    assert_eq!(h.last_probe.unwrap().output, "");
    assert!(c.ports.is_empty(), "{:?}", c.ports);
    assert_eq!(c.compose_project, "wt-contnet");
    assert_eq!(c.compose_service, "producer");
}

#[test]
fn watchtower_restarting_is_a_restart_loop() {
    let c = one("inspect-watchtower-restarting-exitcode1.json");
    assert_eq!(c.state, "restarting");
    assert_eq!(c.exit_code, 1);
    assert_eq!(c.restart_policy, "no");
    assert_eq!(c.restart_count, 0);
    assert!(c.health.is_none());
    assert_eq!(c.reference_kind, "latest");
    assert_eq!(c.mounts.len(), 1);
    assert_eq!(c.mounts[0].source, "/var/run/docker.sock");
    assert_eq!(c.mounts[0].destination, "/var/run/docker.sock");
    assert!(c.mounts[0].read_write);
    assert_eq!(c.labels.len(), 1);
    assert_eq!(c.compose_project, "");
}

#[test]
fn portainer_with_its_image_gets_repo_digests() {
    let cs = parse_containers(&fixture(
        "docker/inspect-portainer-running-no-healthcheck.json",
    ))
    .unwrap();
    let images = parse_images(&fixture("docker/image-inspect-portainer-repodigests.json")).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0].id, cs[0].image,
        "the image sample is this container's"
    );
    let c = container(&cs[0], Some(&images[0]));
    assert_eq!(c.name, "portainer");
    assert_eq!(c.restart_policy, "always");
    assert!(c.health.is_none());
    assert_eq!(c.state, "running");
    assert_eq!(
        c.image_repo_digests,
        vec![
            "portainer/portainer@sha256:d6cc2c20c0af38d8d557ab994c419c799a10fe825e4aa57fea2e2e507a13747d"
        ]
    );
    // A digest on the image does not pin the container: it was run by tag.
    assert!(!c.pinned);
    assert_eq!(c.ports, vec![port("9000/tcp", "0.0.0.0", 9000)]);
    let dest: Vec<&str> = c.mounts.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(dest, vec!["/data", "/var/run/docker.sock"]);
}

#[test]
fn array_of_13_states_references_and_ids() {
    let cs = parse_containers(&fixture(
        "docker/inspect-array-13-containers-exited-created-running.json",
    ))
    .unwrap();
    let cs: Vec<Container> = cs.iter().map(|c| container(c, None)).collect();
    assert_eq!(cs.len(), 13);
    let count = |s: &str| cs.iter().filter(|c| c.state == s).count();
    assert_eq!(
        (count("running"), count("created"), count("exited")),
        (1, 2, 10)
    );
    let by = |n: &str| cs.iter().find(|c| c.name == n).unwrap();

    let karaf = by("karaf");
    assert_eq!(karaf.image, "ef32c3db3aed");
    assert_eq!(karaf.reference_kind, "image_id");
    assert!(karaf.pinned, "run by a short image id");
    assert_eq!(by("maraidb-5.5-glpi").reference_kind, "tag");
    assert_eq!(by("happy_ritchie").reference_kind, "untagged");
    assert_eq!(by("happy_ritchie").exit_code, 143);
    assert!(cs.iter().filter(|c| c.name != "karaf").all(|c| !c.pinned));

    let created = by("jolly_jepsen");
    assert_eq!(created.state, "created");
    assert_eq!(created.started_at, "", "the zero time means never started");
    assert_eq!(created.exit_code, 128);

    assert_eq!(by("glpi_http").ports, vec![port("80/tcp", "0.0.0.0", 8090)]);
    assert_eq!(by("glpiall_mysql_1").compose_project, "glpiall");
    assert_eq!(by("glpiall_mysql_1").compose_service, "mysql");
    assert_eq!(by("postgresql_karaf").mounts.len(), 2);
    assert!(
        cs.iter()
            .all(|c| c.restart_count == 0 && c.health.is_none())
    );
}

#[test]
fn reference_kinds() {
    let id = "sha256:ef32c3db3aedaaaa0000000000000000000000000000000000000000000000aa";
    let check = |r: &str, want: &str| assert_eq!(reference_kind(r, id), want, "{r}");
    check("nginx@sha256:0123abcd", "digest");
    check("nginx:1.25@sha256:0123abcd", "digest");
    check("registry:5000/team/app@sha256:ff", "digest");
    check(id, "image_id");
    check("ef32c3db3aed", "image_id");
    check(&id[7..], "image_id");
    check("nginx:1.25", "tag");
    check("registry.example:5000/team/app:2", "tag");
    check("nginx:latest", "latest");
    check("nginx", "untagged");
    check("registry.example:5000/team/app", "untagged");
    // Hex that is not this container's image id is a repository name.
    check("cafe", "untagged");
    check("", "untagged");
}

#[test]
fn probe_output_is_bounded_on_a_char_boundary() {
    let long = "é".repeat(400); // 800 bytes
    let (out, cut) = bounded_output(&format!("  {long}\n"));
    assert!(cut);
    assert!(out.len() <= MAX_PROBE_OUTPUT_BYTES);
    assert_eq!(out.len(), 512);
    assert!(out.chars().all(|c| c == 'é'));
    assert_eq!(bounded_output(" ok \n"), ("ok".to_string(), false));
}

#[test]
fn malformed_input_names_line_and_reason() {
    let e = parse_containers("{\n  \"Id\": 12\n}").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("invalid type"), "{e}");
    let e = parse_containers("[{\"State\": {\"Status\": \"zombie\"}}]").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.reason.contains("zombie"), "{e}");
    let e = parse_containers("\n\nnull").unwrap_err();
    assert_eq!((e.line, e.column), (3, 1));
    // Binary garbage and truncation are errors, never panics.
    assert!(parse_containers("\u{0}\u{1}\u{fffd}").is_err());
    let full = fixture("docker/inspect-gluetun-running-healthy.json");
    let e = parse_containers(&full[..full.len() / 2]).unwrap_err();
    assert!(e.reason.contains("EOF"), "{e}");
    assert!(parse_images("[]").unwrap().is_empty());
}
