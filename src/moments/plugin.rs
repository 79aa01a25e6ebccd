//! [`MomentsPlugin`]: achievements, and the Amazon Moments they reach.

use bevy::prelude::*;

use super::competitions::{Competitions, competitions_next_work, receive_competitions, send_competitions};
use super::delivery::{moments_next_work, send_moments};
use super::outbox::MomentsOutbox;
use super::receive::receive_moments;
use super::{
    AchievementProgress, AchievementUnlocked, Achievements, ClaimReward, CompetitionStandings, MomentEvent,
    MomentsConfig, MomentsStatus, RefreshChallenges, RefreshStandings, SubmitScore, UnlockAchievement,
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
/// resources. With [`MomentsConfig::achievements_path`] set it also reads the [`AchievementCatalog`](super::AchievementCatalog) (once, off
/// the frame, through the asset source; inserted as a resource when valid) and adds two systems: one in [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send), run only when progress, a
/// claim, a refresh, a new player or a due moment waits, and one in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
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
            .add_message::<AchievementProgress>()
            .add_message::<UnlockAchievement>()
            .add_message::<AchievementUnlocked>()
            .add_message::<ClaimReward>()
            .add_message::<RefreshChallenges>()
            .add_message::<MomentEvent>()
            .add_message::<SubmitScore>()
            .add_message::<RefreshStandings>()
            .init_resource::<CompetitionStandings>();
        if self.config.competitions {
            add_competitions(app);
        }
        if self.config.achievements_path.is_none() {
            return;
        };
        let world = app.world();
        let assets = world.get_resource::<AssetServer>().cloned();
        let mut outbox = MomentsOutbox::new(
            world.resource::<RewardsConfig>(),
            world.resource::<ApiClient>().clone(),
            updates,
            assets,
        );
        if world.resource::<DataDirAccess>().read_only() {
            outbox.make_read_only();
        }
        app.insert_resource(outbox)
            .insert_resource(inbox)
            .wake_send_on::<AchievementProgress>()
            .wake_send_on::<UnlockAchievement>()
            .wake_send_on::<ClaimReward>()
            .wake_send_on::<RefreshChallenges>()
            .wake_send_at(moments_next_work)
            .add_systems(RewardsReceive, receive_moments)
            .add_systems(RewardsSend, send_moments);
    }
}

/// The competitions' state, channel and systems.
fn add_competitions(app: &mut App) {
    let (runtime, config) = crate::core::require_core(app, "MomentsPlugin");
    let (updates, inbox) = runtime.channel();
    let competitions = Competitions::new(config, app.world().resource::<ApiClient>().clone(), updates);
    app.insert_resource(competitions)
        .insert_resource(inbox)
        .wake_send_on::<SubmitScore>()
        .wake_send_on::<RefreshStandings>()
        .wake_send_on::<crate::entitlements::PullCompleted>()
        .wake_send_at(competitions_next_work)
        .add_systems(RewardsReceive, receive_competitions)
        .add_systems(RewardsSend, send_competitions);
}
