#![doc = include_str!("../README.md")]
#![forbid(missing_docs)]

pub mod auth;
pub mod config;
pub mod entitlements;
pub mod error;
mod fulfilment;
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod inventory;
pub mod ledger;
mod loopback;
pub mod moments;
pub mod pacing;
mod runtime;
mod storage;
pub mod subscriptions;

use bevy::asset::AssetApp;
use bevy::prelude::*;
use bevy::window::{AppLifecycle, WindowFocused, WindowOccluded};

use crate::auth::{LoginEvent, LoginRequest, LoginState};
use crate::config::{PullPacing, RewardsConfig};
use crate::entitlements::{
    EntitlementFulfilled, EntitlementGranted, EntitlementRevoked, PullCompleted, PullEntitlements, RewardsStatus,
    StoreVisited,
};
use crate::error::RewardsError;
use crate::inventory::{CatalogHandle, ItemCatalog, ItemCatalogLoader};

/// Everything a game usually touches.
pub mod prelude {
    pub use crate::auth::{
        AccessToken, AmazonAccount, LoginError, LoginEvent, LoginMethod, LoginRequest, LoginState, PlayerSession,
    };
    pub use crate::config::{LoginConfig, PullPacing, RewardsConfig};
    pub use crate::entitlements::{
        AmazonRewardsAppExt, EntitlementFulfilled, EntitlementGranted, EntitlementRevoked, PullCompleted,
        PullEntitlements, RewardsStatus, StoreVisited,
    };
    pub use crate::error::{ApiError, RewardsError};
    pub use crate::inventory::{Inventory, ItemCatalog, ItemStack, RewardsRecipient};
    pub use crate::moments::{
        AchievementCatalog, AchievementProgress, AchievementStatus, AchievementUnlocked, Achievements, Challenge,
        ClaimReward, EarnedReward, MomentEvent, MomentsStatus, ProgressChange, RefreshChallenges, Reward,
        UnlockAchievement,
    };
    pub use crate::pacing::PullReason;
    pub use crate::subscriptions::{
        ActivateSubscription, OpenBillingPage, RefreshSubscriptions, SignUpForSubscription, SignUpOnAnotherDevice,
        SubscriptionEvent, Subscriptions,
    };
    pub use crate::{AmazonRewardsPlugin, AmazonRewardsSystems};
    pub use amazon_rewards_protocol::devpay::SubscriptionStatus;
}

/// The plugin's systems, public so games can order against them.
///
/// `Receive` and `Apply` run in [`PreUpdate`], chained, so the game's `Update` sees this frame's results;
/// `Send` runs in [`PostUpdate`], so triggers the game writes in `Update` act in the same frame.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmazonRewardsSystems {
    /// Drains results of background work (pulls, reports, ledger writes). [`PreUpdate`].
    Receive,
    /// Grants pulled entitlements into the recipient's inventory, within a per-frame budget. [`PreUpdate`].
    Apply,
    /// Starts paced pulls and fulfilment reports. [`PostUpdate`].
    Send,
}

/// Adds Amazon rewards to a game: pulls entitlements, grants them into the
/// [`RewardsRecipient`](inventory::RewardsRecipient)'s [`Inventory`](inventory::Inventory), and reports
/// them fulfilled exactly once.
///
/// Needs `AssetPlugin` (for the item catalog) and, for focus-regained pulls, `WindowPlugin`; both come with
/// `DefaultPlugins`.
#[derive(Debug, Clone, Default)]
pub struct AmazonRewardsPlugin {
    /// The settings, inserted as the [`RewardsConfig`] resource. Default: [`RewardsConfig::default`].
    pub config: RewardsConfig,
}

impl AmazonRewardsPlugin {
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
        self.config.pacing = pacing;
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
        self.config.catalog_path = path.into();
        self
    }

    /// Asset path of the achievement catalog (`*.achievements.json`); turns achievements and Moments on.
    #[must_use]
    pub fn with_achievements(mut self, path: impl Into<String>) -> Self {
        self.config.achievements_path = Some(path.into());
        self
    }

    /// Base URL of the studio backend's Moments API, when it is not `entitlements_url`.
    #[must_use]
    pub fn with_moments_url(mut self, url: impl Into<String>) -> Self {
        self.config.moments_url = Some(url.into());
        self
    }

    /// Subscription pages: the sign-up base (`{signup_url}/{product_code}`) and the billing page.
    #[must_use]
    pub fn with_subscription_pages(mut self, signup_url: impl Into<String>, billing_url: impl Into<String>) -> Self {
        self.config.signup_url = Some(signup_url.into());
        self.config.billing_url = Some(billing_url.into());
        self
    }

    /// Replaces all settings.
    #[must_use]
    pub fn with_config(mut self, config: RewardsConfig) -> Self {
        self.config = config;
        self
    }
}

impl Plugin for AmazonRewardsPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(self.config.clone())
            .init_resource::<RewardsStatus>()
            .init_resource::<subscriptions::Subscriptions>()
            .add_message::<subscriptions::ActivateSubscription>()
            .add_message::<subscriptions::SignUpForSubscription>()
            .add_message::<subscriptions::SignUpOnAnotherDevice>()
            .add_message::<subscriptions::RefreshSubscriptions>()
            .add_message::<subscriptions::OpenBillingPage>()
            .add_message::<subscriptions::SubscriptionEvent>()
            .init_resource::<moments::Achievements>()
            .init_resource::<moments::MomentsStatus>()
            .init_asset::<moments::AchievementCatalog>()
            .register_asset_loader(moments::AchievementCatalogLoader)
            .add_message::<moments::AchievementProgress>()
            .add_message::<moments::UnlockAchievement>()
            .add_message::<moments::AchievementUnlocked>()
            .add_message::<moments::ClaimReward>()
            .add_message::<moments::RefreshChallenges>()
            .add_message::<moments::MomentEvent>()
            .add_message::<LoginRequest>()
            .add_message::<LoginEvent>()
            .init_asset::<ItemCatalog>()
            .register_asset_loader(ItemCatalogLoader)
            .add_message::<PullEntitlements>()
            .add_message::<StoreVisited>()
            .add_message::<PullCompleted>()
            .add_message::<EntitlementGranted>()
            .add_message::<EntitlementFulfilled>()
            .add_message::<EntitlementRevoked>()
            .add_message::<RewardsError>()
            // Registered by WindowPlugin in windowed games; registered here too so headless apps work.
            .add_message::<WindowFocused>()
            .add_message::<WindowOccluded>()
            .add_message::<AppLifecycle>()
            .configure_sets(PreUpdate, (AmazonRewardsSystems::Receive, AmazonRewardsSystems::Apply).chain())
            .add_systems(PreStartup, start_background_work)
            .add_systems(
                PreUpdate,
                (
                    // Run conditions keep idle frames from dispatching these systems at all: on the
                    // multi-threaded executor a dispatch costs far more than the checks.
                    receive_results.in_set(AmazonRewardsSystems::Receive).run_if(results_or_login_requests),
                    fulfilment::apply_grants.in_set(AmazonRewardsSystems::Apply).run_if(fulfilment::grants_waiting),
                ),
            )
            .add_systems(PostUpdate, fulfilment::send_requests.in_set(AmazonRewardsSystems::Send))
            .add_observer(fulfilment::on_recipient_added);
    }

    fn finish(&self, app: &mut App) {
        // After every plugin is built, so the game may add DefaultPlugins (with StatesPlugin) before or after us.
        if app.is_plugin_added::<bevy::state::app::StatesPlugin>() {
            app.init_state::<LoginState>();
        } else {
            warn!("StatesPlugin is missing: LoginState is not tracked (LoginEvent messages still are)");
        }
    }
}

/// Whether [`receive_results`] has anything to do: results from the background or login requests.
fn results_or_login_requests(
    results: Res<runtime::BackgroundResults>,
    login_requests: Res<Messages<LoginRequest>>,
) -> bool {
    !results.0.is_empty() || !login_requests.is_empty()
}

/// Drains the background bridge once per frame: fulfilment results first, then the login, which learns of
/// refused tokens and successful pulls from them. One system, dispatched only when there is something to drain.
fn receive_results(mut background: fulfilment::Receiver, mut login: auth::LoginDriver) {
    let login_updates = background.receive();
    login.drive(login_updates);
}

/// This instance's hold on its data directory, kept for the app's lifetime (see `storage::lock_instance`).
#[derive(Resource)]
struct DataDirLock(#[allow(dead_code)] std::fs::File);

/// Takes the data directory for this instance. `false` when another running instance holds it: the game is
/// told ([`RewardsError::AnotherInstanceRunning`]) and this instance writes nothing there.
fn hold_data_dir(world: &mut World, config: &RewardsConfig) -> bool {
    let Some(dir) = config.resolved_data_dir() else {
        return true;
    };
    match storage::lock_instance(&dir) {
        Ok(file) => {
            world.insert_resource(DataDirLock(file));
            true
        }
        Err(storage::InstanceLockError::HeldByAnotherInstance) => {
            let data_dir = dir.display().to_string();
            error!("another instance of the game is using {data_dir}; this one grants and saves nothing");
            world.write_message(RewardsError::AnotherInstanceRunning { data_dir });
            false
        }
        Err(storage::InstanceLockError::Io(error)) => {
            // A file system without locks (some network shares): carry on as before, unprotected.
            warn!("cannot lock {}: {error}; a second instance would not be stopped", dir.display());
            true
        }
    }
}

/// Starts the background runtime and ledger writer from the [`RewardsConfig`] in force at startup, and
/// begins loading the item catalog.
fn start_background_work(world: &mut World) {
    let config = world.resource::<RewardsConfig>().clone();
    let (runtime, results) = runtime::RewardsRuntime::new().expect("cannot start the rewards I/O runtime");
    let writer = ledger::LedgerWriter::spawn(runtime.sender(), config.clone())
        .expect("cannot start the rewards ledger writer thread");
    let read_only = !hold_data_dir(world, &config);
    let mut fulfilment = fulfilment::Fulfilment::new(&config, writer).expect("cannot build the HTTP client");
    let mut login = auth::LoginFlow::new(&config).expect("cannot build the login HTTP client");
    if read_only {
        fulfilment.make_read_only();
        login.make_read_only();
    } else if config.login.restore_session {
        login.restore(&runtime);
    }
    world.insert_resource(login);
    #[cfg(feature = "winit")]
    if let Some(proxy) = world.get_resource::<bevy::winit::EventLoopProxyWrapper>() {
        let proxy = (**proxy).clone();
        runtime.set_waker(move || {
            let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
        });
    }
    let catalog = world.resource::<AssetServer>().load::<ItemCatalog>(config.catalog_path.clone());
    world.insert_resource(CatalogHandle(catalog));
    if let Some(path) = config.achievements_path.clone() {
        let achievements = world.resource::<AssetServer>().load::<moments::AchievementCatalog>(path);
        world.insert_resource(moments::AchievementCatalogHandle(achievements));
    }
    let mut outbox = moments::MomentsOutbox::new(&config);
    if read_only {
        outbox.make_read_only();
    }
    world.insert_resource(outbox);
    world.insert_resource(runtime);
    world.insert_resource(results);
    world.insert_resource(fulfilment);
}
