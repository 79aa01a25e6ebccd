//! Grants and revocations on the frame: pulled entitlements go into the recipient's [`Inventory`] within a
//! per-frame time budget, and each change is handed to the ledger writer, which reports it once durable.

use std::time::Instant;

use amazon_rewards_protocol::prime_gaming::{Entitlement, NextInstruction, is_valid_sku};
use bevy::asset::LoadState;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::LedgerSource;
use super::file::{EntryState, LedgerChange};
use crate::config::RewardsConfig;
use crate::entitlements::pacing::PullPacer;
use crate::entitlements::{EntitlementGranted, EntitlementRevoked, PullReason, RewardsStatus};
use crate::error::RewardsError;
use crate::inventory::{CatalogHandle, Inventory, ItemCatalog, RewardsRecipient, take_stacks};

/// The messages granting writes.
#[derive(SystemParam)]
pub(crate) struct GrantMessages<'w> {
    granted: MessageWriter<'w, EntitlementGranted>,
    revoked: MessageWriter<'w, EntitlementRevoked>,
    errors: MessageWriter<'w, RewardsError>,
}

/// Grants pulled entitlements into the recipient's inventory, as many as fit in the frame's time budget,
/// and hands the grants to the ledger writer. The last step of [`RewardsReceive`](crate::RewardsReceive), which
/// runs on the next frames too while grants wait.
pub(crate) fn apply_grants(
    mut source: ResMut<LedgerSource>,
    mut status: ResMut<RewardsStatus>,
    config: Res<RewardsConfig>,
    catalog: CatalogParam,
    mut recipients: Query<&mut Inventory, With<RewardsRecipient>>,
    mut messages: GrantMessages,
) {
    let source = &mut *source;
    let waiting = !source.grant_queue.is_empty();
    source.granting.set(waiting);
    if !waiting {
        return;
    }
    let started = source.busy_since.take().unwrap_or_else(Instant::now);
    if !source.ledger_ready {
        return;
    }
    let Some(catalog) = catalog.loaded(source, &mut messages.errors) else {
        return;
    };
    let mut recipient = recipients.single_mut().ok();
    let mut changes = Vec::new();
    while let Some(entitlement) = source.grant_queue.pop_front() {
        let state = source.states.get(&entitlement.entitlement_id).copied();
        if matches!(state, Some(EntryState::Revoked | EntryState::RevokeReported)) {
            // Final: a revoked entitlement is never granted again nor taken back twice.
            continue;
        }
        if entitlement.next_instruction == NextInstruction::Revoke {
            changes.push(source.revoke(entitlement, state, catalog, recipient.as_deref_mut(), &mut messages));
        } else if !matches!(state, Some(EntryState::Granted | EntryState::Reported)) {
            changes.extend(source.grant(entitlement, state, catalog, recipient.as_deref_mut(), &mut messages));
        } else {
            continue;
        }
        if started.elapsed() >= config.entitlements.grant_budget_per_frame {
            break;
        }
    }
    source.ledger.record(source.session, changes);
    status.pending_grants = source.grant_queue.len();
    source.granting.set(!source.grant_queue.is_empty());
}

/// The item catalog asset, once loaded.
#[derive(SystemParam)]
pub(crate) struct CatalogParam<'w> {
    handle: Res<'w, CatalogHandle>,
    catalogs: Res<'w, Assets<ItemCatalog>>,
    asset_server: Res<'w, AssetServer>,
}

impl CatalogParam<'_> {
    /// The catalog, or `None` while it loads; a failed load is reported once.
    fn loaded(&self, source: &mut LedgerSource, errors: &mut MessageWriter<RewardsError>) -> Option<&ItemCatalog> {
        let catalog = self.catalogs.get(&self.handle.0);
        if catalog.is_none()
            && let LoadState::Failed(error) = self.asset_server.load_state(&self.handle.0)
            && !source.catalog_failure_reported
        {
            source.catalog_failure_reported = true;
            error!("item catalog failed to load: {error}");
            errors.write(RewardsError::Catalog(error.to_string()));
        }
        catalog
    }
}

impl LedgerSource {
    /// Takes back what a revoked entitlement granted (never below zero); final.
    fn revoke(
        &mut self,
        entitlement: Entitlement,
        state: Option<EntryState>,
        catalog: &ItemCatalog,
        recipient: Option<&mut Inventory>,
        messages: &mut GrantMessages,
    ) -> LedgerChange {
        let Entitlement { entitlement_id, vendor_product_id: sku, source, .. } = entitlement;
        let granted_items = match state {
            Some(EntryState::Granted | EntryState::Reported) => catalog.items_for(&sku).unwrap_or_default().to_vec(),
            _ => Vec::new(),
        };
        let (taken, missing) = match recipient {
            Some(inventory) => inventory.remove(&granted_items),
            None => take_stacks(&mut self.inventory.clone(), &granted_items),
        };
        take_stacks(&mut self.inventory, &taken);
        if !missing.is_empty() {
            warn!("entitlement {entitlement_id} revoked, but the player no longer had all of it: {missing:?}");
        }
        self.states.insert(entitlement_id.clone(), EntryState::Revoked);
        let change =
            LedgerChange::Revoked { entitlement_id: entitlement_id.clone(), sku: sku.clone(), taken: taken.clone() };
        messages.revoked.write(EntitlementRevoked { entitlement_id, sku, source, taken, missing });
        change
    }

    /// Grants a new entitlement, or marks it seen and says why it cannot be granted yet.
    fn grant(
        &mut self,
        entitlement: Entitlement,
        state: Option<EntryState>,
        catalog: &ItemCatalog,
        recipient: Option<&mut Inventory>,
        messages: &mut GrantMessages,
    ) -> Option<LedgerChange> {
        let Entitlement { entitlement_id, vendor_product_id: sku, next_instruction, source, active_until } =
            entitlement;
        let fulfill = next_instruction == NextInstruction::Fulfill;
        let items = catalog.items_for(&sku).filter(|_| fulfill && is_valid_sku(&sku));
        let no_recipient = recipient.is_none();
        let (Some(items), Some(inventory)) = (items, recipient) else {
            if fulfill && self.complain_once(&entitlement_id) {
                self.not_grantable(&entitlement_id, &sku, no_recipient, &mut messages.errors);
            }
            return state.is_none().then(|| {
                self.states.insert(entitlement_id.clone(), EntryState::Seen);
                LedgerChange::Seen { entitlement_id, sku }
            });
        };
        inventory.add(items);
        for stack in items {
            let count = self.inventory.entry(stack.item.clone()).or_default();
            *count = count.saturating_add(stack.quantity);
        }
        self.states.insert(entitlement_id.clone(), EntryState::Granted);
        let change = LedgerChange::Granted {
            entitlement_id: entitlement_id.clone(),
            sku: sku.clone(),
            items: items.to_vec(),
            // Only the studio backend's feed names a source, and only it revokes.
            revocable: source.is_some(),
        };
        messages.granted.write(EntitlementGranted { entitlement_id, sku, source, active_until, items: items.to_vec() });
        Some(change)
    }

    /// Tells the game once why an entitlement waits: no recipient yet, or a SKU the catalog does not know.
    fn not_grantable(
        &mut self,
        entitlement_id: &str,
        sku: &str,
        no_recipient: bool,
        errors: &mut MessageWriter<RewardsError>,
    ) {
        let entitlement_id = entitlement_id.to_owned();
        if no_recipient {
            self.waiting_for_recipient = true;
            errors.write(RewardsError::NoRecipient { entitlement_id });
        } else {
            warn!("entitlement {entitlement_id} has unknown SKU {sku:?}; left unfulfilled");
            errors.write(RewardsError::UnknownSku { entitlement_id, sku: sku.to_owned() });
        }
    }
}

/// Gives a new recipient the inventory granted so far, and retries grants that waited for one.
pub(crate) fn on_recipient_added(
    added: On<Add, RewardsRecipient>,
    source: Option<ResMut<LedgerSource>>,
    pacer: Option<ResMut<PullPacer>>,
    mut inventories: Query<&mut Inventory>,
) {
    let (Some(mut source), Some(mut pacer)) = (source, pacer) else {
        return;
    };
    if let Ok(mut inventory) = inventories.get_mut(added.entity)
        && source.ledger_ready
    {
        inventory.replace(source.inventory.clone());
    }
    if std::mem::take(&mut source.waiting_for_recipient) {
        source.complained.clear();
        pacer.request(PullReason::RecipientReady);
    }
}
