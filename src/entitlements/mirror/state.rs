//! The main thread's view of the backend-owned inventory for the current player ([`Mirror`]), what background
//! work sends back ([`MirrorUpdate`]), and what the game is shown (the recipient's inventory, from the cache
//! and the perks' grace).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use amazon_rewards_protocol::inventory::{ChangeRecord, HistoryPage, Snapshot, SpendRefused, SpendRequest, SyncAnswer};
use bevy::prelude::*;

use super::cache::{CacheFile, CachedInventory, shown_items};
use super::client::MirrorClient;
use crate::core::bridge::Outbox;
use crate::core::token_gate::TokenGate;
use crate::entitlements::PullReason;
use crate::error::ApiError;
use crate::inventory::{Inventory, ItemCatalog};

/// What the mirror's background work sends back, tagged with the session it ran for.
pub(crate) enum MirrorUpdate {
    /// The player's cache at `path` (none: kept in memory only) was read.
    Loaded { session: u64, path: Option<std::path::PathBuf>, result: Result<CachedInventory, String> },
    /// A sync finished: the answer (`None`: unchanged), the changes not announced yet, and the cache as saved.
    Synced { session: u64, reason: PullReason, result: Result<Synced, ApiError> },
    /// A spend finished.
    Spent { session: u64, spend: SpendRequest, result: SpendAttempt },
    /// A page of history arrived.
    History { session: u64, older: bool, result: Result<HistoryPage, ApiError> },
}

/// A sync's result.
pub(crate) struct Synced {
    pub answer: Option<SyncAnswer>,
    pub announce: Vec<ChangeRecord>,
    pub cache: CachedInventory,
    /// The cache could not be saved (the answer still applies).
    pub cache_error: Option<String>,
}

/// How one attempt at a spend ended.
pub(crate) enum SpendAttempt {
    /// The key could not be saved, so nothing was sent.
    NotSaved(String),
    /// The backend answered; the cache no longer lists the spend as pending.
    Answered { answer: Result<Snapshot, SpendRefused>, cache: CachedInventory },
    /// The backend refused it for good; the cache no longer lists it.
    Refused { error: ApiError, cache: CachedInventory },
    /// No answer that settles it: the spend stays saved and is sent again after the next sync.
    Unsettled(ApiError),
}

/// The backend-owned inventory as the game mirrors it, for the current session.
#[derive(Resource)]
pub(crate) struct Mirror {
    pub(super) client: MirrorClient,
    pub(super) outbox: Outbox<MirrorUpdate>,
    /// Bumped whenever the player changes, so late results of an old session are ignored.
    pub(super) session: u64,
    pub(super) player_id: Option<String>,
    pub(super) access_token: Option<String>,
    pub(super) cache: Option<CacheFile>,
    /// The cache as last saved (what the game shows comes from it).
    pub(super) view: CachedInventory,
    pub(super) loaded: bool,
    /// Spends to send, one at a time, oldest first (saved ones from an earlier run go first).
    pub(super) spends: VecDeque<SpendRequest>,
    pub(super) spend_in_flight: bool,
    /// A spend went unanswered: the next one waits for a sync that reaches the backend.
    pub(super) spends_wait_for_sync: bool,
    /// Keys already answered `Offline` (one such answer per spend, not one per attempt).
    pub(super) reported_offline: HashSet<String>,
    pub(super) sync_in_flight: bool,
    pub(super) history_in_flight: bool,
    /// Whether anything is sent before the login has refreshed the token (see [`TokenGate`]).
    pub(super) token: TokenGate,
    /// When what the game shows next changes (a perk's end or its grace), unix seconds.
    pub(super) shown_changes_at: Option<u64>,
    /// What is shown was computed without the item catalog (flags unknown): compute again once it loads.
    pub(super) shown_without_catalog: bool,
    /// Another instance holds the data directory: nothing is saved, spends are refused.
    pub(super) read_only: bool,
    pub(super) grace: Duration,
    pub(super) wall_clock: fn() -> SystemTime,
}

impl Mirror {
    pub(crate) fn new(
        client: MirrorClient,
        outbox: Outbox<MirrorUpdate>,
        grace: Duration,
        wall_clock: fn() -> SystemTime,
    ) -> Self {
        Self {
            client,
            outbox,
            session: 0,
            player_id: None,
            access_token: None,
            cache: None,
            view: CachedInventory::default(),
            loaded: false,
            spends: VecDeque::new(),
            spend_in_flight: false,
            spends_wait_for_sync: false,
            reported_offline: HashSet::new(),
            sync_in_flight: false,
            history_in_flight: false,
            token: TokenGate::default(),
            shown_changes_at: None,
            shown_without_catalog: false,
            read_only: false,
            grace,
            wall_clock,
        }
    }

    /// Another instance holds the data directory.
    pub(crate) fn make_read_only(&mut self) {
        self.read_only = true;
    }

    /// Now on the configured wall clock, in unix seconds.
    pub(super) fn now_secs(&self) -> u64 {
        (self.wall_clock)().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    /// Puts what the cache says the player holds now into `inventory` (perks only while they last).
    pub(super) fn show(&mut self, inventory: Option<Mut<Inventory>>, catalog: Option<&ItemCatalog>) {
        let is_perk = |item: &str| catalog.is_some_and(|c| c.items.get(item).is_some_and(|d| d.flag));
        let (items, changes_at) = shown_items(&self.view, is_perk, self.grace, self.now_secs());
        self.shown_changes_at = changes_at;
        self.shown_without_catalog = catalog.is_none() && !self.view.items.is_empty();
        if let Some(mut inventory) = inventory
            && *inventory.counts() != items
        {
            inventory.replace(items);
        }
    }

    /// When the last sync reached the backend.
    pub(super) fn synced_at(&self) -> Option<SystemTime> {
        self.view.synced_at.map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
    }
}
