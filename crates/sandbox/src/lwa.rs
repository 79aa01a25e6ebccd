//! Login with Amazon, emulated: the authorization server (sign-in and consent pages, authorization codes
//! with PKCE S256), the token endpoint (authorization code, refresh with rotation, device code), the
//! code-pair endpoint with its `/code` page, and the profile endpoint.
//!
//! Rules it enforces, as a real authorization server must: redirect URIs are matched against the client's
//! registered list (any port for loopback IP URIs, RFC 8252 §7.3) and an unregistered one is never
//! redirected to; codes are single-use and short-lived, and a replayed code revokes every token issued from
//! it; a reused refresh token revokes its whole family; device codes are polled no faster than `interval`.

use std::collections::HashMap;

use amazon_rewards_protocol::lwa::{
    AUTHORIZE_PATH, CODEPAIR_PATH, DEVICE_CODE_GRANT, DeviceCodeResponse, MAX_TOKEN_BYTES, OAuthErrorBody,
    PROFILE_PATH, Profile, TOKEN_PATH, TOKENINFO_PATH, TokenResponse, is_valid_pkce_verifier,
};
use amazon_rewards_protocol::sandbox_admin::RegisterClient;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::{authenticated_customer, hash_secret, random_token};
use crate::error::{SandboxError, SandboxResult};
use crate::pages::{escape, hidden_fields, page};

/// Lifetimes and pacing of the emulated authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LwaSettings {
    /// Seconds an authorization code is valid (LWA: 5 minutes).
    pub auth_code_lifetime: i64,
    /// Seconds an access token is valid (LWA: 3600).
    pub access_token_lifetime: i64,
    /// Seconds a device code is valid (LWA: 600).
    pub device_code_lifetime: i64,
    /// Least seconds between device-code polls (LWA: 30).
    pub device_poll_interval: i64,
    /// Whether a refresh answers a new refresh token and retires the old one (reuse then revokes the whole
    /// family). Sandbox-defined either way: LWA's docs say a refresh answer may carry a new refresh token,
    /// nothing public says reuse revokes anything. Off, a refresh answers no refresh token and the old one
    /// keeps working; clients must work both ways. Default on.
    pub rotate_refresh_tokens: bool,
}

impl Default for LwaSettings {
    fn default() -> Self {
        Self {
            auth_code_lifetime: 300,
            access_token_lifetime: 3600,
            device_code_lifetime: 600,
            device_poll_interval: 30,
            rotate_refresh_tokens: true,
        }
    }
}

/// `auth_codes` row: client, user, redirect URI, scope, challenge, expiry, use time.
type AuthCodeRow = (String, String, String, String, String, i64, Option<i64>);
/// `device_codes` row: client, scope, expiry, interval, last poll (ms), approving user, denied, consumed.
type DeviceCodeRow = (String, String, i64, i64, Option<i64>, Option<String>, i64, i64);

/// Seconds a sign-in ticket (between the sign-in and consent pages) is valid.
const TICKET_LIFETIME: i64 = 600;

/// Public routes of the authorization server.
pub fn router() -> OpenApiRouter<AppState> {
    // The customer's pages (sign-in, consent, code entry) are served, not described.
    OpenApiRouter::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route("/ap/signin", post(sign_in))
        .route("/ap/consent", post(consent))
        .routes(routes!(token))
        .routes(routes!(codepair))
        .route("/code", get(code_page).post(code_submit))
        .routes(routes!(profile))
        .routes(routes!(tokeninfo))
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/clients", post(register_client)).route("/device-codes/{user_code}", get(device_code_status))
}

/// `GET /admin/device-codes/{user_code}`: how a device sign-in stands (sandbox-defined, for tests and demos).
async fn device_code_status(
    State(state): State<AppState>,
    axum::extract::Path(user_code): axum::extract::Path<String>,
) -> SandboxResult<Json<serde_json::Value>> {
    let row: Option<(i64, Option<String>, i64, i64, i64)> = sqlx::query_as(
        "SELECT poll_count, user_id, denied, consumed, interval_secs FROM device_codes WHERE user_code = ?",
    )
    .bind(&user_code)
    .fetch_optional(&state.pool)
    .await?;
    let (polls, user_id, denied, consumed, interval) =
        row.ok_or_else(|| SandboxError::NotFound(format!("device code {user_code}")))?;
    Ok(Json(serde_json::json!({
        "user_code": user_code, "polls": polls, "approved": user_id.is_some(),
        "denied": denied != 0, "consumed": consumed != 0, "interval": interval,
    })))
}

async fn register_client(
    State(state): State<AppState>,
    body: Result<Json<RegisterClient>, JsonRejection>,
) -> SandboxResult<StatusCode> {
    let Json(client) = body?;
    if client.client_id.is_empty() || client.redirect_uris.is_empty() {
        return Err(SandboxError::BadRequest("a client needs an id and at least one redirect URI".into()));
    }
    for uri in &client.redirect_uris {
        let parsed = url::Url::parse(uri).map_err(|_| SandboxError::BadRequest(format!("{uri:?} is not a URL")))?;
        if parsed.fragment().is_some() {
            return Err(SandboxError::BadRequest(format!("{uri:?} has a fragment")));
        }
    }
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, secret_hash, redirect_uris, name) VALUES (?, ?, ?, ?)
         ON CONFLICT(client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
             redirect_uris = excluded.redirect_uris, name = excluded.name",
    )
    .bind(&client.client_id)
    .bind(client.client_secret.as_deref().map(hash_secret))
    .bind(serde_json::to_string(&client.redirect_uris).unwrap_or_default())
    .bind(&client.name)
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::CREATED)
}

struct Client {
    secret_hash: Option<String>,
    redirect_uris: Vec<String>,
    name: String,
}

async fn find_client(pool: &SqlitePool, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
    let row: Option<(Option<String>, String, String)> =
        sqlx::query_as("SELECT secret_hash, redirect_uris, name FROM oauth_clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(secret_hash, uris, name)| Client {
        secret_hash,
        redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
        name,
    }))
}

fn is_loopback_ip(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Whether `requested` matches one of `registered`: exactly, or for loopback IP `http` URIs with any port.
pub fn redirect_uri_allowed(registered: &[String], requested: &str) -> bool {
    let Ok(asked) = url::Url::parse(requested) else {
        return false;
    };
    if asked.fragment().is_some() {
        return false;
    }
    registered.iter().any(|candidate| {
        if candidate == requested {
            return true;
        }
        let Ok(candidate) = url::Url::parse(candidate) else {
            return false;
        };
        asked.scheme() == "http"
            && candidate.scheme() == "http"
            && is_loopback_ip(&asked)
            && asked.host() == candidate.host()
            && asked.path() == candidate.path()
            && asked.query() == candidate.query()
    })
}

/// Parameters of an authorization request, carried through the sign-in and consent forms.
#[derive(Debug, Clone, Default, Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

impl AuthorizeParams {
    fn hidden(&self) -> String {
        hidden_fields(&[
            ("client_id", &self.client_id),
            ("scope", &self.scope),
            ("response_type", &self.response_type),
            ("redirect_uri", &self.redirect_uri),
            ("state", self.state.as_deref().unwrap_or_default()),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ])
    }

    /// Redirect back to the client with `pairs` (and the state).
    fn redirect(&self, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return error_page(StatusCode::BAD_REQUEST, "The redirect URI is not valid.");
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = self.state.as_deref().filter(|s| !s.is_empty()) {
                query.append_pair("state", state);
            }
        }
        // 302 Found, as Login with Amazon answers (303 would also do; 307 would re-post the form).
        (StatusCode::FOUND, [(header::LOCATION, url.as_str().to_owned())]).into_response()
    }
}

fn error_page(status: StatusCode, message: &str) -> Response {
    (status, page("Sign-in problem", &format!(r#"<p class="error">{}</p>"#, escape(message)))).into_response()
}

/// Validates the client and redirect URI (error page when wrong: never redirect to an unverified URI),
/// then the rest of the request (redirect with an error when wrong).
async fn validate(pool: &SqlitePool, params: &AuthorizeParams) -> Result<Client, Response> {
    let client = match find_client(pool, &params.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(error_page(StatusCode::BAD_REQUEST, "Unknown client_id.")),
        Err(_) => return Err(error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed.")),
    };
    if !redirect_uri_allowed(&client.redirect_uris, &params.redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "This redirect_uri is not registered for the application; you were not sent back to it.",
        ));
    }
    if params.response_type != "code" {
        return Err(params.redirect(&[("error", "unsupported_response_type")]));
    }
    if params.code_challenge_method != "S256" || params.code_challenge.len() != 43 {
        return Err(params.redirect(&[
            ("error", "invalid_request"),
            ("error_description", "PKCE with code_challenge_method=S256 is required"),
        ]));
    }
    if params.scope.split_whitespace().next().is_none() {
        return Err(params.redirect(&[("error", "invalid_scope")]));
    }
    Ok(client)
}

fn sign_in_form(params: &AuthorizeParams, client_name: &str, error: Option<&str>) -> Html<String> {
    let error = error.map(|e| format!(r#"<p class="error">{}</p>"#, escape(e))).unwrap_or_default();
    page(
        "Sign in",
        &format!(
            r#"<p>Sign in to continue to <b>{client}</b>.</p>{error}
<form method="post" action="/ap/signin">{hidden}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="signInSubmit" type="submit">Sign in</button>
</form><p class="note">Sandbox test customers only. No real Amazon account is involved.</p>"#,
            client = escape(if client_name.is_empty() { &params.client_id } else { client_name }),
            hidden = params.hidden(),
        ),
    )
}

async fn authorize_page(State(state): State<AppState>, Query(params): Query<AuthorizeParams>) -> Response {
    match validate(&state.pool, &params).await {
        Ok(client) => sign_in_form(&params, &client.name, None).into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The customer with these credentials, if any.
pub(crate) async fn check_password(
    pool: &SqlitePool,
    email: &str,
    password: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as("SELECT user_id, password_hash FROM customers WHERE email = ?")
        .bind(email)
        .fetch_optional(pool)
        .await?;
    Ok(row.and_then(|(user_id, stored)| {
        let (salt, hash) = stored.split_once('$')?;
        (hash_secret(&format!("{salt}{password}")) == hash).then_some(user_id)
    }))
}

fn scope_description(scope: &str) -> String {
    match scope {
        "profile" => "Your name, email address and Amazon account id".into(),
        "games::prime" => "Your Prime Gaming rewards for this game".into(),
        other => format!("Access: {other}"),
    }
}

async fn sign_in(State(state): State<AppState>, form: Result<Form<SignInForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in form was malformed.");
    };
    let client = match validate(&state.pool, &form.params).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let user_id = match check_password(&state.pool, &form.email, &form.password).await {
        Ok(Some(user_id)) => user_id,
        Ok(None) => {
            return (
                StatusCode::UNAUTHORIZED,
                sign_in_form(&form.params, &client.name, Some("Your email or password is incorrect.")),
            )
                .into_response();
        }
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed."),
    };
    let ticket = random_token("", 24);
    let stored = sqlx::query("INSERT INTO signin_tickets (ticket_hash, user_id, expires_at) VALUES (?, ?, ?)")
        .bind(hash_secret(&ticket))
        .bind(&user_id)
        .bind(crate::now_secs() + TICKET_LIFETIME)
        .execute(&state.pool)
        .await;
    if stored.is_err() {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed.");
    }
    let scopes: String =
        form.params.scope.split_whitespace().map(|s| format!("<li>{}</li>", escape(&scope_description(s)))).collect();
    let name = if client.name.is_empty() { &form.params.client_id } else { &client.name };
    page(
        "Allow access?",
        &format!(
            r#"<p><b>{name}</b> would like:</p><ul class="scopes">{scopes}</ul>
<form method="post" action="/ap/consent">{hidden}{ticket}
<button id="allow" name="decision" value="allow" type="submit">Allow</button>
<button id="deny" class="secondary" name="decision" value="deny" type="submit">Cancel</button>
</form>"#,
            name = escape(name),
            hidden = form.params.hidden(),
            ticket = hidden_fields(&[("ticket", &ticket)]),
        ),
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    decision: String,
}

async fn consent(State(state): State<AppState>, form: Result<Form<ConsentForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "The consent form was malformed.");
    };
    if let Err(response) = validate(&state.pool, &form.params).await {
        return response;
    }
    // Tickets are single-use: taken out as they are checked.
    let user: Result<Option<String>, sqlx::Error> =
        sqlx::query_scalar("DELETE FROM signin_tickets WHERE ticket_hash = ? AND expires_at > ? RETURNING user_id")
            .bind(hash_secret(&form.ticket))
            .bind(crate::now_secs())
            .fetch_optional(&state.pool)
            .await;
    let user_id = match user {
        Ok(Some(user_id)) => user_id,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "This sign-in has expired. Start again from the game."),
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed."),
    };
    if form.decision != "allow" {
        return form.params.redirect(&[("error", "access_denied"), ("error_description", "The customer cancelled")]);
    }
    let code = random_token("ANc", 16);
    let stored = sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_secret(&code))
    .bind(&form.params.client_id)
    .bind(&user_id)
    .bind(&form.params.redirect_uri)
    .bind(&form.params.scope)
    .bind(&form.params.code_challenge)
    .bind(crate::now_secs() + state.lwa.auth_code_lifetime)
    .execute(&state.pool)
    .await;
    if stored.is_err() {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed.");
    }
    form.params.redirect(&[("code", &code), ("scope", &form.params.scope)])
}

/// An RFC 6749 §5.2 error from the token or code-pair endpoint.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        Self { status, error, description: description.into() }
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error");
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, error: "server_error", description: "database error".into() }
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody { error: self.error.into(), error_description: Some(self.description) };
        no_store((self.status, Json(body)).into_response())
    }
}

/// The client's credentials: HTTP Basic, or `client_id` / `client_secret` in the form.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, Option<String>) {
    if let Some((id, secret)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(a, b)| (decode_form(a), decode_form(b))))
    {
        return (id, Some(secret));
    }
    (form.get("client_id").cloned().unwrap_or_default(), form.get("client_secret").cloned())
}

fn decode_form(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

async fn authenticate_client(pool: &SqlitePool, id: &str, secret: Option<&str>) -> Result<(), OAuthError> {
    let Some(client) = find_client(pool, id).await? else {
        return Err(OAuthError::new("invalid_client", "unknown client"));
    };
    match (&client.secret_hash, secret) {
        (None, _) => Ok(()),
        (Some(expected), Some(given)) if hash_secret(given) == *expected => Ok(()),
        _ => Err(OAuthError::new("invalid_client", "client authentication failed")),
    }
}

async fn issue_tokens(
    pool: &SqlitePool,
    lifetime: i64,
    client_id: &str,
    user_id: &str,
    scope: &str,
    family: &str,
) -> Result<TokenResponse, OAuthError> {
    let access_token = random_token("Atza|", 48);
    let refresh_token = random_token("Atzr|", 48);
    let now = crate::now_secs();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, expires_at, client_id, family, scope) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_secret(&access_token))
    .bind(user_id)
    .bind(now + lifetime)
    .bind(client_id)
    .bind(family)
    .bind(scope)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, client_id, user_id, scope, family, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_secret(&refresh_token))
    .bind(client_id)
    .bind(user_id)
    .bind(scope)
    .bind(family)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer".into(),
        expires_in: lifetime.max(0) as u64,
        refresh_token: Some(refresh_token),
        // LWA's documented token answers carry no `scope` (golden `lwa_token.json`): sending one would let a
        // client come to depend on a field production may not send.
        scope: None,
    })
}

async fn revoke_family(pool: &SqlitePool, family: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE family = ?").bind(family).execute(pool).await?;
    sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?").bind(family).execute(pool).await?;
    Ok(())
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// LWA's token endpoint: an authorization code, a refresh token, or a code pair's poll.
#[utoipa::path(post, path = TOKEN_PATH, tag = "lwa",
    request_body(content = crate::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = amazon_rewards_protocol::lwa::TokenResponse)))]
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let result = async {
        let Form(form) = form.map_err(|e| OAuthError::new("invalid_request", e.body_text()))?;
        let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        let grant_type = param("grant_type");
        if grant_type == DEVICE_CODE_GRANT {
            // LWA for Devices: the poll names no client (a shipped game sends exactly grant_type, device_code
            // and user_code); the device code says whose it is.
            return poll_device_code(&state, param("device_code"), param("user_code")).await;
        }
        let (client_id, secret) = client_credentials(&headers, &form);
        authenticate_client(&state.pool, &client_id, secret.as_deref()).await?;
        match grant_type {
            "authorization_code" => exchange_code(&state, &client_id, &form).await,
            "refresh_token" => refresh(&state, &client_id, param("refresh_token")).await,
            "" => Err(OAuthError::new("invalid_request", "grant_type is required")),
            // Including RFC 8628's `urn:ietf:params:oauth:grant-type:device_code`, which LWA does not accept.
            _ => Err(OAuthError::new("unsupported_grant_type", "unsupported grant_type")),
        }
    }
    .await;
    match result {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(error) => error.into_response(),
    }
}

async fn exchange_code(
    state: &AppState,
    client_id: &str,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let code_hash = hash_secret(param("code"));
    let row: Option<AuthCodeRow> = sqlx::query_as(
        "SELECT client_id, user_id, redirect_uri, scope, code_challenge, expires_at, used_at FROM auth_codes WHERE code_hash = ?",
    )
    .bind(&code_hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some((code_client, user_id, redirect_uri, scope, challenge, expires_at, used_at)) = row else {
        return Err(OAuthError::new("invalid_grant", "unknown authorization code"));
    };
    let claimed = sqlx::query("UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL")
        .bind(crate::now_secs())
        .bind(&code_hash)
        .execute(&state.pool)
        .await?;
    if used_at.is_some() || claimed.rows_affected() == 0 {
        // RFC 6749 §4.1.2: a replayed code revokes everything issued from it.
        revoke_family(&state.pool, &code_hash).await?;
        return Err(OAuthError::new("invalid_grant", "authorization code already used"));
    }
    if expires_at <= crate::now_secs() {
        return Err(OAuthError::new("invalid_grant", "authorization code expired"));
    }
    if code_client != client_id {
        return Err(OAuthError::new("invalid_grant", "authorization code was issued to another client"));
    }
    if param("redirect_uri") != redirect_uri {
        return Err(OAuthError::new("invalid_grant", "redirect_uri does not match the authorization request"));
    }
    let verifier = param("code_verifier");
    if !is_valid_pkce_verifier(verifier) || s256(verifier) != challenge {
        return Err(OAuthError::new("invalid_grant", "PKCE verification failed"));
    }
    issue_tokens(&state.pool, state.lwa.access_token_lifetime, client_id, &user_id, &scope, &code_hash).await
}

async fn refresh(state: &AppState, client_id: &str, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
    let token_hash = hash_secret(refresh_token);
    let row: Option<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT client_id, user_id, scope, family, used, revoked FROM refresh_tokens WHERE token_hash = ?",
    )
    .bind(&token_hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some((token_client, user_id, scope, family, used, revoked)) = row else {
        return Err(OAuthError::new("invalid_grant", "unknown refresh token"));
    };
    if revoked != 0 {
        return Err(OAuthError::new("invalid_grant", "refresh token revoked"));
    }
    if token_client != client_id {
        return Err(OAuthError::new("invalid_grant", "refresh token was issued to another client"));
    }
    if !state.lwa.rotate_refresh_tokens {
        let mut tokens =
            issue_tokens(&state.pool, state.lwa.access_token_lifetime, client_id, &user_id, &scope, &family).await?;
        // The fresh refresh token is never handed out: the presented one stays the client's.
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?")
            .bind(hash_secret(tokens.refresh_token.as_deref().unwrap_or_default()))
            .execute(&state.pool)
            .await?;
        tokens.refresh_token = None;
        return Ok(tokens);
    }
    let claimed = sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0")
        .bind(&token_hash)
        .execute(&state.pool)
        .await?;
    if used != 0 || claimed.rows_affected() == 0 {
        // A rotated-out refresh token came back: someone else has a copy. Revoke the whole family.
        revoke_family(&state.pool, &family).await?;
        return Err(OAuthError::new("invalid_grant", "refresh token already used"));
    }
    issue_tokens(&state.pool, state.lwa.access_token_lifetime, client_id, &user_id, &scope, &family).await
}

/// LWA's documented poll: `grant_type=device_code`, `device_code` and `user_code`, both required, both the
/// pair's.
async fn poll_device_code(state: &AppState, device_code: &str, user_code: &str) -> Result<TokenResponse, OAuthError> {
    if device_code.is_empty() || user_code.is_empty() {
        return Err(OAuthError::new("invalid_request", "device_code and user_code are required"));
    }
    let code_hash = hash_secret(device_code);
    let row: Option<(String, DeviceCodeRow)> = sqlx::query_as(
        "SELECT user_code, client_id, scope, expires_at, interval_secs, last_poll_ms, user_id, denied, consumed
         FROM device_codes WHERE device_code_hash = ?",
    )
    .bind(&code_hash)
    .fetch_optional(&state.pool)
    .await?
    .map(|(pair_user_code, a, b, c, d, e, f, g, h)| (pair_user_code, (a, b, c, d, e, f, g, h)));
    let Some((pair_user_code, (client_id, scope, expires_at, interval, last_poll_ms, user_id, denied, consumed))) = row
    else {
        return Err(OAuthError::new("invalid_grant", "unknown device code"));
    };
    if pair_user_code != user_code {
        return Err(OAuthError::new("invalid_grant", "user_code does not belong to this device_code"));
    }
    let client_id = client_id.as_str();
    if consumed != 0 {
        return Err(OAuthError::new("invalid_grant", "device code already used"));
    }
    if expires_at <= crate::now_secs() {
        return Err(OAuthError::new("expired_token", "the device code expired; start again"));
    }
    let now_ms = crate::now_millis();
    sqlx::query("UPDATE device_codes SET last_poll_ms = ?, poll_count = poll_count + 1 WHERE device_code_hash = ?")
        .bind(now_ms)
        .bind(&code_hash)
        .execute(&state.pool)
        .await?;
    if last_poll_ms.is_some_and(|last| now_ms - last < interval * 1000) {
        // RFC 8628 §3.5: slow down, and poll 5 seconds slower from now on.
        sqlx::query("UPDATE device_codes SET interval_secs = interval_secs + 5 WHERE device_code_hash = ?")
            .bind(&code_hash)
            .execute(&state.pool)
            .await?;
        return Err(OAuthError::new("slow_down", "polling too fast"));
    }
    if denied != 0 {
        return Err(OAuthError::new("access_denied", "the customer declined"));
    }
    let Some(user_id) = user_id else {
        return Err(OAuthError::new("authorization_pending", "waiting for the customer to enter the code"));
    };
    let claimed = sqlx::query("UPDATE device_codes SET consumed = 1 WHERE device_code_hash = ? AND consumed = 0")
        .bind(&code_hash)
        .execute(&state.pool)
        .await?;
    if claimed.rows_affected() == 0 {
        return Err(OAuthError::new("invalid_grant", "device code already used"));
    }
    issue_tokens(&state.pool, state.lwa.access_token_lifetime, client_id, &user_id, &scope, &code_hash).await
}

/// Alphabet of user codes: no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ2456789";

fn user_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..6).map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char).collect()
}

/// LWA for devices: a code pair.
#[utoipa::path(post, path = CODEPAIR_PATH, tag = "lwa",
    request_body(content = crate::openapi::CodePairForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = amazon_rewards_protocol::lwa::DeviceCodeResponse)))]
async fn codepair(
    State(state): State<AppState>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let result = async {
        let Form(form) = form.map_err(|e| OAuthError::new("invalid_request", e.body_text()))?;
        let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if !param("response_type").is_empty() && param("response_type") != "device_code" {
            return Err(OAuthError::new("invalid_request", "response_type must be device_code"));
        }
        let client_id = param("client_id");
        if find_client(&state.pool, client_id).await?.is_none() {
            return Err(OAuthError::new("invalid_client", "unknown client"));
        }
        let scope = param("scope");
        if scope.split_whitespace().next().is_none() {
            return Err(OAuthError::new("invalid_scope", "scope is required"));
        }
        let device_code = random_token("", 32);
        let user_code = user_code();
        sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, expires_at, interval_secs)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(hash_secret(&device_code))
        .bind(&user_code)
        .bind(client_id)
        .bind(scope)
        .bind(crate::now_secs() + state.lwa.device_code_lifetime)
        .bind(state.lwa.device_poll_interval)
        .execute(&state.pool)
        .await?;
        Ok(DeviceCodeResponse {
            device_code,
            user_code,
            verification_uri: format!("{}/code", state.base_url),
            expires_in: state.lwa.device_code_lifetime.max(0) as u64,
            interval: state.lwa.device_poll_interval.max(0) as u64,
        })
    }
    .await;
    match result {
        Ok(pair) => no_store(Json(pair).into_response()),
        Err(error) => error.into_response(),
    }
}

fn code_form(error: Option<&str>, user_code: &str) -> Html<String> {
    let error = error.map(|e| format!(r#"<p class="error">{}</p>"#, escape(e))).unwrap_or_default();
    page(
        "Link a device",
        &format!(
            r#"<p>Enter the code shown in the game, then sign in to link it.</p>{error}
<form method="post" action="/code">
<label for="user_code">Code</label><input id="user_code" name="user_code" type="text" value="{code}" autocomplete="off" required>
<label for="email">Email</label><input id="email" name="email" type="email" required>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button id="allow" name="decision" value="allow" type="submit">Link device</button>
<button id="deny" class="secondary" name="decision" value="deny" type="submit">Cancel</button>
</form>"#,
            code = escape(user_code),
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
struct CodeQuery {
    #[serde(default)]
    user_code: String,
}

async fn code_page(Query(query): Query<CodeQuery>) -> Html<String> {
    code_form(None, &query.user_code)
}

#[derive(Debug, Deserialize)]
struct CodeSubmission {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    decision: String,
}

async fn code_submit(State(state): State<AppState>, form: Result<Form<CodeSubmission>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, code_form(Some("The form was malformed."), "")).into_response();
    };
    let user_code = form.user_code.trim().to_ascii_uppercase().replace(['-', ' '], "");
    let user_id = match check_password(&state.pool, &form.email, &form.password).await {
        Ok(Some(user_id)) => user_id,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, code_form(Some("Your email or password is incorrect."), &user_code))
                .into_response();
        }
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed."),
    };
    let (sql, done) = if form.decision == "allow" {
        (
            "UPDATE device_codes SET user_id = ? WHERE user_code = ? AND expires_at > ? AND consumed = 0 AND denied = 0",
            "Device linked",
        )
    } else {
        (
            "UPDATE device_codes SET denied = 1 WHERE ? IS NOT NULL AND user_code = ? AND expires_at > ? AND consumed = 0",
            "Linking cancelled",
        )
    };
    match sqlx::query(sql).bind(&user_id).bind(&user_code).bind(crate::now_secs()).execute(&state.pool).await {
        Ok(updated) if updated.rows_affected() == 1 => {
            page(done, "<p>You can return to the game now.</p>").into_response()
        }
        Ok(_) => (StatusCode::BAD_REQUEST, code_form(Some("That code is unknown or has expired."), &user_code))
            .into_response(),
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sandbox database failed."),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenInfoQuery {
    #[serde(default)]
    access_token: String,
}

/// Whom an access token was issued to: its client (`aud`), customer, lifetime left and issue time. Unknown,
/// expired or revoked tokens get HTTP 400 `invalid_token`, as LWA answers.
#[utoipa::path(get, path = TOKENINFO_PATH, tag = "lwa", params(TokenInfoQuery),
    responses((status = 200, body = amazon_rewards_protocol::lwa::TokenInfo)))]
async fn tokeninfo(
    State(state): State<AppState>,
    query: Result<Query<TokenInfoQuery>, QueryRejection>,
) -> SandboxResult<Json<amazon_rewards_protocol::lwa::TokenInfo>> {
    let Query(query) = query.map_err(|e| SandboxError::BadRequest(e.body_text()))?;
    if query.access_token.is_empty() || query.access_token.len() > MAX_TOKEN_BYTES {
        return Err(SandboxError::InvalidToken);
    }
    let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT user_id, client_id, expires_at FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?",
    )
    .bind(hash_secret(&query.access_token))
    .bind(crate::now_secs())
    .fetch_optional(&state.pool)
    .await?;
    let Some((user_id, client_id, expires_at)) = row else {
        return Err(SandboxError::InvalidToken);
    };
    let now = crate::now_secs();
    let aud = client_id.unwrap_or_else(|| MINTED_TOKEN_CLIENT.to_owned());
    Ok(Json(amazon_rewards_protocol::lwa::TokenInfo {
        app_id: Some(format!("amzn1.application.{}", &hash_secret(&aud)[..16])),
        aud,
        user_id,
        exp: Some((expires_at - now).max(0) as u64),
        iat: None,
        iss: Some("https://www.amazon.com".into()),
    }))
}

/// The `aud` of tokens minted through the admin API, which no client asked for (sandbox-defined).
pub const MINTED_TOKEN_CLIENT: &str = "amzn1.application-oa2-client.sandbox-admin";

/// The customer's profile (`profile` scope).
#[utoipa::path(get, path = PROFILE_PATH, tag = "lwa", security(("lwa_token" = [])),
    responses((status = 200, body = Profile)))]
async fn profile(State(state): State<AppState>, headers: HeaderMap) -> SandboxResult<Json<Profile>> {
    let user_id = authenticated_customer(&state.pool, &headers).await?;
    let (name, email): (String, String) = sqlx::query_as("SELECT name, email FROM customers WHERE user_id = ?")
        .bind(&user_id)
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(Profile { user_id, name, email: Some(email) }))
}
