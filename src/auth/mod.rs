//! Who the player is to Amazon: Login with Amazon in the system browser (authorization code + PKCE S256 with a
//! loopback redirect, RFC 8252) or by device code, tokens saved per player and refreshed before they expire or
//! when the service refuses them, and the resulting [`PlayerSession`] that pulls and reports run under.
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

mod flow;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use bevy::ecs::system::SystemParam;

use crate::config::RewardsConfig;
use crate::runtime::{BackgroundResult, RewardsRuntime};
use flow::{FlowProgress, LwaEndpoints};
use tokens::{StoredTokens, now_unix};

/// Opens a URL in the player's browser. The default uses the `webbrowser` crate; tests and consoles can
/// replace it (e.g. to show the URL as a QR code instead).
pub type BrowserOpener = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The default [`BrowserOpener`]: the system browser.
pub fn system_browser() -> BrowserOpener {
    Arc::new(|url| webbrowser::open(url).map_err(|e| e.to_string()))
}

/// Whether a player is linked. Use with `run_if(in_state(LoginState::LoggedIn))`.
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
    /// Unlink the player: forget the saved tokens. Their granted items and ledger stay.
    SignOut,
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

/// Updates from login work on the background runtime.
pub(crate) enum LoginUpdate {
    Progress {
        attempt: u64,
        progress: FlowProgress,
    },
    Finished {
        attempt: u64,
        result: Result<StoredTokens, LoginError>,
    },
    Restored(Result<Option<StoredTokens>, String>),
    Refreshed {
        generation: u64,
        result: Result<StoredTokens, LoginError>,
    },
    /// The entitlements service refused the access token (from the fulfilment side).
    TokenRefused,
}

/// The main thread's login state.
#[derive(Resource)]
pub(crate) struct LoginFlow {
    endpoints: Arc<LwaEndpoints>,
    refresh_margin: Duration,
    attempt: u64,
    running: Option<tokio::task::AbortHandle>,
    tokens: Option<StoredTokens>,
    /// Bumped with every new token set, so a late refresh of an older set is ignored.
    generation: u64,
    refresh_task: Option<tokio::task::AbortHandle>,
    refreshing: bool,
    resuming: bool,
}

impl LoginFlow {
    pub(crate) fn new(config: &RewardsConfig) -> Result<Self, LoginError> {
        let login = &config.login;
        let api = login.api_url.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| LoginError::Config(e.to_string()))?;
        use amazon_rewards_protocol::lwa::{CODEPAIR_PATH, PROFILE_PATH, TOKEN_PATH};
        Ok(Self {
            endpoints: Arc::new(LwaEndpoints {
                authorize_url: login.authorize_url.clone(),
                token_url: format!("{api}{TOKEN_PATH}"),
                codepair_url: format!("{api}{CODEPAIR_PATH}"),
                profile_url: format!("{api}{PROFILE_PATH}"),
                client_id: config.client_id.clone(),
                scopes: login.scopes.clone(),
                redirect_path: login.redirect_path.clone(),
                browser_timeout: login.browser_timeout,
                open_browser: login.open_browser.clone(),
                data_dir: config.resolved_data_dir(),
                http,
                token_files: Arc::default(),
            }),
            refresh_margin: login.refresh_margin,
            attempt: 0,
            running: None,
            tokens: None,
            generation: 0,
            refresh_task: None,
            refreshing: false,
            resuming: false,
        })
    }

    /// Reads the saved session in the background (at startup).
    pub(crate) fn restore(&mut self, runtime: &RewardsRuntime) {
        let Some(data_dir) = self.endpoints.data_dir.clone() else {
            return;
        };
        self.resuming = true;
        runtime.spawn(async move {
            let loaded = tokio::task::spawn_blocking(move || tokens::load_current(&data_dir))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            BackgroundResult::Login(LoginUpdate::Restored(loaded))
        });
    }

    /// Another instance holds the data directory: never save tokens there (a sign-in here still works for this
    /// run).
    pub(crate) fn make_read_only(&mut self) {
        self.endpoints.token_files.make_read_only();
    }

    fn start(&mut self, runtime: &RewardsRuntime, method: LoginMethod) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
        self.attempt += 1;
        let attempt = self.attempt;
        let endpoints = self.endpoints.clone();
        let epoch = endpoints.token_files.epoch();
        let sender = runtime.sender();
        let progress = move |progress| {
            sender.send(BackgroundResult::Login(LoginUpdate::Progress { attempt, progress }));
        };
        self.running = Some(runtime.spawn(async move {
            let result = match method {
                LoginMethod::Browser => flow::browser_login(endpoints, epoch, progress).await,
                LoginMethod::DeviceCode => flow::device_login(endpoints, epoch, progress).await,
            };
            BackgroundResult::Login(LoginUpdate::Finished { attempt, result })
        }));
    }

    /// Refreshes after `delay` (now when zero).
    fn schedule_refresh(&mut self, runtime: &RewardsRuntime, delay: Duration) {
        let Some(tokens) = self.tokens.clone() else {
            return;
        };
        if let Some(task) = self.refresh_task.take() {
            task.abort();
        }
        let endpoints = self.endpoints.clone();
        let epoch = endpoints.token_files.epoch();
        let generation = self.generation;
        self.refresh_task = Some(runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let result = flow::refresh(endpoints, epoch, tokens).await;
            BackgroundResult::Login(LoginUpdate::Refreshed { generation, result })
        }));
    }

    fn refresh_delay(&self, tokens: &StoredTokens) -> Duration {
        let due = tokens.expires_at.saturating_sub(self.refresh_margin.as_secs());
        Duration::from_secs(due.saturating_sub(now_unix()))
    }

    /// Adopts a token set: the player's session (same player: same ledger) and the next refresh.
    fn adopt(&mut self, commands: &mut Commands, runtime: &RewardsRuntime, tokens: StoredTokens) -> AmazonAccount {
        self.generation += 1;
        self.refreshing = false;
        let account =
            AmazonAccount { user_id: tokens.user_id.clone(), name: tokens.name.clone(), email: tokens.email.clone() };
        commands
            .insert_resource(PlayerSession::new(tokens.user_id.clone(), AccessToken::new(tokens.access_token.clone())));
        commands.insert_resource(account.clone());
        let delay = self.refresh_delay(&tokens);
        let refreshable = tokens.refresh_token.is_some();
        self.tokens = Some(tokens);
        if refreshable {
            self.schedule_refresh(runtime, delay);
        }
        account
    }

    /// Forgets the session: tokens (on disk too), session resources, timers.
    fn forget(&mut self, commands: &mut Commands, runtime: &RewardsRuntime) {
        for task in [self.running.take(), self.refresh_task.take()].into_iter().flatten() {
            task.abort();
        }
        self.refreshing = false;
        self.generation += 1;
        // A sign-in finishing after this is not adopted.
        self.attempt += 1;
        // At once, on this thread: a save still running in the background from before is dropped.
        self.endpoints.token_files.end_epoch();
        if let (Some(tokens), Some(data_dir)) = (self.tokens.take(), self.endpoints.data_dir.clone()) {
            let files = self.endpoints.token_files.clone();
            runtime.spawn_detached(async move {
                let _ = tokio::task::spawn_blocking(move || files.delete(&data_dir, &tokens.user_id)).await;
            });
        }
        commands.remove_resource::<PlayerSession>();
        commands.remove_resource::<AmazonAccount>();
    }
}

fn set_state(next: &mut Option<ResMut<NextState<LoginState>>>, state: LoginState) {
    if let Some(next) = next.as_mut() {
        next.set(state);
    }
}

/// What [`LoginDriver::drive`] works with.
#[derive(SystemParam)]
pub(crate) struct LoginDriver<'w, 's> {
    commands: Commands<'w, 's>,
    flow: ResMut<'w, LoginFlow>,
    runtime: Res<'w, RewardsRuntime>,
    requests: MessageReader<'w, 's, LoginRequest>,
    events: MessageWriter<'w, LoginEvent>,
    next: Option<ResMut<'w, NextState<LoginState>>>,
}

impl LoginDriver<'_, '_> {
    /// Runs the login: requests from the game, progress and results from the background (and, from the
    /// fulfilment side, refused tokens and successful pulls), refreshes when the token nears expiry or is
    /// refused. Called from the plugin's receive system in
    /// [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
    pub(crate) fn drive(&mut self, updates: Vec<LoginUpdate>) {
        if updates.is_empty() && self.requests.is_empty() {
            return;
        }
        let LoginDriver { commands, flow, runtime, requests, events, next } = self;
        let flow = &mut **flow;
        for request in requests.read() {
            match request {
                LoginRequest::WithBrowser | LoginRequest::WithDeviceCode => {
                    let method = if *request == LoginRequest::WithBrowser {
                        LoginMethod::Browser
                    } else {
                        LoginMethod::DeviceCode
                    };
                    flow.start(runtime, method);
                    events.write(LoginEvent::Started(method));
                    set_state(next, LoginState::SigningIn);
                }
                LoginRequest::Cancel => {
                    if let Some(running) = flow.running.take() {
                        running.abort();
                        flow.attempt += 1;
                        events.write(LoginEvent::Cancelled);
                        set_state(
                            next,
                            if flow.tokens.is_some() { LoginState::LoggedIn } else { LoginState::LoggedOut },
                        );
                    }
                }
                LoginRequest::SignOut => {
                    flow.forget(commands, runtime);
                    events.write(LoginEvent::SignedOut);
                    set_state(next, LoginState::LoggedOut);
                }
            }
        }
        let mut refused = false;
        let mut updates_left = Vec::with_capacity(updates.len());
        for update in updates {
            match update {
                LoginUpdate::TokenRefused => refused = true,
                other => updates_left.push(other),
            }
        }
        if refused && flow.tokens.is_some() && !flow.refreshing {
            // Amazon's error process: retry, refresh, and only then relink. The service refused the access
            // token (HTTP 400/401: maybe expired), so refresh once; the services retry once with the new token
            // and treat a second refusal as an ordinary request error. Only a refused refresh signs out.
            if flow.tokens.as_ref().is_some_and(|t| t.refresh_token.is_none()) {
                let reason = LoginError::Provider {
                    error: "invalid_token".into(),
                    description: "the access token was refused and there is no refresh token".into(),
                };
                flow.forget(commands, runtime);
                events.write(LoginEvent::ReloginRequired(reason));
                set_state(next, LoginState::LoggedOut);
            } else {
                flow.refreshing = true;
                flow.schedule_refresh(runtime, Duration::ZERO);
            }
        }
        for update in updates_left {
            match update {
                LoginUpdate::Progress { attempt, progress } if attempt == flow.attempt => match progress {
                    FlowProgress::BrowserOpened { url } => {
                        events.write(LoginEvent::BrowserOpened { url });
                    }
                    FlowProgress::DeviceCodeReady { user_code, verification_uri, expires_in } => {
                        events.write(LoginEvent::DeviceCodeReady { user_code, verification_uri, expires_in });
                    }
                },
                LoginUpdate::Progress { .. } => {}
                LoginUpdate::Finished { attempt, result } if attempt == flow.attempt => {
                    flow.running = None;
                    match result {
                        Ok(tokens) => {
                            let account = flow.adopt(commands, runtime, tokens);
                            info!("linked Amazon account of {}", account.name);
                            events.write(LoginEvent::SignedIn(account));
                            set_state(next, LoginState::LoggedIn);
                        }
                        Err(error) => {
                            warn!("sign-in failed: {error}");
                            events.write(LoginEvent::Failed(error));
                            set_state(
                                next,
                                if flow.tokens.is_some() { LoginState::LoggedIn } else { LoginState::LoggedOut },
                            );
                        }
                    }
                }
                LoginUpdate::Finished { .. } => {}
                LoginUpdate::Restored(loaded) => match loaded {
                    Ok(Some(tokens)) if flow.tokens.is_none() && flow.running.is_none() => {
                        if tokens.expires_at > now_unix() + flow.refresh_margin.as_secs() {
                            flow.resuming = false;
                            let account = flow.adopt(commands, runtime, tokens);
                            events.write(LoginEvent::Resumed(account));
                            set_state(next, LoginState::LoggedIn);
                        } else if tokens.refresh_token.is_some() {
                            flow.tokens = Some(tokens);
                            flow.refreshing = true;
                            flow.schedule_refresh(runtime, Duration::ZERO);
                            set_state(next, LoginState::SigningIn);
                        } else {
                            flow.resuming = false;
                        }
                    }
                    Ok(_) => flow.resuming = false,
                    Err(error) => {
                        flow.resuming = false;
                        warn!("the saved Amazon session could not be read: {error}");
                        events.write(LoginEvent::Failed(LoginError::Storage(error)));
                    }
                },
                LoginUpdate::Refreshed { generation, result } if generation == flow.generation => {
                    flow.refresh_task = None;
                    match result {
                        Ok(tokens) => {
                            let account = flow.adopt(commands, runtime, tokens);
                            if std::mem::take(&mut flow.resuming) {
                                events.write(LoginEvent::Resumed(account));
                                set_state(next, LoginState::LoggedIn);
                            }
                        }
                        Err(error) if error.is_refresh_refused() => {
                            // The refresh token itself was refused ("Token invalid"): only a new link helps.
                            warn!("the Amazon session ended: {error}");
                            flow.resuming = false;
                            flow.forget(commands, runtime);
                            events.write(LoginEvent::ReloginRequired(error));
                            set_state(next, LoginState::LoggedOut);
                        }
                        Err(error) => {
                            // Offline or a hiccup: keep the session and try again shortly.
                            warn!("refreshing the Amazon session failed ({error}); retrying in 30 s");
                            flow.refreshing = false;
                            flow.schedule_refresh(runtime, Duration::from_secs(30));
                        }
                    }
                }
                LoginUpdate::Refreshed { .. } | LoginUpdate::TokenRefused => {}
            }
        }
    }
}
