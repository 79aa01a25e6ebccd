//! Entitlements into the inventory ([`EntitlementsPlugin`]): messages that trigger a pull, messages that
//! report what happened, the [`RewardsStatus`] resource, and the [`AmazonRewardsAppExt`] wiring helper.
//!
//! Pull triggers: startup (once a ledger and a token are ready), the window regaining focus or being
//! restored, the app resuming, waking from sleep, store visits ([`StoreVisited`], or
//! [`AmazonRewardsAppExt::pull_entitlements_on_enter`]), a new session, and explicit requests
//! ([`PullEntitlements`]). All go through one pacer (`pacing.rs`: coalesced, at least `min_interval`
//! apart, backoff after failures), whatever the inventory's [`InventorySource`].

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod ledger;
mod mirror;
mod pacing;
mod plugin;
mod sleep;
mod triggers;

use std::time::Instant;

use bevy::prelude::*;
use bevy::state::state::FreelyMutableState;

pub use crate::core::http::Environment;
use crate::error::RewardsError;
use crate::inventory::ItemStack;
pub use mirror::{
    ChangeKind, ChangeRecord, InventoryChanged, InventoryHistory, LoadHistory, SpendItems, SpendOutcome, SpendResult,
};
pub use pacing::PullReason;
pub use plugin::{EntitlementsPlugin, InventorySource};
pub use sleep::SLEEP_CHECK_INTERVAL;
pub(crate) use triggers::PullRequests;

/// The backoff after `failures` consecutive failures, with jitter, by `pacing` (for other services' retries).
pub(crate) fn pacing_backoff(pacing: &crate::config::PullPacing, failures: u32) -> std::time::Duration {
    pacing::backoff_delay(pacing, failures, pacing::random_jitter())
}

/// Ask for an entitlement pull now (still paced: at most one per `min_interval`).
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct PullEntitlements;

/// The player opened the in-game store: a good moment to check for new rewards.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct StoreVisited;

/// A pull finished successfully.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PullCompleted {
    /// What triggered it.
    pub reason: PullReason,
    /// How many entitlements the service returned.
    pub entitlements: usize,
}

/// Items were granted into the recipient's [`Inventory`](crate::inventory::Inventory).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct EntitlementGranted {
    /// The entitlement.
    pub entitlement_id: String,
    /// Its SKU.
    pub sku: String,
    /// Where it came from (`PRIME_GAMING`, `INSTANT_ACCESS`, `SUBSCRIPTION`), when the service says.
    pub source: Option<String>,
    /// For a subscription's perks: the day they run out unless renewed (ISO 8601), as it stood at the grant.
    /// [`Subscriptions`](crate::subscriptions::Subscriptions) follows renewals.
    pub active_until: Option<String>,
    /// What it granted.
    pub items: Vec<ItemStack>,
}

/// An entitlement was revoked (refund, payment problem, ended subscription): its items were taken out of the
/// recipient's [`Inventory`](crate::inventory::Inventory), never below zero.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct EntitlementRevoked {
    /// The entitlement.
    pub entitlement_id: String,
    /// Its SKU.
    pub sku: String,
    /// Where it came from (`INSTANT_ACCESS`, `SUBSCRIPTION`, …), when the service says.
    pub source: Option<String>,
    /// What was taken back.
    pub taken: Vec<ItemStack>,
    /// What could not be taken back because the player no longer had it (already spent).
    pub missing: Vec<ItemStack>,
}

/// The service confirmed an entitlement fulfilled and the ledger recorded it; it is done for good.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct EntitlementFulfilled {
    /// The entitlement.
    pub entitlement_id: String,
}

/// What the plugin is doing, for a status line. Changes only when something happens.
#[derive(Resource, Debug, Clone)]
pub struct RewardsStatus {
    /// The ledger of the current player is loaded (pulls can start).
    pub ledger_ready: bool,
    /// A pull is running.
    pub pulling: bool,
    /// When the last pull succeeded.
    pub last_pull: Option<Instant>,
    /// The last error, cleared by the next successful pull.
    pub last_error: Option<RewardsError>,
    /// Pulled entitlements waiting to be granted.
    pub pending_grants: usize,
    /// Granted entitlements whose fulfilment is not confirmed yet.
    pub pending_reports: usize,
    /// Backend inventory: when a sync last reached the backend (kept across restarts with the cached snapshot;
    /// see [`RewardsStatus::inventory_age`]). `None` before the first.
    pub inventory_synced_at: Option<std::time::SystemTime>,
    /// Backend inventory: spends saved and not answered yet.
    pub pending_spends: usize,
    /// Whether the services answering are a sandbox (every sandbox answer says so): show it (a SANDBOX badge),
    /// so a test build is never mistaken for the real thing.
    pub environment: Environment,
}

impl Default for RewardsStatus {
    fn default() -> Self {
        Self {
            ledger_ready: false,
            pulling: false,
            last_pull: None,
            last_error: None,
            pending_grants: 0,
            pending_reports: 0,
            inventory_synced_at: None,
            pending_spends: 0,
            environment: Environment::Unknown,
        }
    }
}

impl RewardsStatus {
    /// Backend inventory: how old the inventory shown is (since the last sync that reached the backend), for an
    /// "offline — as of 2 h ago" line.
    pub fn inventory_age(&self) -> Option<std::time::Duration> {
        self.inventory_synced_at.map(|at| at.elapsed().unwrap_or_default())
    }
}

/// Game-facing wiring on [`App`].
pub trait AmazonRewardsAppExt {
    /// Pulls entitlements whenever the game enters `state` (e.g. its store screen).
    ///
    /// ```
    /// # use bevy::prelude::*;
    /// # use bevy_amazon_rewards::prelude::*;
    /// #[derive(States, Debug, Clone, PartialEq, Eq, Hash, Default)]
    /// enum Screen { #[default] Title, Store }
    /// # let mut app = App::new();
    /// # app.add_plugins(bevy::state::app::StatesPlugin).init_state::<Screen>().add_message::<StoreVisited>();
    /// app.pull_entitlements_on_enter(Screen::Store);
    /// ```
    fn pull_entitlements_on_enter<S: FreelyMutableState>(&mut self, state: S) -> &mut Self;
}

impl AmazonRewardsAppExt for App {
    fn pull_entitlements_on_enter<S: FreelyMutableState>(&mut self, state: S) -> &mut Self {
        self.add_systems(OnEnter(state), |mut visits: MessageWriter<StoreVisited>| {
            visits.write(StoreVisited);
        })
    }
}
