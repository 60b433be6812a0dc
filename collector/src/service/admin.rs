use driftwatch_common::proto::admin_server::{Admin, AdminServer};
use driftwatch_common::proto::{
    ApproveBaselineRequest, BackupChunk, BackupRequest, Baseline, DiffRequest, DiffResponse,
    DriftRequest, DriftResponse, HistoryRequest, HistoryResponse, ListBaselinesRequest,
    ListBaselinesResponse, SetBaselineRequest, SetBaselineResponse,
};
use driftwatch_common::proto::{
    CreateTokenRequest, CreateTokenResponse, ForgetHostRequest, ForgetHostResponse, GetHostRequest,
    GetHostResponse, ListHostsRequest, ListHostsResponse, ListTokensRequest, ListTokensResponse,
    RevokeHostRequest, RevokeHostResponse, RevokeTokenRequest, RevokeTokenResponse, Token,
};
use driftwatch_common::proto::{
    FindKeysRequest, FindKeysResponse, GetSweepRequest, ListAuditRequest, ListAuditResponse,
    ListSweepsRequest, ListSweepsResponse, StartSweepRequest, SweepJob,
};
use driftwatch_common::proto::{NotifyTestRequest, NotifyTestResponse};
use driftwatch_common::section::SectionKind;
use driftwatch_common::snapshot::retain_sections;
use driftwatch_common::time::now_ms;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span};

use crate::fleet_bus::FleetEvent;

use super::State;
use super::audit;
use crate::auth::{AdminCaller, AdminGate};
use crate::drift;
use crate::error::ServiceError;
use crate::query::{self, resolve_host};
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
            .blocking(move |s| Ok(query::diff::latest(s, &i)))
            .await?
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
        let target = wanted.clone();
        let caller = admin.clone();
        let action = async move {
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
            self.state.bus.publish(FleetEvent::HostRevoked {
                host_id: id.clone(),
            });
            let closed = self.state.streams.close(
                &id,
                Status::permission_denied(format!("host {id} was revoked by {admin}")),
            );
            info!(host = %id, streams_closed = closed, "host revoked");
            Ok::<_, Status>(Response::new(RevokeHostResponse {
                host: Some(host),
                streams_closed: closed,
            }))
        }
        .instrument(span);
        audit::audited(&self.state, &caller, action, |_| format!("host {target}")).await
    }

    async fn forget_host(
        &self,
        req: Request<ForgetHostRequest>,
    ) -> Result<Response<ForgetHostResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let wanted = req.into_inner().host;
        let span = info_span!("rpc", method = "ForgetHost", %admin);
        let target = wanted.clone();
        let caller = admin.clone();
        let action = async move {
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
            self.state.bus.publish(FleetEvent::HostForgotten {
                host_id: id.clone(),
            });
            info!(host = %id, records_removed = removed, state, "host forgotten");
            Ok::<_, Status>(Response::new(ForgetHostResponse {
                host: Some(host),
                records_removed: removed,
            }))
        }
        .instrument(span);
        audit::audited(&self.state, &caller, action, |_| format!("host {target}")).await
    }

    async fn create_token(
        &self,
        req: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let CreateTokenRequest { group, ttl_s, uses } = req.into_inner();
        let target = group.clone();
        let caller = admin.clone();
        let action = async move {
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
            Ok::<_, Status>(Response::new(CreateTokenResponse {
                token: secret,
                info: Some(public(record, now)),
            }))
        };
        audit::audited(&self.state, &caller, action, |r| {
            match r.and_then(|r| r.get_ref().info.as_ref()) {
                Some(t) => format!("token {} (group {})", t.id, t.group),
                None => format!("group {target}"),
            }
        })
        .await
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
        let sweep = req.into_inner();
        let asked = format!(
            "{} of {} key(s)",
            if sweep.remove { "removal" } else { "dry run" },
            sweep
                .selector
                .as_ref()
                .map_or(0, |k| k.fingerprints.len() + k.comments.len())
        );
        let action = async {
            let job = super::sweeps::start(&self.state, &admin.name, sweep)
                .instrument(span)
                .await?;
            Ok::<_, Status>(Response::new(job))
        };
        audit::audited(&self.state, &admin, action, |r| match r {
            Some(job) => format!("sweep {} ({asked})", job.get_ref().id),
            None => format!("sweep ({asked})"),
        })
        .await
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
        let target = id.clone();
        let caller = admin.clone();
        let action = async move {
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
            Ok::<_, Status>(Response::new(RevokeTokenResponse {
                token: Some(public(t, now_ms())),
            }))
        };
        audit::audited(&self.state, &caller, action, |_| format!("token {target}")).await
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
        let req = req.into_inner();
        let span = info_span!("rpc", method = "Diff", %admin);
        let answer = self
            .state
            .blocking(move |s| {
                let hosts = s.list_hosts()?;
                Ok(query::diff::diff(s, &hosts, &req))
            })
            .instrument(span)
            .await??;
        Ok(Response::new(answer))
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
            let min_rank = query::drift::min_rank(&min_severity)?;
            let host_id = if host.is_empty() {
                None
            } else {
                Some(self.host_id(&host).await?)
            };
            let now = now_ms();
            // Fresh answers: evaluate unless that happened in the last
            // second, one evaluation at a time across the fleet.
            let guard = self.state.bus.evaluation_lock().await;
            let policy_error = self
                .state
                .evaluator
                .run(self.state.store.clone(), now, 1000)
                .await
                .map_err(ServiceError::from)?;
            drop(guard);
            self.state.durable().await?;
            let hosts = self.state.blocking(|s| s.list_hosts()).await?;
            let findings = self.state.blocking(|s| s.findings()).await?;
            let filter = query::drift::DriftFilter {
                host_id,
                group,
                group_label: self.state.evaluator.settings.group_label.clone(),
                min_rank,
                all,
            };
            let findings = query::drift::select(findings, &hosts, &filter);
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
        let target = format!("baseline {name} from host {from_host}");
        let caller = admin.clone();
        let action = async move {
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
            self.state.bus.publish(FleetEvent::DataChanged);
            info!(%name, host = %id, %admin, "baseline set");
            Ok::<_, Status>(Response::new(SetBaselineResponse {
                baseline: Some(Baseline {
                    snapshot: None,
                    ..b
                }),
            }))
        };
        audit::audited(&self.state, &caller, action, |_| target).await
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
        let caller = admin.clone();
        let action = async move {
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
            let stream: Self::BackupStream =
                Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
            Ok::<_, Status>(Response::new(stream))
        };
        audit::audited(&self.state, &caller, action, |_| "store".to_string()).await
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
        let target = format!("image {image_id} from host {from_host}");
        let caller = admin.clone();
        let action = async move {
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
            self.state.bus.publish(FleetEvent::DataChanged);
            info!(image = %image_id, %host, %admin, "image baseline approved");
            Ok::<_, Status>(Response::new(SetBaselineResponse {
                baseline: Some(Baseline {
                    snapshot: None,
                    ..approved
                }),
            }))
        };
        audit::audited(&self.state, &caller, action, |_| target).await
    }

    async fn notify_test(
        &self,
        req: Request<NotifyTestRequest>,
    ) -> Result<Response<NotifyTestResponse>, Status> {
        let admin = AdminCaller::of(&req)?;
        let name = req.into_inner().name;
        let target = format!("receiver {name:?}");
        let caller = admin.clone();
        let action = async move {
            let results = super::notify::test(&self.state, &admin.name, &name).await?;
            Ok::<_, Status>(Response::new(NotifyTestResponse { results }))
        };
        audit::audited(&self.state, &caller, action, |_| target).await
    }
}
