//! [`MomentsPlugin`]: achievements, and the Amazon Moments they reach.

use bevy::asset::AssetApp;
use bevy::prelude::*;

use super::delivery::{moments_wake, send_moments};
use super::outbox::MomentsOutbox;
use super::receive::receive_moments;
use super::{
    AchievementCatalog, AchievementCatalogHandle, AchievementCatalogLoader, AchievementProgress, AchievementUnlocked,
    Achievements, ClaimReward, MomentEvent, MomentsConfig, MomentsStatus, RefreshChallenges, UnlockAchievement,
};
use crate::config::RewardsConfig;
use crate::core::http::ApiClient;
use crate::core::instance::DataDirAccess;
use crate::core::wake::WakeSendOn;
use crate::core::{RewardsReceive, RewardsSend};

/// Achievement progress kept on disk, each unlock's moment delivered to the studio backend through a durable
/// outbox, and the rewards it earns. Part of [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins); a game
/// without achievements disables it.
///
/// Always adds the [`AchievementProgress`], [`UnlockAchievement`], [`AchievementUnlocked`], [`ClaimReward`],
/// [`RefreshChallenges`] and [`MomentEvent`] messages and the [`Achievements`] and [`MomentsStatus`]
/// resources. With [`MomentsConfig::achievements_path`] set it also loads the [`AchievementCatalog`] asset at
/// [`PreStartup`] and adds two systems: one in [`AmazonRewardsSystems::Send`], run only when progress, a
/// claim, a refresh, a new player or a due moment waits, and one in [`AmazonRewardsSystems::Receive`].
#[derive(Debug, Clone, Default)]
pub struct MomentsPlugin {
    /// The achievement catalog and where moments go, written into [`RewardsConfig::moments`]. Default: no
    /// catalog (achievements off).
    pub config: MomentsConfig,
}

impl Plugin for MomentsPlugin {
    fn build(&self, app: &mut App) {
        let (runtime, _) = crate::core::require_core(app, "MomentsPlugin");
        let (updates, inbox) = runtime.channel();
        app.world_mut().resource_mut::<RewardsConfig>().moments = self.config.clone();
        app.init_resource::<Achievements>()
            .init_resource::<MomentsStatus>()
            .init_asset::<AchievementCatalog>()
            .register_asset_loader(AchievementCatalogLoader)
            .add_message::<AchievementProgress>()
            .add_message::<UnlockAchievement>()
            .add_message::<AchievementUnlocked>()
            .add_message::<ClaimReward>()
            .add_message::<RefreshChallenges>()
            .add_message::<MomentEvent>();
        let Some(path) = self.config.achievements_path.clone() else {
            return;
        };
        let world = app.world();
        let mut outbox =
            MomentsOutbox::new(world.resource::<RewardsConfig>(), world.resource::<ApiClient>().clone(), updates);
        if world.resource::<DataDirAccess>().read_only() {
            outbox.make_read_only();
        }
        app.insert_resource(outbox)
            .insert_resource(inbox)
            .wake_send_on::<AchievementProgress>()
            .wake_send_on::<UnlockAchievement>()
            .wake_send_on::<ClaimReward>()
            .wake_send_on::<RefreshChallenges>()
            .wake_send_on::<bevy::asset::AssetEvent<AchievementCatalog>>()
            .wake_send_when(moments_wake)
            .add_systems(PreStartup, move |mut commands: Commands, assets: Res<AssetServer>| {
                commands.insert_resource(AchievementCatalogHandle(assets.load(path.clone())));
            })
            .add_systems(RewardsReceive, receive_moments)
            .add_systems(RewardsSend, send_moments);
    }
}
