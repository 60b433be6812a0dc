//! Enrollment tokens: `dwt_<id>_<secret>`. The id (public, 8 hex) finds the
//! record; the whole token is stored only as its SHA-256. Pure functions
//! here; storage and RPCs elsewhere.

use driftwatch_common::proto::Token;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const PREFIX: &str = "dwt_";

/// Why a token cannot enroll a host. Messages are what the agent shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("enrollment token is invalid: check it was copied whole (it starts with dwt_)")]
    Invalid,
    #[error(
        "enrollment token {id} expired at {at}: create a new one with `driftwatch tokens create`"
    )]
    Expired { id: String, at: String },
    #[error("enrollment token {id} is used up ({uses} of {max} enrollments): create a new one")]
    UsedUp { id: String, uses: u32, max: u32 },
    #[error("enrollment token {id} was revoked")]
    Revoked { id: String },
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system RNG available");
    hex::encode(buf)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new secret token and its record (without the secret).
pub fn generate(
    group: &str,
    ttl_ms: i64,
    uses: u32,
    created_by: &str,
    now_ms: i64,
) -> (String, Token) {
    let id = random_hex(4);
    let token = format!("{PREFIX}{id}_{}", random_hex(20));
    let record = Token {
        id,
        group: group.to_string(),
        created_ms: now_ms,
        expires_ms: now_ms + ttl_ms,
        uses_max: uses,
        hash: hash(&token),
        created_by: created_by.to_string(),
        ..Default::default()
    };
    (token, record)
}

/// The public id inside a token, if it has the right shape.
pub fn id_of(token: &str) -> Option<&str> {
    let rest = token.trim().strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Checks a presented token against its record at `now_ms`.
pub fn check(record: &Token, presented: &str, now_ms: i64) -> Result<(), TokenError> {
    // Compare digests, so timing says nothing about the secret.
    if hash(presented.trim()) != record.hash {
        return Err(TokenError::Invalid);
    }
    if record.revoked_ms > 0 {
        return Err(TokenError::Revoked {
            id: record.id.clone(),
        });
    }
    if now_ms >= record.expires_ms {
        return Err(TokenError::Expired {
            id: record.id.clone(),
            at: driftwatch_common::time::format_ms(record.expires_ms),
        });
    }
    if record.uses_max > 0 && record.uses >= record.uses_max {
        return Err(TokenError::UsedUp {
            id: record.id.clone(),
            uses: record.uses,
            max: record.uses_max,
        });
    }
    Ok(())
}

/// active | expired | used_up | revoked
pub fn state(record: &Token, now_ms: i64) -> &'static str {
    if record.revoked_ms > 0 {
        "revoked"
    } else if now_ms >= record.expires_ms {
        "expired"
    } else if record.uses_max > 0 && record.uses >= record.uses_max {
        "used_up"
    } else {
        "active"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_in_order_of_what_matters() {
        let (tok, mut rec) = generate("web", 1000, 2, "admin", 10_000);
        assert_eq!(id_of(&tok), Some(rec.id.as_str()));
        assert_eq!(check(&rec, &tok, 10_500), Ok(()));
        assert_eq!(
            check(&rec, &format!("{tok}x"), 10_500),
            Err(TokenError::Invalid)
        );
        assert!(matches!(
            check(&rec, &tok, 11_000),
            Err(TokenError::Expired { .. })
        ));
        rec.uses = 2;
        assert!(matches!(
            check(&rec, &tok, 10_500),
            Err(TokenError::UsedUp {
                uses: 2,
                max: 2,
                ..
            })
        ));
        assert_eq!(state(&rec, 10_500), "used_up");
        rec.revoked_ms = 1;
        assert!(matches!(
            check(&rec, &tok, 10_500),
            Err(TokenError::Revoked { .. })
        ));
        assert_eq!(state(&rec, 10_500), "revoked");
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        for t in [
            "",
            "dwt_",
            "dwt_zzzzzzzz_x",
            "dwt_abcd_x",
            "abc_12345678_x",
            "dwt_12345678_",
        ] {
            assert_eq!(id_of(t), None, "{t}");
        }
        let (a, _) = generate("g", 1, 0, "a", 0);
        let (b, _) = generate("g", 1, 0, "a", 0);
        assert_ne!(a, b);
    }
}
