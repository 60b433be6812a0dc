use driftwatch_common::proto::admin_server::Admin;
use driftwatch_common::proto::{
    GetHostRequest, GetHostResponse, HostSummary, ListHostsRequest, ListHostsResponse,
};
use driftwatch_common::snapshot::retain_sections;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use super::State;
use crate::auth;
use crate::error::ServiceError;

pub struct AdminService {
    pub state: State,
}

/// Finds a host by id, or by hostname when exactly one host has it.
pub fn resolve_host(hosts: &[HostSummary], wanted: &str) -> Result<HostSummary, ServiceError> {
    if let Some(h) = hosts.iter().find(|h| h.host_id == wanted) {
        return Ok(h.clone());
    }
    let by_name: Vec<&HostSummary> = hosts.iter().filter(|h| h.hostname == wanted).collect();
    match by_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ServiceError::NotFound(format!(
            "no host with id or hostname {wanted:?}: `driftwatch hosts` lists them"
        ))),
        many => Err(ServiceError::InvalidArgument(format!(
            "hostname {wanted:?} names {} hosts ({}): use a host id",
            many.len(),
            many.iter()
                .map(|h| h.host_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_hosts(
        &self,
        req: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        let admin = auth::require_admin(&req)?;
        async move {
            let mut hosts = self.state.blocking(|s| s.list_hosts()).await?;
            hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.host_id.cmp(&b.host_id)));
            Ok(Response::new(ListHostsResponse { hosts }))
        }
        .instrument(info_span!("rpc", method = "ListHosts", %admin))
        .await
    }

    async fn get_host(
        &self,
        req: Request<GetHostRequest>,
    ) -> Result<Response<GetHostResponse>, Status> {
        let admin = auth::require_admin(&req)?;
        let GetHostRequest { host, sections } = req.into_inner();
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let summary = resolve_host(&hosts, &host)?;
            let id = summary.host_id.clone();
            let mut snapshot = self.state.blocking(move |s| s.latest_snapshot(&id)).await?;
            if let Some(snap) = snapshot.as_mut() {
                if let Some(bad) = sections
                    .iter()
                    .find(|n| !driftwatch_common::proto::SECTION_NAMES.contains(&n.as_str()))
                {
                    return Err(ServiceError::InvalidArgument(format!(
                        "unknown section {bad:?}: known sections are {}",
                        driftwatch_common::proto::SECTION_NAMES.join(", ")
                    ))
                    .into());
                }
                retain_sections(snap, &sections);
            }
            Ok(Response::new(GetHostResponse {
                host: Some(summary),
                snapshot,
            }))
        }
        .instrument(info_span!("rpc", method = "GetHost", %admin))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(id: &str, name: &str) -> HostSummary {
        HostSummary {
            host_id: id.into(),
            hostname: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_by_id_then_unique_hostname() {
        let hosts = vec![h("a1", "web"), h("b2", "db"), h("c3", "db")];
        assert_eq!(resolve_host(&hosts, "a1").unwrap().host_id, "a1");
        assert_eq!(resolve_host(&hosts, "web").unwrap().host_id, "a1");
        let e = resolve_host(&hosts, "db").unwrap_err().to_string();
        assert!(e.contains("b2") && e.contains("c3"), "{e}");
        assert!(
            resolve_host(&hosts, "nope")
                .unwrap_err()
                .to_string()
                .contains("driftwatch hosts")
        );
    }
}
