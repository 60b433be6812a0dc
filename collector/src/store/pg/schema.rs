//! The tables, created and migrated by the collector itself at open.
//!
//! Each migration is a numbered SQL script applied in its own transaction
//! with a row in `schema_version`; collectors sharing a database take an
//! advisory lock for the whole check so only one migrates. A database whose
//! newest version is above [`SCHEMA_VERSION`] was migrated by a newer
//! collector, and this one refuses to open it (it would write rows the
//! newer one does not expect).
//!
//! The tables mirror sled's trees; values stay the prost encodings with
//! the one-byte encoding version in front, and only what a query selects
//! or orders by is a column. Key columns are `COLLATE "C"`: byte order, as
//! sled's keys, whatever the database's locale.

use tokio_postgres::Client;

use super::store::{Ctx, PgError};
use crate::store::StoreError;

pub const SCHEMA_VERSION: i32 = 1;

/// Held while checking and migrating: one collector at a time.
const MIGRATE_LOCK: i64 = 0x6477_7363_6865_6d61; // "dwschema"

const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE hosts (
    host_id     text COLLATE "C" PRIMARY KEY,
    value       bytea NOT NULL,
    -- The SnapshotRecord of the host's newest history record: an
    -- unchanged report compares against it without reading history.
    last_record bytea,
    -- Bumped by every write of the row: an unchanged report's update is
    -- conditional on the version it read (no lock held across the read).
    version     bigint NOT NULL DEFAULT 1
);
CREATE TABLE latest (
    host_id text COLLATE "C" PRIMARY KEY,
    value   bytea NOT NULL,
    hashes  text[] NOT NULL
);
CREATE TABLE history (
    host_id         text COLLATE "C" NOT NULL,
    record_no       bigint NOT NULL,
    collected_at_ms bigint NOT NULL,
    received_ms     bigint NOT NULL,
    hashes          text[] NOT NULL,
    value           bytea NOT NULL,
    PRIMARY KEY (host_id, record_no)
);
CREATE TABLE sections (
    hash  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE host_keys (
    host_id     text COLLATE "C" NOT NULL,
    fingerprint text COLLATE "C" NOT NULL,
    comment     text NOT NULL,
    username    text NOT NULL,
    path        text NOT NULL,
    line        bigint NOT NULL
);
CREATE INDEX host_keys_host ON host_keys (host_id);
CREATE INDEX host_keys_fingerprint ON host_keys (fingerprint);
CREATE INDEX host_keys_comment ON host_keys (comment);
CREATE TABLE findings (
    id      text COLLATE "C" PRIMARY KEY,
    host_id text COLLATE "C" NOT NULL,
    value   bytea NOT NULL
);
CREATE INDEX findings_host ON findings (host_id);
CREATE TABLE baselines (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE baseline_candidates (
    image_id text COLLATE "C" NOT NULL,
    host_id  text COLLATE "C" NOT NULL,
    value    bytea NOT NULL,
    PRIMARY KEY (image_id, host_id)
);
CREATE TABLE baseline_votes (
    host_id  text COLLATE "C" PRIMARY KEY,
    image_id text COLLATE "C" NOT NULL
);
CREATE TABLE tokens (
    id    text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE sweeps (
    id    text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE sweep_hosts (
    sweep_id text COLLATE "C" NOT NULL,
    host_id  text COLLATE "C" NOT NULL,
    value    bytea NOT NULL,
    PRIMARY KEY (sweep_id, host_id)
);
CREATE INDEX sweep_hosts_host ON sweep_hosts (host_id);
CREATE TABLE outbox (
    id       bigserial PRIMARY KEY,
    receiver text COLLATE "C" NOT NULL,
    value    bytea NOT NULL
);
CREATE INDEX outbox_receiver ON outbox (receiver, id);
CREATE TABLE audit (
    id    bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX audit_time ON audit (at_ms, id);
CREATE TABLE forgotten_revoked (
    host_id text COLLATE "C" PRIMARY KEY,
    value   bytea NOT NULL
);
"#,
)];

/// Brings the database to [`SCHEMA_VERSION`], or refuses a newer one.
/// Returns the version found before (0: a new database).
pub async fn migrate(client: &mut Client, url: &str) -> Result<i32, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await
        .ctx("taking the migration lock")?;
    let result = migrate_locked(client, url).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await
        .ctx("releasing the migration lock");
    let found = result?;
    unlocked?;
    Ok(found)
}

async fn migrate_locked(client: &mut Client, url: &str) -> Result<i32, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    integer PRIMARY KEY,
                applied_ms bigint NOT NULL,
                by_version text NOT NULL
            )",
        )
        .await
        .ctx("creating schema_version")?;
    let found: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .ctx("reading schema_version")?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::schema(url, found, SCHEMA_VERSION));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = client.transaction().await.ctx("starting a migration")?;
        tx.batch_execute(sql)
            .await
            .ctx(&format!("applying schema migration {version}"))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_ms, by_version) VALUES ($1, $2, $3)",
            &[
                version,
                &driftwatch_common::time::now_ms(),
                &env!("CARGO_PKG_VERSION"),
            ],
        )
        .await
        .ctx("recording a schema migration")?;
        tx.commit()
            .await
            .ctx(&format!("committing schema migration {version}"))?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(found)
}
