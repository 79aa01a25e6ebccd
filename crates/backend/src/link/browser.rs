//! Browser linking: the game opens `/link/authorize` with a PKCE challenge it made and its loopback return
//! address; the backend keeps both and sends the browser to Login with Amazon as a confidential client (its own
//! secret, its own PKCE) returning to `/link/callback`; there it trades LWA's code for LWA's tokens, links the
//! identity, and sends the browser back to the game's loopback listener with a one-time code of its own, which
//! only the game holding the verifier can redeem (RFC 7636 between game and backend; RFC 8252 §7.3 loopback).

use amazon_rewards_protocol::studio::{LINK_AUTHORIZE_PATH, LINK_CALLBACK_PATH};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth2::{AuthorizationCode, PkceCodeChallenge, PkceCodeVerifier, TokenResponse};
use serde::Deserialize;

use super::identity::{self, AmazonGrant};
use super::{LinkState, read_profile};
use crate::signup::{escape, page};

/// A link request waits this long for LWA's answer; a code the game did not redeem dies after `CODE_LIFETIME`.
const REQUEST_LIFETIME: i64 = 15 * 60;
const CODE_LIFETIME: i64 = 5 * 60;
/// Most link requests started per minute across every backend process (an unauthenticated route).
const MAX_REQUESTS_PER_MINUTE: i64 = 600;

/// What the game puts in the authorization URL.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuthorizeQuery {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, page("Linking problem", &format!(r#"<p class="error">{}</p>"#, escape(message)))).into_response()
}

/// Whether `uri` is a loopback return address a game listens on (RFC 8252 §7.3): `http`, an IP loopback
/// host, any port, no fragment.
pub(crate) fn loopback_redirect(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    url.scheme() == "http" && loopback && url.fragment().is_none() && uri.len() <= 512
}

/// Checks the game's request, keeps it, and sends the browser to Login with Amazon.
#[utoipa::path(get, path = LINK_AUTHORIZE_PATH, tag = "link_pages", params(AuthorizeQuery),
    responses((status = 302, description = "To Login with Amazon", headers(("Location" = String))), (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
pub(super) async fn authorize(
    State(state): State<LinkState>,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else { return problem(StatusCode::BAD_REQUEST, "The link is unreadable.") };
    if !state.knows_game(&query.client_id) {
        return problem(StatusCode::BAD_REQUEST, "This game is not known to the studio backend.");
    }
    if !loopback_redirect(&query.redirect_uri) {
        return problem(StatusCode::BAD_REQUEST, "The game's return address must be a loopback address.");
    }
    let challenge_ok = (43..=128).contains(&query.code_challenge.len())
        && query.code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if query.response_type != "code" || query.code_challenge_method != "S256" || !challenge_ok {
        return problem(
            StatusCode::BAD_REQUEST,
            "The link request needs response_type=code and an S256 PKCE challenge.",
        );
    }
    if query.state.is_empty() || query.state.len() > 512 {
        return problem(StatusCode::BAD_REQUEST, "The link request needs a state of at most 512 characters.");
    }
    match begin(&state, &query).await {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(response) => response,
    }
}

async fn begin(state: &LinkState, query: &AuthorizeQuery) -> Result<String, Response> {
    let database = |_| problem(StatusCode::INTERNAL_SERVER_ERROR, "The database failed.");
    let now = crate::now_secs();
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM link_requests WHERE created_at > $1")
        .bind(now - 60)
        .fetch_one(&state.pool)
        .await
        .map_err(database)?;
    if recent >= MAX_REQUESTS_PER_MINUTE {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many players are linking right now. Try again in a minute.",
        ));
    }
    sqlx::query("DELETE FROM link_requests WHERE created_at < $1")
        .bind(now - REQUEST_LIFETIME)
        .execute(&state.pool)
        .await
        .map_err(database)?;
    let oauth = state.oauth().map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    let (authorize, csrf, verifier) = crate::signup::authorize_with_pkce(&oauth);
    sqlx::query(
        "INSERT INTO link_requests (state, client_id, redirect_uri, game_state, code_challenge, lwa_verifier, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(csrf.secret())
    .bind(&query.client_id)
    .bind(&query.redirect_uri)
    .bind(&query.state)
    .bind(&query.code_challenge)
    .bind(verifier.secret())
    .bind(now)
    .execute(&state.pool)
    .await
    .map_err(database)?;
    Ok(authorize.to_string())
}

/// What Login with Amazon sends the browser back with.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// Client, return address, game's state, game's challenge, LWA verifier, created at.
type RequestRow = (String, String, String, String, String, i64);

/// LWA's answer: the identity is linked and the browser goes back to the game with a one-time code (or with
/// LWA's refusal, as RFC 6749 §4.1.2.1 says).
#[utoipa::path(get, path = LINK_CALLBACK_PATH, tag = "link_pages", params(CallbackQuery),
    responses((status = 302, description = "Back to the game's loopback address", headers(("Location" = String))),
        (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
pub(super) async fn callback(
    State(state): State<LinkState>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else { return problem(StatusCode::BAD_REQUEST, "The answer is unreadable.") };
    let Ok(Some(request)) = take_request(&state, &query.state).await else {
        return problem(
            StatusCode::BAD_REQUEST,
            "This link request is unknown or was used already. Start again from the game.",
        );
    };
    let (client_id, redirect_uri, game_state, challenge, verifier, created_at) = request;
    let back = |pairs: &[(&str, &str)]| {
        let mut url = url::Url::parse(&redirect_uri).expect("checked when the request was kept");
        url.query_pairs_mut().extend_pairs(pairs).append_pair("state", &game_state);
        (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
    };
    if crate::now_secs() - created_at > REQUEST_LIFETIME {
        return back(&[("error", "access_denied"), ("error_description", "the link request expired")]);
    }
    let Some(code) = query.code.filter(|_| query.error.is_none()) else {
        return back(&[("error", "access_denied"), ("error_description", "Login with Amazon did not approve")]);
    };
    let user_id = match approve(&state, code, verifier).await {
        Ok(user_id) => user_id,
        Err(why) => {
            tracing::warn!(why, "browser link failed at Login with Amazon");
            return back(&[
                ("error", "server_error"),
                ("error_description", "Login with Amazon did not confirm the link"),
            ]);
        }
    };
    match keep_code(&state, &user_id, &client_id, &redirect_uri, &challenge).await {
        Ok(code) => back(&[("code", &code)]),
        Err(_) => back(&[("error", "server_error"), ("error_description", "the database failed")]),
    }
}

/// The request kept under LWA's `state`, removed so that it is used once (across processes).
async fn take_request(state: &LinkState, lwa_state: &str) -> Result<Option<RequestRow>, sqlx::Error> {
    let row: Option<RequestRow> = sqlx::query_as(
        "SELECT client_id, redirect_uri, game_state, code_challenge, lwa_verifier, created_at
         FROM link_requests WHERE state = $1",
    )
    .bind(lwa_state)
    .fetch_optional(&state.pool)
    .await?;
    let taken = sqlx::query("DELETE FROM link_requests WHERE state = $1").bind(lwa_state).execute(&state.pool).await?;
    Ok(row.filter(|_| taken.rows_affected() == 1))
}

/// Trades LWA's code for LWA's tokens, reads the profile and links the identity.
async fn approve(state: &LinkState, code: String, verifier: String) -> Result<String, String> {
    let token = state
        .oauth()?
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&state.oauth_http)
        .await
        .map_err(|e| e.to_string())?;
    let access = token.access_token().secret().clone();
    let profile = read_profile(state, &access).await?;
    let grant = AmazonGrant {
        profile,
        access_token: access,
        refresh_token: token.refresh_token().map(|t| t.secret().clone()),
        expires_in: token.expires_in().unwrap_or(std::time::Duration::from_secs(3600)),
    };
    identity::link(&state.pool, state.token_key.as_deref(), &grant).await.map_err(|e| e.to_string())
}

/// A one-time code for the game, bound to its challenge, client and return address.
async fn keep_code(
    state: &LinkState,
    user_id: &str,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
) -> Result<String, sqlx::Error> {
    let code = format!("rs_code.{}", crate::random_hex(24));
    sqlx::query(
        "INSERT INTO link_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(super::sessions::token_hash(&code))
    .bind(user_id)
    .bind(client_id)
    .bind(redirect_uri)
    .bind(challenge)
    .bind(crate::now_secs() + CODE_LIFETIME)
    .execute(&state.pool)
    .await?;
    Ok(code)
}

/// Redeems a one-time code (`authorization_code` grant): the verifier must match the challenge (S256), the
/// client and the return address the ones it was issued for; used once. The account, when all holds.
pub(super) async fn redeem_code(
    state: &LinkState,
    code: &str,
    verifier: &str,
    client_id: &str,
    redirect_uri: &str,
) -> Result<Option<String>, sqlx::Error> {
    let hash = super::sessions::token_hash(code);
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT user_id, client_id, redirect_uri, code_challenge, expires_at FROM link_codes
         WHERE code_hash = $1 AND used_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some((user_id, issued_to, issued_for, challenge, expires_at)) = row else { return Ok(None) };
    let computed = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    let matches = issued_to == client_id
        && (redirect_uri.is_empty() || issued_for == redirect_uri)
        && computed.as_str() == challenge
        && expires_at > crate::now_secs();
    let spent = sqlx::query("UPDATE link_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
        .bind(crate::now_secs())
        .bind(&hash)
        .execute(&state.pool)
        .await?;
    Ok((matches && spent.rows_affected() == 1).then_some(user_id))
}

#[cfg(test)]
mod tests {
    use super::loopback_redirect;

    #[test]
    fn only_loopback_return_addresses_are_accepted() {
        for good in ["http://127.0.0.1:49152/amazon-rewards/callback", "http://[::1]:8080/cb", "http://localhost:1/x"] {
            assert!(loopback_redirect(good), "{good}");
        }
        for bad in [
            "https://127.0.0.1:1/cb",
            "http://evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1:1/cb#fragment",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!loopback_redirect(bad), "{bad}");
        }
    }
}
