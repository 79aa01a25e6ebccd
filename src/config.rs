//! Runtime settings of the plugin: where Amazon (or the sandbox, or the studio backend) is, who the game
//! is, how often to pull, and where to keep the durable ledger.
//!
//! They live in the [`RewardsConfig`] resource so tests and tools can point a game at a local sandbox
//! without code changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;

/// Pacing of entitlement pulls: often enough to feel instant, never hammering the service.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPacing {
    /// Least time between the starts of two pulls. Triggers arriving sooner are coalesced into one pull
    /// at the end of the interval. Default 5 s.
    pub min_interval: Duration,
    /// First retry delay after a failed pull; doubles with each consecutive failure. Default 1 s.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay. Default 5 min.
    pub backoff_max: Duration,
}

impl Default for PullPacing {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// A boundary between two steps of the fulfilment ledger, reported to [`RewardsConfig::step_observer`].
///
/// The exactly-once guarantee holds if the process dies at any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerStep {
    /// A pull returned entitlements; nothing is granted yet.
    Pulled,
    /// Grants (or revocations) and their marks are on disk, items included; the report is not sent yet.
    GrantPersisted,
    /// The fulfilment report was accepted by the server; the ledger does not know yet.
    ReportSent,
    /// The ledger is about to record the report's confirmation.
    ReportConfirming,
}

/// Called at each [`LedgerStep`], on whichever thread reaches it.
pub type StepObserver = Arc<dyn Fn(LedgerStep) + Send + Sync>;

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
            .finish_non_exhaustive()
    }
}

/// Settings of the plugin, inserted as a resource by [`AmazonRewardsPlugin`](crate::AmazonRewardsPlugin).
#[derive(Resource, Clone)]
pub struct RewardsConfig {
    /// Base URL of the entitlements service: Prime Gaming (the default, `https://twitch.amazon.com`, the
    /// base a shipped game client uses), the studio backend, or the sandbox (e.g. `http://127.0.0.1:8787`,
    /// set with [`RewardsConfig::use_amazon_at`]). The paths of `amazon_rewards_protocol::prime_gaming` are
    /// appended.
    pub entitlements_url: String,
    /// The game's Login with Amazon client id (security profile).
    pub client_id: String,
    /// Login with Amazon endpoints and behaviour.
    pub login: LoginConfig,
    /// The subscription billing page [`OpenBillingPage`](crate::subscriptions::OpenBillingPage) opens.
    pub billing_url: Option<String>,
    /// Base of the subscription sign-up pages [`SignUpForSubscription`](crate::subscriptions::SignUpForSubscription)
    /// opens (`{signup_url}/{product_code}`), e.g. the sandbox's `http://127.0.0.1:8787/devpay/signup`.
    pub signup_url: Option<String>,
    /// How long a sign-up may take before the game stops waiting for the player to come back. Default 15 min.
    pub signup_timeout: Duration,
    /// How often the game checks whether a sign-up on another device went through. Default 5 s.
    pub signup_poll_interval: Duration,
    /// Base URL of the studio backend's Moments API (`/api/moments`). Default: `entitlements_url`, which
    /// points at the studio backend in a studio setup.
    pub moments_url: Option<String>,
    /// Asset path of the achievement catalog (`*.achievements.json`); `None` (the default) turns
    /// achievements off.
    pub achievements_path: Option<String>,
    /// Pull pacing.
    pub pacing: PullPacing,
    /// Timeout of one HTTP request, connection included. Default 15 s.
    pub request_timeout: Duration,
    /// Largest response body accepted, and the most one pull reads over all its pages; larger bodies are refused,
    /// not buffered. Default 8 MiB.
    pub max_response_bytes: usize,
    /// Most pages followed in one pull (guards against a server that never stops paginating). Default 1000.
    pub max_pages: usize,
    /// Wall-clock budget per frame for applying grants; a large pull is spread over frames. Default 250 µs.
    pub grant_budget_per_frame: Duration,
    /// Most entitlements named in one Fulfill call. Default 100. Each grant is reported as soon as it is on
    /// disk, as Amazon asks ("send a response for each item as soon as the action is completed"); only
    /// reports that are already waiting together (granted in the same frame, or while the previous report
    /// was in flight) share a call, up to this many.
    pub max_report_batch: usize,
    /// The `FulfillmentAddress` sent with every fulfilment report: a stable, non-secret description of where
    /// the item went. Default `"Player"`, the value a shipped game client sends (its meaning is not
    /// documented).
    pub fulfillment_address: String,
    /// Asset path of the item catalog. Default `rewards.catalog.json`.
    pub catalog_path: String,
    /// Directory holding the per-player ledgers. Default: the OS data dir for [`RewardsConfig::app_name`].
    pub data_dir: Option<PathBuf>,
    /// Application name used for the OS data dir. Default `bevy_amazon_rewards`.
    pub app_name: String,
    /// Observer of ledger step boundaries, for diagnostics and crash testing.
    pub step_observer: Option<StepObserver>,
    /// How far the wall clock may run ahead of the monotonic clock between two frames before the plugin takes
    /// it for a device that slept and pulls ([`PullReason::WokeFromSleep`](crate::pacing::PullReason)).
    /// Default 30 s.
    pub sleep_threshold: Duration,
    /// The wall clock compared with the monotonic one to notice sleep. Default [`SystemTime::now`]; tests
    /// replace it to make time jump.
    pub wall_clock: fn() -> std::time::SystemTime,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        Self {
            entitlements_url: amazon_rewards_protocol::prime_gaming::PRODUCTION_BASE_URL.into(),
            client_id: String::new(),
            login: LoginConfig::default(),
            billing_url: None,
            signup_url: None,
            signup_timeout: Duration::from_secs(15 * 60),
            signup_poll_interval: Duration::from_secs(5),
            moments_url: None,
            achievements_path: None,
            pacing: PullPacing::default(),
            request_timeout: Duration::from_secs(15),
            max_response_bytes: 8 * 1024 * 1024,
            max_pages: 1000,
            grant_budget_per_frame: Duration::from_micros(250),
            max_report_batch: 100,
            fulfillment_address: amazon_rewards_protocol::prime_gaming::DEFAULT_FULFILLMENT_ADDRESS.into(),
            catalog_path: "rewards.catalog.json".into(),
            data_dir: None,
            app_name: "bevy_amazon_rewards".into(),
            step_observer: None,
            sleep_threshold: Duration::from_secs(30),
            wall_clock: std::time::SystemTime::now,
        }
    }
}

impl std::fmt::Debug for RewardsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardsConfig")
            .field("entitlements_url", &self.entitlements_url)
            .field("client_id", &self.client_id)
            .field("login", &self.login)
            .field("pacing", &self.pacing)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("catalog_path", &self.catalog_path)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl RewardsConfig {
    /// Points every Amazon endpoint (entitlements and Login with Amazon) at one base URL, e.g. the sandbox.
    pub fn use_amazon_at(&mut self, base_url: &str) {
        let base = base_url.trim_end_matches('/');
        self.entitlements_url = base.to_owned();
        self.login.authorize_url = format!("{base}{}", amazon_rewards_protocol::lwa::AUTHORIZE_PATH);
        self.login.api_url = base.to_owned();
    }

    /// The directory holding per-player ledgers: [`RewardsConfig::data_dir`] or the OS data dir.
    pub fn resolved_data_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Some(dir.clone());
        }
        directories::ProjectDirs::from("", "", &self.app_name).map(|dirs| dirs.data_dir().join("amazon_rewards"))
    }

    pub(crate) fn observe(&self, step: LedgerStep) {
        if let Some(observer) = &self.step_observer {
            observer(step);
        }
    }
}
