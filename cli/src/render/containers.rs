//! The `containers` table. A row an operator must look at starts with `!`:
//! an unhealthy container, one Docker keeps restarting, a floating image
//! reference, or an entry the agent could not fully read. Notes under the
//! table explain unhealthy, restarting and unreadable ones, with the failing
//! probe's output.

use driftwatch_common::proto::{Container, ContainersSection, PublishedPort};

use super::table::{Table, clip};

/// Probe output shown per note: the first line, cut to this.
const NOTE_OUTPUT_CHARS: usize = 160;

pub fn render(s: &ContainersSection) -> String {
    let mut out = summary(s);
    if s.containers.is_empty() {
        return out;
    }
    let mut t = Table::new([
        "", "NAME", "IMAGE", "PINNED", "STATE", "HEALTH", "RESTARTS", "PORTS",
    ]);
    let mut below = Vec::new();
    for c in &s.containers {
        let why = notes(c);
        let flagged = !why.is_empty() || !c.pinned;
        t.row([
            if flagged { "!" } else { "" }.to_string(),
            c.name.clone(),
            clip(&c.image, 48),
            pinned(c),
            state(c),
            health(c),
            restarts(c),
            clip(&ports(&c.ports), 60),
        ]);
        below.extend(why.into_iter().map(|w| format!("! {}: {w}\n", c.name)));
    }
    out.push_str(&t.render());
    for n in below {
        out.push_str(&n);
    }
    out
}

fn summary(s: &ContainersSection) -> String {
    let n = s.containers.len();
    let count = |f: &dyn Fn(&Container) -> bool| s.containers.iter().filter(|c| f(c)).count();
    let mut parts = vec![format!(
        "{n} container{} ({} running)",
        if n == 1 { "" } else { "s" },
        count(&|c| c.state == "running")
    )];
    for (k, word) in [
        (count(&unhealthy), "UNHEALTHY"),
        (count(&looping), "RESTARTING"),
        (count(&|c| !c.pinned), "FLOATING"),
    ] {
        if k > 0 {
            parts.push(format!("{k} {word}"));
        }
    }
    let mut line = parts.join(", ");
    if !s.engine_version.is_empty() {
        line.push_str(&format!(
            " · Docker {} (API {})",
            s.engine_version, s.api_version
        ));
    }
    line.push('\n');
    line
}

fn unhealthy(c: &Container) -> bool {
    c.health.as_ref().is_some_and(|h| h.status == "unhealthy")
}

/// Restarting now, or restarted by Docker since it was last started by hand.
fn looping(c: &Container) -> bool {
    c.state == "restarting" || c.restart_count > 0
}

/// Notes for the lines under the table, one phrase each. A floating
/// reference flags its row but needs no note: the PINNED column says it,
/// and a host full of tags would otherwise bury the rarer problems.
fn notes(c: &Container) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(h) = c.health.as_ref().filter(|_| unhealthy(c)) {
        let mut w = format!("UNHEALTHY, {} failing probes in a row", h.failing_streak);
        if let Some(p) = &h.last_probe {
            let first = p.output.lines().next().unwrap_or_default();
            w.push_str(&format!(
                "; last probe exit {}: {}",
                p.exit_code,
                if first.is_empty() {
                    "(no output)".to_string()
                } else {
                    clip(first, NOTE_OUTPUT_CHARS)
                }
            ));
        }
        why.push(w);
    }
    if looping(c) {
        why.push(format!(
            "RESTARTING: {} under policy {}, last exit code {}{}",
            super::count(c.restart_count.max(0) as u64, "restart"),
            c.restart_policy,
            c.exit_code,
            if c.oom_killed { " (OOM killed)" } else { "" }
        ));
    }
    if !c.error.is_empty() {
        why.push(format!("ERROR: {}", c.error));
    }
    why
}

fn pinned(c: &Container) -> String {
    match (c.pinned, c.reference_kind.as_str()) {
        (true, "image_id") => "image id".into(),
        (true, kind) => kind.to_string(),
        (false, "untagged") => "FLOATING (no tag)".into(),
        (false, kind) => format!("FLOATING ({kind})"),
    }
}

fn state(c: &Container) -> String {
    let mut s = match c.state.as_str() {
        "restarting" | "dead" => c.state.to_uppercase(),
        "exited" => format!("exited ({})", c.exit_code),
        "" => "?".into(),
        other => other.to_string(),
    };
    if c.oom_killed {
        s.push_str(" OOM");
    }
    s
}

fn health(c: &Container) -> String {
    let Some(h) = &c.health else {
        return "-".into();
    };
    match h.status.as_str() {
        "unhealthy" => format!("UNHEALTHY ({} failing)", h.failing_streak),
        status if h.failing_streak > 0 => format!("{status} ({} failing)", h.failing_streak),
        "" => "-".into(),
        status => status.to_string(),
    }
}

fn restarts(c: &Container) -> String {
    if c.restart_policy == "no" || c.restart_policy.is_empty() {
        c.restart_count.to_string()
    } else {
        format!("{} ({})", c.restart_count, c.restart_policy)
    }
}

/// Like `docker ps`: `127.0.0.1:8080->80/tcp`; `*` for every address.
fn ports(ps: &[PublishedPort]) -> String {
    ps.iter()
        .map(|p| {
            let ip = match p.host_ip.as_str() {
                "" | "0.0.0.0" => "*".to_string(),
                "::" => "[::]".to_string(),
                ip if ip.contains(':') => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let port = if p.host_port == 0 {
                "?".to_string()
            } else {
                p.host_port.to_string()
            };
            format!("{ip}:{port}->{}", p.container_port)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{ContainerHealth, HealthProbe};

    fn base(name: &str, image: &str, kind: &str) -> Container {
        Container {
            name: name.into(),
            image: image.into(),
            reference_kind: kind.into(),
            pinned: matches!(kind, "digest" | "image_id"),
            state: "running".into(),
            restart_policy: "no".into(),
            ..Default::default()
        }
    }

    #[test]
    fn problems_stand_out_and_quiet_rows_do_not() {
        let mut web = base("web", "nginx@sha256:abcd", "digest");
        web.health = Some(ContainerHealth {
            status: "healthy".into(),
            ..Default::default()
        });
        web.ports = vec![
            PublishedPort {
                container_port: "80/tcp".into(),
                host_ip: "0.0.0.0".into(),
                host_port: 8080,
            },
            PublishedPort {
                container_port: "80/tcp".into(),
                host_ip: "::".into(),
                host_port: 8080,
            },
        ];
        let mut db = base("db", "sha256:1234", "image_id");
        db.health = Some(ContainerHealth {
            status: "unhealthy".into(),
            failing_streak: 3,
            last_probe: Some(HealthProbe {
                exit_code: 3,
                output: "connection refused\nmore".into(),
                ..Default::default()
            }),
        });
        let mut worker = base("worker", "app:1.2", "tag");
        worker.state = "restarting".into();
        worker.restart_policy = "always".into();
        worker.restart_count = 7;
        worker.exit_code = 1;
        let mut old = base("old", "busybox", "untagged");
        old.state = "exited".into();
        old.exit_code = 137;
        let s = ContainersSection {
            containers: vec![db, old, web, worker],
            engine_version: "20.10.24".into(),
            api_version: "1.41".into(),
        };
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "4 containers (2 running), 1 UNHEALTHY, 1 RESTARTING, 2 FLOATING · Docker 20.10.24 (API 1.41)"
        );
        assert!(lines[1].starts_with("   NAME"), "{}", lines[1]);
        let row = |n: &str| {
            *lines
                .iter()
                .find(|l| l.split_whitespace().any(|w| w == n))
                .unwrap()
        };
        assert!(row("db").starts_with("!"), "{text}");
        assert!(row("db").contains("UNHEALTHY (3 failing)"), "{text}");
        assert!(row("db").contains("image id"), "{text}");
        assert!(row("web").starts_with("   web"), "a quiet row: {text}");
        assert!(
            row("web").contains("*:8080->80/tcp, [::]:8080->80/tcp"),
            "{text}"
        );
        assert!(row("worker").starts_with("!"));
        assert!(row("worker").contains("RESTARTING"), "{text}");
        assert!(row("worker").contains("7 (always)"), "{text}");
        assert!(row("worker").contains("FLOATING (tag)"), "{text}");
        assert!(row("old").contains("exited (137)"), "{text}");
        assert!(row("old").contains("FLOATING (no tag)"), "{text}");
        assert!(text.contains(
            "! db: UNHEALTHY, 3 failing probes in a row; last probe exit 3: connection refused\n"
        ));
        assert!(
            text.contains(
                "! worker: RESTARTING: 7 restarts under policy always, last exit code 1\n"
            )
        );
        assert!(
            row("old").starts_with("!"),
            "floating flags the row: {text}"
        );
        assert!(!text.contains("! old:"), "but needs no note: {text}");
        assert!(!text.contains("! web:"), "{text}");
    }

    #[test]
    fn empty_section_says_so() {
        assert_eq!(
            render(&ContainersSection::default()),
            "0 containers (0 running)\n"
        );
    }
}
