//! Achievements and Amazon Moments from the game's side.
//!
//! Achievements are declared in an [`AchievementCatalog`] file (`*.achievements.json`, read once through the
//! asset source and kept as a resource): an id, a title, the
//! moment it reaches, and a rule — a counter with a threshold ("make 5 deposits") or a one-shot flag. The game
//! reports progress with [`AchievementProgress`] or [`UnlockAchievement`]; the plugin keeps progress on disk,
//! fires [`AchievementUnlocked`], and queues the moment in a durable outbox. The outbox is delivered to the
//! studio backend in order, one moment at a time, with backoff (and `Retry-After`) while the backend is
//! unreachable or failing, and only after the entry is on disk, so nothing is lost to a crash or a restart;
//! the backend answers a repeated moment with the same result, so a retry after a crash rewards nothing twice.
//!
//! The answer comes back as a [`MomentEvent`]: a [`Reward`] with its notification content and the URL where
//! the player claims it (send [`ClaimReward`] to open it in the browser), or the reason there is none.
//! [`RefreshChallenges`] fetches the challenges the game may announce before the moment is reached.
//!
//! Progress belongs to this installation of the game (`achievements.json` in the data dir). Each moment in
//! the outbox belongs to the player who was signed in when it was reached (or, reached while nobody was, to
//! the next player who signs in): it is delivered only with that player's token, and the rewards shown are
//! the signed-in player's own.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_amazon_rewards::prelude::*;
//!
//! fn deposit(mut progress: MessageWriter<AchievementProgress>) {
//!     progress.write(AchievementProgress::add("five_deposits", 1));
//! }
//!
//! fn show_rewards(mut moments: MessageReader<MomentEvent>, mut claim: MessageWriter<ClaimReward>) {
//!     for event in moments.read() {
//!         if let MomentEvent::Rewarded(reward) = event {
//!             info!("{}: {}", reward.title, reward.description);
//!             claim.write(ClaimReward { reward_id: reward.reward_id.clone() });
//!         }
//!     }
//! }
//! # let mut app = App::new();
//! # app.add_plugins(AmazonRewardsPlugins::new().with_achievements("game.achievements.json"));
//! # app.add_systems(Update, (deposit, show_rewards));
//! ```

mod catalog;
mod claims;
mod competitions;
mod config;
mod delivery;
mod outbox;
mod plugin;
mod progress;
mod receive;

use std::time::Duration;

pub use amazon_rewards_protocol::catalog::{AchievementDefinition, ProgressRule};
pub use amazon_rewards_protocol::moments::{Challenge, Reward};
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

pub use catalog::AchievementCatalog;
pub use competitions::{
    CompetitionStandings, CompetitionState, RefreshStandings, ScoreAnswered, ScoreOutcome, Standing, Standings,
    SubmitScore, Winner,
};
pub use config::MomentsConfig;
pub(crate) use outbox::fuzz_saved_moments;
pub use plugin::MomentsPlugin;

use crate::error::ApiError;

/// Progress on a counter achievement.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct AchievementProgress {
    /// The achievement.
    pub achievement: String,
    /// The change.
    pub change: ProgressChange,
}

/// How [`AchievementProgress`] changes a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressChange {
    /// Count `n` more (a deposit made).
    Add(u32),
    /// The count is now at least `n` (level 3 reached).
    AtLeast(u32),
}

impl AchievementProgress {
    /// Counts `n` more towards `achievement`.
    pub fn add(achievement: impl Into<String>, n: u32) -> Self {
        Self { achievement: achievement.into(), change: ProgressChange::Add(n) }
    }

    /// Raises `achievement`'s count to at least `n`.
    pub fn at_least(achievement: impl Into<String>, n: u32) -> Self {
        Self { achievement: achievement.into(), change: ProgressChange::AtLeast(n) }
    }
}

/// Unlocks an achievement outright (a flag, or a counter at once).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct UnlockAchievement {
    /// The achievement.
    pub achievement: String,
}

/// An achievement was unlocked (once, ever, per installation).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct AchievementUnlocked {
    /// Its id.
    pub achievement: String,
    /// Its title.
    pub title: String,
    /// The moment queued for it, if it earns a reward.
    pub moment: Option<String>,
}

/// Opens a reward's claim page in the player's browser.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct ClaimReward {
    /// The reward (from [`MomentEvent::Rewarded`] or [`MomentsStatus::rewards`]).
    pub reward_id: String,
}

/// The answer to one [`ClaimReward`], as an observer event (`app.add_observer(|answer: On<ClaimAnswered>| …)`),
/// so a game can match it to its request by reward id.
#[derive(Event, Debug, Clone, PartialEq, Eq)]
pub struct ClaimAnswered {
    /// The reward asked for.
    pub reward_id: String,
    /// What became of the claim.
    pub outcome: ClaimOutcome,
}

/// What became of a [`ClaimReward`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim page was handed to the browser.
    Opened,
    /// The player earned no reward with that id.
    UnknownReward,
    /// The reward's URL is not `https` (nor `http` on loopback), so it was not opened.
    UnsafeUrl,
}

/// Fetches the challenges worth announcing (also done after each sign-in).
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct RefreshChallenges;

/// What became of a moment, or of the challenges.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum MomentEvent {
    /// The moment earned a reward: show it and offer [`ClaimReward`].
    Rewarded(Reward),
    /// The moment was delivered and earns nothing: `already_rewarded`, `budget_exhausted`, `out_of_rewards`,
    /// `campaign_not_active`, `unknown_moment`.
    NotRewarded {
        /// The moment.
        moment: String,
        /// Why.
        reason: String,
    },
    /// Delivery failed for now; the moment stays queued and is retried after `retry_in`.
    Delayed {
        /// The moment.
        moment: String,
        /// What went wrong.
        error: ApiError,
        /// When the next attempt is due.
        retry_in: Duration,
    },
    /// The challenges on offer now (also in [`MomentsStatus::challenges`]).
    Challenges(Vec<Challenge>),
}

/// How one achievement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AchievementStatus {
    /// The definition.
    pub definition: AchievementDefinition,
    /// The count so far (1 for an unlocked flag).
    pub count: u32,
    /// Unlocked.
    pub unlocked: bool,
}

impl AchievementStatus {
    /// The count that unlocks it.
    pub fn threshold(&self) -> u32 {
        match self.definition.rule {
            ProgressRule::Counter { threshold } => threshold,
            ProgressRule::Flag => 1,
        }
    }
}

/// Every achievement and how it stands, in catalog order. Filled once the catalog and the saved progress
/// are loaded.
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct Achievements {
    list: Vec<AchievementStatus>,
}

impl Achievements {
    /// The achievement `id`.
    pub fn get(&self, id: &str) -> Option<&AchievementStatus> {
        self.list.iter().find(|a| a.definition.id == id)
    }

    /// Every achievement.
    pub fn iter(&self) -> impl Iterator<Item = &AchievementStatus> {
        self.list.iter()
    }
}

/// A reward the player earned, and whether they opened its claim page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarnedReward {
    /// The reward.
    pub reward: Reward,
    /// The claim page was opened from the game.
    pub claim_opened: bool,
    /// The player it was earned by (shown only while they are signed in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<String>,
}

/// The moments outbox and rewards, for status lines and reward cards.
#[derive(Resource, Debug, Clone, Default)]
pub struct MomentsStatus {
    /// Saved progress and the outbox have been loaded.
    pub loaded: bool,
    /// Moments waiting to be delivered.
    pub pending: usize,
    /// A delivery is under way.
    pub delivering: bool,
    /// The last delivery problem, cleared by a delivery.
    pub last_error: Option<String>,
    /// Rewards earned, oldest first.
    pub rewards: Vec<EarnedReward>,
    /// Challenges on offer.
    pub challenges: Vec<Challenge>,
}
