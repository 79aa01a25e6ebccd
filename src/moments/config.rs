//! The settings of [`MomentsPlugin`](crate::moments::MomentsPlugin): the achievement catalog and where
//! moments are delivered.

/// Settings of [`MomentsPlugin`](crate::moments::MomentsPlugin).
#[derive(Debug, Clone, Default)]
pub struct MomentsConfig {
    /// Asset path of the achievement catalog (`*.achievements.json`); `None` (the default) leaves
    /// achievements off: the plugin's messages are registered, but nothing is loaded, saved or delivered.
    pub achievements_path: Option<String>,
    /// Base URL of the studio backend's Moments API (`/api/moments`). Default: `RewardsConfig::entitlements_url`,
    /// which points at the studio backend in a studio setup.
    pub moments_url: Option<String>,
    /// Follow the studio backend's competitions ([`CompetitionStandings`](crate::moments::CompetitionStandings),
    /// [`SubmitScore`](crate::moments::SubmitScore)). Default off. A prize is claimable with
    /// [`ClaimReward`](crate::moments::ClaimReward) when achievements are on (it is saved with their rewards).
    pub competitions: bool,
}
