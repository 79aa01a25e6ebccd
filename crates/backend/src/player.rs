//! Who is calling a game-facing route: the [`AuthenticatedPlayer`] extractor, the one place a player's Login
//! with Amazon access token (`x-amz-access-token`) is checked and their game account looked up, and the
//! [`TokenVerifier`] that asks LWA's tokeninfo endpoint whether a token is live and issued (`aud`) to one of
//! the game's client ids, caching verdicts both ways.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use tokio::sync::Mutex;

use crate::AppState;
use crate::error::BackendError;

/// How long a verified access token is trusted without asking LWA again (never past its own expiry).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long a refused token stays refused without asking LWA again, so random tokens cannot make the backend
/// hammer LWA.
const REFUSAL_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most verdicts cached; past it, stale ones are dropped, then the oldest half.
const MAX_CACHED_VERDICTS: usize = 100_000;
/// Largest tokeninfo answer read.
const MAX_TOKENINFO_BYTES: usize = 16 * 1024;
/// What LWA said about a token: whose it is, or that it is refused; and until when to believe it.
type Verdict = (Option<String>, Instant);

/// Verifies players' access tokens with Login with Amazon's tokeninfo endpoint: the token must be live and
/// issued (`aud`) to one of the game's client ids. Verdicts are cached both ways by token hash.
pub struct TokenVerifier {
    tokeninfo_url: Option<String>,
    audiences: Vec<String>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Verdict>>,
}

impl TokenVerifier {
    /// A verifier asking `tokeninfo_url` (e.g. `https://api.amazon.com/auth/o2/tokeninfo`) and accepting tokens
    /// issued to `audiences` (the game's LWA client ids). Without either, every token is refused.
    pub fn new(tokeninfo_url: Option<String>, audiences: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        if audiences.is_empty() {
            tracing::warn!("no game client id (--game-client-id): the entitlements feed refuses every token");
        }
        Self { tokeninfo_url, audiences, http, cache: Mutex::new(HashMap::new()) }
    }

    /// The Amazon user id of the token's owner.
    async fn amazon_user(&self, token: &str) -> Result<String, BackendError> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        if let Some((verdict, until)) = self.cache.lock().await.get(&key)
            && Instant::now() < *until
        {
            return verdict.clone().ok_or(BackendError::InvalidToken);
        }
        let (verdict, ttl) = match self.ask(token).await? {
            Some(info) if self.audiences.contains(&info.aud) => {
                let ttl = TOKEN_CACHE_TTL.min(Duration::from_secs(info.exp.unwrap_or(0)));
                (Some(info.user_id), ttl)
            }
            Some(_) => {
                tracing::warn!("refused an access token issued to another LWA client");
                (None, REFUSAL_CACHE_TTL)
            }
            None => (None, REFUSAL_CACHE_TTL),
        };
        let mut cache = self.cache.lock().await;
        if cache.len() >= MAX_CACHED_VERDICTS {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED_VERDICTS / 2 {
                cache.clear();
            }
        }
        cache.insert(key, (verdict.clone(), Instant::now() + ttl));
        verdict.ok_or(BackendError::InvalidToken)
    }

    /// LWA's tokeninfo for `token`: `None` when LWA refuses it, an error when LWA cannot be asked.
    async fn ask(&self, token: &str) -> Result<Option<amazon_rewards_protocol::lwa::TokenInfo>, BackendError> {
        if self.audiences.is_empty() || token.is_empty() || token.len() > amazon_rewards_protocol::lwa::MAX_TOKEN_BYTES
        {
            return Ok(None);
        }
        let Some(url) = self.tokeninfo_url.as_deref() else {
            return Ok(None);
        };
        let sent = self.http.get(url).query(&[("access_token", token)]).send().await;
        let response = sent.map_err(|_| BackendError::TokenCheckUnavailable)?;
        match response.status().as_u16() {
            200 => {}
            400 | 401 | 403 => return Ok(None),
            _ => return Err(BackendError::TokenCheckUnavailable),
        }
        let body =
            crate::read_capped(response, MAX_TOKENINFO_BYTES).await.map_err(|_| BackendError::TokenCheckUnavailable)?;
        serde_json::from_slice(&body).map(Some).map_err(|_| BackendError::TokenCheckUnavailable)
    }
}

/// Verifies players' tokens, shared by every route.
pub type SharedVerifier = Arc<TokenVerifier>;

/// What the extractor needs: the verifier and the database.
#[derive(Clone)]
pub struct PlayerAuth {
    /// Checks tokens with LWA.
    pub verifier: SharedVerifier,
    /// Where game accounts are.
    pub pool: AnyPool,
}

impl FromRef<AppState> for PlayerAuth {
    fn from_ref(state: &AppState) -> Self {
        PlayerAuth { verifier: state.tokens.clone(), pool: state.pool.clone() }
    }
}

/// The player behind a game request: the Amazon identity (LWA `user_id`) their access token was issued for,
/// and the game account linked to it, if any. A handler that takes it is only reached with a valid token.
#[derive(Debug, Clone)]
pub struct AuthenticatedPlayer {
    /// `amzn1.account.…`.
    pub amazon_user_id: String,
    /// The game account, when one is linked.
    pub account: Option<String>,
}

impl AuthenticatedPlayer {
    /// The game account, or [`BackendError::NoGameAccount`].
    pub fn account(&self) -> Result<&str, BackendError> {
        self.account.as_deref().ok_or(BackendError::NoGameAccount)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedPlayer
where
    PlayerAuth: FromRef<S>,
{
    type Rejection = BackendError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BackendError> {
        let auth = PlayerAuth::from_ref(state);
        let token = parts
            .headers
            .get(ACCESS_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty() && t.len() <= amazon_rewards_protocol::lwa::MAX_TOKEN_BYTES)
            .ok_or(BackendError::MissingToken)?;
        let amazon_user_id = auth.verifier.amazon_user(token).await?;
        let account = crate::accounts::by_amazon_user(&auth.pool, &amazon_user_id).await?;
        Ok(AuthenticatedPlayer { amazon_user_id, account })
    }
}
