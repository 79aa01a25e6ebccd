//! The Login with Amazon flows, run on the background runtime: authorization code + PKCE S256 through the
//! system browser and a loopback redirect (the `oauth2` crate), code pairing ("code-based linking", LWA for
//! Devices) by hand, and refresh. Each ends by reading the profile and saving the tokens.
//!
//! Code pairing is built by hand because LWA deviates from RFC 8628: it polls with `grant_type=device_code`
//! and refuses the RFC's URN grant type (LWA's docs, "grant_type REQUIRED. Must be device_code"; a shipped PC
//! game polls with exactly `grant_type`, `device_code` and `user_code`; see `shared/WIRE.md`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amazon_rewards_protocol::lwa::{
    DEVICE_CODE_GRANT, DeviceCodeResponse, MAX_TOKEN_BYTES, OAuthErrorBody, Profile, TokenResponse as LwaTokens,
};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, ErrorResponse, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};

use super::tokens::{self, StoredTokens, now_unix};
use super::{BrowserOpener, LoginError};
use crate::core::loopback::{LoopbackError, LoopbackListener, ReturnPages, parameter};

/// The studio backend's own routes, in backend mode.
pub(crate) struct StudioEndpoints {
    pub revoke_url: String,
    pub unlink_url: String,
}

/// Everything a flow needs, captured from `LoginConfig` at startup: Login with Amazon's endpoints, or in
/// backend mode the studio backend's, which speak the same shapes.
pub(crate) struct LwaEndpoints {
    pub studio: Option<StudioEndpoints>,
    pub authorize_url: String,
    pub token_url: String,
    pub codepair_url: String,
    pub profile_url: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub redirect_path: String,
    pub browser_timeout: Duration,
    pub open_browser: BrowserOpener,
    pub data_dir: Option<PathBuf>,
    /// The shared client: follows only same-origin redirects, so a token request never leaves its host.
    pub http: reqwest::Client,
    /// Token files, written in step with sign-outs.
    pub token_files: Arc<tokens::TokenFiles>,
}

/// Progress a flow reports before it ends.
pub(crate) enum FlowProgress {
    BrowserOpened { url: String },
    DeviceCodeReady { user_code: String, verification_uri: String, expires_in: Duration },
}

fn scopes(endpoints: &LwaEndpoints) -> impl Iterator<Item = Scope> + '_ {
    endpoints.scopes.iter().map(|s| Scope::new(s.clone()))
}

fn url_error(what: &str) -> impl Fn(oauth2::url::ParseError) -> LoginError + '_ {
    move |e| LoginError::Config(format!("{what} is not a valid URL: {e}"))
}

fn map_token_error<RE: std::error::Error + 'static, T: ErrorResponse + 'static>(
    error: RequestTokenError<RE, T>,
) -> LoginError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            // Both standard and device error responses serialize as RFC 6749 §5.2 bodies.
            let body = serde_json::to_value(&response).unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("unknown_error").to_owned();
            let description = body["error_description"].as_str().unwrap_or_default().to_owned();
            if error == "expired_token" {
                LoginError::DeviceCodeExpired
            } else {
                LoginError::Provider { error, description }
            }
        }
        RequestTokenError::Request(e) => LoginError::Network(e.to_string()),
        RequestTokenError::Parse(e, _) => LoginError::Malformed(e.to_string()),
        RequestTokenError::Other(message) if message.to_ascii_lowercase().contains("expired") => {
            LoginError::DeviceCodeExpired
        }
        RequestTokenError::Other(message) => LoginError::Malformed(message),
    }
}

/// Authorization code + PKCE through the system browser and a loopback redirect.
pub(crate) async fn browser_login(
    endpoints: Arc<LwaEndpoints>,
    epoch: u64,
    progress: impl Fn(FlowProgress),
) -> Result<StoredTokens, LoginError> {
    let listener =
        LoopbackListener::bind(&endpoints.redirect_path).await.map_err(|e| LoginError::Network(e.to_string()))?;
    let client = BasicClient::new(ClientId::new(endpoints.client_id.clone()))
        .set_auth_uri(AuthUrl::new(endpoints.authorize_url.clone()).map_err(url_error("authorize_url"))?)
        .set_token_uri(TokenUrl::new(endpoints.token_url.clone()).map_err(url_error("token URL"))?)
        .set_redirect_uri(RedirectUrl::new(listener.redirect_uri().to_owned()).map_err(url_error("redirect URI"))?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) =
        client.authorize_url(CsrfToken::new_random).add_scopes(scopes(&endpoints)).set_pkce_challenge(challenge).url();
    let opener = endpoints.open_browser.clone();
    let address = url.to_string();
    tokio::task::spawn_blocking(move || opener(&address))
        .await
        .map_err(|e| LoginError::BrowserUnavailable(e.to_string()))?
        .map_err(|e| LoginError::BrowserUnavailable(e.0))?;
    progress(FlowProgress::BrowserOpened { url: url.to_string() });
    let pages = ReturnPages {
        done: ("Signed in", "You are signed in. Return to the game."),
        failed: "Sign-in did not complete",
    };
    let code = match listener
        .wait_for(endpoints.browser_timeout, state.secret(), pages, |query| judge_redirect(query, state.secret()))
        .await
    {
        Ok(outcome) => outcome?,
        Err(LoopbackError::Timeout) => return Err(LoginError::Timeout),
        Err(LoopbackError::Network(error)) => return Err(LoginError::Network(error)),
    };
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&endpoints.http)
        .await
        .map_err(map_token_error)?;
    finish(&endpoints, epoch, Granted::from_oauth2(token)?, None).await
}

/// What an authorization redirect says: the code, or why there is none (RFC 6749 §4.1.2).
fn judge_redirect(query: &crate::core::loopback::Query, expected_state: &str) -> Result<String, LoginError> {
    if parameter(query, "state") != Some(expected_state) {
        return Err(LoginError::StateMismatch);
    }
    if let Some(error) = parameter(query, "error") {
        return Err(if error == "access_denied" {
            LoginError::Denied
        } else {
            LoginError::Provider {
                error: error.to_owned(),
                description: parameter(query, "error_description").unwrap_or_default().to_owned(),
            }
        });
    }
    parameter(query, "code").filter(|code| !code.is_empty()).map(str::to_owned).ok_or_else(|| LoginError::Provider {
        error: "invalid_request".into(),
        description: "the redirect carried no code".into(),
    })
}

/// Longest answer read from Login with Amazon's token and code-pair endpoints.
const MAX_LWA_ANSWER_BYTES: usize = 64 * 1024;
/// Bounds on what the code-pair endpoint may ask for: a poll interval of 1 s to 5 min, codes valid up to 1 h.
const POLL_INTERVAL_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(3600);
/// RFC 8628 §3.5: after `slow_down`, poll this much less often.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Code pairing ("code-based linking"): shows a code, polls at the server's interval until the player enters it.
pub(crate) async fn device_login(
    endpoints: Arc<LwaEndpoints>,
    epoch: u64,
    progress: impl Fn(FlowProgress),
) -> Result<StoredTokens, LoginError> {
    let scope = endpoints.scopes.join(" ");
    let form = [("response_type", "device_code"), ("client_id", &endpoints.client_id), ("scope", &scope)];
    let pair: DeviceCodeResponse = post_form(&endpoints.http, &endpoints.codepair_url, &form).await?;
    if pair.device_code.is_empty() || pair.user_code.is_empty() || pair.device_code.len() > MAX_TOKEN_BYTES {
        return Err(LoginError::Malformed("the code pair has no usable device_code or user_code".into()));
    }
    let lifetime = Duration::from_secs(pair.expires_in).min(MAX_CODE_LIFETIME);
    let mut interval = Duration::from_secs(pair.interval).clamp(POLL_INTERVAL_BOUNDS.0, POLL_INTERVAL_BOUNDS.1);
    progress(FlowProgress::DeviceCodeReady {
        user_code: pair.user_code.clone(),
        verification_uri: pair.verification_uri.clone(),
        expires_in: lifetime,
    });
    let deadline = tokio::time::Instant::now() + lifetime;
    let poll = [("grant_type", DEVICE_CODE_GRANT), ("device_code", &pair.device_code), ("user_code", &pair.user_code)];
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(LoginError::DeviceCodeExpired);
        }
        match post_form::<LwaTokens>(&endpoints.http, &endpoints.token_url, &poll).await {
            Ok(tokens) => return finish(&endpoints, epoch, Granted::from_lwa(tokens)?, None).await,
            Err(LoginError::Provider { error, description }) => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval = (interval + SLOW_DOWN_STEP).min(POLL_INTERVAL_BOUNDS.1),
                "expired_token" => return Err(LoginError::DeviceCodeExpired),
                "access_denied" => return Err(LoginError::Denied),
                _ => return Err(LoginError::Provider { error, description }),
            },
            Err(other) => return Err(other),
        }
    }
}

/// Posts a form to a Login with Amazon endpoint and reads its JSON answer: `T` on success, the RFC 6749 §5.2
/// error as [`LoginError::Provider`] otherwise. The body is read with a cap, never past it.
async fn post_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<T, LoginError> {
    let response = http.post(url).form(form).send().await.map_err(network_error)?;
    let status = response.status();
    let body = read_capped(response, MAX_LWA_ANSWER_BYTES).await?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| LoginError::Malformed(e.to_string()));
    }
    match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(refusal) => Err(LoginError::Provider {
            error: refusal.error,
            description: refusal.error_description.unwrap_or_default(),
        }),
        Err(_) if status.is_server_error() => Err(LoginError::Network(format!("HTTP {}", status.as_u16()))),
        Err(_) => Err(LoginError::Malformed(format!("HTTP {} without an OAuth error body", status.as_u16()))),
    }
}

fn network_error(error: reqwest::Error) -> LoginError {
    LoginError::Network(error.without_url().to_string())
}

/// The body within `cap` bytes (see [`crate::core::http::read_capped`]).
async fn read_capped(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, LoginError> {
    crate::core::http::read_capped(response, cap).await.map_err(|error| match error {
        crate::core::http::CappedReadError::TooLarge => {
            LoginError::Malformed(format!("answer larger than {cap} bytes"))
        }
        crate::core::http::CappedReadError::Network(error) => LoginError::Network(error),
    })
}

/// A token answer, from either the `oauth2` crate or a hand-built exchange, checked and bounded.
struct Granted {
    access_token: String,
    expires_in: Duration,
    refresh_token: Option<String>,
}

/// The longest access-token lifetime believed; a server's larger number is cut to it.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl Granted {
    fn new(
        access_token: String,
        expires_in: Option<Duration>,
        refresh_token: Option<String>,
    ) -> Result<Self, LoginError> {
        let too_long = |t: &str| t.is_empty() || t.len() > MAX_TOKEN_BYTES;
        if too_long(&access_token) || refresh_token.as_deref().is_some_and(too_long) {
            return Err(LoginError::Malformed(format!("a token is empty or longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let expires_in = expires_in.unwrap_or(Duration::from_secs(3600)).min(MAX_TOKEN_LIFETIME);
        Ok(Self { access_token, expires_in, refresh_token })
    }

    fn from_lwa(tokens: LwaTokens) -> Result<Self, LoginError> {
        if !tokens.token_type.eq_ignore_ascii_case("bearer") {
            return Err(LoginError::Malformed(format!("token_type {:?} is not bearer", tokens.token_type)));
        }
        Self::new(tokens.access_token, Some(Duration::from_secs(tokens.expires_in)), tokens.refresh_token)
    }

    fn from_oauth2(token: BasicTokenResponse) -> Result<Self, LoginError> {
        let refresh = token.refresh_token().map(|t| t.secret().clone());
        Self::new(token.access_token().secret().clone(), token.expires_in(), refresh)
    }
}

/// Trades the refresh token for new tokens (the server rotates the refresh token).
pub(crate) async fn refresh(
    endpoints: Arc<LwaEndpoints>,
    epoch: u64,
    current: StoredTokens,
) -> Result<StoredTokens, LoginError> {
    let refresh_token = current
        .refresh_token
        .clone()
        .ok_or(LoginError::Provider { error: "invalid_grant".into(), description: "no refresh token".into() })?;
    let client = BasicClient::new(ClientId::new(endpoints.client_id.clone()))
        .set_token_uri(TokenUrl::new(endpoints.token_url.clone()).map_err(url_error("token URL"))?);
    let token = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token))
        .request_async(&endpoints.http)
        .await
        .map_err(map_token_error)?;
    finish(&endpoints, epoch, Granted::from_oauth2(token)?, Some(current)).await
}

/// Reads the profile (unless refreshing a known player) and saves the tokens.
/// A refresh answer without a refresh token keeps the current one: servers that do not rotate work too.
async fn finish(
    endpoints: &LwaEndpoints,
    epoch: u64,
    token: Granted,
    previous: Option<StoredTokens>,
) -> Result<StoredTokens, LoginError> {
    let Granted { access_token, expires_in, refresh_token } = token;
    let expires_at = now_unix().saturating_add(expires_in.as_secs());
    let refresh_token = refresh_token.or_else(|| previous.as_ref().and_then(|p| p.refresh_token.clone()));
    let stored = match previous {
        Some(previous) => StoredTokens { access_token, expires_at, refresh_token, ..previous },
        None => {
            let profile = fetch_profile(endpoints, &access_token).await?;
            StoredTokens {
                user_id: profile.user_id,
                name: profile.name,
                email: profile.email,
                access_token,
                expires_at,
                refresh_token,
            }
        }
    };
    if let Some(data_dir) = &endpoints.data_dir {
        let (dir, tokens, files) = (data_dir.clone(), stored.clone(), endpoints.token_files.clone());
        tokio::task::spawn_blocking(move || files.save(epoch, &dir, &tokens))
            .await
            .map_err(|e| LoginError::Storage(e.to_string()))?
            .map_err(|e| LoginError::Storage(e.to_string()))?;
    }
    Ok(stored)
}

async fn fetch_profile(endpoints: &LwaEndpoints, access_token: &str) -> Result<Profile, LoginError> {
    let response = endpoints
        .http
        .get(&endpoints.profile_url)
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| LoginError::Network(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(LoginError::Provider {
            error: "profile_unavailable".into(),
            description: format!("the profile endpoint answered HTTP {}", response.status().as_u16()),
        });
    }
    let bytes = read_capped(response, MAX_LWA_ANSWER_BYTES).await?;
    let profile: Profile = serde_json::from_slice(&bytes).map_err(|e| LoginError::Malformed(e.to_string()))?;
    if profile.user_id.is_empty() {
        return Err(LoginError::Malformed("profile without user_id".into()));
    }
    Ok(profile)
}
