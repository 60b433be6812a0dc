//! Connecting to a real PostgreSQL (tests/src/pg.rs starts it): over the
//! unix socket with the password from a file, and over TLS on loopback
//! with a certificate made here, each sslmode doing what libpq's does.

use driftwatch_collector::store::pg::{self, ConnectError, PgTarget};
use driftwatch_tests::pg::{PgCluster, PgOptions, ServerTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

fn no_env(_: &str) -> Option<String> {
    None
}

/// A CA and a server certificate it issued for `names`.
fn ca_and_server(names: &[&str]) -> (String, ServerTls) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        ServerTls {
            cert_pem: server.pem(),
            key_pem: key.serialize_pem(),
        },
    )
}

async fn ssl_in_use(t: &PgTarget) -> Result<bool, ConnectError> {
    let (client, conn) = t.connect().await?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

#[tokio::test]
async fn unix_socket_with_a_password_file_and_a_refused_password() {
    let Some(pg) = PgCluster::start() else { return };
    let file = pg.password_file("store.pw");
    let t = pg::target(&pg.url(), Some(&file), &no_env).unwrap();
    assert!(!ssl_in_use(&t).await.unwrap(), "no TLS on a unix socket");
    let wrong = |k: &str| (k == "PGPASSWORD").then(|| "wrong".to_string());
    let t = pg::target(&pg.url(), None, &wrong).unwrap();
    let e = ssl_in_use(&t).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("refused role driftwatch") && text.contains("--store-password-file"),
        "{text}"
    );
    assert!(!e.is_unreachable(), "a wrong password is not an outage");
    // A database that does not exist is named, with the command to make it.
    let missing = pg.url_for("nope");
    let e = ssl_in_use(&pg::target(&missing, Some(&file), &no_env).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("createdb -O driftwatch nope"), "{e}");
}

#[tokio::test]
async fn each_sslmode_against_a_real_tls_server() {
    let (ca_pem, tls) = ca_and_server(&["localhost"]);
    let Some(pg) = PgCluster::start_with(PgOptions {
        tls: Some(tls),
        ..Default::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let (other_ca_pem, _) = ca_and_server(&["localhost"]);
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other_ca_pem).unwrap();
    let port = pg.port();
    let password = Some(pg.password().to_string());
    let target = |host: &str, query: &str| {
        let url = pg::url::parse(&format!(
            "postgres://driftwatch@{host}:{port}/driftwatch?{query}"
        ))
        .unwrap();
        PgTarget::new(url, password.clone()).unwrap()
    };
    let ca_q =
        |mode: &str, ca: &std::path::Path| format!("sslmode={mode}&sslrootcert={}", ca.display());

    // Encrypted: require takes any certificate, verify-* the right one.
    assert!(
        ssl_in_use(&target("127.0.0.1", "sslmode=require"))
            .await
            .unwrap()
    );
    assert!(
        ssl_in_use(&target("127.0.0.1", "sslmode=prefer"))
            .await
            .unwrap()
    );
    assert!(
        ssl_in_use(&target("localhost", &ca_q("verify-full", &ca)))
            .await
            .unwrap()
    );
    assert!(
        ssl_in_use(&target("127.0.0.1", &ca_q("verify-ca", &ca)))
            .await
            .unwrap(),
        "verify-ca does not check the name"
    );
    assert!(
        !ssl_in_use(&target("127.0.0.1", "sslmode=disable"))
            .await
            .unwrap()
    );

    // Refused: a name the certificate does not carry, and a foreign CA.
    for (host, query, why) in [
        (
            "127.0.0.1",
            ca_q("verify-full", &ca),
            "the certificate names localhost only",
        ),
        (
            "localhost",
            ca_q("verify-full", &other_ca),
            "another CA issued it",
        ),
        (
            "localhost",
            ca_q("verify-ca", &other_ca),
            "another CA issued it",
        ),
        (
            "localhost",
            ca_q("require", &other_ca),
            "require with a root cert verifies",
        ),
    ] {
        let e = ssl_in_use(&target(host, &query))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TLS handshake failed") && e.contains("sslrootcert"),
            "{why}: {e}"
        );
    }
    // verify-full needs a CA to verify against.
    let url = pg::url::parse(&format!(
        "postgres://driftwatch@localhost:{port}/driftwatch?sslmode=verify-full"
    ))
    .unwrap();
    let e = PgTarget::new(url, None).unwrap_err().to_string();
    assert!(e.contains("add sslrootcert=FILE"), "{e}");
}
