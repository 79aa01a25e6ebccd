//! The Login with Amazon flows, run on the background runtime with the `oauth2` crate: authorization code +
//! PKCE S256 through the system browser and a loopback redirect, device code ("code-based linking") for
//! screens without a browser, and refresh. Each ends by reading the profile and saving the tokens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amazon_rewards_protocol::lwa::Profile;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl, ErrorResponse, PkceCodeChallenge,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

use super::tokens::{self, StoredTokens, now_unix};
use super::{BrowserOpener, LoginError};
use crate::loopback::{LoopbackError, LoopbackListener, ReturnPages, parameter};

/// Everything a flow needs, captured from `LoginConfig` at startup.
pub(crate) struct LwaEndpoints {
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
    /// Follows no redirects (an OAuth client must not, to avoid SSRF).
    pub http: reqwest::Client,
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
        .map_err(LoginError::BrowserUnavailable)?;
    progress(FlowProgress::BrowserOpened { url: url.to_string() });
    let pages = ReturnPages {
        done: ("Signed in", "You are signed in. Return to the game."),
        failed: "Sign-in did not complete",
    };
    let code = match listener
        .wait_for(endpoints.browser_timeout, pages, |query| judge_redirect(query, state.secret()))
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
    finish(&endpoints, token, None).await
}

/// What an authorization redirect says: the code, or why there is none (RFC 6749 §4.1.2).
fn judge_redirect(query: &crate::loopback::Query, expected_state: &str) -> Result<String, LoginError> {
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

/// Device code ("code-based linking"): shows a code, polls at the server's interval until the player enters it.
pub(crate) async fn device_login(
    endpoints: Arc<LwaEndpoints>,
    progress: impl Fn(FlowProgress),
) -> Result<StoredTokens, LoginError> {
    let client = BasicClient::new(ClientId::new(endpoints.client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(endpoints.codepair_url.clone()).map_err(url_error("code-pair URL"))?,
        )
        .set_token_uri(TokenUrl::new(endpoints.token_url.clone()).map_err(url_error("token URL"))?);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(&endpoints))
        .add_extra_param("response_type", "device_code")
        .request_async(&endpoints.http)
        .await
        .map_err(map_token_error)?;
    progress(FlowProgress::DeviceCodeReady {
        user_code: details.user_code().secret().clone(),
        verification_uri: details.verification_uri().to_string(),
        expires_in: details.expires_in(),
    });
    let token = client
        .exchange_device_access_token(&details)
        .add_extra_param("user_code", details.user_code().secret().clone())
        .request_async(&endpoints.http, tokio::time::sleep, None)
        .await
        .map_err(map_token_error)?;
    finish(&endpoints, token, None).await
}

/// Trades the refresh token for new tokens (the server rotates the refresh token).
pub(crate) async fn refresh(endpoints: Arc<LwaEndpoints>, current: StoredTokens) -> Result<StoredTokens, LoginError> {
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
    finish(&endpoints, token, Some(current)).await
}

/// Reads the profile (unless refreshing a known player) and saves the tokens.
async fn finish(
    endpoints: &LwaEndpoints,
    token: BasicTokenResponse,
    previous: Option<StoredTokens>,
) -> Result<StoredTokens, LoginError> {
    let access_token = token.access_token().secret().clone();
    let expires_at = now_unix() + token.expires_in().unwrap_or(Duration::from_secs(3600)).as_secs();
    let refresh_token = token
        .refresh_token()
        .map(|t| t.secret().clone())
        .or_else(|| previous.as_ref().and_then(|p| p.refresh_token.clone()));
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
        let (dir, tokens) = (data_dir.clone(), stored.clone());
        tokio::task::spawn_blocking(move || tokens::save(&dir, &tokens))
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
    let bytes = response.bytes().await.map_err(|e| LoginError::Network(e.without_url().to_string()))?;
    if bytes.len() > 64 * 1024 {
        return Err(LoginError::Malformed("profile larger than 64 KiB".into()));
    }
    let profile: Profile = serde_json::from_slice(&bytes).map_err(|e| LoginError::Malformed(e.to_string()))?;
    if profile.user_id.is_empty() {
        return Err(LoginError::Malformed("profile without user_id".into()));
    }
    Ok(profile)
}
