//! The new-account page: Amazon's account-linking flow sends a customer who has no game account here, with a
//! `return_url`. They pick a name, sign in with Login with Amazon (the backend is a confidential client:
//! client secret + PKCE), and get a game account tied to their Amazon identity, so the game can later fetch
//! what they bought; the backend keeps their refresh token (never the game). Then they go back to Amazon.

use amazon_rewards_protocol::lwa::{Profile, TOKEN_PATH};
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The backend's Login with Amazon security profile, for the new-account page.
#[derive(Clone)]
pub struct LwaClient {
    /// Authorization page, `https://www.amazon.com/ap/oa` in production.
    pub authorize_url: String,
    /// Base of the token and profile endpoints, `https://api.amazon.com`.
    pub api_url: String,
    /// The backend's client id.
    pub client_id: String,
    /// The backend's client secret.
    pub client_secret: String,
    /// The backend's public base URL (empty: the listen address); `{public_url}/accounts/callback` is
    /// registered as redirect URI.
    pub public_url: String,
    /// Origins `return_url` may point to (Amazon's); anything else is refused, so the page is no open redirect.
    pub return_origins: Vec<String>,
}

impl std::fmt::Debug for LwaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LwaClient")
            .field("client_id", &self.client_id)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The backend's OAuth client: authorization and token endpoints set.
pub(crate) type ConfidentialClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// Signups older than this are refused at the callback.
const SIGNUP_LIFETIME: i64 = 15 * 60;
/// Most sign-ups waiting for Amazon's answer at once; past it, new ones wait (unauthenticated requests
/// must not grow the database without bound).
const MAX_PENDING_SIGNUPS: i64 = 10_000;
/// Most sign-ups started per minute, across every backend process (the database counts): a rate limit on an
/// unauthenticated form that does not depend on client addresses, which a load balancer hides.
const MAX_SIGNUPS_PER_MINUTE: i64 = 600;
/// The cookie binding a sign-up to the browser that started it (login CSRF: an attacker's half-finished
/// sign-up must not complete in the victim's browser).
const BROWSER_COOKIE: &str = "rewards_signup";

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Routes of the page.
/// What the new-account pages work with; they exist only when the backend has its own LWA client.
#[derive(Clone)]
pub struct SignupState {
    /// The backend's Login with Amazon client.
    pub lwa: Arc<LwaClient>,
    /// The database.
    pub pool: sqlx::AnyPool,
    /// Calls to Login with Amazon (no redirects followed).
    pub oauth_http: reqwest::Client,
    /// Seals refresh tokens at rest, when configured.
    pub token_key: Option<Arc<crate::sealed::TokenKey>>,
}

/// The new-account pages, with their state.
pub fn router(state: SignupState) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(new_account, start_signup)).routes(routes!(callback)).with_state(state)
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:420px;margin:40px auto;color:#1b1b1b}}
label{{display:block;margin:12px 0 4px;font-weight:600}}input{{width:100%;padding:8px;box-sizing:border-box}}
button{{margin-top:16px;padding:8px 16px}}.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"#,
        title = escape(title)
    ))
}

fn form(return_url: &str, error: Option<&str>) -> Html<String> {
    let error = error.map(|e| format!(r#"<p class="error">{}</p>"#, escape(e))).unwrap_or_default();
    page(
        "Create your game account",
        &format!(
            r#"{error}<form method="post" action="/accounts/new">
<input type="hidden" name="return_url" value="{return_url}">
<label for="username">Choose a player name</label><input id="username" name="username" required maxlength="32">
<button id="create" type="submit">Continue with Login with Amazon</button></form>"#,
            return_url = escape(return_url)
        ),
    )
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, page("Account problem", &format!(r#"<p class="error">{}</p>"#, escape(message)))).into_response()
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NewAccountQuery {
    #[serde(default)]
    return_url: String,
}

fn return_url_allowed(client: &LwaClient, url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let origin = parsed.origin().ascii_serialization();
    client.return_origins.iter().any(|allowed| allowed.trim_end_matches('/') == origin)
}

/// The new-account page Amazon's Instant Access linking sends a customer without a game account to.
#[utoipa::path(get, path = "/accounts/new", tag = "account_pages", params(NewAccountQuery),
    responses((status = 200, description = "The form", body = String, content_type = "text/html"), (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
async fn new_account(
    State(state): State<SignupState>,
    query: Result<Query<NewAccountQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else { return problem(StatusCode::BAD_REQUEST, "This link is unreadable.") };
    let client = &*state.lwa;
    if !return_url_allowed(client, &query.return_url) {
        return problem(StatusCode::BAD_REQUEST, "This link did not come from Amazon.");
    }
    form(&query.return_url, None).into_response()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    return_url: String,
}

pub(crate) fn oauth_client(client: &LwaClient) -> Result<ConfidentialClient, String> {
    oauth_client_returning_to(client, "/accounts/callback")
}

/// The backend's OAuth client with LWA returning the browser to `{public_url}{path}`.
pub(crate) fn oauth_client_returning_to(client: &LwaClient, path: &str) -> Result<ConfidentialClient, String> {
    let api = client.api_url.trim_end_matches('/');
    Ok(BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_client_secret(ClientSecret::new(client.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(client.authorize_url.clone()).map_err(|e| e.to_string())?)
        .set_token_uri(TokenUrl::new(format!("{api}{TOKEN_PATH}")).map_err(|e| e.to_string())?)
        .set_redirect_uri(
            RedirectUrl::new(format!("{}{path}", client.public_url.trim_end_matches('/')))
                .map_err(|e| e.to_string())?,
        ))
}

/// The form posted: the name is kept and the browser sent to Login with Amazon.
#[utoipa::path(post, path = "/accounts/new", tag = "account_pages",
    request_body(content = SignupForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To Login with Amazon", headers(("Location" = String))),
        (status = 302, description = "To Login with Amazon", headers(("Location" = String))), (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
async fn start_signup(
    State(state): State<SignupState>,
    form_data: Result<Form<SignupForm>, FormRejection>,
) -> Response {
    begin_signup(&state, form_data).await.unwrap_or_else(|refused| refused)
}

/// Checks the chosen name and the return address, keeps the sign-up (bound to this browser by a cookie), and
/// sends the browser to Login with Amazon. `Err` is the page to answer instead.
async fn begin_signup(
    state: &SignupState,
    form_data: Result<Form<SignupForm>, FormRejection>,
) -> Result<Response, Response> {
    #[allow(clippy::result_large_err, reason = "the error is the page answered instead, made once per refusal")]
    let page = |status, message: &str| Err(problem(status, message));
    let client = &*state.lwa;
    let Ok(Form(signup)) = form_data else {
        return page(StatusCode::BAD_REQUEST, "The form was malformed.");
    };
    if !return_url_allowed(client, &signup.return_url) {
        return page(StatusCode::BAD_REQUEST, "This link did not come from Amazon.");
    }
    let username = check_username(state, &signup).await?;
    let oauth = oauth_client(client).map_err(|error| {
        problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("Login with Amazon is misconfigured: {error}"))
    })?;
    admit_signup(state).await?;
    let browser = crate::random_hex(24);
    let (authorize, csrf, verifier) = authorize_with_pkce(&oauth);
    let stored = sqlx::query(
        "INSERT INTO account_signups (state, username, return_url, pkce_verifier, created_at, browser_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(csrf.secret())
    .bind(&username)
    .bind(&signup.return_url)
    .bind(verifier.secret())
    .bind(crate::now_secs())
    .bind(sha256_hex(&browser))
    .execute(&state.pool)
    .await;
    if stored.is_err() {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "The database failed.");
    }
    // Lax: sent on the top-level redirect back from Amazon, not on other sites' subrequests.
    let browser_cookie =
        format!("{BROWSER_COOKIE}={browser}; Path=/accounts; HttpOnly; SameSite=Lax; Max-Age={SIGNUP_LIFETIME}");
    Ok((StatusCode::FOUND, [(header::LOCATION, authorize.to_string()), (header::SET_COOKIE, browser_cookie)])
        .into_response())
}

/// The chosen name, trimmed, if it is well-formed and free; else the form again, saying why.
async fn check_username(state: &SignupState, signup: &SignupForm) -> Result<String, Response> {
    let username = signup.username.trim().to_owned();
    let well_formed = !username.is_empty()
        && username.len() <= 32
        && username.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !well_formed {
        let again = form(&signup.return_url, Some("Use 1-32 letters, digits, - or _."));
        return Err((StatusCode::BAD_REQUEST, again).into_response());
    }
    match crate::accounts::by_username(&state.pool, &username).await {
        Ok(Some(_)) => {
            Err((StatusCode::CONFLICT, form(&signup.return_url, Some("That name is taken."))).into_response())
        }
        Ok(None) => Ok(username),
        Err(_) => Err(problem(StatusCode::INTERNAL_SERVER_ERROR, "The database failed.")),
    }
}

/// Expired sign-ups go; a full table, or a minute with too many new ones, refuses more for a while (counted in
/// the database, so across every backend process).
async fn admit_signup(state: &SignupState) -> Result<(), Response> {
    let purged = sqlx::query("DELETE FROM account_signups WHERE created_at < $1")
        .bind(crate::now_secs() - SIGNUP_LIFETIME)
        .execute(&state.pool)
        .await;
    let pending: Result<(i64, i64), _> = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN created_at > $1 THEN 1 ELSE 0 END), 0) FROM account_signups",
    )
    .bind(crate::now_secs() - 60)
    .fetch_one(&state.pool)
    .await;
    match (purged, pending) {
        (Ok(_), Ok((pending, last_minute)))
            if pending < MAX_PENDING_SIGNUPS && last_minute < MAX_SIGNUPS_PER_MINUTE =>
        {
            Ok(())
        }
        (Ok(_), Ok(_)) => Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ups are in progress; try again in a few minutes.",
        )),
        _ => Err(problem(StatusCode::INTERNAL_SERVER_ERROR, "The database failed.")),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// Login with Amazon's answer: the account is made and linked, and the browser sent back to Amazon.
#[utoipa::path(get, path = "/accounts/callback", tag = "account_pages", params(CallbackQuery),
    responses((status = 302, description = "Back to Amazon", headers(("Location" = String))),
        (status = 303, description = "Back to Amazon", headers(("Location" = String))), (status = "4XX", description = "A page saying what is wrong", body = String, content_type = "text/html")))]
async fn callback(
    State(state): State<SignupState>,
    headers: axum::http::HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else { return problem(StatusCode::BAD_REQUEST, "The answer is unreadable.") };
    finish_signup(&state, &headers, query).await.unwrap_or_else(|Problem(status, message)| problem(status, &message))
}

/// A page telling the player what went wrong.
struct Problem(StatusCode, String);

impl Problem {
    fn new(status: StatusCode, message: &str) -> Self {
        Problem(status, message.to_owned())
    }
}

/// Back from Login with Amazon: the sign-up is taken (once, by the browser that started it), the code
/// exchanged, the profile read, the account created and linked; the browser goes back to Amazon's form.
async fn finish_signup(
    state: &SignupState,
    headers: &axum::http::HeaderMap,
    query: CallbackQuery,
) -> Result<Response, Problem> {
    let client = &*state.lwa;
    let browser = cookie(headers, BROWSER_COOKIE).ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "This sign-up was started in another browser. Start again from Amazon.")
    })?;
    let (username, return_url, verifier) = take_signup(state, &query.state, browser).await?;
    if query.error.is_some() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Sign-in with Amazon was cancelled; no account was created.",
        ));
    }
    let code = query
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "The sign-in answer carried no code."))?;
    let token = exchange_code(state, client, code, verifier).await?;
    let profile = read_profile(state, client, token.access_token().secret()).await?;
    let refresh = token.refresh_token().map(|refresh| refresh.secret().clone());
    link_new_account(state, &username, &profile.user_id, refresh.as_deref()).await?;
    let mut back = url::Url::parse(&return_url)
        .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "The return address is invalid."))?;
    back.query_pairs_mut().append_pair("linked", &username);
    Ok((StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response())
}

/// Takes the sign-up out, single use, whatever happens next: only the browser that started it can, and only
/// while it is fresh. Its username, return address and PKCE verifier.
async fn take_signup(
    state: &SignupState,
    signup_state: &str,
    browser: &str,
) -> Result<(String, String, String), Problem> {
    let signup: Result<Option<(String, String, String, i64)>, _> = sqlx::query_as(
        "DELETE FROM account_signups WHERE state = $1 AND browser_hash = $2
         RETURNING username, return_url, pkce_verifier, created_at",
    )
    .bind(signup_state)
    .bind(sha256_hex(browser))
    .fetch_optional(&state.pool)
    .await;
    match signup {
        Ok(Some((username, return_url, verifier, created_at))) if crate::now_secs() - created_at <= SIGNUP_LIFETIME => {
            Ok((username, return_url, verifier))
        }
        Ok(_) => {
            Err(Problem::new(StatusCode::BAD_REQUEST, "This sign-up is unknown or expired. Start again from Amazon."))
        }
        Err(_) => Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "The database failed.")),
    }
}

async fn exchange_code(
    state: &SignupState,
    client: &LwaClient,
    code: String,
    verifier: String,
) -> Result<oauth2::basic::BasicTokenResponse, Problem> {
    let oauth = oauth_client(client).map_err(|error| {
        Problem(StatusCode::INTERNAL_SERVER_ERROR, format!("Login with Amazon is misconfigured: {error}"))
    })?;
    oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&state.oauth_http)
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, "sign-up code exchange failed");
            Problem::new(StatusCode::BAD_GATEWAY, "Login with Amazon did not confirm the sign-in. Try again.")
        })
}

async fn read_profile(state: &SignupState, client: &LwaClient, access_token: &str) -> Result<Profile, Problem> {
    crate::link::lwa_profile(&state.oauth_http, client, access_token).await.map_err(|why| {
        tracing::warn!(why, "LWA profile unavailable at sign-up");
        Problem::new(StatusCode::BAD_GATEWAY, "Login with Amazon's profile was unavailable.")
    })
}

/// The LWA authorization URL for `oauth` asking for Prime Gaming and the profile, with a fresh PKCE challenge:
/// the URL, its `state`, and the verifier to keep.
pub(crate) fn authorize_with_pkce(oauth: &ConfidentialClient) -> (oauth2::url::Url, CsrfToken, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(amazon_rewards_protocol::lwa::SCOPE_PRIME_GAMING.into()))
        .add_scope(Scope::new(amazon_rewards_protocol::lwa::SCOPE_PROFILE.into()))
        .set_pkce_challenge(challenge)
        .url();
    (url, csrf, verifier)
}

/// Creates the game account linked to `amazon_user_id`, unless that Amazon account already has one.
async fn link_new_account(
    state: &SignupState,
    username: &str,
    amazon_user_id: &str,
    refresh: Option<&str>,
) -> Result<(), Problem> {
    let database = || Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "The database failed. Start again from Amazon.");
    if let Some(name) =
        crate::accounts::username_of_amazon_user(&state.pool, amazon_user_id).await.map_err(|_| database())?
    {
        return Err(Problem(
            StatusCode::CONFLICT,
            format!("This Amazon account already has the game account {name:?}."),
        ));
    }
    let user_id = format!("player-{}", crate::random_hex(12));
    match create_linked_account(state, &user_id, username, amazon_user_id, refresh).await {
        Ok(true) => {
            tracing::info!(user_id, "game account created and linked to an Amazon identity");
            Ok(())
        }
        Ok(false) => Err(Problem::new(StatusCode::CONFLICT, "That name was taken meanwhile. Start again from Amazon.")),
        Err(error) => {
            tracing::error!(%error, "cannot create a game account");
            Err(database())
        }
    }
}

/// Creates the game account and stores the backend's refresh token for it in one transaction: an account is
/// never left without the token the Prime Gaming relay needs. `Ok(false)` when the name was taken meanwhile.
async fn create_linked_account(
    state: &SignupState,
    user_id: &str,
    username: &str,
    amazon_user_id: &str,
    refresh_token: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    if !crate::accounts::insert_linked(&mut *tx, user_id, username, amazon_user_id).await? {
        return Ok(false);
    }
    if let Some(refresh) = refresh_token {
        sqlx::query(
            "INSERT INTO lwa_tokens (user_id, refresh_token, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET refresh_token = EXCLUDED.refresh_token, updated_at = EXCLUDED.updated_at",
        )
        .bind(user_id)
        .bind(crate::sealed::seal(state.token_key.as_deref(), user_id, refresh))
        .bind(crate::now_secs())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
