//! [`EntitlementsPlugin`]: the triggers and pacing every inventory source shares, the game-facing messages, and
//! the source that fills the [`Inventory`](crate::inventory::Inventory).

use bevy::asset::AssetApp;
use bevy::prelude::*;

use super::client::EntitlementsClient;
use super::ledger::{self, LedgerSource, LedgerWriter};
use super::mirror::{self, InventoryChanged, InventoryHistory, LoadHistory, Mirror, MirrorClient, SpendItems};
use super::pacing::PullPacer;
use super::sleep::{SleepWatcher, receive_wake_ups, watch_for_sleep};
use super::triggers::request_pulls;
use super::{
    EntitlementFulfilled, EntitlementGranted, EntitlementRevoked, PullCompleted, PullEntitlements, RewardsStatus,
    StoreVisited,
};
use crate::config::{EntitlementsConfig, RewardsConfig};
use crate::core::http::ApiClient;
use crate::core::instance::DataDirAccess;
use crate::core::wake::WakeSendOn;
use crate::core::{RewardsReceive, RewardsSend};
use crate::inventory::{CatalogHandle, ItemCatalog, ItemCatalogLoader};
use bevy::window::{AppLifecycle, WindowFocused, WindowOccluded};

/// Where the items in the [`Inventory`](crate::inventory::Inventory) come from. Every source sits behind the
/// same triggers, pacing, messages and `Inventory`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InventorySource {
    /// Client-only: the game pulls entitlements itself (`RewardsConfig::entitlements_url`: Prime Gaming, or the
    /// studio backend's feed), grants them into a durable ledger file per player on this machine, and reports
    /// each fulfilled. The default, for games without a backend — the setup Prime Gaming calls "possible, but
    /// not recommended": the inventory lives on one PC (a reinstall or a second PC starts empty, since Amazon
    /// never returns a fulfilled entitlement again), a player can edit the file, and spending is the game's
    /// own business.
    #[default]
    ClientLedger,
    /// The studio backend owns the inventory (`rewards-backend serve --catalog …`, at
    /// `LoginConfig::studio_backend`, else `entitlements_url`): it grants every source, checks spends
    /// ([`SpendItems`](crate::entitlements::SpendItems)) and keeps the history
    /// ([`LoadHistory`](crate::entitlements::LoadHistory)); the game mirrors it, so the same inventory shows on
    /// any PC after linking. The recommended setup.
    StudioBackend,
}

/// Pulls entitlements when Amazon's tips say to (startup, focus regained, store visits, resume, waking from
/// sleep), paced, and grants them exactly once into the [`RewardsRecipient`](crate::inventory::RewardsRecipient)'s
/// [`Inventory`](crate::inventory::Inventory). Part of [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins).
///
/// Adds the [`PullEntitlements`], [`StoreVisited`], [`PullCompleted`], [`EntitlementGranted`],
/// [`EntitlementRevoked`] and [`EntitlementFulfilled`] messages, the [`RewardsStatus`] resource and the
/// [`ItemCatalog`] asset (loaded at [`PreStartup`] from [`EntitlementsConfig::catalog_path`]). Systems, each
/// run only when it has work: in [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send) one turning trigger messages into pull
/// requests and one starting due pulls and reports; in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive) one per background
/// channel; in [`AmazonRewardsSystems::Apply`](crate::AmazonRewardsSystems::Apply) the grants, within
/// [`EntitlementsConfig::grant_budget_per_frame`]. Waking from sleep is watched on the background runtime.
#[derive(Debug, Clone, Default)]
pub struct EntitlementsPlugin {
    /// Pacing, catalog, grant budget and reporting, written into [`RewardsConfig::entitlements`]. Default:
    /// [`EntitlementsConfig::default`] (pulls at least 5 s apart, `rewards.catalog.json`).
    pub config: EntitlementsConfig,
}

impl Plugin for EntitlementsPlugin {
    fn build(&self, app: &mut App) {
        let (runtime, _) = crate::core::require_core(app, "EntitlementsPlugin");
        let (wake_ups, wake_up_inbox) = runtime.channel();
        app.world_mut().resource_mut::<RewardsConfig>().entitlements = self.config.clone();
        app.wake_send_on::<PullEntitlements>()
            .wake_send_on::<StoreVisited>()
            .wake_send_on::<WindowFocused>()
            .wake_send_on::<WindowOccluded>()
            .wake_send_on::<AppLifecycle>()
            .add_message::<PullCompleted>()
            .add_message::<EntitlementGranted>()
            .add_message::<EntitlementFulfilled>()
            .add_message::<EntitlementRevoked>()
            .add_message::<InventoryChanged>()
            .init_resource::<InventoryHistory>()
            .init_resource::<RewardsStatus>()
            .insert_resource(PullPacer::new(self.config.pacing.clone()))
            .init_asset::<ItemCatalog>()
            .register_asset_loader(ItemCatalogLoader)
            .insert_resource(SleepWatcher(wake_ups))
            .insert_resource(wake_up_inbox)
            .add_systems(PreStartup, (load_catalog, watch_for_sleep))
            .add_systems(RewardsReceive, receive_wake_ups)
            .add_systems(RewardsSend, request_pulls);
        match self.config.source {
            InventorySource::ClientLedger => add_client_ledger(app, &self.config),
            InventorySource::StudioBackend => add_studio_backend(app, &self.config),
        }
    }
}

/// Starts loading the item catalog.
fn load_catalog(mut commands: Commands, asset_server: Res<AssetServer>, config: Res<RewardsConfig>) {
    let catalog = asset_server.load::<ItemCatalog>(config.entitlements.catalog_path.clone());
    commands.insert_resource(CatalogHandle(catalog));
}

/// The backend-owned inventory, mirrored: its channel, its state and its systems.
fn add_studio_backend(app: &mut App, config: &EntitlementsConfig) {
    let (runtime, shared) = crate::core::require_core(app, "EntitlementsPlugin");
    let (outbox, inbox) = runtime.channel();
    let base_url = shared.login.studio_backend.clone().unwrap_or_else(|| shared.entitlements_url.clone());
    let client = MirrorClient::new(app.world().resource::<ApiClient>().clone(), &base_url);
    let mut mirror = Mirror::new(client, outbox, config.offline_grace, config.wall_clock);
    if app.world().resource::<DataDirAccess>().read_only() {
        mirror.make_read_only();
    }
    app.insert_resource(mirror)
        .insert_resource(inbox)
        .wake_send_on::<SpendItems>()
        .wake_send_on::<LoadHistory>()
        .wake_send_at(mirror::mirror_next_work)
        .add_systems(RewardsReceive, mirror::receive_mirror)
        .add_systems(RewardsSend, mirror::send_mirror_requests.after(request_pulls));
}

/// The client-side ledger source: its writer thread, its channel and its systems.
fn add_client_ledger(app: &mut App, config: &EntitlementsConfig) {
    let (runtime, shared) = crate::core::require_core(app, "EntitlementsPlugin");
    let (outbox, inbox) = runtime.channel();
    let client = EntitlementsClient::new(
        app.world().resource::<ApiClient>().clone(),
        &shared.entitlements_url,
        config.max_pages,
    );
    let writer =
        LedgerWriter::spawn(outbox.clone(), config.clone()).expect("cannot start the rewards ledger writer thread");
    let mut source = LedgerSource::new(client, outbox, writer, runtime.busy_flag());
    if app.world().resource::<DataDirAccess>().read_only() {
        source.make_read_only();
    }
    app.insert_resource(source)
        .insert_resource(inbox)
        .wake_send_at(ledger::ledger_next_work)
        .add_systems(RewardsReceive, ledger::receive_ledger)
        .add_systems(RewardsReceive, ledger::apply_grants.after(ledger::receive_ledger))
        .add_systems(RewardsSend, ledger::send_ledger_requests.after(request_pulls))
        .add_observer(ledger::on_recipient_added);
}
