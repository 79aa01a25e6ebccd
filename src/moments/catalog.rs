//! The achievement catalog (`*.achievements.json`): read once, off the frame, through the Bevy asset source its
//! path names (the game's `assets` folder unless the path says `source://`), validated with the protocol
//! crate's rules, and kept as a [`Resource`] from then on.
//!
//! It is not a Bevy asset on purpose: every asset type costs each frame (two systems and two message types,
//! ≈ 750 instructions an idle frame, see `crates/frame-cost`), and a catalog is read once; the backend loads the
//! same file.

use bevy::asset::io::Reader;
use bevy::asset::{AssetPath, AssetServer};
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use super::AchievementDefinition;
use crate::error::RewardsError;
use crate::inventory::CatalogError;

/// Largest achievement catalog read.
const MAX_CATALOG_BYTES: usize = 4 * 1024 * 1024;

/// The game's achievements, read from [`MomentsConfig::achievements_path`](super::MomentsConfig::achievements_path)
/// and inserted as a resource once read and valid.
#[derive(Resource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AchievementCatalog {
    /// Every achievement.
    pub achievements: Vec<AchievementDefinition>,
}

impl AchievementCatalog {
    /// The achievement `id`.
    pub fn get(&self, id: &str) -> Option<&AchievementDefinition> {
        self.achievements.iter().find(|a| a.id == id)
    }

    /// Checks ids are unique and well-formed, thresholds ≥ 1, moments well-formed
    /// ([`amazon_rewards_protocol::catalog::validate_achievements`]).
    pub fn validate(&self) -> Result<(), CatalogError> {
        amazon_rewards_protocol::catalog::validate_achievements(&self.achievements).map_err(CatalogError::Invalid)
    }
}

/// Reads, parses and validates the catalog at the asset path `path` through `assets`' sources, so that it is
/// found where Bevy would find an asset of that path (including a packaged game's asset folder).
pub(crate) async fn read_catalog(assets: &AssetServer, path: &str) -> Result<AchievementCatalog, RewardsError> {
    let failed = |why: String| RewardsError::Achievement(format!("achievement catalog {path:?}: {why}"));
    let asset_path = AssetPath::parse(path);
    let source = assets.get_source(asset_path.source()).map_err(|e| failed(e.to_string()))?;
    let mut reader = source.reader().read(asset_path.path()).await.map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.map_err(|e| failed(e.to_string()))?;
    if bytes.len() > MAX_CATALOG_BYTES {
        return Err(failed(format!("larger than {MAX_CATALOG_BYTES} bytes")));
    }
    let file =
        amazon_rewards_protocol::catalog::AchievementCatalogFile::parse(&bytes).map_err(|e| failed(e.to_string()))?;
    Ok(AchievementCatalog { achievements: file.achievements })
}
