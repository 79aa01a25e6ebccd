//! Who is calling a game-facing route: the [`AuthenticatedPlayer`] extractor, the one place a player's studio
//! session is checked (an access token the backend issued when the player linked, see [`crate::link`]) and
//! their game account looked up. A Login with Amazon token is not a session and is refused everywhere.
//!
//! The token is read from `Authorization: Bearer …`, or from `x-amz-access-token`, the header of the
//! Prime Gaming shape the entitlements feed keeps so that a game's pull client works against either.

use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;
use amazon_rewards_protocol::studio::ACCESS_TOKEN_PREFIX;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::AnyPool;

use crate::AppState;
use crate::error::BackendError;

/// What the extractor needs: the database the sessions are in.
#[derive(Clone)]
pub struct PlayerAuth {
    /// Where sessions and game accounts are.
    pub pool: AnyPool,
}

impl FromRef<AppState> for PlayerAuth {
    fn from_ref(state: &AppState) -> Self {
        PlayerAuth { pool: state.pool.clone() }
    }
}

/// The player behind a game request: their game account and the Amazon identity (LWA `user_id`) it is linked
/// to. A handler that takes it is only reached with a live studio session of a working link.
#[derive(Debug, Clone)]
pub struct AuthenticatedPlayer {
    /// `amzn1.account.…`.
    pub amazon_user_id: String,
    /// The game account.
    pub account: Option<String>,
}

impl AuthenticatedPlayer {
    /// The game account, or [`BackendError::NoGameAccount`].
    pub fn account(&self) -> Result<&str, BackendError> {
        self.account.as_deref().ok_or(BackendError::NoGameAccount)
    }
}

/// The session token a request carries, if it has the shape of one.
fn presented_token(headers: &HeaderMap) -> Result<&str, BackendError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let token = bearer
        .or_else(|| headers.get(ACCESS_TOKEN_HEADER).and_then(|v| v.to_str().ok()))
        .filter(|t| !t.is_empty())
        .ok_or(BackendError::MissingToken)?;
    if token.len() > 256 || !token.starts_with(ACCESS_TOKEN_PREFIX) {
        return Err(BackendError::InvalidToken);
    }
    Ok(token)
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedPlayer
where
    PlayerAuth: FromRef<S>,
{
    type Rejection = BackendError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BackendError> {
        let auth = PlayerAuth::from_ref(state);
        let token = presented_token(&parts.headers)?;
        let holder = crate::link::sessions::holder(&auth.pool, token).await?.ok_or(BackendError::InvalidToken)?;
        player_of(holder)
    }
}

fn player_of(holder: crate::link::sessions::SessionHolder) -> Result<AuthenticatedPlayer, BackendError> {
    if holder.link_broken {
        return Err(BackendError::LinkBroken);
    }
    let amazon_user_id = holder.amazon_user_id.ok_or(BackendError::NoGameAccount)?;
    Ok(AuthenticatedPlayer { amazon_user_id, account: Some(holder.user_id) })
}

/// The player behind `headers` and their inventory version, in one read (coalesced with other requests'):
/// the unchanged sync's whole cost.
pub(crate) async fn with_inventory_version(
    reads: &crate::inventory::unchanged::UnchangedReads,
    headers: &HeaderMap,
) -> Result<(AuthenticatedPlayer, i64), BackendError> {
    let token = presented_token(headers)?;
    let token_hash = crate::link::sessions::token_hash(token);
    let (holder, version) = reads.holder_and_version(token_hash).await?.ok_or(BackendError::InvalidToken)?;
    Ok((player_of(holder)?, version))
}

/// The player presenting `headers`' session, the first answer stored for their spend `key` and their holdings,
/// in one read.
pub(crate) async fn with_stored_spend(
    connection: &mut sqlx::AnyConnection,
    headers: &HeaderMap,
    key: &str,
) -> Result<(AuthenticatedPlayer, crate::inventory::spend::Prior), BackendError> {
    let token = presented_token(headers)?;
    let (holder, stored) =
        crate::link::sessions::holder_and_spend(connection, token, key).await?.ok_or(BackendError::InvalidToken)?;
    Ok((player_of(holder)?, stored))
}
