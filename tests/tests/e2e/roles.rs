//! Authorization by construction: every Admin method the proto declares is
//! called on the real collector by every kind of caller (no certificate, a
//! host's, a revoked host's, and a viewer's, operator's and admin's from
//! `pki admin --role`), and the answer must be exactly what the method
//! table says, the refusal naming the role needed. The list of methods
//! comes from the compiled proto and the expectations from the table the
//! collector's gate reads, so a new RPC is called here without editing this
//! file. The mutating calls that passed must be in the audit trail, with
//! who made them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use driftwatch_common::admin_method::{AdminMethod, Effect};
use driftwatch_common::identity::Role;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::proto::{ADMIN_METHODS, ReportRequest, Snapshot};
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::{CollectorProc, Pki, cli, cli_json, run_ok, stderr_of};
use tonic::Code;
use tonic::transport::Channel;

/// Who calls, as the collector will see it.
enum Caller {
    NoCertificate,
    Host(&'static str),
    RevokedHost(&'static str),
    Admin(&'static str, Role),
}

impl Caller {
    fn label(&self) -> String {
        match self {
            Caller::NoCertificate => "no certificate".into(),
            Caller::Host(h) => format!("host {h}"),
            Caller::RevokedHost(h) => format!("revoked host {h}"),
            Caller::Admin(n, r) => format!("{n} ({r})"),
        }
    }

    /// Whether the gate lets it through to `m`'s handler.
    fn passes(&self, m: AdminMethod) -> bool {
        matches!(self, Caller::Admin(_, r) if *r >= m.required_role())
    }

    /// The refusal the gate gives it for `m`: code and how the message starts.
    fn refusal(&self, m: AdminMethod) -> (Code, String) {
        let needs = format!("{m} needs role {};", m.required_role());
        match self {
            Caller::NoCertificate => (
                Code::Unauthenticated,
                format!("{needs} you presented no client certificate, so you have no role"),
            ),
            Caller::Host(h) => (
                Code::PermissionDenied,
                format!(
                    "{needs} your certificate driftwatch://host/{h} is a host certificate, not an admin certificate"
                ),
            ),
            Caller::RevokedHost(h) => (
                Code::PermissionDenied,
                format!(
                    "{needs} your certificate driftwatch://host/{h} is a host certificate, revoked, not an admin certificate"
                ),
            ),
            Caller::Admin(n, r) => (
                Code::PermissionDenied,
                format!("{needs} your certificate {n} has role {r} "),
            ),
        }
    }
}

async fn channel(url: &str, ca: PathBuf, cert: Option<(PathBuf, PathBuf)>) -> Channel {
    let (cert, key) = cert.unzip();
    driftwatch_common::client::connect(url, &ClientFiles { ca, cert, key })
        .await
        .expect("TLS connection to the collector")
}

/// Calls `m` with an empty request, as a raw gRPC client: any method of the
/// table can be called without a typed client for it. Server streaming
/// covers both shapes (a unary answer is a stream of one) and the stream is
/// drained, so a streamed answer's own error counts too.
async fn call(ch: Channel, m: AdminMethod) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(ch).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(m.path()).unwrap();
    // `()` is the empty message: it encodes every request's defaults and
    // decodes any answer, skipping its fields.
    let codec: tonic_prost::ProstCodec<(), ()> = tonic_prost::ProstCodec::default();
    let mut answers = grpc
        .server_streaming(tonic::Request::new(()), path, codec)
        .await?
        .into_inner();
    while answers.message().await?.is_some() {}
    Ok(())
}

struct World {
    _tmp: tempfile::TempDir,
    pki: Pki,
    c: CollectorProc,
    certs: BTreeMap<&'static str, (PathBuf, PathBuf)>,
}

/// A collector, a host that reported, a host that reported and was then
/// revoked, and one admin certificate per role.
fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::init(&root.join("pki"));
    let c = CollectorProc::start(&pki, &root.join("data"), None);
    let mut certs = BTreeMap::new();
    for (name, role) in [("vera", "viewer"), ("otto", "operator"), ("ada", "admin")] {
        certs.insert(name, pki.issue_admin(name, role, &root.join("admins")));
    }
    for host in ["web-01", "gone-01"] {
        let cert = pki.issue_host(host, &root.join(host));
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ch = channel(&c.url, pki.ca(), Some(cert.clone())).await;
            let snapshot = Snapshot {
                host_id: host.into(),
                seq: 1,
                ..Default::default()
            };
            AgentClient::new(ch)
                .report(ReportRequest {
                    snapshot: Some(snapshot),
                })
                .await
                .expect("a host reports with its certificate");
        });
        certs.insert(host, cert);
    }
    // By the certificate `pki init` made: driftwatch://admin/admin?role=admin.
    run_ok(cli(&pki, &c.url).args(["hosts", "revoke", "gone-01", "--yes"]));
    World {
        _tmp: tmp,
        pki,
        c,
        certs,
    }
}

impl World {
    /// The CLI with one of the issued admin certificates.
    fn cli_as(&self, name: &str) -> std::process::Command {
        let (cert, key) = &self.certs[name];
        let mut c = cli(&self.pki, &self.c.url);
        c.env("DRIFTWATCH_CERT", cert).env("DRIFTWATCH_KEY", key);
        c
    }
}

#[test]
fn every_admin_method_answers_each_caller_as_the_table_says_and_audits_who_acted() {
    let w = world();
    let methods: Vec<AdminMethod> = ADMIN_METHODS
        .iter()
        .map(|name| {
            AdminMethod::from_path(&format!("/driftwatch.v1.Admin/{name}"))
                .unwrap_or_else(|| panic!("{name} is in the proto but not in the method table"))
        })
        .collect();
    assert!(methods.len() >= 20, "{methods:?}");
    let callers = [
        Caller::NoCertificate,
        Caller::Host("web-01"),
        Caller::RevokedHost("gone-01"),
        Caller::Admin("vera", Role::Viewer),
        Caller::Admin("otto", Role::Operator),
        Caller::Admin("ada", Role::Admin),
    ];
    let started_ms = driftwatch_common::time::now_ms();
    let mut wrong = Vec::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for caller in &callers {
        let cert = match caller {
            Caller::NoCertificate => None,
            Caller::Host(n) | Caller::RevokedHost(n) | Caller::Admin(n, _) => {
                Some(w.certs[n].clone())
            }
        };
        for &m in &methods {
            let got = rt.block_on(async {
                let ch = channel(&w.c.url, w.pki.ca(), cert.clone()).await;
                tokio::time::timeout(Duration::from_secs(30), call(ch, m))
                    .await
                    .unwrap_or_else(|_| panic!("{m} by {} took over 30s", caller.label()))
            });
            let ok = if caller.passes(m) {
                // Empty requests mostly fail in the handler (no such host,
                // no group): what matters is that the gate let them in.
                match &got {
                    Ok(()) => true,
                    Err(s) => !matches!(
                        s.code(),
                        Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented
                    ),
                }
            } else {
                let (code, starts) = caller.refusal(m);
                matches!(&got, Err(s) if s.code() == code && s.message().starts_with(&starts))
            };
            if !ok {
                wrong.push(format!("{m} by {}: {got:?}", caller.label()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "answers not as the method table says:\n{}",
        wrong.join("\n")
    );
    let ended_ms = driftwatch_common::time::now_ms();

    // One entry per call that passed the gate and acts; none for reads or
    // refusals. The setup's revoke was made by the `pki init` certificate.
    let trail = cli_json(&w.pki, &w.c.url, &["audit", "--limit", "1000"]);
    assert_eq!(trail["truncated"], serde_json::json!(false), "{trail}");
    let entries = trail["entries"].as_array().unwrap();
    let mut seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["admin"].as_str().unwrap().to_string(),
                e["role"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want = vec![(
        "admin".to_string(),
        "admin".to_string(),
        "RevokeHost".into(),
    )];
    for caller in &callers {
        if let Caller::Admin(name, role) = caller {
            for &m in &methods {
                if caller.passes(m) && m.effect() == Effect::Acts {
                    want.push((name.to_string(), role.to_string(), m.name().into()));
                }
            }
        }
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "audit trail: {trail:#}");
    let setup = entries.last().expect("the oldest entry is the setup's");
    assert_eq!(
        (setup["target"].as_str(), setup["outcome"].as_str()),
        (Some("host gone-01"), Some("ok")),
        "{setup}"
    );
    for e in entries.iter().filter(|e| e["admin"] != "admin") {
        let at = e["at_ms"].as_i64().unwrap();
        assert!((started_ms..=ended_ms).contains(&at), "{e}");
        let outcome = e["outcome"].as_str().unwrap();
        if e["action"] == "Backup" {
            assert_eq!(outcome, "ok", "{e}");
        } else {
            // An empty request acts on nothing: refused by the handler,
            // and the trail says why.
            assert_eq!(outcome, "failed", "{e}");
            assert!(!e["detail"].as_str().unwrap().is_empty(), "{e}");
        }
    }
}

#[test]
fn a_viewer_reads_but_cannot_sweep_and_the_cli_names_the_role_needed() {
    let w = world();
    let hosts = run_ok(w.cli_as("vera").args(["hosts", "--json"]));
    let hosts: serde_json::Value = serde_json::from_slice(&hosts.stdout).unwrap();
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 2, "{hosts}");

    let out = w
        .cli_as("vera")
        .args([
            "keys",
            "sweep",
            "--comment",
            "bob@laptop",
            "--remove",
            "--yes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("StartSweep needs role operator; your certificate vera has role viewer"),
        "{err}"
    );
    assert!(
        err.contains("--role operator"),
        "says how to get one: {err}"
    );
    let out = w
        .cli_as("otto")
        .args(["tokens", "create", "--group", "web", "--ttl", "1h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out)
            .contains("CreateToken needs role admin; your certificate otto has role operator"),
        "{}",
        stderr_of(&out)
    );
    // The operator can, and the trail says who did it; the viewer's
    // refused sweep left no entry.
    // A dry run; web-01 has no agent running, so it stays pending (exit 1).
    let out = w
        .cli_as("otto")
        .args([
            "keys",
            "sweep",
            "--comment",
            "bob@laptop",
            "--timeout",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let table = run_ok(w.cli_as("vera").args(["audit", "--since", "1h"]));
    let table = String::from_utf8(table.stdout).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        2,
        "the setup's revoke and otto's sweep:\n{table}"
    );
    assert!(
        rows[0].contains("otto") && rows[0].contains("operator") && rows[0].contains("StartSweep"),
        "newest first:\n{table}"
    );
    assert!(rows[0].contains(" ok"), "{table}");
    assert!(!table.contains("vera"), "{table}");
    // --since after everything: nothing.
    let later = run_ok(
        w.cli_as("vera")
            .args(["audit", "--since", "2999-01-01T00:00:00Z"]),
    );
    assert!(
        String::from_utf8_lossy(&later.stdout).contains("no admin actions recorded"),
        "{}",
        String::from_utf8_lossy(&later.stdout)
    );
    let cut = cli_json(&w.pki, &w.c.url, &["audit", "--limit", "1"]);
    assert_eq!(cut["entries"].as_array().unwrap().len(), 1, "{cut}");
    assert_eq!(cut["truncated"], serde_json::json!(true), "{cut}");
}
