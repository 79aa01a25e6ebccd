//! What players get: the item catalog asset (SKU → items and quantities), the [`Inventory`] component, and
//! the [`RewardsRecipient`] marker naming the entity that receives grants.
//!
//! The catalog is a JSON asset (`*.catalog.json`) loaded through the `AssetServer`:
//!
//! ```json
//! {
//!   "items":  { "gold": { "name": "Gold coins", "icon": "icons/gold.png" } },
//!   "offers": { "prime-gold-pack": [ { "item": "gold", "quantity": 500 } ] }
//! }
//! ```

use std::collections::BTreeMap;

use bevy::asset::io::Reader;
use bevy::asset::{AssetLoader, LoadContext};
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

pub use amazon_rewards_protocol::catalog::{ItemDefinition, ItemStack};

/// The item catalog: which items exist and what each offer (SKU) grants.
#[derive(Asset, TypePath, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCatalog {
    /// Items by id.
    #[serde(default)]
    pub items: BTreeMap<String, ItemDefinition>,
    /// What each SKU grants.
    #[serde(default)]
    pub offers: BTreeMap<String, Vec<ItemStack>>,
}

impl ItemCatalog {
    /// What `sku` grants, if the catalog knows it.
    pub fn items_for(&self, sku: &str) -> Option<&[ItemStack]> {
        self.offers.get(sku).map(Vec::as_slice)
    }

    /// Checks that every SKU is valid, every offer grants something, and every item it names exists
    /// ([`amazon_rewards_protocol::catalog::validate_offers`]).
    pub fn validate(&self) -> Result<(), CatalogError> {
        amazon_rewards_protocol::catalog::validate_offers(&self.items, &self.offers).map_err(|error| match error {
            amazon_rewards_protocol::catalog::CatalogError::Invalid(message) => CatalogError::Invalid(message),
            amazon_rewards_protocol::catalog::CatalogError::Json(message) => CatalogError::Invalid(message),
        })
    }
}

/// Why a catalog failed to load.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read the item catalog: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not valid catalog JSON.
    #[error("the item catalog is not valid JSON: {0}")]
    Malformed(String),
    /// The catalog is inconsistent.
    #[error("the item catalog is inconsistent: {0}")]
    Invalid(String),
}

/// Loads [`ItemCatalog`]s from `*.catalog.json` files.
#[derive(Debug, Default, TypePath)]
pub struct ItemCatalogLoader;

impl AssetLoader for ItemCatalogLoader {
    type Asset = ItemCatalog;
    type Settings = ();
    type Error = CatalogError;

    async fn load(
        &self,
        reader: &mut dyn Reader,
        _settings: &(),
        _load_context: &mut LoadContext<'_>,
    ) -> Result<ItemCatalog, CatalogError> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).await?;
        let file = amazon_rewards_protocol::catalog::ItemCatalogFile::parse(&bytes).map_err(|error| match error {
            amazon_rewards_protocol::catalog::CatalogError::Json(message) => CatalogError::Malformed(message),
            amazon_rewards_protocol::catalog::CatalogError::Invalid(message) => CatalogError::Invalid(message),
        })?;
        Ok(ItemCatalog { items: file.items, offers: file.offers })
    }

    fn extensions(&self) -> &[&str] {
        &["catalog.json"]
    }
}

/// The handle of the catalog the plugin grants from.
#[derive(Resource, Debug, Clone)]
pub struct CatalogHandle(pub Handle<ItemCatalog>);

/// Items granted to the player through Amazon rewards, persisted in the ledger and restored on startup.
///
/// Read it anywhere; only the plugin changes it (grants, and restoring the persisted state), so that what
/// the ledger says and what the game shows never disagree.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    items: BTreeMap<String, u64>,
}

impl Inventory {
    /// How many of `item` the player has.
    pub fn count(&self, item: &str) -> u64 {
        self.items.get(item).copied().unwrap_or(0)
    }

    /// Whether the player holds at least one `item` — for flags (perks), whether the perk is on.
    pub fn has(&self, item: &str) -> bool {
        self.count(item) > 0
    }

    /// Every item with a non-zero count, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.items.iter().filter(|(_, n)| **n > 0).map(|(id, n)| (id.as_str(), *n))
    }

    /// Whether the inventory holds nothing.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub(crate) fn add(&mut self, stacks: &[ItemStack]) {
        for stack in stacks {
            let count = self.items.entry(stack.item.clone()).or_default();
            *count = count.saturating_add(stack.quantity);
        }
    }

    /// Takes `stacks` out, never below zero; returns (taken, missing).
    pub(crate) fn remove(&mut self, stacks: &[ItemStack]) -> (Vec<ItemStack>, Vec<ItemStack>) {
        take_stacks(&mut self.items, stacks)
    }

    pub(crate) fn counts(&self) -> &BTreeMap<String, u64> {
        &self.items
    }

    pub(crate) fn replace(&mut self, items: BTreeMap<String, u64>) {
        self.items = items;
    }
}

/// Takes `stacks` out of `items`, never below zero; returns (taken, missing): what was removed, and what the
/// player no longer had.
pub(crate) fn take_stacks(items: &mut BTreeMap<String, u64>, stacks: &[ItemStack]) -> (Vec<ItemStack>, Vec<ItemStack>) {
    let mut taken = Vec::new();
    let mut missing = Vec::new();
    for stack in stacks {
        let count = items.entry(stack.item.clone()).or_default();
        let take = stack.quantity.min(*count);
        *count -= take;
        if take > 0 {
            taken.push(ItemStack { item: stack.item.clone(), quantity: take });
        }
        if take < stack.quantity {
            missing.push(ItemStack { item: stack.item.clone(), quantity: stack.quantity - take });
        }
    }
    (taken, missing)
}

/// Marks the one entity that receives granted items (usually the player). It gets an [`Inventory`].
#[derive(Component, Debug, Clone, Copy, Default)]
#[require(Inventory)]
pub struct RewardsRecipient;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_catches_bad_skus_unknown_items_and_empty_offers() {
        let good: ItemCatalog = serde_json::from_str(
            r#"{"items":{"gold":{"name":"Gold"}},"offers":{"pack":[{"item":"gold","quantity":5}]}}"#,
        )
        .unwrap();
        good.validate().unwrap();
        assert_eq!(good.items_for("pack").unwrap()[0].quantity, 5);
        assert!(good.items_for("nope").is_none());
        for bad in [
            r#"{"items":{},"offers":{"pack":[{"item":"gold","quantity":5}]}}"#,
            r#"{"items":{"gold":{"name":"Gold"}},"offers":{"bad sku":[{"item":"gold","quantity":5}]}}"#,
            r#"{"items":{"gold":{"name":"Gold"}},"offers":{"pack":[]}}"#,
            r#"{"items":{"gold":{"name":"Gold"}},"offers":{"pack":[{"item":"gold","quantity":0}]}}"#,
            r#"{"items":{"vip":{"name":"VIP","flag":true}},"offers":{"pass":[{"item":"vip","quantity":2}]}}"#,
        ] {
            let catalog: ItemCatalog = serde_json::from_str(bad).unwrap();
            assert!(catalog.validate().is_err(), "{bad}");
        }
        let flags: ItemCatalog = serde_json::from_str(
            r#"{"items":{"vip":{"name":"VIP","flag":true}},"offers":{"pass":[{"item":"vip","quantity":1}]}}"#,
        )
        .unwrap();
        flags.validate().unwrap();
        let mut inventory = Inventory::default();
        assert!(!inventory.has("vip"));
        inventory.add(flags.items_for("pass").unwrap());
        assert!(inventory.has("vip"));
    }
}
