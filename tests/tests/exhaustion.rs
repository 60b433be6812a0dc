//! What one client may cost the collector: enrollment attempts from a whole
//! network, connection slots, a full disk, huge reports. Each test is an
//! attack with the real collector binary; several 127.0.0.x source
//! addresses stand for distinct clients.

use std::net::IpAddr;

use driftwatch_common::proto::EnrollRequest;
use driftwatch_common::proto::agent_client::AgentClient;
use driftwatch_common::tls::ClientFiles;
use driftwatch_tests::{CollectorProc, Pki, cli};

fn no_cert(pki: &Pki) -> ClientFiles {
    ClientFiles {
        ca: pki.ca(),
        cert: None,
        key: None,
    }
}

async fn enroll_from(
    c: &CollectorProc,
    pki: &Pki,
    src: &str,
    token: &str,
    csr_pem: &str,
) -> tonic::Status {
    let local: IpAddr = src.parse().unwrap();
    let ch = driftwatch_common::client::connect_from(&c.url, &no_cert(pki), Some(local))
        .await
        .unwrap();
    AgentClient::new(ch)
        .enroll(EnrollRequest {
            token: token.into(),
            csr_pem: csr_pem.into(),
            ..Default::default()
        })
        .await
        .unwrap_err()
}

#[test]
fn enrollment_is_limited_per_network_and_the_token_is_checked_before_the_csr() {
    let d = tempfile::tempdir().unwrap();
    let pki = Pki::init(&d.path().join("pki"));
    let c = CollectorProc::start(&pki, &d.path().join("data"), None);
    let out = driftwatch_tests::run_ok(cli(&pki, &c.url).args([
        "tokens", "create", "--group", "web", "--ttl", "1h", "--uses", "1",
    ]));
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("dwt_"))
        .expect("tokens create prints the token")
        .to_string();
    let (_, csr) = driftwatch_common::pki::new_key_and_csr().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // A wrong token with a garbage CSR: refused for the token, so no
        // CSR was parsed and nothing signed for a caller without one.
        let s = enroll_from(&c, &pki, "127.0.0.1", "dwt_00000000_00", "garbage").await;
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        // The right token with a garbage CSR: the CSR is refused and the
        // token's one use is not spent.
        let s = enroll_from(&c, &pki, "127.0.0.1", &token, "garbage").await;
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
        // One attempt from each of 30 addresses of 127.0.0.0/24: each
        // address is far below its own limit, the network is not.
        let mut codes = vec![];
        for i in 2..32 {
            let s = enroll_from(&c, &pki, &format!("127.0.0.{i}"), "dwt_00000000_00", &csr).await;
            codes.push((s.code(), s.message().to_string()));
        }
        let limited: Vec<_> = codes
            .iter()
            .filter(|(code, _)| *code == tonic::Code::ResourceExhausted)
            .collect();
        assert!(
            limited.len() >= 8,
            "30 addresses of one /24 were not limited as a network: {codes:?}"
        );
        assert!(
            limited[0].1.contains("127.0.0.0/24"),
            "the refusal names the network: {limited:?}"
        );
        // Another network is not affected.
        let s = enroll_from(&c, &pki, "127.0.1.1", "dwt_00000000_00", &csr).await;
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
    });
    let tokens = driftwatch_tests::cli_json(&pki, &c.url, &["tokens", "list"]);
    assert_eq!(tokens["tokens"][0]["uses"], 0, "{tokens}");
}
