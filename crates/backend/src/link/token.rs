//! The backend's token endpoint (`/link/auth/o2/token`, LWA's and RFC 6749's shapes): the one-time code of a
//! browser link with its PKCE verifier, a studio refresh token, or a code pairing's device code, each answered
//! with a studio session or an OAuth error the game's flows already understand.

use amazon_rewards_protocol::lwa::TokenResponse;
use amazon_rewards_protocol::studio::LINK_BROKEN;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::sessions::{self, Refreshed};
use super::{LinkState, browser, oauth_error, pairing};
use crate::error::BackendError;

/// The token request's fields (unknown ones are ignored, as RFC 6749 §3.2 asks).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct TokenForm {
    /// `authorization_code`, `refresh_token` or `device_code`.
    #[serde(default)]
    #[schema(example = "refresh_token")]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    device_code: String,
}

/// The game's token requests: a browser link's code, a refresh, a code pairing's poll.
#[utoipa::path(post, context_path = amazon_rewards_protocol::studio::LINK_API_PREFIX,
    path = amazon_rewards_protocol::lwa::TOKEN_PATH, tag = "link",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A studio session", body = TokenResponse)))]
pub(super) async fn token(State(state): State<LinkState>, form: Result<Form<TokenForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "malformed form") };
    // LWA's device-code poll carries no client id (the pairing knows whose it is); every other grant does.
    let device_poll = matches!(
        form.grant_type.as_str(),
        amazon_rewards_protocol::lwa::DEVICE_CODE_GRANT | amazon_rewards_protocol::lwa::DEVICE_CODE_GRANT_URN
    );
    if !(device_poll && form.client_id.is_empty() || state.knows_game(&form.client_id)) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "this game is not known to the studio backend");
    }
    let answer = match form.grant_type.as_str() {
        "authorization_code" => by_code(&state, &form).await,
        "refresh_token" => by_refresh(&state, &form).await,
        amazon_rewards_protocol::lwa::DEVICE_CODE_GRANT | amazon_rewards_protocol::lwa::DEVICE_CODE_GRANT_URN => {
            pairing::poll(&state, &form.device_code, &form.client_id).await
        }
        _ => Err(BackendError::refused(StatusCode::BAD_REQUEST, "unsupported_grant_type", "unsupported grant_type")),
    };
    match answer {
        Ok(tokens) => ([(axum::http::header::CACHE_CONTROL, "no-store")], axum::Json(tokens)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn by_code(state: &LinkState, form: &TokenForm) -> Result<TokenResponse, BackendError> {
    let invalid = || {
        BackendError::refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code is unknown, used, expired or not yours",
        )
    };
    if form.code.is_empty() || form.code.len() > 256 || form.code_verifier.len() > 128 {
        return Err(invalid());
    }
    let user_id = browser::redeem_code(state, &form.code, &form.code_verifier, &form.client_id, &form.redirect_uri)
        .await?
        .ok_or_else(invalid)?;
    let mut tx = state.pool.begin().await?;
    let issued = sessions::start(&mut tx, &user_id, &form.client_id).await?;
    tx.commit().await?;
    tracing::info!(user_id, "linked in the browser");
    Ok(issued.answer())
}

async fn by_refresh(state: &LinkState, form: &TokenForm) -> Result<TokenResponse, BackendError> {
    let refused = |code: &str, why: &str| BackendError::refused(StatusCode::BAD_REQUEST, code, why);
    if form.refresh_token.is_empty() || form.refresh_token.len() > 256 {
        return Err(refused("invalid_grant", "no refresh token"));
    }
    match sessions::refresh(&state.pool, &form.refresh_token, &form.client_id).await? {
        Refreshed::Issued(issued) => Ok(issued.answer()),
        Refreshed::Refused => Err(refused("invalid_grant", "the refresh token is not live")),
        Refreshed::Reused => Err(refused("invalid_grant", "the refresh token was used already; the session ended")),
        Refreshed::LinkBroken => {
            Err(refused("invalid_grant", &format!("{LINK_BROKEN}: the Amazon link is broken; link again")))
        }
    }
}
