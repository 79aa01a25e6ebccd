//! The studio-backend inventory source ([`InventorySource::StudioBackend`](super::InventorySource)): the backend
//! owns the inventory (every grant, revocation and spend happens there), and the game mirrors it. A sync (at
//! the same paced triggers as a pull) asks the backend to pull Amazon and answers what changed since the version
//! the game last saw, `304` when nothing did; the [`Inventory`](crate::inventory::Inventory) shows the backend's
//! snapshot, and each change arrives as [`EntitlementGranted`](super::EntitlementGranted),
//! [`EntitlementRevoked`](super::EntitlementRevoked) and [`InventoryChanged`]. [`SpendItems`] spends on the
//! backend (its key saved before sending, so a crash or a retry never spends twice) and is answered by a
//! [`SpendResult`]. Offline, the last snapshot (cached per player on disk, `cache.rs`) is shown with its age in
//! [`RewardsStatus`](super::RewardsStatus); perks stay on for a bounded grace. [`LoadHistory`] pages the history
//! into [`InventoryHistory`].
//!
//! Files: `client.rs` (the HTTP API), `cache.rs` (the file and what is shown), `state.rs` (the main thread's
//! view), `send.rs` (syncs, spends, history when due), `receive.rs` (answers applied).

mod cache;
mod client;
mod receive;
mod send;
mod state;

pub use amazon_rewards_protocol::inventory::{ChangeKind, ChangeRecord};
pub(crate) use client::MirrorClient;
pub(crate) use receive::receive_mirror;
pub(crate) use send::{mirror_next_work, send_mirror_requests};
pub(crate) use state::Mirror;

use bevy::prelude::*;

use crate::error::{ApiError, RewardsError};
use crate::inventory::ItemStack;

/// The backend's inventory changed: the changes after the version the game last saw, oldest first (a grant or
/// revocation also comes as its own message; a spend, from this game or another device, only here).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct InventoryChanged {
    /// The inventory version now shown.
    pub version: i64,
    /// What changed since the last version the game saw (at most 500 per sync; the snapshot is whole either way).
    pub changes: Vec<ChangeRecord>,
}

/// Spend items on the studio backend, checked there. The key is saved with the player's cache before the
/// request is sent, so a crash, a restart or a retry never spends twice; answered by one [`SpendResult`].
///
/// ```
/// # use bevy::prelude::*;
/// # use bevy_amazon_rewards::prelude::*;
/// fn buy_sword(mut spends: MessageWriter<SpendItems>) {
///     spends.write(SpendItems::new([ItemStack { item: "gem".into(), quantity: 30 }]));
/// }
/// fn on_spend(result: On<SpendResult>) {
///     if let SpendOutcome::Spent { .. } = result.outcome { /* hand over the sword */ }
/// }
/// ```
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SpendItems {
    /// 1–128 printable characters naming this spend once (see [`SpendItems::new`]).
    pub key: String,
    /// What to spend.
    pub items: Vec<ItemStack>,
}

impl SpendItems {
    /// A spend of `items` with a fresh random key.
    pub fn new(items: impl IntoIterator<Item = ItemStack>) -> Self {
        // 16 random bytes from the OS generator, the way OAuth's `state` is made.
        let key = format!("spend-{}", oauth2::CsrfToken::new_random().secret());
        Self { key, items: items.into_iter().collect() }
    }
}

/// The answer to one [`SpendItems`], as an observer event (`app.add_observer(|result: On<SpendResult>| …)`).
#[derive(Event, Debug, Clone, PartialEq)]
pub struct SpendResult {
    /// The spend's key.
    pub key: String,
    /// What became of it.
    pub outcome: SpendOutcome,
}

/// What became of a [`SpendItems`].
#[derive(Debug, Clone, PartialEq)]
pub enum SpendOutcome {
    /// Spent on the backend; the [`Inventory`](crate::inventory::Inventory) shows what is left.
    Spent {
        /// The inventory version the spend made (or, for a retried key, the first answer's).
        version: i64,
    },
    /// The player does not hold enough; nothing was spent.
    Insufficient {
        /// The first item short.
        item: String,
        /// How many the player holds.
        have: i64,
        /// How many the spend wanted.
        want: i64,
    },
    /// The backend could not be reached (or is failing). Nothing is spent offline: the spend stays saved and is
    /// sent again, with the same key, after the next sync that reaches the backend; a later [`SpendResult`]
    /// with the same key settles it (the backend applies it at most once).
    Offline(ApiError),
    /// Refused for good (no player signed in, another instance holds the data directory, an item the backend
    /// does not know, a malformed spend); nothing was spent.
    Refused(RewardsError),
}

/// Load a page of the player's inventory history into [`InventoryHistory`].
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadHistory {
    /// The newest page (replaces what was loaded).
    #[default]
    Newest,
    /// The next older page, after what is loaded.
    Older,
}

/// The player's inventory history as loaded so far ([`LoadHistory`]), newest first: every grant, revocation
/// (with what could not be taken back), and spend, with its source and time — the in-game "where is my
/// reward".
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct InventoryHistory {
    /// The changes loaded, newest first.
    pub changes: Vec<ChangeRecord>,
    /// Whether older changes remain to load.
    pub more: bool,
    /// A page is being loaded.
    pub loading: bool,
    /// Why the last page failed, if it did.
    pub error: Option<RewardsError>,
    /// The version before which the next older page starts.
    pub(crate) next_before: Option<i64>,
}
