//! Access tokens the sandbox issues and accepts (the resource-server half of Login with Amazon).
//!
//! Tokens are stored only as SHA-256 hashes, so the database file never holds a usable credential.

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use crate::error::{SandboxError, SandboxResult};

/// Longest access token accepted (LWA tokens are at most 2048 bytes).
const MAX_TOKEN_LEN: usize = 2048;

/// Hex SHA-256 of a secret, the form in which the database stores it.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random string of `bytes` random bytes, hex-encoded, with `prefix` (e.g. `Atza|`).
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    format!("{prefix}{}", hex::encode(buffer))
}

/// Issues an access token for `user_id` valid for `expires_in` seconds (≤ 0: already expired).
pub async fn issue_access_token(pool: &SqlitePool, user_id: &str, expires_in: i64) -> SandboxResult<String> {
    let token = random_token("Atza|", 32);
    sqlx::query("INSERT INTO access_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
        .bind(hash_secret(&token))
        .bind(user_id)
        .bind(crate::now_secs() + expires_in)
        .execute(pool)
        .await?;
    Ok(token)
}

/// The token presented in `x-amz-access-token` or `Authorization: Bearer`, if any.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER) {
        return value.to_str().ok();
    }
    let authorization = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The customer whose valid access token the request carries.
pub async fn authenticated_customer(pool: &SqlitePool, headers: &HeaderMap) -> SandboxResult<String> {
    let token = presented_token(headers).ok_or(SandboxError::MissingToken)?;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(SandboxError::InvalidToken);
    }
    let user: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?")
            .bind(hash_secret(token))
            .bind(crate::now_secs())
            .fetch_optional(pool)
            .await?;
    user.ok_or(SandboxError::InvalidToken)
}
