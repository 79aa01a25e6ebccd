//! Code pairing run by the backend: the game asks `/link/auth/o2/create/codepair` (LWA's shape); the backend
//! asks LWA for a code pair with its own security profile, keeps LWA's device code (sealed) and answers the
//! game LWA's user code and page with a device code of its own. The game polls the backend's token endpoint;
//! the backend polls LWA at most once per LWA interval per pairing whichever process the game reaches (the
//! next poll time is claimed in the database), so the game's polls are cheap reads in between.

use amazon_rewards_protocol::lwa::{CODEPAIR_PATH, DeviceCodeResponse, TOKEN_PATH, TokenResponse};
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::identity::{self, AmazonGrant};
use super::{LinkState, oauth_error, read_profile, sessions};
use crate::error::BackendError;
use crate::sealed::{open, seal};

/// LWA's answer caps: a code pair or token answer is small.
const MAX_LWA_ANSWER_BYTES: usize = 16 * 1024;
/// Bounds on LWA's numbers: poll interval and code lifetime, in seconds.
const INTERVAL_BOUNDS: (i64, i64) = (1, 60);
const MAX_LIFETIME: i64 = 3600;
/// Most pairings started per minute across every backend process (an unauthenticated route).
const MAX_PAIRINGS_PER_MINUTE: i64 = 600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct CodePairForm {
    /// `device_code`.
    #[serde(default)]
    #[schema(example = "device_code")]
    response_type: String,
    /// The game's client id at the backend.
    #[serde(default)]
    client_id: String,
}

/// Starts a pairing: LWA's code pair, the backend's own device code.
#[utoipa::path(post, context_path = amazon_rewards_protocol::studio::LINK_API_PREFIX, path = CODEPAIR_PATH, tag = "link",
    request_body(content = CodePairForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = DeviceCodeResponse)))]
pub(super) async fn codepair(
    State(state): State<LinkState>,
    form: Result<Form<CodePairForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "malformed form") };
    if form.response_type != "device_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_response_type", "response_type must be device_code");
    }
    if !state.knows_game(&form.client_id) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "this game is not known to the studio backend");
    }
    match start(&state, &form.client_id).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn start(state: &LinkState, client_id: &str) -> Result<DeviceCodeResponse, BackendError> {
    let now = crate::now_secs();
    sqlx::query("DELETE FROM link_pairings WHERE expires_at < $1").bind(now - 3600).execute(&state.pool).await?;
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM link_pairings WHERE expires_at > $1")
        .bind(now)
        .fetch_one(&state.pool)
        .await?;
    if recent >= MAX_PAIRINGS_PER_MINUTE * 10 {
        return Err(BackendError::Unavailable);
    }
    let scope =
        format!("{} {}", amazon_rewards_protocol::lwa::SCOPE_PROFILE, amazon_rewards_protocol::lwa::SCOPE_PRIME_GAMING);
    let form = [("response_type", "device_code"), ("client_id", state.lwa.client_id.as_str()), ("scope", &scope)];
    let pair: DeviceCodeResponse = post_lwa(state, CODEPAIR_PATH, &form).await.map_err(|why| {
        tracing::warn!(why, "LWA code pair unavailable");
        BackendError::Unavailable
    })?;
    let interval = (pair.interval as i64).clamp(INTERVAL_BOUNDS.0, INTERVAL_BOUNDS.1);
    let lifetime = (pair.expires_in as i64).clamp(1, MAX_LIFETIME);
    let device_code = format!("rs_dc.{}", crate::random_hex(24));
    let hash = sessions::token_hash(&device_code);
    sqlx::query(
        "INSERT INTO link_pairings (device_hash, client_id, lwa_device_code, user_code, interval_secs, next_poll_at,
             expires_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
    )
    .bind(&hash)
    .bind(client_id)
    .bind(seal(state.token_key.as_deref(), &hash, &pair.device_code))
    .bind(&pair.user_code)
    .bind(interval)
    .bind(now + interval)
    .bind(now + lifetime)
    .execute(&state.pool)
    .await?;
    Ok(DeviceCodeResponse {
        device_code,
        user_code: pair.user_code,
        verification_uri: pair.verification_uri,
        expires_in: lifetime as u64,
        interval: interval as u64,
    })
}

/// Posts a form to LWA and reads its JSON answer (capped); an OAuth error body comes back as `Err(error code)`.
async fn post_lwa<T: serde::de::DeserializeOwned>(
    state: &LinkState,
    path: &str,
    form: &[(&str, &str)],
) -> Result<T, String> {
    let url = format!("{}{path}", state.lwa.api_url.trim_end_matches('/'));
    let response = state.oauth_http.post(url).form(form).send().await.map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let body = crate::read_capped(response, MAX_LWA_ANSWER_BYTES).await?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| e.to_string());
    }
    let refusal: amazon_rewards_protocol::lwa::OAuthErrorBody =
        serde_json::from_slice(&body).map_err(|_| format!("HTTP {} without an OAuth error body", status.as_u16()))?;
    Err(refusal.error)
}

/// Client, sealed LWA device code, user code, interval, next poll, expiry, status, account.
type PairingRow = (String, String, String, i64, i64, i64, String, Option<String>);

/// The game polls (`device_code` grant): pending until the player approved at LWA, then a studio session, once.
pub(super) async fn poll(state: &LinkState, device_code: &str, client_id: &str) -> Result<TokenResponse, BackendError> {
    let hash = sessions::token_hash(device_code);
    let row: Option<PairingRow> = sqlx::query_as(
        "SELECT client_id, lwa_device_code, user_code, interval_secs, next_poll_at, expires_at, status, user_id
         FROM link_pairings WHERE device_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&state.pool)
    .await?;
    let refused = |code: &str, why: &str| BackendError::refused(StatusCode::BAD_REQUEST, code, why);
    let Some((owner, sealed, user_code, interval, next_poll_at, expires_at, status, _)) = row else {
        return Err(refused("invalid_grant", "unknown device code"));
    };
    if !client_id.is_empty() && owner != client_id {
        return Err(refused("invalid_grant", "the device code belongs to another client"));
    }
    let now = crate::now_secs();
    match status.as_str() {
        "approved" => return redeem(state, &hash, &owner).await,
        "denied" => return Err(refused("access_denied", "the player declined")),
        "pending" if expires_at <= now => return Err(refused("expired_token", "the code expired")),
        "pending" => {}
        _ => return Err(refused("invalid_grant", "the device code was used already")),
    }
    if next_poll_at > now || !claim_poll(state, &hash, now, interval).await? {
        return Err(refused("authorization_pending", "the player has not entered the code yet"));
    }
    let lwa_code =
        open(state.token_key.as_deref(), &hash, &sealed).map_err(|_| refused("invalid_grant", "unusable"))?;
    ask_lwa(state, &hash, &lwa_code, &user_code).await?;
    redeem(state, &hash, &owner).await
}

/// Claims this pairing's next LWA poll (one process wins per interval).
async fn claim_poll(state: &LinkState, hash: &str, now: i64, interval: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE link_pairings SET next_poll_at = $1 WHERE device_hash = $2 AND status = 'pending' AND next_poll_at <= $3",
    )
    .bind(now + interval)
    .bind(hash)
    .bind(now)
    .execute(&state.pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Polls LWA once; on approval links the identity and marks the pairing approved.
async fn ask_lwa(state: &LinkState, hash: &str, lwa_code: &str, user_code: &str) -> Result<(), BackendError> {
    let refused = |code: &str, why: &str| BackendError::refused(StatusCode::BAD_REQUEST, code, why);
    let form = [
        ("grant_type", amazon_rewards_protocol::lwa::DEVICE_CODE_GRANT),
        ("device_code", lwa_code),
        ("user_code", user_code),
    ];
    let tokens: TokenResponse = match post_lwa(state, TOKEN_PATH, &form).await {
        Ok(tokens) => tokens,
        Err(code) if code == "authorization_pending" => {
            return Err(refused("authorization_pending", "not entered yet"));
        }
        Err(code) if code == "slow_down" => {
            sqlx::query("UPDATE link_pairings SET interval_secs = CASE WHEN interval_secs > 55 THEN 60 ELSE interval_secs + 5 END WHERE device_hash = $1")
                .bind(hash)
                .execute(&state.pool)
                .await
                .ok();
            return Err(refused("slow_down", "polling too often"));
        }
        Err(code) if code == "access_denied" || code == "expired_token" => {
            let status = if code == "access_denied" { "denied" } else { "expired" };
            sqlx::query("UPDATE link_pairings SET status = $1 WHERE device_hash = $2")
                .bind(status)
                .bind(hash)
                .execute(&state.pool)
                .await?;
            return Err(refused(&code, "Login with Amazon ended the pairing"));
        }
        Err(why) => {
            tracing::warn!(why, "LWA device poll failed");
            return Err(refused("authorization_pending", "Login with Amazon did not answer; polling again"));
        }
    };
    let profile = read_profile(state, &tokens.access_token).await.map_err(|_| BackendError::Unavailable)?;
    let grant = AmazonGrant {
        profile,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_in: std::time::Duration::from_secs(tokens.expires_in),
    };
    let user_id = identity::link(&state.pool, state.token_key.as_deref(), &grant).await?;
    sqlx::query(
        "UPDATE link_pairings SET status = 'approved', user_id = $1 WHERE device_hash = $2 AND status = 'pending'",
    )
    .bind(&user_id)
    .bind(hash)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Turns an approved pairing into a studio session, once.
async fn redeem(state: &LinkState, hash: &str, client_id: &str) -> Result<TokenResponse, BackendError> {
    let mut tx = state.pool.begin().await?;
    let user_id = sqlx::query_scalar::<_, Option<String>>(
        "UPDATE link_pairings SET status = 'redeemed' WHERE device_hash = $1 AND status = 'approved' RETURNING user_id",
    )
    .bind(hash)
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let Some(user_id) = user_id else {
        return Err(BackendError::refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the device code was used already",
        ));
    };
    let issued = sessions::start(&mut tx, &user_id, client_id).await?;
    tx.commit().await?;
    tracing::info!(user_id, "linked by code pairing");
    Ok(issued.answer())
}
