//! The entitlements feed for the game: the same shape as Prime Gaming's (`GET /api/entitlements`,
//! `POST /api/fulfill`), authenticated by the player's Login with Amazon access token (checked with LWA's
//! tokeninfo endpoint, which must say the token was issued to one of the game's client ids; verdicts cached), serving what the player bought through Instant Access and their
//! subscriptions, each with its source. Revoked purchases and ended subscriptions come with
//! `NextInstruction: REVOKE` until the game reports the revocation done.
//!
//! With a Prime Gaming relay configured, the player's Prime Gaming entitlements are merged in (ids `pg:…`),
//! and their reports relayed (see [`crate::prime_relay`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::prime_gaming::{
    ACCESS_TOKEN_HEADER, ENTITLEMENTS_PATH, Entitlement, EntitlementsPage, FULFILL_PATH, FulfillRequest,
    FulfillResponse, FulfillResult, FulfillmentStatusUpdateResult, LastInstruction, NextInstruction,
};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use tokio::sync::Mutex;

use crate::AppState;

/// How long a verified access token is trusted without asking LWA again (never past its own expiry).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long a refused token stays refused without asking LWA again, so random tokens cannot make the backend
/// hammer LWA.
const REFUSAL_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most verdicts cached; past it, stale ones are dropped, then the oldest half.
const MAX_CACHED_VERDICTS: usize = 100_000;
/// Largest tokeninfo answer read.
const MAX_TOKENINFO_BYTES: usize = 16 * 1024;
/// Most updates accepted in one fulfil call.
const MAX_UPDATES: usize = 1000;

/// Source names in the feed.
pub const SOURCE_INSTANT_ACCESS: &str = "INSTANT_ACCESS";
/// Source of subscription entitlements.
pub const SOURCE_SUBSCRIPTION: &str = "SUBSCRIPTION";

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
    async fn amazon_user(&self, token: &str) -> Result<String, FeedError> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        if let Some((verdict, until)) = self.cache.lock().await.get(&key)
            && Instant::now() < *until
        {
            return verdict.clone().ok_or(FeedError::InvalidToken);
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
        verdict.ok_or(FeedError::InvalidToken)
    }

    /// LWA's tokeninfo for `token`: `None` when LWA refuses it, an error when LWA cannot be asked.
    async fn ask(&self, token: &str) -> Result<Option<amazon_rewards_protocol::lwa::TokenInfo>, FeedError> {
        if self.audiences.is_empty() || token.is_empty() || token.len() > amazon_rewards_protocol::lwa::MAX_TOKEN_BYTES
        {
            return Ok(None);
        }
        let Some(url) = self.tokeninfo_url.as_deref() else {
            return Ok(None);
        };
        let sent = self.http.get(url).query(&[("access_token", token)]).send().await;
        let response = sent.map_err(|_| FeedError::Unavailable)?;
        match response.status().as_u16() {
            200 => {}
            400 | 401 | 403 => return Ok(None),
            _ => return Err(FeedError::Unavailable),
        }
        let body = crate::read_capped(response, MAX_TOKENINFO_BYTES).await.map_err(|_| FeedError::Unavailable)?;
        serde_json::from_slice(&body).map(Some).map_err(|_| FeedError::Unavailable)
    }
}

/// Why a feed request failed.
#[derive(Debug)]
enum FeedError {
    MissingToken,
    /// Amazon answers expired or unknown tokens with 400; so does the feed.
    InvalidToken,
    Unavailable,
    BadRequest(String),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for FeedError {
    fn from(error: sqlx::Error) -> Self {
        FeedError::Database(error)
    }
}

impl IntoResponse for FeedError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            FeedError::MissingToken => (StatusCode::UNAUTHORIZED, "invalid_request", "missing access token".to_owned()),
            FeedError::InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token", "access token refused".to_owned()),
            FeedError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "cannot verify the token now".to_owned())
            }
            FeedError::BadRequest(message) => (StatusCode::BAD_REQUEST, "invalid_request", message),
            FeedError::Database(error) => {
                tracing::error!(%error, "feed database error");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "database error".to_owned())
            }
        };
        (status, Json(serde_json::json!({"error": code, "error_description": description}))).into_response()
    }
}

/// Routes of the feed.
pub fn router() -> Router<AppState> {
    Router::new().route(ENTITLEMENTS_PATH, get(entitlements)).route(FULFILL_PATH, post(fulfill))
}

/// The game account linked to the request's Amazon identity, for other modules' routes.
pub(crate) async fn player_of(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, Response> {
    player(state, headers).await.map_err(IntoResponse::into_response)
}

/// The Amazon identity (LWA `user_id`) behind the request's access token, for other modules' routes.
pub(crate) async fn amazon_user_of(state: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    amazon_user(state, headers).await.map_err(IntoResponse::into_response)
}

/// Both: the Amazon identity behind the request, and the game account linked to it, if any.
pub(crate) async fn identities_of(state: &AppState, headers: &HeaderMap) -> Result<(String, Option<String>), Response> {
    let amazon_user = amazon_user_of(state, headers).await?;
    let account = account_of(state, &amazon_user).await.map_err(IntoResponse::into_response)?;
    Ok((amazon_user, account))
}

async fn amazon_user(state: &AppState, headers: &HeaderMap) -> Result<String, FeedError> {
    let token = headers
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty() && t.len() <= amazon_rewards_protocol::lwa::MAX_TOKEN_BYTES)
        .ok_or(FeedError::MissingToken)?;
    Ok(state.tokens.amazon_user(token).await?)
}

async fn account_of(state: &AppState, amazon_user: &str) -> Result<Option<String>, FeedError> {
    Ok(sqlx::query_scalar("SELECT user_id FROM accounts WHERE amazon_user_id = $1")
        .bind(amazon_user)
        .fetch_optional(&state.pool)
        .await?)
}

/// The game account linked to the request's Amazon identity, if any.
async fn player(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, FeedError> {
    account_of(state, &amazon_user(state, headers).await?).await
}

async fn entitlements(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<EntitlementsPage>, FeedError> {
    let Some(user_id) = player(&state, &headers).await? else {
        return Ok(Json(EntitlementsPage::default()));
    };
    let mut entitlements = feed(&state.pool, &user_id).await?;
    if let Some(devpay) = &state.devpay {
        entitlements.extend(crate::devpay::feed(&state.pool, devpay, &user_id).await?);
    }
    if let Some(prime) = &state.prime {
        match prime.entitlements(&state.pool, &user_id).await {
            Ok(relayed) => entitlements.extend(relayed),
            // The rest of the feed is still served; the game pulls again later.
            Err(error) => tracing::warn!(%error, "Prime Gaming relay unavailable"),
        }
    }
    Ok(Json(EntitlementsPage { entitlements, next_token: None }))
}

/// Key, product, revoked/active flag, fulfilled at, revocation reported at.
pub(crate) type FeedRow = (String, String, i64, Option<i64>, Option<i64>);

/// What the game should do now, for one player.
pub async fn feed(pool: &AnyPool, user_id: &str) -> Result<Vec<Entitlement>, sqlx::Error> {
    let mut entitlements = Vec::new();
    let purchases: Vec<FeedRow> = sqlx::query_as(
        "SELECT purchase_token, product_id, revoked, fulfilled_at, revoke_reported_at FROM ia_purchases
         WHERE user_id = $1 ORDER BY created_at, purchase_token",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (token, product, revoked, fulfilled_at, revoke_reported_at) in purchases {
        let instruction = match (revoked != 0, fulfilled_at, revoke_reported_at) {
            // Revoked: REVOKE until reported, even if the fulfilment report never arrived (the game may have
            // granted it all the same).
            (true, _, None) => NextInstruction::Revoke,
            (false, None, _) => NextInstruction::Fulfill,
            _ => continue,
        };
        entitlements.push(Entitlement {
            entitlement_id: format!("ia:{token}"),
            vendor_product_id: product,
            next_instruction: instruction,
            source: Some(SOURCE_INSTANT_ACCESS.into()),
            active_until: None,
        });
    }
    let subscriptions: Vec<FeedRow> = sqlx::query_as(
        "SELECT subscription_id, product_id, active, fulfilled_at, revoke_reported_at FROM ia_subscriptions
         WHERE user_id = $1 ORDER BY activated_at, subscription_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (id, product, active, fulfilled_at, revoke_reported_at) in subscriptions {
        let instruction = match (active != 0, fulfilled_at, revoke_reported_at) {
            (false, _, None) => NextInstruction::Revoke,
            (true, None, _) => NextInstruction::Fulfill,
            _ => continue,
        };
        entitlements.push(Entitlement {
            entitlement_id: format!("sub:{id}"),
            vendor_product_id: product,
            next_instruction: instruction,
            source: Some(SOURCE_SUBSCRIPTION.into()),
            active_until: None,
        });
    }
    Ok(entitlements)
}

async fn fulfill(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<FulfillRequest>, JsonRejection>,
) -> Result<Json<FulfillResponse>, FeedError> {
    let user_id = player(&state, &headers).await?;
    let Json(request) = body.map_err(|e| FeedError::BadRequest(e.body_text()))?;
    if request.fulfillment_status_updates.len() > MAX_UPDATES {
        return Err(FeedError::BadRequest(format!("at most {MAX_UPDATES} updates per call")));
    }
    let now = crate::now_secs();
    let (relayed, own): (Vec<_>, Vec<_>) = request
        .fulfillment_status_updates
        .into_iter()
        .partition(|u| u.entitlement_id.starts_with(crate::prime_relay::ID_PREFIX));
    let mut results = Vec::with_capacity(relayed.len() + own.len());
    if !relayed.is_empty() {
        // Relayed first: if Prime Gaming is down the whole call fails and the game retries (recording is idempotent).
        let (Some(prime), Some(user_id)) = (&state.prime, &user_id) else {
            return Err(FeedError::BadRequest("no Prime Gaming relay for this player".into()));
        };
        let request = FulfillRequest {
            fulfillment_status_updates: relayed
                .into_iter()
                .map(|mut u| {
                    u.entitlement_id = u.entitlement_id[crate::prime_relay::ID_PREFIX.len()..].to_owned();
                    u
                })
                .collect(),
        };
        let answer = prime.fulfill(&state.pool, user_id, &request).await.map_err(|error| {
            tracing::warn!(%error, "Prime Gaming relay could not report fulfilment");
            FeedError::Unavailable
        })?;
        results.extend(answer.fulfillment_status_updates.into_iter().map(|mut r| {
            r.entitlement_id = format!("{}{}", crate::prime_relay::ID_PREFIX, r.entitlement_id);
            r
        }));
    }
    for update in own {
        let recorded = match &user_id {
            Some(user_id) => record(&state.pool, user_id, &update.entitlement_id, update.last_instruction, now).await?,
            None => false,
        };
        results.push(FulfillmentStatusUpdateResult {
            entitlement_id: update.entitlement_id,
            result: if recorded { FulfillResult::Success } else { FulfillResult::Error },
            reason: (!recorded).then(|| "UNKNOWN_ENTITLEMENT".to_owned()),
        });
    }
    Ok(Json(FulfillResponse { fulfillment_status_updates: results }))
}

/// Records a report; reporting the same thing again is a success that changes nothing.
async fn record(
    pool: &AnyPool,
    user_id: &str,
    entitlement_id: &str,
    status: LastInstruction,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (sql, key) = match (entitlement_id.split_once(':'), status) {
        (Some(("ia", token)), LastInstruction::Fulfill) => (
            "UPDATE ia_purchases SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE purchase_token = $2 AND user_id = $3",
            token,
        ),
        (Some(("ia", token)), LastInstruction::Revoke) => (
            "UPDATE ia_purchases SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE purchase_token = $2 AND user_id = $3 AND revoked = 1",
            token,
        ),
        (Some(("sub", id)), LastInstruction::Fulfill) => (
            "UPDATE ia_subscriptions SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE subscription_id = $2 AND user_id = $3",
            id,
        ),
        (Some(("devpay", pid)), LastInstruction::Fulfill) => (
            "UPDATE devpay_subscriptions SET fulfilled_at = COALESCE(fulfilled_at, $1) WHERE persistent_id = $2 AND user_id = $3",
            pid,
        ),
        (Some(("devpay", pid)), LastInstruction::Revoke) => (
            "UPDATE devpay_subscriptions SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE persistent_id = $2 AND user_id = $3 AND subscribed = 0",
            pid,
        ),
        (Some(("sub", id)), LastInstruction::Revoke) => (
            "UPDATE ia_subscriptions SET revoke_reported_at = COALESCE(revoke_reported_at, $1)
             WHERE subscription_id = $2 AND user_id = $3 AND active = 0",
            id,
        ),
        _ => return Ok(false),
    };
    let updated = sqlx::query(sql).bind(now).bind(key).bind(user_id).execute(pool).await?;
    Ok(updated.rows_affected() == 1)
}

/// Shared verifier type.
pub type SharedVerifier = Arc<TokenVerifier>;
