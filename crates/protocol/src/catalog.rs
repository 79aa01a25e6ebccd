//! The game's own asset formats that the plugin reads from disk and the backend may load too: the item
//! catalog (`*.catalog.json`: SKU → items and quantities) and the achievement catalog (`*.achievements.json`),
//! with their validation. Studio-defined formats, not Amazon's; here so they can be unit-tested and fuzzed
//! without the engine.
//!
//! ```
//! use amazon_rewards_protocol::catalog::ItemCatalogFile;
//! let catalog = ItemCatalogFile::parse(br#"{"items":{"gold":{"name":"Gold"}},"offers":{"prime-gold":[{"item":"gold","quantity":500}]}}"#).unwrap();
//! assert_eq!(catalog.offers["prime-gold"][0].quantity, 500);
//! assert!(ItemCatalogFile::parse(br#"{"offers":{"prime-gold":[{"item":"gold","quantity":1}]}}"#).is_err());
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::prime_gaming::is_valid_sku;

/// A quantity of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemStack {
    /// Item id, a key of the catalog's `items`.
    pub item: String,
    /// How many.
    pub quantity: u64,
}

/// How an item is shown to the player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemDefinition {
    /// Display name.
    pub name: String,
    /// Longer description.
    #[serde(default)]
    pub description: String,
    /// Asset path of its icon.
    #[serde(default)]
    pub icon: Option<String>,
    /// A perk the player either has or has not (a subscription's "double coins", say), rather than a count:
    /// offers grant exactly one. It lasts as long as the grant that gave it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flag: bool,
}

/// Why a catalog file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Not the file's JSON shape.
    #[error("not valid JSON for this catalog: {0}")]
    Json(String),
    /// Inconsistent.
    #[error("inconsistent: {0}")]
    Invalid(String),
}

/// The item catalog file: which items exist and what each offer (SKU) grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemCatalogFile {
    /// Items by id.
    #[serde(default)]
    pub items: BTreeMap<String, ItemDefinition>,
    /// What each SKU grants.
    #[serde(default)]
    pub offers: BTreeMap<String, Vec<ItemStack>>,
}

impl ItemCatalogFile {
    /// Reads and validates a catalog file.
    pub fn parse(bytes: &[u8]) -> Result<Self, CatalogError> {
        let catalog: Self = serde_json::from_slice(bytes).map_err(|e| CatalogError::Json(e.to_string()))?;
        validate_offers(&catalog.items, &catalog.offers)?;
        Ok(catalog)
    }
}

/// Checks that every SKU is valid, every offer grants something, every item it names exists, and a flag is
/// granted once.
pub fn validate_offers(
    items: &BTreeMap<String, ItemDefinition>,
    offers: &BTreeMap<String, Vec<ItemStack>>,
) -> Result<(), CatalogError> {
    let invalid = |message: String| Err(CatalogError::Invalid(message));
    for (sku, stacks) in offers {
        if !is_valid_sku(sku) {
            return invalid(format!("SKU {sku:?} is not a valid VendorProductId"));
        }
        if stacks.is_empty() {
            return invalid(format!("offer {sku:?} grants nothing"));
        }
        for stack in stacks {
            let Some(item) = items.get(&stack.item) else {
                return invalid(format!("offer {sku:?} names unknown item {:?}", stack.item));
            };
            if stack.quantity == 0 {
                return invalid(format!("offer {sku:?} grants zero {:?}", stack.item));
            }
            if item.flag && stack.quantity != 1 {
                return invalid(format!(
                    "offer {sku:?} grants {} of flag {:?}; a flag is granted once",
                    stack.quantity, stack.item
                ));
            }
        }
    }
    Ok(())
}

/// How an achievement is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProgressRule {
    /// Reached when the count gets to `threshold` (`{"counter": {"threshold": 5}}`).
    Counter {
        /// The count that unlocks it (≥ 1).
        threshold: u32,
    },
    /// Reached once, by an explicit unlock (`"flag"`).
    Flag,
}

/// One achievement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AchievementDefinition {
    /// Stable id the game reports progress with.
    pub id: String,
    /// Shown to the player.
    pub title: String,
    /// Shown to the player.
    #[serde(default)]
    pub description: String,
    /// The Moments moment it reaches, if it earns a reward.
    #[serde(default)]
    pub moment: Option<String>,
    /// How it is reached.
    pub rule: ProgressRule,
}

/// The achievement catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AchievementCatalogFile {
    /// Every achievement.
    pub achievements: Vec<AchievementDefinition>,
}

impl AchievementCatalogFile {
    /// Reads and validates an achievement catalog file.
    pub fn parse(bytes: &[u8]) -> Result<Self, CatalogError> {
        let catalog: Self = serde_json::from_slice(bytes).map_err(|e| CatalogError::Json(e.to_string()))?;
        validate_achievements(&catalog.achievements).map_err(CatalogError::Invalid)?;
        Ok(catalog)
    }
}

/// Checks ids are unique and well-formed, thresholds ≥ 1, moments well-formed.
pub fn validate_achievements(achievements: &[AchievementDefinition]) -> Result<(), String> {
    let well_formed =
        |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
    let mut seen = HashSet::new();
    for achievement in achievements {
        if !well_formed(&achievement.id) {
            return Err(format!("achievement id {:?} must be 1–128 of [A-Za-z0-9-_:.]", achievement.id));
        }
        if !seen.insert(achievement.id.as_str()) {
            return Err(format!("achievement {:?} is declared twice", achievement.id));
        }
        if let ProgressRule::Counter { threshold: 0 } = achievement.rule {
            return Err(format!("achievement {:?} needs a threshold of at least 1", achievement.id));
        }
        if let Some(moment) = &achievement.moment
            && !well_formed(moment)
        {
            return Err(format!("achievement {:?} has a malformed moment {moment:?}", achievement.id));
        }
    }
    Ok(())
}
