//! Hosts, tokens, findings and baselines on PostgreSQL. A read-modify-
//! write holds the row's lock (`FOR UPDATE`) from read to commit, so two
//! collectors cannot both take a token's last use or lose each other's
//! revocation; candidate quorums are decided under one advisory lock per
//! database, as sled decides them under one mutex per process.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use driftwatch_common::proto::{Baseline, BaselineCandidate, Finding, HostSummary, Token};

use super::store::{Ctx, Inner, is_retryable};
use crate::store::drift_store::{content_hash, image_baseline_name, reduce};
use crate::store::sled_store::{decode, encode};
use crate::store::{CandidateOutcome, StoreError};
use crate::tokens::{self, TokenError};

/// Held while a baseline candidate is judged or approved.
const CANDIDATES_LOCK: i64 = 0x6477_6361_6e64_6964; // "dwcandid"

fn decode_rows<T: prost::Message + Default>(
    rows: &[tokio_postgres::Row],
    key: usize,
    value: usize,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|r| decode(r.get::<_, &str>(key).as_bytes(), r.get::<_, &[u8]>(value)))
        .collect()
}

/// Reruns `$body` (an async block) while it fails in a retryable way.
macro_rules! retry {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            match $body.await {
                Err(e) if is_retryable(&e) && attempt < 5 => attempt += 1,
                other => break other,
            }
        }
    }};
}

impl Inner {
    pub async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query("SELECT host_id, value FROM hosts ORDER BY host_id", &[])
            .await
            .ctx("listing hosts")?;
        decode_rows(&rows, 0, 1)
    }

    pub async fn host(&self, host_id: String) -> Result<Option<HostSummary>, StoreError> {
        let c = self.conn().await?;
        host_in(&c, &host_id, false).await
    }

    pub async fn enroll_host(&self, host: HostSummary) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        retry!(async {
            let tx = c.transaction().await.ctx("starting an enrollment")?;
            tx.execute(
                "INSERT INTO hosts (host_id, value) VALUES ($1, $2) \
                 ON CONFLICT (host_id) DO UPDATE SET value = EXCLUDED.value, version = hosts.version + 1",
                &[&host.host_id, &encode(&host)],
            )
            .await
            .ctx("writing an enrolled host")?;
            if !host.previous_host_id.is_empty()
                && let Some(mut p) = host_in(&tx, &host.previous_host_id, true).await?
                && !p.successor_host_ids.contains(&host.host_id)
            {
                p.successor_host_ids.push(host.host_id.clone());
                update_host(&tx, &p).await?;
            }
            tx.commit().await.ctx("committing an enrollment")
        })
    }

    pub async fn revoke_host(
        &self,
        host_id: String,
        by: String,
        now_ms: i64,
    ) -> Result<Option<HostSummary>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a revocation")?;
        let Some(mut h) = host_in(&tx, &host_id, true).await? else {
            return Ok(None);
        };
        if h.revoked_ms == 0 {
            h.revoked_ms = now_ms;
            h.revoked_by = by;
            update_host(&tx, &h).await?;
        }
        tx.commit().await.ctx("committing a revocation")?;
        Ok(Some(h))
    }

    /// As sled's forget (forget.rs): the tombstone of a revoked host, then
    /// its findings, history, latest snapshot, keys and record, in one
    /// transaction.
    pub async fn forget_host(
        &self,
        host_id: String,
    ) -> Result<Option<(HostSummary, u64)>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a forget")?;
        let Some(host) = host_in(&tx, &host_id, true).await? else {
            return Ok(None);
        };
        if host.revoked_ms > 0 {
            tx.execute(
                "INSERT INTO forgotten_revoked (host_id, value) VALUES ($1, $2) \
                 ON CONFLICT (host_id) DO UPDATE SET value = EXCLUDED.value",
                &[&host_id, &encode(&host)],
            )
            .await
            .ctx("keeping a forgotten host's revocation")?;
        }
        let mut removed = 0;
        for (table, what) in [
            ("findings", "forgetting findings"),
            ("history", "forgetting history"),
        ] {
            removed += tx
                .execute(
                    &format!("DELETE FROM {table} WHERE host_id = $1"),
                    &[&host_id],
                )
                .await
                .ctx(what)?;
        }
        for table in ["latest", "host_keys", "baseline_votes", "hosts"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE host_id = $1"),
                &[&host_id],
            )
            .await
            .ctx("forgetting a host")?;
        }
        tx.commit().await.ctx("committing a forget")?;
        Ok(Some((host, removed)))
    }

    pub async fn forgotten_revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT host_id FROM forgotten_revoked ORDER BY host_id",
                &[],
            )
            .await
            .ctx("listing forgotten revoked hosts")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn create_token(&self, token: Token) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO tokens (id, value) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
            &[&token.id, &encode(&token)],
        )
        .await
        .ctx("writing a token")?;
        Ok(())
    }

    pub async fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query("SELECT id, value FROM tokens ORDER BY id", &[])
            .await
            .ctx("listing tokens")?;
        decode_rows(&rows, 0, 1)
    }

    pub async fn token(&self, id: String) -> Result<Option<Token>, StoreError> {
        let c = self.conn().await?;
        token_in(&c, &id, false).await
    }

    pub async fn revoke_token(&self, id: String, now_ms: i64) -> Result<Option<Token>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a token revocation")?;
        let Some(mut t) = token_in(&tx, &id, true).await? else {
            return Ok(None);
        };
        if t.revoked_ms == 0 {
            t.revoked_ms = now_ms;
            write_token(&tx, &t).await?;
        }
        tx.commit().await.ctx("committing a token revocation")?;
        Ok(Some(t))
    }

    /// The check and the count under the token's row lock: a second
    /// collector racing for the last use waits, then sees it taken.
    pub async fn consume_token(
        &self,
        id: String,
        presented: String,
        now_ms: i64,
    ) -> Result<Result<Token, TokenError>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a token use")?;
        let Some(mut t) = token_in(&tx, &id, true).await? else {
            return Ok(Err(TokenError::Invalid));
        };
        if let Err(e) = tokens::check(&t, &presented, now_ms) {
            return Ok(Err(e));
        }
        t.uses += 1;
        write_token(&tx, &t).await?;
        tx.commit().await.ctx("committing a token use")?;
        Ok(Ok(t))
    }

    pub async fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query("SELECT id, value FROM findings ORDER BY id", &[])
            .await
            .ctx("reading findings")?;
        decode_rows(&rows, 0, 1)
    }

    pub async fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query("SELECT name, value FROM baselines ORDER BY name", &[])
            .await
            .ctx("reading baselines")?;
        decode_rows(&rows, 0, 1)
    }

    pub async fn baseline(&self, name: String) -> Result<Option<Baseline>, StoreError> {
        let c = self.conn().await?;
        baseline_in(&c, &name).await
    }

    pub async fn put_baseline(&self, b: Baseline, overwrite: bool) -> Result<bool, StoreError> {
        let b = reduce(&b);
        let c = self.conn().await?;
        let sql = if overwrite {
            "INSERT INTO baselines (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
        } else {
            "INSERT INTO baselines (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
        };
        let n = c
            .execute(sql, &[&b.name, &encode(&b)])
            .await
            .ctx("writing a baseline")?;
        Ok(n == 1)
    }

    /// sled's rules (drift_store.rs), decided under [`CANDIDATES_LOCK`].
    pub async fn put_baseline_candidate(
        &self,
        host_id: String,
        b: Baseline,
        quorum: usize,
    ) -> Result<CandidateOutcome, StoreError> {
        let b = Baseline {
            name: image_baseline_name(&b.image_id),
            source: format!("image-bake (uploaded by {host_id})"),
            ..reduce(&b)
        };
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting a candidate upload")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CANDIDATES_LOCK])
            .await
            .ctx("taking the candidates lock")?;
        tx.execute(
            "DELETE FROM baseline_candidates WHERE host_id = $1 AND image_id <> $2",
            &[&host_id, &b.image_id],
        )
        .await
        .ctx("dropping a host's older candidate")?;
        tx.execute(
            "INSERT INTO baseline_votes (host_id, image_id) VALUES ($1, $2) \
             ON CONFLICT (host_id) DO UPDATE SET image_id = EXCLUDED.image_id",
            &[&host_id, &b.image_id],
        )
        .await
        .ctx("recording a host's candidate")?;
        tx.execute(
            "INSERT INTO baseline_candidates (image_id, host_id, value) VALUES ($1, $2, $3) \
             ON CONFLICT (image_id, host_id) DO UPDATE SET value = EXCLUDED.value",
            &[&b.image_id, &host_id, &encode(&b)],
        )
        .await
        .ctx("writing a candidate")?;
        let hash = content_hash(&b);
        if let Some(current) = baseline_in(&tx, &b.name).await? {
            tx.commit().await.ctx("committing a candidate")?;
            return Ok(CandidateOutcome::AlreadyDecided {
                same: content_hash(&current) == hash,
            });
        }
        // Content → agreeing live hosts. A revoked host's vote is void.
        let rows = tx
            .query(
                "SELECT c.host_id, c.value, h.value FROM baseline_candidates c \
                 LEFT JOIN hosts h ON h.host_id = c.host_id WHERE c.image_id = $1 ORDER BY c.host_id",
                &[&b.image_id],
            )
            .await
            .ctx("reading an image's candidates")?;
        let mut by_content: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &rows {
            let host: String = r.get(0);
            if let Some(v) = r.get::<_, Option<&[u8]>>(2) {
                let h: HostSummary = decode(host.as_bytes(), v)?;
                if h.revoked_ms > 0 {
                    continue;
                }
            }
            let cand: Baseline = decode(host.as_bytes(), r.get::<_, &[u8]>(1))?;
            by_content
                .entry(content_hash(&cand))
                .or_default()
                .push(host);
        }
        let agreeing = by_content.get(&hash).cloned().unwrap_or_default();
        let outcome = if quorum > 0 && by_content.len() == 1 && agreeing.len() >= quorum {
            let confirmed = Baseline {
                source: format!(
                    "image-bake (confirmed by {} hosts: {})",
                    agreeing.len(),
                    agreeing.join(", ")
                ),
                ..b
            };
            write_baseline(&tx, &confirmed).await?;
            CandidateOutcome::Confirmed { hosts: agreeing }
        } else {
            CandidateOutcome::Pending {
                agreeing: agreeing.len(),
                contents: by_content.len(),
            }
        };
        tx.commit().await.ctx("committing a candidate")?;
        Ok(outcome)
    }

    pub async fn baseline_candidates(&self) -> Result<Vec<BaselineCandidate>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT c.host_id, c.value, b.value FROM baseline_candidates c \
                 LEFT JOIN baselines b ON b.name = 'image-' || c.image_id \
                 ORDER BY c.image_id, c.host_id",
                &[],
            )
            .await
            .ctx("reading baseline candidates")?;
        rows.iter()
            .map(|r| {
                let host_id: String = r.get(0);
                let b: Baseline = decode(host_id.as_bytes(), r.get::<_, &[u8]>(1))?;
                let current = r
                    .get::<_, Option<&[u8]>>(2)
                    .map(|v| decode::<Baseline>(b.name.as_bytes(), v))
                    .transpose()?
                    .map(|c| content_hash(&c));
                let hash = content_hash(&b);
                Ok(BaselineCandidate {
                    image_id: b.image_id,
                    host_id,
                    differs_from_baseline: current.as_ref().is_some_and(|c| *c != hash),
                    content_hash: hash,
                    created_ms: b.created_ms,
                })
            })
            .collect()
    }

    pub async fn approve_image_baseline(
        &self,
        image_id: String,
        from_host: String,
        by: String,
    ) -> Result<Option<Baseline>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.ctx("starting an approval")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CANDIDATES_LOCK])
            .await
            .ctx("taking the candidates lock")?;
        let Some(row) = tx
            .query_opt(
                "SELECT value FROM baseline_candidates WHERE image_id = $1 AND host_id = $2",
                &[&image_id, &from_host],
            )
            .await
            .ctx("reading a candidate")?
        else {
            return Ok(None);
        };
        let b: Baseline = decode(from_host.as_bytes(), row.get::<_, &[u8]>(0))?;
        let approved = Baseline {
            source: format!("image-bake (approved by {by} from {from_host}'s upload)"),
            ..b
        };
        write_baseline(&tx, &approved).await?;
        tx.commit().await.ctx("committing an approval")?;
        Ok(Some(approved))
    }
}

pub(super) async fn host_in(
    c: &impl GenericClient,
    host_id: &str,
    lock: bool,
) -> Result<Option<HostSummary>, StoreError> {
    let sql = if lock {
        "SELECT value FROM hosts WHERE host_id = $1 FOR UPDATE"
    } else {
        "SELECT value FROM hosts WHERE host_id = $1"
    };
    c.query_opt(sql, &[&host_id])
        .await
        .ctx("reading a host")?
        .map(|r| decode(host_id.as_bytes(), r.get::<_, &[u8]>(0)))
        .transpose()
}

async fn update_host(c: &impl GenericClient, h: &HostSummary) -> Result<(), StoreError> {
    c.execute(
        "UPDATE hosts SET value = $2, version = version + 1 WHERE host_id = $1",
        &[&h.host_id, &encode(h)],
    )
    .await
    .ctx("writing a host")?;
    Ok(())
}

async fn token_in(
    c: &impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<Token>, StoreError> {
    let sql = if lock {
        "SELECT value FROM tokens WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT value FROM tokens WHERE id = $1"
    };
    c.query_opt(sql, &[&id])
        .await
        .ctx("reading a token")?
        .map(|r| decode(id.as_bytes(), r.get::<_, &[u8]>(0)))
        .transpose()
}

async fn write_token(c: &impl GenericClient, t: &Token) -> Result<(), StoreError> {
    c.execute(
        "UPDATE tokens SET value = $2 WHERE id = $1",
        &[&t.id, &encode(t)],
    )
    .await
    .ctx("writing a token")?;
    Ok(())
}

async fn baseline_in(c: &impl GenericClient, name: &str) -> Result<Option<Baseline>, StoreError> {
    c.query_opt("SELECT value FROM baselines WHERE name = $1", &[&name])
        .await
        .ctx("reading a baseline")?
        .map(|r| decode(name.as_bytes(), r.get::<_, &[u8]>(0)))
        .transpose()
}

async fn write_baseline(c: &impl GenericClient, b: &Baseline) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO baselines (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        &[&b.name, &encode(b)],
    )
    .await
    .ctx("writing a baseline")?;
    Ok(())
}

/// Findings inserted or replaced by id, in the caller's transaction.
pub(super) async fn upsert_findings(
    c: &impl GenericClient,
    findings: &[Finding],
) -> Result<(), StoreError> {
    if findings.is_empty() {
        return Ok(());
    }
    // One row may be affected once per statement: the last of an id wins,
    // as in sled's batch.
    let mut last: std::collections::HashMap<&str, &Finding> = std::collections::HashMap::new();
    for f in findings {
        last.insert(f.id.as_str(), f);
    }
    let findings: Vec<&Finding> = last.into_values().collect();
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    let hosts: Vec<&str> = findings.iter().map(|f| f.host_id.as_str()).collect();
    let values: Vec<Vec<u8>> = findings.iter().map(|f| encode(*f)).collect();
    c.execute(
        "INSERT INTO findings (id, host_id, value) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
         ON CONFLICT (id) DO UPDATE SET host_id = EXCLUDED.host_id, value = EXCLUDED.value",
        &[&ids, &hosts, &values],
    )
    .await
    .ctx("writing findings")?;
    Ok(())
}
