//! Who the player is to Amazon: Login with Amazon in the system browser (authorization code + PKCE S256 with a
//! loopback redirect, RFC 8252) or by device code, tokens saved per player and refreshed before they expire or
//! when the service refuses them, and the resulting [`PlayerSession`] that pulls and reports run under.
//!
//! In backend mode ([`LoginConfig::studio_backend`](crate::prelude::LoginConfig::studio_backend)) the same two
//! flows run against the studio backend, which links the player with its own LWA security profile and answers
//! with a studio session: the tokens held here are then the backend's, never Login with Amazon's, and
//! [`LoginRequest::SignOut`] / [`LoginRequest::Unlink`] end the session or the link there too.
//!
//! The game sends [`LoginRequest`]s and follows [`LoginState`] and [`LoginEvent`]s. A game with its own
//! login may instead insert a [`PlayerSession`] itself; replacing it with another player's session switches
//! ledgers, and removing it stops pulling.

use bevy::prelude::*;

/// A Login with Amazon access token. Its `Debug` output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token string (`Atza|…`).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, for an `x-amz-access-token` header. Never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The signed-in player. While it exists, the plugin pulls entitlements for this player and grants them
/// into the [`Inventory`](crate::inventory::Inventory) of the [`RewardsRecipient`](crate::inventory::RewardsRecipient).
///
/// ```
/// # use bevy::prelude::*;
/// # use bevy_amazon_rewards::prelude::*;
/// fn on_token(mut commands: Commands) {
///     commands.insert_resource(PlayerSession::new("amzn1.account.EXAMPLE", AccessToken::new("Atza|…")));
/// }
/// ```
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct PlayerSession {
    player_id: String,
    access_token: AccessToken,
}

impl PlayerSession {
    /// A session for `player_id` (the Amazon user id, `amzn1.account.…`) with `access_token`.
    pub fn new(player_id: impl Into<String>, access_token: AccessToken) -> Self {
        Self { player_id: player_id.into(), access_token }
    }

    /// The player's id; their ledger is kept under it.
    pub fn player_id(&self) -> &str {
        &self.player_id
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
}

mod config;
mod flow;
mod plugin;
mod session;
mod state;
mod systems;
pub(crate) mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use config::LoginConfig;
pub use plugin::LoginPlugin;

/// Opens a URL in the player's browser. The default uses the `webbrowser` crate; tests and consoles can
/// replace it (e.g. to show the URL as a QR code instead).
pub type BrowserOpener = Arc<dyn Fn(&str) -> Result<(), BrowserError> + Send + Sync>;

/// Why a [`BrowserOpener`] could not open the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(pub String);

impl From<String> for BrowserError {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for BrowserError {
    fn from(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// The default [`BrowserOpener`]: the system browser.
pub fn system_browser() -> BrowserOpener {
    Arc::new(|url| webbrowser::open(url).map_err(|e| BrowserError(e.to_string())))
}

/// Whether a player is linked. Use with `run_if(in_state(LoginState::LoggedIn))`, `OnEnter(LoginState::LoggedIn)`
/// or `state_changed::<LoginState>`. The login changes it (there is no `NextState<LoginState>`), applying each
/// transition when it happens rather than checking for one every frame; `StatesPlugin` is not needed.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoginState {
    /// No player is linked.
    #[default]
    LoggedOut,
    /// A sign-in (browser, device code, or resuming a saved session) is under way.
    SigningIn,
    /// A player is linked; see [`AmazonAccount`].
    LoggedIn,
}

/// What the game asks of the login, e.g. from a button.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRequest {
    /// Sign in with Login with Amazon in the system browser (authorization code + PKCE, loopback redirect).
    /// Works with the sandbox and with security profiles that accept a loopback return URL; LWA's docs only
    /// describe registered HTTPS return URLs, so check your profile before relying on it in production.
    WithBrowser,
    /// Sign in by entering a code on another device ("code-based linking", LWA for Devices): the documented
    /// way for games, and the one a shipped PC game uses. The default choice against real Amazon.
    WithDeviceCode,
    /// Abandon the sign-in under way.
    Cancel,
    /// Sign the player out: forget the saved tokens (in backend mode, the studio session ends at the backend
    /// too). Their granted items and ledger stay; signing in again needs no new consent.
    SignOut,
    /// Unlink the player's Amazon account: in backend mode the backend deletes the link, its Login with Amazon
    /// tokens and the profile it stored (the game account and its purchases stay), then the player is signed
    /// out. In client-only mode there is nothing stored but the local tokens, so it is a sign-out (the player
    /// removes the game's access on Amazon's side).
    Unlink,
}

/// How a sign-in was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// System browser.
    Browser,
    /// Device code.
    DeviceCode,
}

/// The linked Amazon account, present while [`LoginState::LoggedIn`].
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct AmazonAccount {
    /// `amzn1.account.…`.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Email, when shared.
    pub email: Option<String>,
}

/// Why a sign-in did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The browser could not be opened; offer the device code instead.
    #[error("no browser could be opened ({0})")]
    BrowserUnavailable(String),
    /// The player did not come back from the browser in time.
    #[error("the sign-in timed out")]
    Timeout,
    /// The redirect's `state` was not this sign-in's: a forged or stale redirect, refused.
    #[error("the sign-in response did not belong to this sign-in")]
    StateMismatch,
    /// The player declined.
    #[error("the player declined to link their Amazon account")]
    Denied,
    /// The device code expired before the player entered it.
    #[error("the code expired before it was entered")]
    DeviceCodeExpired,
    /// Login with Amazon refused (RFC 6749 error code and description).
    #[error("Login with Amazon refused the sign-in: {error} ({description})")]
    Provider {
        /// e.g. `invalid_grant`.
        error: String,
        /// The server's description.
        description: String,
    },
    /// The network failed.
    #[error("network error: {0}")]
    Network(String),
    /// The server's answer could not be read.
    #[error("unexpected answer from Login with Amazon: {0}")]
    Malformed(String),
    /// The tokens could not be saved.
    #[error("the tokens could not be saved: {0}")]
    Storage(String),
    /// A configured URL is invalid.
    #[error("login is misconfigured: {0}")]
    Config(String),
}

impl LoginError {
    /// Whether Login with Amazon refused the refresh token itself (`invalid_grant`: revoked, the app removed
    /// from the player's allowed apps, or a reused token on a server that rotates), the one refusal after which
    /// only linking again helps. Any other failure of a refresh is retried.
    pub fn is_refresh_refused(&self) -> bool {
        matches!(self, LoginError::Provider { error, .. } if error == "invalid_grant")
    }
}

/// What happened to the login, for the game's UI.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum LoginEvent {
    /// A sign-in started.
    Started(LoginMethod),
    /// The browser was sent to this URL; show it too, in case it did not open where the player looks.
    BrowserOpened {
        /// The authorization URL.
        url: String,
    },
    /// Show this code and URL; the player enters the code there.
    DeviceCodeReady {
        /// The code to enter.
        user_code: String,
        /// Where to enter it.
        verification_uri: String,
        /// How long the code is valid.
        expires_in: Duration,
    },
    /// The player is linked.
    SignedIn(AmazonAccount),
    /// A saved session was resumed at startup.
    Resumed(AmazonAccount),
    /// The sign-in failed; the previous state is kept.
    Failed(LoginError),
    /// The sign-in was cancelled.
    Cancelled,
    /// The player signed out.
    SignedOut,
    /// The session can no longer be refreshed: the player must sign in again. Nothing else is lost.
    ReloginRequired(LoginError),
}
