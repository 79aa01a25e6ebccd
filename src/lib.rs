#![doc = include_str!("../README.md")]
#![forbid(missing_docs)]

pub mod auth;
pub mod config;
mod core;
pub mod entitlements;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
pub mod moments;
pub mod subscriptions;
pub mod testing;

use bevy::app::{PluginGroup, PluginGroupBuilder};

use crate::auth::LoginPlugin;
use crate::config::{PullPacing, RewardsConfig};
pub use crate::core::guard;
pub use crate::core::{AmazonRewardsSystems, RewardsCorePlugin, RewardsReceive, RewardsSend, TokenRefused};
use crate::entitlements::EntitlementsPlugin;
use crate::moments::MomentsPlugin;
use crate::subscriptions::SubscriptionsPlugin;

/// Everything a game usually touches.
pub mod prelude {
    pub use crate::auth::{
        AccessToken, AmazonAccount, BrowserError, LoginConfig, LoginError, LoginEvent, LoginMethod, LoginPlugin,
        LoginRequest, LoginState, PlayerSession,
    };
    pub use crate::config::{EntitlementsConfig, PullPacing, RewardsConfig};
    pub use crate::entitlements::{
        AmazonRewardsAppExt, ChangeKind, ChangeRecord, EntitlementFulfilled, EntitlementGranted, EntitlementRevoked,
        EntitlementsPlugin, Environment, InventoryChanged, InventoryHistory, InventorySource, LoadHistory,
        PullCompleted, PullEntitlements, PullReason, RewardsStatus, SpendItems, SpendOutcome, SpendResult,
        StoreVisited,
    };
    pub use crate::error::{ApiError, RewardsError};
    pub use crate::inventory::{Inventory, ItemCatalog, ItemStack, RewardsRecipient};
    pub use crate::moments::{
        AchievementCatalog, AchievementProgress, AchievementStatus, AchievementUnlocked, Achievements, Challenge,
        ClaimAnswered, ClaimOutcome, ClaimReward, CompetitionStandings, CompetitionState, EarnedReward, MomentEvent,
        MomentsConfig, MomentsPlugin, MomentsStatus, ProgressChange, RefreshChallenges, RefreshStandings, Reward,
        ScoreAnswered, ScoreOutcome, Standings, SubmitScore, UnlockAchievement,
    };
    pub use crate::subscriptions::{
        ActivateSubscription, ActivationAnswered, ActivationRefused, OpenBillingPage, RefreshSubscriptions,
        SignUpForSubscription, SignUpOnAnotherDevice, SubscriptionEvent, Subscriptions, SubscriptionsConfig,
        SubscriptionsPlugin,
    };
    pub use crate::{AmazonRewardsPlugins, AmazonRewardsSystems, RewardsCorePlugin, TokenRefused};
    pub use amazon_rewards_protocol::devpay::SubscriptionStatus;
}

/// Adds Amazon rewards to a game in one line: links the player's Amazon account, pulls entitlements and
/// grants them exactly once into the [`RewardsRecipient`](inventory::RewardsRecipient)'s
/// [`Inventory`](inventory::Inventory), runs subscriptions, and turns achievements into Amazon Moments.
///
/// The group, in order: [`RewardsCorePlugin`] (settings, background runtime, HTTP client; needed by the
/// rest), [`LoginPlugin`], [`EntitlementsPlugin`], [`SubscriptionsPlugin`], [`MomentsPlugin`]. Each
/// service plugin is built with its section of [`RewardsConfig`]. A game drops what it does not use:
///
/// ```
/// # use bevy::prelude::*;
/// # use bevy_amazon_rewards::prelude::*;
/// # let mut app = App::new();
/// # app.add_plugins((MinimalPlugins, bevy::asset::AssetPlugin::default()));
/// app.add_plugins(
///     AmazonRewardsPlugins::new()
///         .with_client_id("amzn1.application-oa2-client.…")
///         .build()
///         .disable::<MomentsPlugin>()
///         .disable::<SubscriptionsPlugin>(),
/// );
/// ```
///
/// Needs `AssetPlugin` (for the item catalog) and, for focus-regained pulls, `WindowPlugin`; both come with
/// `DefaultPlugins`.
#[derive(Debug, Clone, Default)]
pub struct AmazonRewardsPlugins {
    /// Every plugin's settings: the shared ones for [`RewardsCorePlugin`], and one section per service plugin.
    /// Default: [`RewardsConfig::default`], production Amazon.
    pub config: RewardsConfig,
}

impl PluginGroup for AmazonRewardsPlugins {
    fn build(self) -> PluginGroupBuilder {
        let config = self.config;
        PluginGroupBuilder::start::<Self>()
            .add(RewardsCorePlugin { config: config.clone() })
            .add(LoginPlugin { config: config.login.clone() })
            .add(EntitlementsPlugin { config: config.entitlements.clone() })
            .add(SubscriptionsPlugin { config: config.subscriptions.clone() })
            .add(MomentsPlugin { config: config.moments })
    }
}

impl AmazonRewardsPlugins {
    /// The plugin with default settings: production Amazon (`www.amazon.com` and `api.amazon.com` for Login
    /// with Amazon, `twitch.amazon.com` for Prime Gaming). The sandbox is opt-in with
    /// [`with_amazon_at`](Self::with_amazon_at).
    pub fn new() -> Self {
        Self::default()
    }

    /// Base URL of the entitlements service (Prime Gaming, the studio backend, or the sandbox).
    #[must_use]
    pub fn with_entitlements_url(mut self, url: impl Into<String>) -> Self {
        self.config.entitlements_url = url.into();
        self
    }

    /// Backend mode, the recommended setup: the studio backend at `url` links the player (the game holds only
    /// its studio session, never a Login with Amazon token), owns the inventory
    /// ([`InventorySource::StudioBackend`](entitlements::InventorySource)), and serves subscriptions and
    /// Moments ([`LoginConfig::studio_backend`](crate::prelude::LoginConfig::studio_backend)).
    #[must_use]
    pub fn with_studio_backend(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.config.entitlements_url = url.clone();
        self.config.login.studio_backend = Some(url);
        self.config.entitlements.source = entitlements::InventorySource::StudioBackend;
        self
    }

    /// Points every Amazon endpoint (entitlements, Login with Amazon) at one base URL, such as the sandbox's.
    #[must_use]
    pub fn with_amazon_at(mut self, base_url: &str) -> Self {
        self.config.use_amazon_at(base_url);
        self
    }

    /// The game's Login with Amazon client id.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.config.client_id = client_id.into();
        self
    }

    /// How the browser is opened for the sign-in (default: the system browser).
    #[must_use]
    pub fn with_browser(mut self, opener: auth::BrowserOpener) -> Self {
        self.config.login.open_browser = opener;
        self
    }

    /// Pull pacing.
    #[must_use]
    pub fn with_pacing(mut self, pacing: PullPacing) -> Self {
        self.config.entitlements.pacing = pacing;
        self
    }

    /// Directory for the per-player ledgers instead of the OS data dir.
    #[must_use]
    pub fn with_data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// Application name used for the OS data dir.
    #[must_use]
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.config.app_name = name.into();
        self
    }

    /// Asset path of the item catalog.
    #[must_use]
    pub fn with_catalog(mut self, path: impl Into<String>) -> Self {
        self.config.entitlements.catalog_path = path.into();
        self
    }

    /// Asset path of the achievement catalog (`*.achievements.json`); turns achievements and Moments on.
    #[must_use]
    pub fn with_achievements(mut self, path: impl Into<String>) -> Self {
        self.config.moments.achievements_path = Some(path.into());
        self
    }

    /// Follows the studio backend's competitions ([`MomentsConfig::competitions`](crate::moments::MomentsConfig)).
    #[must_use]
    pub fn with_competitions(mut self) -> Self {
        self.config.moments.competitions = true;
        self
    }

    /// Base URL of the studio backend's Moments API, when it is not `entitlements_url`.
    #[must_use]
    pub fn with_moments_url(mut self, url: impl Into<String>) -> Self {
        self.config.moments.moments_url = Some(url.into());
        self
    }

    /// Subscription pages: the sign-up base (`{signup_url}/{product_code}`) and the billing page.
    #[must_use]
    pub fn with_subscription_pages(mut self, signup_url: impl Into<String>, billing_url: impl Into<String>) -> Self {
        self.config.subscriptions.signup_url = Some(signup_url.into());
        self.config.subscriptions.billing_url = Some(billing_url.into());
        self
    }

    /// Replaces all settings.
    #[must_use]
    pub fn with_config(mut self, config: RewardsConfig) -> Self {
        self.config = config;
        self
    }
}
