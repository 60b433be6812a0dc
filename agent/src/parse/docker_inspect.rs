//! `docker inspect` (Engine API ContainerJSON / ImageInspect) to the
//! `containers` section's proto. Pure: the collector fetches the same types
//! through bollard, and tests feed the JSON samples through [`containers`].

use std::collections::BTreeMap;

use bollard::models::{
    ContainerInspectResponse, Health, ImageInspect, MountPoint, PortBinding, PortMap,
};
use driftwatch_common::proto::{
    Container, ContainerHealth, ContainerLabel, ContainerMount, HealthProbe, PublishedPort,
};
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Health-probe output kept per container: enough to read why a probe
/// fails, bounded because some probes dump whole pages.
pub const MAX_PROBE_OUTPUT_BYTES: usize = 512;

pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

/// Docker's zero time, written for "never started/finished".
const ZERO_TIME_PREFIX: &str = "0001-01-01T00:00:00";

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {reason}")]
pub struct JsonError {
    /// 1-based; 0 when the input ended early.
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        // serde_json appends " at line L column C" to Display; the numbers
        // live in their own fields here.
        let reason = e.to_string();
        let reason = match reason.rfind(" at line ") {
            Some(i) => reason[..i].to_string(),
            None => reason,
        };
        JsonError {
            line: e.line(),
            column: e.column(),
            reason,
        }
    }
}

/// One object, or the array `docker inspect` prints for several ids.
fn one_or_many<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, JsonError> {
    // Look at the first significant byte rather than trying both shapes, so
    // an error inside an object keeps its own position and reason.
    match text.trim_start().as_bytes().first() {
        Some(b'[') => Ok(serde_json::from_str::<Vec<T>>(text)?),
        Some(b'{') => Ok(vec![serde_json::from_str::<T>(text)?]),
        _ => {
            let line = text.lines().take_while(|l| l.trim().is_empty()).count() + 1;
            Err(JsonError {
                line,
                column: 1,
                reason: "expected a JSON object or an array of objects".into(),
            })
        }
    }
}

/// Parses `docker container inspect` output (an object or an array).
pub fn parse_containers(text: &str) -> Result<Vec<ContainerInspectResponse>, JsonError> {
    one_or_many(text)
}

/// Parses `docker image inspect` output (an object or an array).
pub fn parse_images(text: &str) -> Result<Vec<ImageInspect>, JsonError> {
    one_or_many(text)
}

/// Maps one inspected container, and its inspected image when known, to the
/// report entry.
pub fn container(c: &ContainerInspectResponse, image: Option<&ImageInspect>) -> Container {
    let config = c.config.as_ref();
    let host = c.host_config.as_ref();
    let state = c.state.as_ref();
    let reference = config.and_then(|c| c.image.clone()).unwrap_or_default();
    let image_id = c.image.clone().unwrap_or_default();
    let kind = reference_kind(&reference, &image_id);
    let labels: BTreeMap<&String, &String> = config
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let label = |k: &str| {
        labels
            .iter()
            .find(|(key, _)| key.as_str() == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let mut repo_digests = image
        .and_then(|i| i.repo_digests.clone())
        .unwrap_or_default();
    repo_digests.sort();
    repo_digests.dedup();
    let restart = host.and_then(|h| h.restart_policy.as_ref());
    let restart_policy = restart
        .and_then(|r| r.name)
        .map(|n| n.to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "no".into());

    Container {
        id: c.id.clone().unwrap_or_default(),
        name: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        pinned: matches!(kind, "digest" | "image_id"),
        reference_kind: kind.to_string(),
        image: reference,
        image_id,
        image_repo_digests: repo_digests,
        created: c.created.clone().unwrap_or_default(),
        started_at: real_time(state.and_then(|s| s.started_at.as_deref())),
        finished_at: real_time(state.and_then(|s| s.finished_at.as_deref())),
        state: match state {
            // Docker's own status word says "restarting" in this case; a
            // record that disagrees (Status exited, Restarting true) is
            // still a container in a restart loop.
            Some(s) if s.restarting == Some(true) => "restarting".into(),
            Some(s) => s.status.map(|s| s.to_string()).unwrap_or_default(),
            None => String::new(),
        },
        exit_code: state.and_then(|s| s.exit_code).unwrap_or(0),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        restart_max_retries: restart.and_then(|r| r.maximum_retry_count).unwrap_or(0),
        restart_policy,
        restart_count: c.restart_count.unwrap_or(0),
        health: state.and_then(|s| s.health.as_ref()).and_then(health),
        ports: ports(
            c.network_settings.as_ref().and_then(|n| n.ports.as_ref()),
            host.and_then(|h| h.port_bindings.as_ref()),
        ),
        mounts: mounts(c.mounts.as_deref().unwrap_or_default()),
        compose_project: label(COMPOSE_PROJECT_LABEL),
        compose_service: label(COMPOSE_SERVICE_LABEL),
        labels: labels
            .into_iter()
            .map(|(k, v)| ContainerLabel {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        error: String::new(),
    }
}

/// How a configured reference names its image: `digest` and `image_id` pin
/// one image; `tag`, `latest` and `untagged` float.
pub fn reference_kind(reference: &str, image_id: &str) -> &'static str {
    let r = reference.trim();
    if let Some((_, digest)) = r.split_once('@')
        && digest.contains(':')
    {
        return "digest";
    }
    let id_hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    let bare = r.strip_prefix("sha256:");
    let hex = bare.unwrap_or(r);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    // `docker run 3f2a…` resolves an id prefix; a reference that is a
    // prefix of the container's own image id is that id, not a repository.
    if is_hex && (bare.is_some() || hex.len() == 64 || (id_hex.starts_with(hex) && hex.len() >= 4))
    {
        return "image_id";
    }
    // A tag is after the last ':' that follows the last '/', so that a
    // registry port ("host:5000/app") is not taken for one.
    let last_part = r.rsplit('/').next().unwrap_or(r);
    match last_part.rsplit_once(':') {
        Some((_, "latest")) => "latest",
        Some((_, tag)) if !tag.is_empty() => "tag",
        _ => "untagged",
    }
}

fn real_time(t: Option<&str>) -> String {
    match t {
        Some(t) if !t.starts_with(ZERO_TIME_PREFIX) => t.to_string(),
        _ => String::new(),
    }
}

fn health(h: &Health) -> Option<ContainerHealth> {
    let status = h.status.map(|s| s.to_string()).unwrap_or_default();
    let last_probe = h
        .log
        .as_deref()
        .unwrap_or_default()
        // Docker appends and keeps the last five: the newest is last.
        .last()
        .map(|p| {
            let (output, output_truncated) =
                bounded_output(p.output.as_deref().unwrap_or_default());
            HealthProbe {
                start: p.start.clone().unwrap_or_default(),
                exit_code: p.exit_code.unwrap_or(0),
                output,
                output_truncated,
            }
        });
    if status.is_empty() && last_probe.is_none() {
        return None;
    }
    Some(ContainerHealth {
        status,
        failing_streak: h.failing_streak.unwrap_or(0),
        last_probe,
    })
}

/// Trims whitespace and cuts to [`MAX_PROBE_OUTPUT_BYTES`] on a character
/// boundary.
pub fn bounded_output(s: &str) -> (String, bool) {
    let s = s.trim();
    if s.len() <= MAX_PROBE_OUTPUT_BYTES {
        return (s.to_string(), false);
    }
    let mut end = MAX_PROBE_OUTPUT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].trim_end().to_string(), true)
}

fn bindings(map: Option<&PortMap>) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for (container_port, binds) in map.into_iter().flatten() {
        for PortBinding { host_ip, host_port } in binds.iter().flatten() {
            out.push(PublishedPort {
                container_port: container_port.clone(),
                host_ip: host_ip.clone().unwrap_or_default(),
                host_port: host_port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            });
        }
    }
    out
}

fn ports(running: Option<&PortMap>, configured: Option<&PortMap>) -> Vec<PublishedPort> {
    let mut out = bindings(running);
    if out.is_empty() {
        out = bindings(configured);
    }
    out.sort_by(|a, b| {
        (a.host_port, &a.container_port, &a.host_ip).cmp(&(
            b.host_port,
            &b.container_port,
            &b.host_ip,
        ))
    });
    out.dedup();
    out
}

fn mounts(m: &[MountPoint]) -> Vec<ContainerMount> {
    let mut out: Vec<ContainerMount> = m
        .iter()
        .map(|m| ContainerMount {
            r#type: m.typ.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            source: m.source.clone().unwrap_or_default(),
            destination: m.destination.clone().unwrap_or_default(),
            read_write: m.rw.unwrap_or(false),
        })
        .collect();
    out.sort_by(|a, b| (&a.destination, &a.source).cmp(&(&b.destination, &b.source)));
    out
}

#[cfg(test)]
#[path = "docker_inspect_tests.rs"]
mod tests;
