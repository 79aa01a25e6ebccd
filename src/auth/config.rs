//! The settings of [`LoginPlugin`](crate::auth::LoginPlugin): where Login with Amazon is, the scopes asked
//! for, the loopback redirect, and when tokens are refreshed.

use std::time::Duration;

/// Login with Amazon settings.
#[derive(Clone)]
pub struct LoginConfig {
    /// The authorization page, `https://www.amazon.com/ap/oa` in production.
    pub authorize_url: String,
    /// Base of the token, code-pair and profile endpoints, `https://api.amazon.com` in production.
    pub api_url: String,
    /// Scopes asked for. Default `games::prime profile`.
    pub scopes: Vec<String>,
    /// Path of the loopback redirect URI (`http://127.0.0.1:{port}{path}`); register
    /// `http://127.0.0.1{path}` with the security profile. Default `/amazon-rewards/callback`.
    pub redirect_path: String,
    /// How long the loopback listener waits for the player to finish in the browser. Default 5 min.
    pub browser_timeout: Duration,
    /// Refresh the access token this long before it expires. Default 5 min.
    pub refresh_margin: Duration,
    /// How the browser is opened. Default: the system browser.
    pub open_browser: crate::auth::BrowserOpener,
    /// Resume the last signed-in player's saved session at startup. Default true.
    pub restore_session: bool,
    /// Backend mode: the studio backend at this base URL links the player (browser and code pairing run
    /// against its `/link/…` routes, which speak LWA's shapes) and the game holds only the studio session it
    /// issues, never a Login with Amazon token; sign-out ends that session at the backend and
    /// [`LoginRequest::Unlink`](crate::prelude::LoginRequest::Unlink) unlinks there. `authorize_url` and
    /// `api_url` are then unused. Default `None`: the game signs in with LWA directly (client-only mode).
    pub studio_backend: Option<String>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            authorize_url: amazon_rewards_protocol::lwa::PRODUCTION_AUTHORIZE_URL.into(),
            api_url: amazon_rewards_protocol::lwa::PRODUCTION_API_URL.into(),
            scopes: vec![
                amazon_rewards_protocol::lwa::SCOPE_PRIME_GAMING.into(),
                amazon_rewards_protocol::lwa::SCOPE_PROFILE.into(),
            ],
            redirect_path: "/amazon-rewards/callback".into(),
            browser_timeout: Duration::from_secs(300),
            refresh_margin: Duration::from_secs(300),
            open_browser: crate::auth::system_browser(),
            restore_session: true,
            studio_backend: None,
        }
    }
}

impl std::fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginConfig")
            .field("authorize_url", &self.authorize_url)
            .field("api_url", &self.api_url)
            .field("scopes", &self.scopes)
            .field("redirect_path", &self.redirect_path)
            .field("browser_timeout", &self.browser_timeout)
            .field("refresh_margin", &self.refresh_margin)
            .field("restore_session", &self.restore_session)
            .field("studio_backend", &self.studio_backend)
            .finish_non_exhaustive()
    }
}
