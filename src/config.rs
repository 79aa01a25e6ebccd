//! The settings every plugin of [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins) shares (where Amazon,
//! the sandbox or the studio backend is, who the game is, HTTP limits, where files are kept) and, as
//! sections, each plugin's own.
//!
//! They live in the [`RewardsConfig`] resource so tests and tools can point a game at a local sandbox
//! without code changes. Each plugin of the group is built with its section and writes it back into the
//! resource, so the resource always holds the settings in force.

use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;

pub use crate::auth::LoginConfig;
pub use crate::entitlements::config::{EntitlementsConfig, LedgerStep, PullPacing, StepObserver};
pub use crate::moments::MomentsConfig;
pub use crate::subscriptions::SubscriptionsConfig;

/// Every plugin's settings, inserted as a resource by [`RewardsCorePlugin`](crate::RewardsCorePlugin) (see [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins)).
#[derive(Resource, Clone)]
pub struct RewardsConfig {
    /// Base URL of the entitlements service: Prime Gaming (the default, `https://twitch.amazon.com`, the
    /// base a shipped game client uses), the studio backend, or the sandbox (e.g. `http://127.0.0.1:8787`,
    /// set with [`RewardsConfig::use_amazon_at`]). The paths of `amazon_rewards_protocol::prime_gaming` are
    /// appended. Subscriptions and Moments call the studio backend here too.
    pub entitlements_url: String,
    /// The game's Login with Amazon client id (security profile).
    pub client_id: String,
    /// Timeout of one HTTP request, connection included. Default 15 s.
    pub request_timeout: Duration,
    /// Largest response body accepted, and the most one pull reads over all its pages; larger bodies are refused,
    /// not buffered. Default 8 MiB.
    pub max_response_bytes: usize,
    /// Directory holding the per-player ledgers and tokens. Default: the OS data dir for
    /// [`RewardsConfig::app_name`].
    pub data_dir: Option<PathBuf>,
    /// Application name used for the OS data dir. Default `bevy_amazon_rewards`.
    pub app_name: String,
    /// Let a release build run against a sandbox (a non-`https` or loopback endpoint). Default `false`: a release
    /// build configured for the sandbox refuses to start ([`guard`](crate::guard)).
    pub allow_sandbox_in_release: bool,
    /// [`LoginPlugin`](crate::auth::LoginPlugin)'s section.
    pub login: LoginConfig,
    /// [`EntitlementsPlugin`](crate::entitlements::EntitlementsPlugin)'s section.
    pub entitlements: EntitlementsConfig,
    /// [`SubscriptionsPlugin`](crate::subscriptions::SubscriptionsPlugin)'s section.
    pub subscriptions: SubscriptionsConfig,
    /// [`MomentsPlugin`](crate::moments::MomentsPlugin)'s section.
    pub moments: MomentsConfig,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        Self {
            entitlements_url: amazon_rewards_protocol::prime_gaming::PRODUCTION_BASE_URL.into(),
            client_id: String::new(),
            request_timeout: Duration::from_secs(15),
            max_response_bytes: 8 * 1024 * 1024,
            data_dir: None,
            app_name: "bevy_amazon_rewards".into(),
            allow_sandbox_in_release: false,
            login: LoginConfig::default(),
            entitlements: EntitlementsConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            moments: MomentsConfig::default(),
        }
    }
}

impl std::fmt::Debug for RewardsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardsConfig")
            .field("entitlements_url", &self.entitlements_url)
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("data_dir", &self.data_dir)
            .field("app_name", &self.app_name)
            .field("allow_sandbox_in_release", &self.allow_sandbox_in_release)
            .field("login", &self.login)
            .field("entitlements", &self.entitlements)
            .field("subscriptions", &self.subscriptions)
            .field("moments", &self.moments)
            .finish()
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
}
