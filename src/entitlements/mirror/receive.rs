//! The mirror's receive system: the cache read, sync answers (what is shown, and each change announced), spend
//! answers (a [`SpendResult`] each) and history pages, applied to [`Mirror`], [`RewardsStatus`] and the game's
//! messages.

use std::time::Instant;

use amazon_rewards_protocol::inventory::{ChangeKind, ChangeRecord, SpendRequest};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::cache::CacheFile;
use super::send::CatalogAccess;
use super::state::{Mirror, MirrorUpdate, SpendAttempt, Synced};
use super::{InventoryChanged, InventoryHistory, SpendOutcome, SpendResult};
use crate::core::TokenRefused;
use crate::core::bridge::Inbox;
use crate::entitlements::pacing::{PullPacer, random_jitter};
use crate::entitlements::{EntitlementGranted, EntitlementRevoked, PullCompleted, PullReason, RewardsStatus};
use crate::error::{ApiError, RewardsError};
use crate::inventory::{Inventory, ItemStack, RewardsRecipient, take_stacks};

/// The messages receiving writes.
#[derive(SystemParam)]
pub(crate) struct MirrorMessages<'w> {
    pulled: MessageWriter<'w, PullCompleted>,
    granted: MessageWriter<'w, EntitlementGranted>,
    revoked: MessageWriter<'w, EntitlementRevoked>,
    changed: MessageWriter<'w, InventoryChanged>,
    errors: MessageWriter<'w, RewardsError>,
    refusals: MessageWriter<'w, TokenRefused>,
}

/// What receiving works with.
#[derive(SystemParam)]
pub(crate) struct MirrorReceiver<'w, 's> {
    mirror: ResMut<'w, Mirror>,
    pacer: ResMut<'w, PullPacer>,
    status: ResMut<'w, RewardsStatus>,
    history: ResMut<'w, InventoryHistory>,
    api: Res<'w, crate::core::http::ApiClient>,
    recipients: Query<'w, 's, &'static mut Inventory, With<RewardsRecipient>>,
    catalog: CatalogAccess<'w>,
    messages: MirrorMessages<'w>,
    commands: Commands<'w, 's>,
}

/// Drains the mirror's inbox. Runs in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
pub(crate) fn receive_mirror(mut inbox: ResMut<Inbox<MirrorUpdate>>, mut receiver: MirrorReceiver) {
    while let Some(update) = inbox.next() {
        let current = receiver.mirror.session;
        match update {
            MirrorUpdate::Loaded { session, path, result } if session == current => receiver.loaded(path, result),
            MirrorUpdate::Synced { session, reason, result } if session == current => receiver.synced(reason, result),
            MirrorUpdate::Spent { session, spend, result } if session == current => receiver.spent(spend, result),
            MirrorUpdate::History { session, older, result } if session == current => receiver.paged(older, result),
            // Late results of an earlier player's session.
            _ => {}
        }
    }
}

impl MirrorReceiver<'_, '_> {
    fn show(&mut self) {
        let catalog = self.catalog.get();
        self.mirror.show(self.recipients.single_mut().ok(), catalog);
        self.status.inventory_synced_at = self.mirror.synced_at();
        self.status.pending_spends = self.mirror.spends.len() + usize::from(self.mirror.spend_in_flight);
    }

    fn loaded(&mut self, path: Option<std::path::PathBuf>, result: Result<super::cache::CachedInventory, String>) {
        let contents = result.unwrap_or_else(|error| {
            error!("{error}");
            self.messages.errors.write(RewardsError::Storage(error));
            Default::default()
        });
        let mirror = &mut *self.mirror;
        // Spends saved by an earlier run go first, with their keys: the backend answers each once.
        mirror.spends = contents.pending_spends.iter().cloned().chain(mirror.spends.drain(..)).collect();
        mirror.view = contents.clone();
        mirror.cache = Some(CacheFile::new(path, contents));
        mirror.loaded = true;
        self.status.ledger_ready = true;
        self.pacer.request(PullReason::Startup);
        self.show();
    }

    fn synced(&mut self, reason: PullReason, result: Result<Synced, ApiError>) {
        self.mirror.sync_in_flight = false;
        self.status.pulling = false;
        self.status.environment = self.api.environment();
        let synced = match result {
            Ok(synced) => synced,
            Err(error) => return self.sync_failed(error),
        };
        self.pacer.succeeded();
        if let Some(error) = synced.cache_error {
            self.messages.errors.write(RewardsError::Storage(error));
        }
        let relay_error = synced.answer.as_ref().and_then(|a| a.relay_error.clone());
        self.mirror.view = synced.cache;
        self.mirror.spends_wait_for_sync = false;
        self.mirror.token.succeeded("sync");
        self.show();
        self.messages.pulled.write(PullCompleted { reason, entitlements: synced.announce.len() });
        self.announce(synced.announce);
        self.status.last_pull = Some(Instant::now());
        self.status.last_error = None;
        if let Some(relay_error) = relay_error {
            // The backend reached, Amazon not: what was granted stays; the backend retries at the next sync.
            warn!("the studio backend could not reach Amazon: {relay_error}");
        }
    }

    fn sync_failed(&mut self, error: ApiError) {
        let refused = self.token_was_refused(&error, "sync");
        let delay = self.pacer.failed(Instant::now(), error.retry_after(), !refused, random_jitter());
        warn!("inventory sync failed ({error}); next attempt in {delay:?} at the earliest");
        self.status.last_error = Some(RewardsError::Pull(error.clone()));
        self.messages.errors.write(RewardsError::Pull(error));
    }

    /// Amazon's error process ([`TokenGate`](crate::core::token_gate::TokenGate)): whether requests now wait for
    /// a refresh, asked for here.
    fn token_was_refused(&mut self, error: &ApiError, call: &'static str) -> bool {
        let refused = self.mirror.token.refused(error, call);
        if refused {
            self.messages.refusals.write(TokenRefused);
        }
        refused
    }

    /// Each change as the game's messages: grants and revocations (for toasts), then one [`InventoryChanged`].
    fn announce(&mut self, changes: Vec<ChangeRecord>) {
        if changes.is_empty() {
            return;
        }
        for change in &changes {
            match change.kind {
                ChangeKind::Grant => {
                    self.messages.granted.write(EntitlementGranted {
                        entitlement_id: change.key.clone(),
                        sku: change.sku.clone().unwrap_or_default(),
                        source: Some(change.source.clone()),
                        active_until: None,
                        items: change.items.clone(),
                    });
                }
                ChangeKind::Revoke => {
                    let mut named: std::collections::BTreeMap<String, u64> =
                        change.items.iter().map(|s| (s.item.clone(), s.quantity)).collect();
                    let (missing, _) = take_stacks(&mut named, &change.debt);
                    let taken: Vec<ItemStack> = named
                        .into_iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(item, quantity)| ItemStack { item, quantity })
                        .collect();
                    self.messages.revoked.write(EntitlementRevoked {
                        entitlement_id: change.key.clone(),
                        sku: change.sku.clone().unwrap_or_default(),
                        source: Some(change.source.clone()),
                        taken,
                        missing,
                    });
                }
                ChangeKind::Spend | ChangeKind::Unknown => {}
            }
        }
        let version = self.mirror.view.seen_version;
        self.messages.changed.write(InventoryChanged { version, changes });
    }

    fn spent(&mut self, spend: SpendRequest, result: SpendAttempt) {
        self.mirror.spend_in_flight = false;
        let key = spend.key.clone();
        let outcome = match result {
            SpendAttempt::NotSaved(error) => SpendOutcome::Refused(RewardsError::Storage(error)),
            SpendAttempt::Answered { answer, cache } => {
                self.mirror.view = cache;
                self.mirror.token.succeeded("spend");
                match answer {
                    Ok(snapshot) => SpendOutcome::Spent { version: snapshot.version },
                    Err(short) => SpendOutcome::Insufficient { item: short.item, have: short.have, want: short.want },
                }
            }
            SpendAttempt::Refused { error, cache } => {
                self.mirror.view = cache;
                SpendOutcome::Refused(RewardsError::Spend(error))
            }
            SpendAttempt::Unsettled(error) => {
                // Saved; sent again (first in line) once a sync reaches the backend or the token is refreshed.
                self.mirror.spends.push_front(spend);
                if !self.token_was_refused(&error, "spend") {
                    self.mirror.spends_wait_for_sync = true;
                }
                if !self.mirror.reported_offline.insert(key.clone()) {
                    self.show();
                    return;
                }
                SpendOutcome::Offline(error)
            }
        };
        self.mirror.reported_offline.remove(&key);
        self.show();
        self.commands.trigger(SpendResult { key, outcome });
    }

    fn paged(&mut self, older: bool, result: Result<amazon_rewards_protocol::inventory::HistoryPage, ApiError>) {
        self.mirror.history_in_flight = false;
        let history = &mut *self.history;
        history.loading = false;
        match result {
            Ok(page) => {
                if !older {
                    history.changes.clear();
                }
                history.changes.extend(page.changes);
                history.next_before = page.next_before;
                history.more = page.next_before.is_some();
                history.error = None;
            }
            Err(error) => history.error = Some(RewardsError::History(error)),
        }
    }
}
