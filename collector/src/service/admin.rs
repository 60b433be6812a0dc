use driftwatch_common::proto::admin_server::Admin;
use driftwatch_common::proto::{
    CreateTokenRequest, CreateTokenResponse, GetHostRequest, GetHostResponse, HostSummary,
    ListHostsRequest, ListHostsResponse, ListTokensRequest, ListTokensResponse, RevokeHostRequest,
    RevokeHostResponse, RevokeTokenRequest, RevokeTokenResponse, Token,
};
use driftwatch_common::proto::{
    FindKeysRequest, FindKeysResponse, GetSweepRequest, ListSweepsRequest, ListSweepsResponse,
    StartSweepRequest, SweepJob,
};
use driftwatch_common::snapshot::retain_sections;
use driftwatch_common::time::now_ms;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span};

use super::State;
use crate::auth;
use crate::error::ServiceError;
use crate::tokens;

/// Longest token lifetime: a token baked into an image should be rotated.
const MAX_TOKEN_TTL_S: u64 = 366 * 86_400;

/// A token as shown to admins: state computed, hash withheld.
fn public(mut t: Token, now: i64) -> Token {
    t.state = tokens::state(&t, now).to_string();
    t.hash.clear();
    t
}

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
            for h in &mut hosts {
                h.connected = self.state.streams.is_connected(&h.host_id);
            }
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
            let mut summary = resolve_host(&hosts, &host)?;
            summary.connected = self.state.streams.is_connected(&summary.host_id);
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

    async fn revoke_host(
        &self,
        req: Request<RevokeHostRequest>,
    ) -> Result<Response<RevokeHostResponse>, Status> {
        let admin = auth::require_admin(&req)?;
        let wanted = req.into_inner().host;
        let span = info_span!("rpc", method = "RevokeHost", %admin);
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let id = resolve_host(&hosts, &wanted)?.host_id;
            let (i, by) = (id.clone(), admin.clone());
            let host = self
                .state
                .blocking(move |s| s.revoke_host(&i, &by, now_ms()))
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("no host {id}")))?;
            self.state.durable().await?;
            // Memory after disk: a crash in between leaves it revoked on restart.
            self.state
                .revoked
                .write()
                .expect("not poisoned")
                .insert(id.clone());
            let closed = self.state.streams.close(
                &id,
                Status::permission_denied(format!("host {id} was revoked by {admin}")),
            );
            info!(host = %id, streams_closed = closed, "host revoked");
            Ok(Response::new(RevokeHostResponse {
                host: Some(host),
                streams_closed: closed,
            }))
        }
        .instrument(span)
        .await
    }

    async fn create_token(
        &self,
        req: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let admin = auth::require_admin(&req)?;
        let CreateTokenRequest { group, ttl_s, uses } = req.into_inner();
        driftwatch_common::config::parse_label(&format!("group={group}"))
            .map_err(ServiceError::InvalidArgument)?;
        if group.is_empty() {
            return Err(ServiceError::InvalidArgument("a token needs a --group".into()).into());
        }
        if ttl_s == 0 || ttl_s > MAX_TOKEN_TTL_S {
            return Err(ServiceError::InvalidArgument(
                "--ttl must be between 1s and 366 days".into(),
            )
            .into());
        }
        let now = now_ms();
        let (secret, record) = tokens::generate(&group, (ttl_s * 1000) as i64, uses, &admin, now);
        let r = record.clone();
        self.state.blocking(move |s| s.create_token(&r)).await?;
        self.state.durable().await?;
        info!(token = %record.id, %group, ttl_s, uses, %admin, "enrollment token created");
        Ok(Response::new(CreateTokenResponse {
            token: secret,
            info: Some(public(record, now)),
        }))
    }

    async fn list_tokens(
        &self,
        req: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        auth::require_admin(&req)?;
        let now = now_ms();
        let mut tokens: Vec<Token> = self
            .state
            .blocking(|s| s.list_tokens())
            .await?
            .into_iter()
            .map(|t| public(t, now))
            .collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_ms));
        Ok(Response::new(ListTokensResponse { tokens }))
    }

    async fn find_keys(
        &self,
        req: Request<FindKeysRequest>,
    ) -> Result<Response<FindKeysResponse>, Status> {
        auth::require_admin(&req)?;
        let resp = super::sweeps::find_keys(&self.state, req.into_inner().selector)?;
        Ok(Response::new(resp))
    }

    async fn start_sweep(
        &self,
        req: Request<StartSweepRequest>,
    ) -> Result<Response<SweepJob>, Status> {
        let admin = auth::require_admin(&req)?;
        let span = info_span!("rpc", method = "StartSweep", %admin);
        let job = super::sweeps::start(&self.state, &admin, req.into_inner())
            .instrument(span)
            .await?;
        Ok(Response::new(job))
    }

    async fn list_sweeps(
        &self,
        req: Request<ListSweepsRequest>,
    ) -> Result<Response<ListSweepsResponse>, Status> {
        auth::require_admin(&req)?;
        Ok(Response::new(super::sweeps::list(&self.state).await?))
    }

    async fn get_sweep(&self, req: Request<GetSweepRequest>) -> Result<Response<SweepJob>, Status> {
        auth::require_admin(&req)?;
        let id = req.into_inner().id;
        Ok(Response::new(super::sweeps::get(&self.state, &id).await?))
    }

    async fn revoke_token(
        &self,
        req: Request<RevokeTokenRequest>,
    ) -> Result<Response<RevokeTokenResponse>, Status> {
        let admin = auth::require_admin(&req)?;
        let id = req.into_inner().id;
        let i = id.clone();
        let t = self
            .state
            .blocking(move |s| s.revoke_token(&i, now_ms()))
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "no token with id {id:?}: `driftwatch tokens list` shows them"
                ))
            })?;
        self.state.durable().await?;
        info!(token = %id, %admin, "enrollment token revoked");
        Ok(Response::new(RevokeTokenResponse {
            token: Some(public(t, now_ms())),
        }))
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
