//! The `containers` section: what the Docker Engine runs, through its API
//! (bollard over the unix socket). The mapping to the proto is the pure
//! [`crate::parse::docker_inspect`]; this file is the IO edge.
//!
//! Which socket: `DOCKER_HOST` when set (read once, when the collector is
//! built). Only `unix://PATH` is spoken; any other scheme (`tcp://`,
//! `ssh://`, `npipe://`, `fd://`) makes the section an error saying so,
//! because a host configured that way does have Docker and the operator must
//! learn why it is not reported. The path is taken as the agent sees it,
//! not under `--root`. Without `DOCKER_HOST`: with `--root`,
//! `<root>/var/run/docker.sock` when it exists (resolved like any host path,
//! so `/var/run -> /run` stays inside the root), else the agent's own
//! `/var/run/docker.sock` (an agent container that has the socket mounted).
//!
//! No socket, or a socket nobody listens on, is `unsupported`. A daemon that
//! accepts and never answers is an error after the per-call timeout, and the
//! whole section is bounded too, so a stuck Docker never stalls the agent.
//!
//! Async in a sync trait: collectors run on a blocking thread of the agent's
//! tokio runtime. When a multi-thread runtime is current, its handle drives
//! the calls (`block_in_place` makes that safe even from a worker thread).
//! Otherwise (no runtime, as in tests that call the collector directly, or
//! a current-thread runtime, whose `Handle::block_on` cannot drive timers
//! from another thread and would never time out) the collector keeps a
//! small current-thread runtime of its own across ticks. The Docker client
//! is kept across ticks too; its connections are not pooled
//! (bollard sets no idle connections), so it does not depend on which
//! runtime made it.

use driftwatch_common::section::SectionKind;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::models::ImageInspect;
use bollard::query_parameters::ListContainersOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use driftwatch_common::proto::{Container, ContainersSection, section::Body};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tracing::debug;

use super::{Collector, Context, SectionError};
use crate::hostfs::HostFs;
use crate::parse::docker_inspect;

/// Each Engine API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole section, however many containers there are.
pub const SECTION_TIMEOUT: Duration = Duration::from_secs(30);

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

pub struct ContainersCollector {
    /// `DOCKER_HOST` as it was when the agent started.
    docker_host: Option<String>,
    call_timeout: Duration,
    section_timeout: Duration,
    client: Option<Client>,
    runtime: Option<Runtime>,
}

/// A connected, version-negotiated client for one socket path.
struct Client {
    socket: PathBuf,
    docker: Docker,
}

impl Default for ContainersCollector {
    fn default() -> Self {
        Self::new(None)
    }
}

impl ContainersCollector {
    /// `docker_host` is the value of `DOCKER_HOST`, if any.
    pub fn new(docker_host: Option<String>) -> Self {
        ContainersCollector {
            docker_host: docker_host.filter(|h| !h.trim().is_empty()),
            call_timeout: CALL_TIMEOUT,
            section_timeout: SECTION_TIMEOUT,
            client: None,
            runtime: None,
        }
    }

    /// Reads `DOCKER_HOST` from the agent's environment.
    pub fn from_env() -> Self {
        Self::new(std::env::var("DOCKER_HOST").ok())
    }

    /// Shorter bounds, for tests of a daemon that hangs.
    pub fn with_timeouts(mut self, call: Duration, section: Duration) -> Self {
        self.call_timeout = call;
        self.section_timeout = section;
        self
    }

    /// Runs a future to completion from this synchronous collector.
    fn block_on<F: Future>(&mut self, fut: F) -> Result<F::Output, SectionError> {
        if let Ok(handle) = Handle::try_current()
            && handle.runtime_flavor() == RuntimeFlavor::MultiThread
        {
            return Ok(tokio::task::block_in_place(|| handle.block_on(fut)));
        }
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SectionError::Failed(format!("cannot start a tokio runtime: {e}")))?;
            self.runtime = Some(rt);
        }
        Ok(self.runtime.as_ref().expect("set above").block_on(fut))
    }
}

impl Collector for ContainersCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Containers
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let socket = docker_socket(self.docker_host.as_deref(), &ctx.fs)?;
        if !socket.exists() {
            self.client = None;
            return Err(SectionError::Unsupported(format!(
                "no Docker socket at {}",
                socket.display()
            )));
        }
        if self.client.as_ref().is_some_and(|c| c.socket != socket) {
            self.client = None;
        }
        let (call, section) = (self.call_timeout, self.section_timeout);
        let mut client = self.client.take();
        let result = self.block_on(async {
            let work = async {
                let docker = match &client {
                    Some(c) => c.docker.clone(),
                    None => {
                        let d = connect(&socket, call).await.map_err(SectionError::from)?;
                        client = Some(Client {
                            socket: socket.clone(),
                            docker: d.clone(),
                        });
                        d
                    }
                };
                inventory(&docker, &socket, call)
                    .await
                    .map_err(SectionError::from)
            };
            match tokio::time::timeout(section, work).await {
                Ok(r) => r,
                Err(_) => Err(SectionError::Failed(format!(
                    "Docker at {} did not finish answering within {section:?}",
                    socket.display()
                ))),
            }
        })?;
        // A daemon that failed us may be a different one next tick
        // (restarted, downgraded): negotiate again then.
        if result.is_ok() {
            self.client = client;
        }
        result.map(Body::Containers)
    }
}

/// Where the Docker socket is, per the module documentation.
pub fn docker_socket(docker_host: Option<&str>, fs: &HostFs) -> Result<PathBuf, SectionError> {
    if let Some(host) = docker_host {
        return match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            _ => Err(SectionError::Failed(format!(
                "DOCKER_HOST={host} is not supported: the agent speaks to Docker only over \
                 a local unix socket (unix:///path); unset DOCKER_HOST or point it at the socket"
            ))),
        };
    }
    if !fs.is_real_root()
        && let Ok(p) = fs.resolve(DEFAULT_SOCKET)
        && p.exists()
    {
        return Ok(p);
    }
    Ok(PathBuf::from(DEFAULT_SOCKET))
}

/// Why one Engine API call failed.
#[derive(Debug)]
enum CallError {
    /// No socket, or nothing listening on it.
    NoDaemon(String),
    /// The daemon did not answer in time: it is stuck, stop asking.
    Timeout(String),
    /// The daemon answered with an error (`status` when it was HTTP).
    Api {
        status: Option<u16>,
        message: String,
    },
}

impl From<CallError> for SectionError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NoDaemon(m) => SectionError::Unsupported(m),
            CallError::Timeout(m) | CallError::Api { message: m, .. } => SectionError::Failed(m),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoDaemon(m) | CallError::Timeout(m) | CallError::Api { message: m, .. } => {
                f.write_str(m)
            }
        }
    }
}

/// Connects and settles the API version. bollard defaults to API 1.53,
/// which a 20.10 engine (API 1.41) refuses on a versioned path. bollard
/// 0.21.1 in fact sends unversioned paths (`GET /version`: its URL join
/// drops the `/v1.53` prefix), which every engine answers at its own API
/// version; negotiating anyway keeps this correct if bollard starts sending
/// the prefix, and costs one call per connection, not per tick.
async fn connect(socket: &Path, call: Duration) -> Result<Docker, CallError> {
    let path = socket.to_string_lossy();
    // bollard's own timeout counts whole seconds; ours is the real bound
    // and fires first.
    let secs = call.as_secs() + 2;
    let docker = Docker::connect_with_unix(&path, secs, API_DEFAULT_VERSION)
        .map_err(|e| classify(socket, "connect", e))?;
    timed(
        socket,
        "version negotiation",
        call,
        docker.negotiate_version(),
    )
    .await
}

/// One bounded Engine API call.
async fn timed<T>(
    socket: &Path,
    what: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, DockerError>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(socket, what, e)),
        Err(_) => Err(CallError::Timeout(format!(
            "Docker at {} did not answer {what} within {limit:?}",
            socket.display()
        ))),
    }
}

/// Nothing listening (a stale socket file, a stopped daemon) means no
/// Docker here; anything else is a failure to report.
fn classify(socket: &Path, what: &str, e: DockerError) -> CallError {
    match e {
        DockerError::SocketNotFoundError(_) => {
            return CallError::NoDaemon(format!("no Docker socket at {}", socket.display()));
        }
        DockerError::RequestTimeoutError => {
            return CallError::Timeout(format!(
                "Docker at {} did not answer {what} in time",
                socket.display()
            ));
        }
        DockerError::DockerResponseServerError {
            status_code,
            ref message,
        } => {
            return CallError::Api {
                status: Some(status_code),
                message: format!(
                    "Docker at {}: {what} failed: {status_code} {message}",
                    socket.display()
                ),
            };
        }
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
        {
            return CallError::NoDaemon(format!(
                "no Docker daemon listening on {} ({io})",
                socket.display()
            ));
        }
        source = err.source();
    }
    CallError::Api {
        status: None,
        message: format!(
            "Docker at {}: {what} failed: {}",
            socket.display(),
            error_chain(&e)
        ),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn inventory(
    docker: &Docker,
    socket: &Path,
    call: Duration,
) -> Result<ContainersSection, CallError> {
    let version = timed(socket, "version", call, docker.version()).await?;
    let list = timed(
        socket,
        "container list",
        call,
        docker.list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        })),
    )
    .await?;
    let mut images: BTreeMap<String, Result<ImageInspect, String>> = BTreeMap::new();
    let mut containers = Vec::with_capacity(list.len());
    for summary in list {
        let Some(id) = summary.id.clone() else {
            continue;
        };
        let inspect = docker.inspect_container(&id, None);
        let inspected = match timed(socket, "container inspect", call, inspect).await {
            Ok(c) => c,
            Err(CallError::Api {
                status: Some(404), ..
            }) => {
                debug!(container = %id, "container removed while listing");
                continue;
            }
            // One container Docker cannot describe is that entry's error;
            // a stuck or vanished daemon ends the section.
            Err(CallError::Api { message, .. }) => {
                containers.push(Container {
                    id: id.clone(),
                    name: summary
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    image: summary.image.unwrap_or_default(),
                    error: message,
                    ..Default::default()
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let image_id = inspected.image.clone().unwrap_or_default();
        if !image_id.is_empty() && !images.contains_key(&image_id) {
            // One inspect per distinct image: many containers share one.
            let got = match timed(
                socket,
                "image inspect",
                call,
                docker.inspect_image(&image_id),
            )
            .await
            {
                Ok(i) => Ok(i),
                Err(CallError::Api { message, .. }) => Err(message),
                Err(e) => return Err(e),
            };
            images.insert(image_id.clone(), got);
        }
        let image = images.get(&image_id);
        let mut c = docker_inspect::container(&inspected, image.and_then(|i| i.as_ref().ok()));
        if let Some(Err(why)) = image {
            c.error = why.clone();
        }
        containers.push(c);
    }
    containers.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(ContainersSection {
        containers,
        engine_version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
    })
}

#[cfg(test)]
#[path = "containers_tests.rs"]
mod tests;
