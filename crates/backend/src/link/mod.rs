//! Linking a player's Amazon account to their game account, run by the backend (the backend mode's login).
//! The backend is the Login with Amazon client for linking and for the Prime Gaming relay (one security
//! profile, the backend's: LWA binds a refresh token to the client that obtained it), and the game's own
//! OAuth 2.0 authorization server: the game links in the browser ([`browser`]) or by code pairing
//! ([`pairing`]) and receives a studio session ([`sessions`]), never an LWA token. Unlinking deletes what
//! the backend stored of the Amazon account ([`identity`]). Every game-facing route takes the session
//! through [`AuthenticatedPlayer`](crate::player::AuthenticatedPlayer).

pub(crate) mod browser;
pub(crate) mod identity;
pub(crate) mod pairing;
pub(crate) mod sessions;
mod token;

use std::sync::Arc;

use amazon_rewards_protocol::lwa::{PROFILE_PATH, Profile};
use amazon_rewards_protocol::studio::{LINK_API_PREFIX, LINK_CALLBACK_PATH, LINK_REVOKE_PATH, LINK_UNLINK_PATH};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::BackendError;
use crate::player::{AuthenticatedPlayer, PlayerAuth};
use crate::signup::{ConfidentialClient, LwaClient};

/// What the linking routes work with; they exist only when the backend has its own LWA client.
#[derive(Clone)]
pub struct LinkState {
    /// The database.
    pub pool: sqlx::AnyPool,
    /// The backend's Login with Amazon client.
    pub lwa: Arc<LwaClient>,
    /// Calls to Login with Amazon (no redirects followed).
    pub oauth_http: reqwest::Client,
    /// Seals LWA tokens at rest, when configured.
    pub token_key: Option<Arc<crate::sealed::TokenKey>>,
    /// The game's client ids at the backend: only they may link.
    pub game_client_ids: Arc<[String]>,
}

impl LinkState {
    /// Whether `client_id` is one of the game's client ids at the backend (only they may link).
    pub(crate) fn knows_game(&self, client_id: &str) -> bool {
        self.game_client_ids.iter().any(|id| id == client_id)
    }

    fn oauth(&self) -> Result<ConfidentialClient, String> {
        crate::signup::oauth_client_returning_to(&self.lwa, LINK_CALLBACK_PATH)
            .map_err(|error| format!("Login with Amazon is misconfigured: {error}"))
    }
}

/// The linking routes, with their state.
pub fn router(state: LinkState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(browser::authorize))
        .routes(routes!(browser::callback))
        .routes(routes!(token::token))
        .routes(routes!(pairing::codepair))
        .routes(routes!(profile))
        .routes(routes!(sign_out))
        .routes(routes!(unlink))
        .with_state(state)
}

/// An RFC 6749 §5.2 error answer.
pub(crate) fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    BackendError::refused(status, code, description).into_response()
}

/// Most bytes of LWA's profile answer read.
const MAX_PROFILE_BYTES: usize = 16 * 1024;

/// LWA's profile of the holder of `access_token` (an LWA token the backend just obtained).
pub(crate) async fn read_profile(state: &LinkState, access_token: &str) -> Result<Profile, String> {
    lwa_profile(&state.oauth_http, &state.lwa, access_token).await
}

/// LWA's profile endpoint for `access_token`, read with a cap and checked for a usable `user_id`.
pub(crate) async fn lwa_profile(
    http: &reqwest::Client,
    lwa: &LwaClient,
    access_token: &str,
) -> Result<Profile, String> {
    let url = format!("{}{PROFILE_PATH}", lwa.api_url.trim_end_matches('/'));
    let response = http.get(url).bearer_auth(access_token).send().await.map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("the profile endpoint answered HTTP {}", response.status().as_u16()));
    }
    let body = crate::read_capped(response, MAX_PROFILE_BYTES).await?;
    let profile: Profile = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if profile.user_id.is_empty() || profile.user_id.len() > 256 {
        return Err("a profile without a usable user_id".into());
    }
    Ok(profile)
}

/// The linked player's profile, as the game's flows read it from LWA: the Amazon `user_id` and the display
/// name (never the e-mail: the game has no use for it).
#[utoipa::path(get, context_path = LINK_API_PREFIX, path = PROFILE_PATH, tag = "link", security(("session" = [])),
    responses((status = 200, body = Profile)))]
async fn profile(State(state): State<LinkState>, player: AuthenticatedPlayer) -> Result<Json<Profile>, BackendError> {
    let account = player.account()?.to_owned();
    let name = identity::profile_name(&state.pool, &account).await?.unwrap_or_default();
    Ok(Json(Profile { user_id: player.amazon_user_id, name, email: None }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RevokeForm {
    #[serde(default)]
    token: String,
}

/// Sign-out (RFC 7009): ends the session the token belongs to; `200` whatever the token.
#[utoipa::path(post, path = LINK_REVOKE_PATH, tag = "link",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Signed out (whatever the token)")))]
async fn sign_out(State(state): State<LinkState>, form: Result<Form<RevokeForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "malformed form") };
    if form.token.is_empty() || form.token.len() > 256 {
        return StatusCode::OK.into_response();
    }
    match sessions::sign_out(&state.pool, &form.token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => BackendError::from(error).into_response(),
    }
}

/// Unlink: the Amazon link, its tokens and profile go; the game account and its purchases stay.
#[utoipa::path(post, path = LINK_UNLINK_PATH, tag = "link", security(("session" = [])),
    responses((status = 200, description = r#"{"unlinked": true}"#)))]
async fn unlink(
    State(state): State<LinkState>,
    player: AuthenticatedPlayer,
) -> Result<Json<serde_json::Value>, BackendError> {
    let account = player.account()?.to_owned();
    identity::unlink(&state.pool, &account, &player.amazon_user_id).await?;
    tracing::info!(user_id = account, "unlinked from Amazon at the player's request");
    Ok(Json(serde_json::json!({ "unlinked": true })))
}

/// The operator's session routes, nested under `/admin`: `POST /admin/sessions/revoke {"user_id"}` ends every
/// session of a game account.
pub fn admin_router() -> Router<crate::AppState> {
    Router::new().route("/sessions/revoke", post(revoke_account))
}

#[derive(Debug, Deserialize)]
struct RevokeAccount {
    user_id: String,
}

async fn revoke_account(
    State(state): State<crate::AppState>,
    body: Result<Json<RevokeAccount>, JsonRejection>,
) -> Result<Json<serde_json::Value>, BackendError> {
    let Json(request) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let mut tx = state.pool.begin().await?;
    let ended = sessions::end_all(&mut tx, &state.pool, &request.user_id, "operator").await?;
    tx.commit().await?;
    tracing::info!(user_id = request.user_id, ended, "sessions ended by the operator");
    Ok(Json(serde_json::json!({ "ended": ended })))
}

impl FromRef<LinkState> for PlayerAuth {
    fn from_ref(state: &LinkState) -> Self {
        PlayerAuth { pool: state.pool.clone() }
    }
}

/// A studio session started without a link flow ([`session_without_link`]).
#[derive(Debug, Clone)]
pub struct UnlinkedSession {
    /// The game account's user id (the inventory's owner).
    pub user_id: String,
    /// The session's tokens, as a game receives them.
    pub tokens: amazon_rewards_protocol::lwa::TokenResponse,
}

/// Starts a studio session for the Amazon identity `amazon_user_id` without a link flow: its game account is
/// found or created, and no Amazon token is stored (so nothing is relayed from Prime Gaming for it). For
/// examples, tests and support tools that hold the database; players get their sessions by linking.
///
/// ```no_run
/// # async fn seed(pool: &sqlx::AnyPool) -> Result<(), sqlx::Error> {
/// let session = amazon_rewards_backend::link::session_without_link(pool, "amzn1.account.TEST", "game").await?;
/// println!("{} holds {}", session.user_id, session.tokens.access_token);
/// # Ok(()) }
/// ```
pub async fn session_without_link(
    pool: &sqlx::AnyPool,
    amazon_user_id: &str,
    client_id: &str,
) -> Result<UnlinkedSession, sqlx::Error> {
    let user_id = crate::accounts::claim_for_amazon_user(pool, amazon_user_id, "player").await?;
    let mut tx = pool.begin().await?;
    let issued = sessions::start(&mut tx, &user_id, client_id).await?;
    tx.commit().await?;
    Ok(UnlinkedSession { user_id, tokens: issued.answer() })
}
