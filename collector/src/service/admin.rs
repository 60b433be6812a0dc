use driftwatch_common::proto::admin_server::{Admin, AdminServer};
use driftwatch_common::proto::{
    ApproveBaselineRequest, BackupChunk, BackupRequest, Baseline, DiffRequest, DiffResponse,
    DriftRequest, DriftResponse, HistoryRequest, HistoryResponse, ListBaselinesRequest,
    ListBaselinesResponse, SetBaselineRequest, SetBaselineResponse,
};
use driftwatch_common::proto::{
    CreateTokenRequest, CreateTokenResponse, ForgetHostRequest, ForgetHostResponse, GetHostRequest,
    GetHostResponse, HostSummary, ListHostsRequest, ListHostsResponse, ListTokensRequest,
    ListTokensResponse, RevokeHostRequest, RevokeHostResponse, RevokeTokenRequest,
    RevokeTokenResponse, Token,
};
use driftwatch_common::proto::{
    FindKeysRequest, FindKeysResponse, GetSweepRequest, ListAuditRequest, ListAuditResponse,
    ListSweepsRequest, ListSweepsResponse, StartSweepRequest, SweepJob,
};
use driftwatch_common::proto::{NotifyTestRequest, NotifyTestResponse};
use driftwatch_common::section::SectionKind;
use driftwatch_common::severity::Severity;
use driftwatch_common::snapshot::retain_sections;
use driftwatch_common::time::{format_ms, now_ms};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span};

use super::State;
use crate::auth::{AdminCaller, AdminGate};
use crate::drift::{self, severity_rank};
use crate::error::ServiceError;
use crate::service::history;
use crate::tokens;

/// Longest token lifetime: a token baked into an image should be rotated.
const MAX_TOKEN_TTL_S: u64 = 366 * 86_400;

/// A token as shown to admins: state computed, hash withheld.
fn public(mut t: Token, now: i64) -> Token {
    t.state = tokens::state(&t, now).to_string();
    t.hash.clear();
    t
}

/// Constructed only by [`serve`], inside the gate.
pub struct AdminService {
    state: State,
}

/// The Admin service as the server mounts it: behind the gate, so no
/// handler runs for a caller without the method's role.
pub fn serve(state: State, max_message_bytes: usize) -> AdminGate<AdminServer<AdminService>> {
    let revoked = state.revoked.clone();
    let server = AdminServer::new(AdminService { state })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(driftwatch_common::client::admin_response_limit(
            max_message_bytes,
        ));
    AdminGate::new(server, revoked)
}

impl AdminService {
    async fn host_id(&self, wanted: &str) -> Result<String, ServiceError> {
        let hosts = self.state.blocking(|s| s.list_hosts()).await?;
        Ok(resolve_host(&hosts, wanted)?.host_id)
    }

    async fn latest(&self, id: &str) -> Result<driftwatch_common::proto::Snapshot, ServiceError> {
        let i = id.to_string();
        self.state
            .blocking(move |s| s.latest_snapshot(&i))
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("host {id} has no snapshot yet")))
    }

    /// A named baseline, or with "image" the one baked into the host's image.
    async fn baseline_for(&self, host_id: &str, name: &str) -> Result<Baseline, ServiceError> {
        let all = self.state.blocking(|s| s.baselines()).await?;
        let found = if name == "image" {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let image = hosts
                .iter()
                .find(|h| h.host_id == host_id)
                .map(|h| h.image_id.clone())
                .unwrap_or_default();
            all.into_iter()
                .find(|b| !image.is_empty() && b.image_id == image)
        } else {
            all.into_iter().find(|b| b.name == name)
        };
        found.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no baseline {name:?} for {host_id}: `driftwatch baseline list` shows them; `baseline set NAME --from-host HOST` makes one"
            ))
        })
    }
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
        let admin = AdminCaller::of(&req)?;
        async move {
            let mut hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let now = now_ms();
            for h in &mut hosts {
                h.connected = self.state.streams.is_connected(&h.host_id);
                h.state = drift::host_state(h, &self.state.evaluator.settings, now).to_string();
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
        let admin = AdminCaller::of(&req)?;
        let GetHostRequest { host, sections } = req.into_inner();
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let mut summary = resolve_host(&hosts, &host)?;
            summary.connected = self.state.streams.is_connected(&summary.host_id);
            summary.state =
                drift::host_state(&summary, &self.state.evaluator.settings, now_ms()).to_string();
            let id = summary.host_id.clone();
            let mut snapshot = self.state.blocking(move |s| s.latest_snapshot(&id)).await?;
            if let Some(snap) = snapshot.as_mut() {
                SectionKind::check_names(&sections)
                    .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
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
        let admin = AdminCaller::of(&req)?;
        let wanted = req.into_inner().host;
        let span = info_span!("rpc", method = "RevokeHost", %admin);
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let id = resolve_host(&hosts, &wanted)?.host_id;
            let (i, by) = (id.clone(), admin.name.clone());
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
            self.state.evaluator.data_changed();
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

    async fn forget_host(
        &self,
        req: Request<ForgetHostRequest>,
    ) -> Result<Response<ForgetHostResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let wanted = req.into_inner().host;
        let span = info_span!("rpc", method = "ForgetHost", %admin);
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let host = resolve_host(&hosts, &wanted)?;
            let id = host.host_id.clone();
            let state = drift::host_state(&host, &self.state.evaluator.settings, now_ms());
            if state != "gone" && state != "revoked" {
                return Err(ServiceError::FailedPrecondition(format!(
                    "host {id} ({}) is {state}: its agent still reports and would only come back; revoke it first (`driftwatch hosts revoke {id}`) or wait until it is gone (no report for 24h)",
                    host.hostname
                ))
                .into());
            }
            if self.state.streams.is_connected(&id) {
                return Err(ServiceError::FailedPrecondition(format!(
                    "host {id} has an agent stream open right now: revoke it first"
                ))
                .into());
            }
            let i = id.clone();
            let (host, removed) = self
                .state
                .blocking(move |s| s.forget_host(&i))
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("no host {id}")))?;
            self.state.durable().await?;
            self.state
                .keys
                .write()
                .expect("not poisoned")
                .remove_host(&id);
            self.state
                .raid
                .write()
                .expect("not poisoned")
                .remove_host(&id);
            self.state.evaluator.data_changed();
            info!(host = %id, records_removed = removed, state, "host forgotten");
            Ok(Response::new(ForgetHostResponse {
                host: Some(host),
                records_removed: removed,
            }))
        }
        .instrument(span)
        .await
    }

    async fn create_token(
        &self,
        req: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
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
        let (secret, record) =
            tokens::generate(&group, (ttl_s * 1000) as i64, uses, &admin.name, now);
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
        AdminCaller::of(&req)?;
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
        AdminCaller::of(&req)?;
        let resp = super::sweeps::find_keys(&self.state, req.into_inner().selector)?;
        Ok(Response::new(resp))
    }

    async fn start_sweep(
        &self,
        req: Request<StartSweepRequest>,
    ) -> Result<Response<SweepJob>, Status> {
        let admin = AdminCaller::of(&req)?;
        let span = info_span!("rpc", method = "StartSweep", %admin);
        let job = super::sweeps::start(&self.state, &admin.name, req.into_inner())
            .instrument(span)
            .await?;
        Ok(Response::new(job))
    }

    async fn list_sweeps(
        &self,
        req: Request<ListSweepsRequest>,
    ) -> Result<Response<ListSweepsResponse>, Status> {
        AdminCaller::of(&req)?;
        Ok(Response::new(super::sweeps::list(&self.state).await?))
    }

    async fn list_audit(
        &self,
        req: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        AdminCaller::of(&req)?;
        Ok(Response::new(
            super::audit::list(&self.state, req.into_inner()).await?,
        ))
    }

    async fn get_sweep(&self, req: Request<GetSweepRequest>) -> Result<Response<SweepJob>, Status> {
        AdminCaller::of(&req)?;
        let id = req.into_inner().id;
        Ok(Response::new(super::sweeps::get(&self.state, &id).await?))
    }

    async fn revoke_token(
        &self,
        req: Request<RevokeTokenRequest>,
    ) -> Result<Response<RevokeTokenResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
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

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let HistoryRequest {
            host,
            since_ms,
            sections,
            limit,
        } = req.into_inner();
        let span = info_span!("rpc", method = "History", %admin);
        async move {
            SectionKind::check_names(&sections)
                .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
            let id = self.host_id(&host).await?;
            let i = id.clone();
            let q = history::HistoryQuery {
                since_ms,
                sections,
                limit,
            };
            let entries = self
                .state
                .blocking(move |s| history::history(s, &i, &q))
                .await?;
            Ok(Response::new(HistoryResponse {
                host_id: id,
                entries,
            }))
        }
        .instrument(span)
        .await
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let DiffRequest {
            host,
            other_host,
            from,
            to,
            baseline,
        } = req.into_inner();
        let span = info_span!("rpc", method = "Diff", %admin);
        async move {
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let a_host = resolve_host(&hosts, &host)?;
            let id = a_host.host_id.clone();
            let name = |h: &HostSummary| format!("{} ({})", h.host_id, h.hostname);
            if !other_host.is_empty() || !baseline.is_empty() {
                let a = self.latest(&id).await?;
                let at = |s: &driftwatch_common::proto::Snapshot| {
                    format!("seq {} ({})", s.seq, format_ms(s.collected_at_ms))
                };
                if !other_host.is_empty() {
                    // `diff A B`: A is `---`, B is `+++`.
                    let b_host = resolve_host(&hosts, &other_host)?;
                    let b = self.latest(&b_host.host_id).await?;
                    return Ok(Response::new(DiffResponse {
                        from: format!("{} {}", name(&a_host), at(&a)),
                        to: format!("{} {}", name(&b_host), at(&b)),
                        sections: history::compare(&a.sections, &b.sections),
                    }));
                }
                // A baseline is what the host should have: `---`, the host `+++`.
                let b = self.baseline_for(&id, &baseline).await?;
                let base = b.snapshot.map(|s| s.sections).unwrap_or_default();
                return Ok(Response::new(DiffResponse {
                    from: format!("baseline {} ({}, set {})", b.name, b.source, format_ms(b.created_ms)),
                    to: format!("{} {}", name(&a_host), at(&a)),
                    sections: history::compare(&base, &a.sections),
                }));
            }
            let i = id.clone();
            let records = self.state.blocking(move |s| s.history(&i, 0)).await?;
            if records.is_empty() {
                return Err(
                    ServiceError::NotFound(format!("host {id} has no stored snapshot")).into(),
                );
            }
            let last_seq = a_host.last_seq;
            let to_i = if to.is_empty() {
                records.len() - 1
            } else {
                history::pick(&records, last_seq, &to)?
            };
            let from_i = if !from.is_empty() {
                history::pick(&records, last_seq, &from)?
            } else if to_i > 0 {
                to_i - 1
            } else {
                return Err(ServiceError::NotFound(format!(
                    "{} has only one stored snapshot at or before that point (seq {}): nothing to compare it with",
                    name(&a_host),
                    records[to_i].seq
                ))
                .into());
            };
            let describe = |i: usize, asked: &str| {
                let r = &records[i];
                let mut d = format!("{} seq {} ({})", name(&a_host), r.seq, format_ms(r.collected_at_ms));
                // The record in force at an asked point may be older: say so.
                if !asked.is_empty() && asked != r.seq.to_string() {
                    d.push_str(&format!(", in force at {asked}"));
                }
                d
            };
            let (f, t) = (describe(from_i, &from), describe(to_i, &to));
            let sections = self
                .state
                .blocking(move |s| history::diff_records(s, &records, from_i, to_i))
                .await?;
            Ok(Response::new(DiffResponse {
                from: f,
                to: t,
                sections,
            }))
        }
        .instrument(span)
        .await
    }

    async fn drift(&self, req: Request<DriftRequest>) -> Result<Response<DriftResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let DriftRequest {
            host,
            group,
            min_severity,
            all,
        } = req.into_inner();
        let span = info_span!("rpc", method = "Drift", %admin);
        async move {
            let min = if min_severity.is_empty() {
                0
            } else {
                min_severity
                    .parse::<Severity>()
                    .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?
                    as usize
            };
            let host_id = if host.is_empty() {
                None
            } else {
                Some(self.host_id(&host).await?)
            };
            let now = now_ms();
            // Fresh answers: evaluate unless that happened in the last second.
            let policy_error = self
                .state
                .evaluator
                .run(self.state.store.clone(), now, 1000)
                .await
                .map_err(ServiceError::from)?;
            self.state.durable().await?;
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let in_group = |hid: &str| {
                group.is_empty()
                    || hosts.iter().any(|h| {
                        h.host_id == hid
                            && h.labels.iter().any(|l| {
                                l.key == self.state.evaluator.settings.group_label
                                    && l.value == group
                            })
                    })
            };
            let mut findings: Vec<_> = self
                .state
                .blocking(|s| s.findings())
                .await?
                .into_iter()
                .filter(|f| all || f.resolved_ms == 0)
                .filter(|f| host_id.as_ref().is_none_or(|h| &f.host_id == h))
                .filter(|f| in_group(&f.host_id))
                .filter(|f| severity_rank(&f.severity).unwrap_or(0) >= min)
                .collect();
            findings.sort_by(|a, b| {
                (a.resolved_ms != 0)
                    .cmp(&(b.resolved_ms != 0))
                    .then(severity_rank(&b.severity).cmp(&severity_rank(&a.severity)))
                    .then(a.hostname.cmp(&b.hostname))
                    .then(a.section.cmp(&b.section))
                    .then(a.item.cmp(&b.item))
            });
            Ok(Response::new(DriftResponse {
                findings,
                evaluated_ms: now,
                policy_error: policy_error.unwrap_or_default(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn set_baseline(
        &self,
        req: Request<SetBaselineRequest>,
    ) -> Result<Response<SetBaselineResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let SetBaselineRequest { name, from_host } = req.into_inner();
        driftwatch_common::identity::validate_name(&name)
            .map_err(|e| ServiceError::InvalidArgument(format!("baseline name: {e}")))?;
        let id = self.host_id(&from_host).await?;
        let snap = self.latest(&id).await?;
        let b = Baseline {
            name: name.clone(),
            image_id: String::new(),
            created_ms: now_ms(),
            source: format!("host:{id}"),
            snapshot: Some(Box::new(snap)),
        };
        let stored = b.clone();
        self.state
            .blocking(move |s| s.put_baseline(&stored, true))
            .await?;
        self.state.evaluator.data_changed();
        self.state.durable().await?;
        info!(%name, host = %id, %admin, "baseline set");
        Ok(Response::new(SetBaselineResponse {
            baseline: Some(Baseline {
                snapshot: None,
                ..b
            }),
        }))
    }

    async fn list_baselines(
        &self,
        req: Request<ListBaselinesRequest>,
    ) -> Result<Response<ListBaselinesResponse>, Status> {
        AdminCaller::of(&req)?;
        let mut baselines: Vec<Baseline> = self
            .state
            .blocking(|s| s.baselines())
            .await?
            .into_iter()
            .map(|b| Baseline {
                snapshot: None,
                ..b
            })
            .collect();
        baselines.sort_by(|a, b| a.name.cmp(&b.name));
        let candidates = self.state.blocking(|s| s.baseline_candidates()).await?;
        Ok(Response::new(ListBaselinesResponse {
            baselines,
            candidates,
        }))
    }

    type BackupStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<BackupChunk, Status>> + Send + 'static>,
    >;

    async fn backup(
        &self,
        req: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let admin = AdminCaller::of(&req)?;
        // Copied inside the collector while writes wait (a local file, so
        // a slow client never holds them off), then streamed.
        let (path, counts) = self.state.blocking(|s| s.backup_to_file()).await?;
        info!(%admin, ?counts, "backup taken");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let sent = async {
                let mut f = tokio::fs::File::open(&path).await?;
                loop {
                    let mut buf = vec![0u8; 1 << 20];
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    buf.truncate(n);
                    if tx.send(Ok(BackupChunk { data: buf })).await.is_err() {
                        return Ok(());
                    }
                }
            }
            .await;
            if let Err(e) = sent {
                let _ = tx
                    .send(Err(Status::internal(format!(
                        "reading backup {}: {e}",
                        path.display()
                    ))))
                    .await;
            }
            let _ = tokio::fs::remove_file(&path).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn approve_baseline(
        &self,
        req: Request<ApproveBaselineRequest>,
    ) -> Result<Response<SetBaselineResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let ApproveBaselineRequest {
            image_id,
            from_host,
        } = req.into_inner();
        let host = self.host_id(&from_host).await?;
        let (img, h, by) = (image_id.clone(), host.clone(), admin.name.clone());
        let approved = self
            .state
            .blocking(move |s| s.approve_image_baseline(&img, &h, &by))
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "{host} uploaded no baseline for image {image_id:?}: `driftwatch baseline list` shows the candidates"
                ))
            })?;
        self.state.evaluator.data_changed();
        self.state.durable().await?;
        info!(image = %image_id, %host, %admin, "image baseline approved");
        Ok(Response::new(SetBaselineResponse {
            baseline: Some(Baseline {
                snapshot: None,
                ..approved
            }),
        }))
    }

    async fn notify_test(
        &self,
        req: Request<NotifyTestRequest>,
    ) -> Result<Response<NotifyTestResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let name = req.into_inner().name;
        let results = super::notify::test(&self.state, &admin.name, &name).await?;
        Ok(Response::new(NotifyTestResponse { results }))
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
