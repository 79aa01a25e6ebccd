//! The Moments file (`achievements.json` in the data dir) and the state kept with it ([`MomentsOutbox`]):
//! progress, unlocked achievements, the outbox of moments waiting for delivery (each owned by the player who
//! reached it) and the rewards earned. Saved in generation order off the frame; a damaged file is left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bevy::asset::AssetServer;
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use super::progress::Input;
use super::receive::MomentsUpdate;
use super::{EarnedReward, Reward};
use crate::config::RewardsConfig;
use crate::core::bridge::{Outbox, RewardsRuntime};
use crate::core::http::ApiClient;
use crate::error::RewardsError;

/// One queued moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct OutboxEntry {
    pub(super) moment: String,
    pub(super) achievement: String,
    /// Whose moment it is: delivered only under this player's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) player: Option<String>,
    /// The save generation that made it durable.
    #[serde(skip)]
    pub(super) generation: u64,
}

/// What `achievements.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedMoments {
    pub(super) version: u32,
    /// Count per achievement.
    pub(super) progress: BTreeMap<String, u32>,
    /// Unlocked achievements.
    pub(super) unlocked: Vec<String>,
    pub(super) outbox: Vec<OutboxEntry>,
    pub(super) rewards: Vec<EarnedReward>,
}

/// For the fuzz target: reads a Moments file's bytes as the loader does, and checks what is read writes back
/// equal.
pub(crate) fn fuzz_saved_moments(bytes: &[u8]) {
    if let Ok(saved) = serde_json::from_slice::<SavedMoments>(bytes) {
        let again: SavedMoments = serde_json::from_slice(&serde_json::to_vec(&saved).unwrap()).unwrap();
        assert_eq!(again, saved);
    }
}

/// The saved state at `path` (none configured, or no file yet: empty).
fn read_saved(path: Option<&Path>) -> Result<SavedMoments, RewardsError> {
    let Some(path) = path else { return Ok(SavedMoments::default()) };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<SavedMoments>(&bytes)
            .map_err(|e| RewardsError::Storage(format!("{} is damaged ({e}); it is left untouched", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(SavedMoments::default()),
        Err(error) => Err(RewardsError::Storage(format!("cannot read {}: {error}", path.display()))),
    }
}

/// The plugin's moments state.
#[derive(Resource)]
pub(crate) struct MomentsOutbox {
    pub(super) saved: SavedMoments,
    pub(super) loading: bool,
    /// The file is unreadable: it is left alone and nothing is written over it.
    pub(super) damaged: bool,
    pub(super) waiting: Vec<Input>,
    /// Generation of the newest state handed to the writer, and of the newest on disk.
    pub(super) generation: u64,
    pub(super) saved_generation: u64,
    pub(super) last_written: Arc<tokio::sync::Mutex<u64>>,
    pub(super) in_flight: bool,
    pub(super) failures: u32,
    pub(super) not_before: Option<Instant>,
    pub(super) player: Option<String>,
    /// [`Achievements`](super::Achievements) shows the loaded catalog and progress.
    pub(super) view_current: bool,
    pub(super) api: ApiClient,
    pub(super) base_url: String,
    pub(super) updates: Outbox<MomentsUpdate>,
    /// Where the achievement catalog is read from (`None`: the app has no `AssetPlugin`).
    assets: Option<AssetServer>,
    /// The catalog is read and valid (it is the [`AchievementCatalog`](super::AchievementCatalog) resource).
    pub(super) catalog_ready: bool,
}

impl MomentsOutbox {
    pub(crate) fn new(
        config: &RewardsConfig,
        api: ApiClient,
        updates: Outbox<MomentsUpdate>,
        assets: Option<AssetServer>,
    ) -> Self {
        let url = config.moments.moments_url.as_deref().unwrap_or(&config.entitlements_url);
        Self {
            saved: SavedMoments::default(),
            loading: false,
            damaged: false,
            waiting: Vec::new(),
            generation: 0,
            saved_generation: 0,
            last_written: Arc::default(),
            in_flight: false,
            failures: 0,
            not_before: None,
            player: None,
            view_current: false,
            api,
            base_url: url.trim_end_matches('/').to_owned(),
            updates,
            assets,
            catalog_ready: false,
        }
    }

    /// Another instance holds the data directory: never write over its file.
    pub(crate) fn make_read_only(&mut self) {
        self.damaged = true;
    }

    fn path(config: &RewardsConfig) -> Option<PathBuf> {
        config.resolved_data_dir().map(|dir| dir.join("achievements.json"))
    }

    /// Starts loading the saved state.
    pub(crate) fn load(&mut self, config: &RewardsConfig, runtime: &RewardsRuntime) {
        self.loading = true;
        let path = Self::path(config);
        let catalog_path = config.moments.achievements_path.clone().unwrap_or_default();
        let assets = self.assets.clone();
        runtime.spawn(&self.updates, async move {
            let catalog = match &assets {
                Some(assets) => super::catalog::read_catalog(assets, &catalog_path).await,
                None => Err(RewardsError::Achievement(
                    "the achievement catalog is read through AssetPlugin, which the app lacks".into(),
                )),
            };
            let saved = tokio::task::spawn_blocking(move || read_saved(path.as_deref()))
                .await
                .unwrap_or_else(|e| Err(RewardsError::Storage(e.to_string())));
            MomentsUpdate::Loaded { catalog, saved }
        });
    }

    /// Hands the current state to the writer; writes land in generation order and stale ones are skipped.
    pub(super) fn save(&mut self, config: &RewardsConfig, runtime: &RewardsRuntime) {
        self.generation += 1;
        let generation = self.generation;
        if self.damaged {
            return;
        }
        let Some(path) = Self::path(config) else {
            self.saved_generation = generation;
            return;
        };
        let mut saved = self.saved.clone();
        saved.version = 1;
        let bytes = serde_json::to_vec_pretty(&saved).expect("moments state serializes");
        let last_written = self.last_written.clone();
        runtime.spawn(&self.updates, async move {
            let mut written = last_written.lock().await;
            if *written >= generation {
                return MomentsUpdate::Saved { generation, result: Ok(()) };
            }
            let failed = |e: String| RewardsError::Storage(format!("cannot save achievements: {e}"));
            let result = tokio::task::spawn_blocking(move || crate::core::storage::write_private(&path, &bytes))
                .await
                .map_err(|e| failed(e.to_string()))
                .and_then(|r| r.map_err(|e| failed(e.to_string())));
            if result.is_ok() {
                *written = generation;
            }
            MomentsUpdate::Saved { generation, result }
        });
    }

    pub(super) fn unlocked(&self, id: &str) -> bool {
        self.saved.unlocked.iter().any(|u| u == id)
    }

    /// Drops `player`'s entry for `moment` once the backend has answered for it.
    pub(super) fn delivered(&mut self, moment: &str, player: &str) {
        let ours = |e: &OutboxEntry| e.moment == moment && e.player.as_deref().is_none_or(|p| p == player);
        if let Some(index) = self.saved.outbox.iter().position(ours) {
            self.saved.outbox.remove(index);
        }
    }

    pub(super) fn record_reward(&mut self, reward: Reward, player: &str) -> bool {
        if self.saved.rewards.iter().any(|r| r.reward.reward_id == reward.reward_id) {
            return false;
        }
        self.saved.rewards.push(EarnedReward { reward, claim_opened: false, player: Some(player.to_owned()) });
        true
    }

    /// The rewards the signed-in player earned (and those saved before rewards named their player).
    pub(super) fn own_rewards(&self) -> Vec<EarnedReward> {
        let mine = |r: &&EarnedReward| r.player.is_none() || r.player == self.player;
        self.saved.rewards.iter().filter(mine).cloned().collect()
    }

    /// The next moment due for `player`: durable, and theirs (or nobody's yet).
    pub(super) fn next_due(&self, player: &str) -> Option<usize> {
        self.saved.outbox.iter().position(|e| {
            e.generation <= self.saved_generation && e.player.as_deref().is_none_or(|owner| owner == player)
        })
    }
}
