//! The achievement catalog asset (`*.achievements.json`) and its loader.

use bevy::asset::io::Reader;
use bevy::asset::{AssetLoader, LoadContext};
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use super::AchievementDefinition;
use crate::inventory::CatalogError;

/// The game's achievements: an asset (`*.achievements.json`) loaded from
/// [`MomentsConfig::achievements_path`](super::MomentsConfig::achievements_path).
#[derive(Asset, TypePath, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Loads `*.achievements.json`.
#[derive(Default, TypePath)]
pub struct AchievementCatalogLoader;

impl AssetLoader for AchievementCatalogLoader {
    type Asset = AchievementCatalog;
    type Settings = ();
    type Error = std::io::Error;

    async fn load(
        &self,
        reader: &mut dyn Reader,
        _settings: &(),
        _load_context: &mut LoadContext<'_>,
    ) -> Result<AchievementCatalog, std::io::Error> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).await?;
        let file = amazon_rewards_protocol::catalog::AchievementCatalogFile::parse(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(AchievementCatalog { achievements: file.achievements })
    }

    fn extensions(&self) -> &[&str] {
        &["achievements.json"]
    }
}

/// The handle of the achievement catalog.
#[derive(Resource, Debug, Clone)]
pub struct AchievementCatalogHandle(pub Handle<AchievementCatalog>);
