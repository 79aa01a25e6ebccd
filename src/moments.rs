//! Achievements and Amazon Moments from the game's side.
//!
//! Achievements are declared in an [`AchievementCatalog`] asset (`*.achievements.json`): an id, a title, the
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
//! # app.add_plugins(AmazonRewardsPlugin::new().with_achievements("game.achievements.json"));
//! # app.add_systems(Update, (deposit, show_rewards));
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amazon_rewards_protocol::moments::{CHALLENGES_PATH, MOMENT_PATH, MomentAnswer, MomentRequest};
pub use amazon_rewards_protocol::moments::{Challenge, Reward};
use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;
use bevy::asset::io::Reader;
use bevy::asset::{AssetLoader, LoadContext};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::PlayerSession;
use crate::config::RewardsConfig;
use crate::error::{ApiError, RewardsError};
use crate::http::EntitlementsClient;
use crate::pacing::{backoff_delay, random_jitter};
use crate::runtime::{BackgroundResult, RewardsRuntime};

pub use amazon_rewards_protocol::catalog::{AchievementDefinition, ProgressRule};

/// The game's achievements: an asset (`*.achievements.json`) loaded from
/// [`RewardsConfig::achievements_path`].
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
    pub fn validate(&self) -> Result<(), String> {
        amazon_rewards_protocol::catalog::validate_achievements(&self.achievements)
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

/// One queued moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OutboxEntry {
    moment: String,
    achievement: String,
    /// Whose moment it is: delivered only under this player's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    player: Option<String>,
    /// The save generation that made it durable.
    #[serde(skip)]
    generation: u64,
}

/// What `achievements.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedMoments {
    version: u32,
    /// Count per achievement.
    progress: BTreeMap<String, u32>,
    /// Unlocked achievements.
    unlocked: Vec<String>,
    outbox: Vec<OutboxEntry>,
    rewards: Vec<EarnedReward>,
}

/// For the fuzz target: reads a Moments file's bytes as the loader does, and checks what is read writes back
/// equal.
pub(crate) fn fuzz_saved_moments(bytes: &[u8]) {
    if let Ok(saved) = serde_json::from_slice::<SavedMoments>(bytes) {
        let again: SavedMoments = serde_json::from_slice(&serde_json::to_vec(&saved).unwrap()).unwrap();
        assert_eq!(again, saved);
    }
}

/// Background results for moments.
pub(crate) enum MomentsUpdate {
    Loaded(Result<SavedMoments, String>),
    Saved { generation: u64, result: Result<(), String> },
    Delivered { moment: String, player: String, result: Result<MomentAnswer, ApiError> },
    Challenges(Result<Vec<Challenge>, ApiError>),
}

/// Input that waits for the catalog and the saved state.
enum Input {
    Progress(AchievementProgress),
    Unlock(UnlockAchievement),
}

/// The plugin's moments state.
#[derive(Resource)]
pub(crate) struct MomentsOutbox {
    saved: SavedMoments,
    loading: bool,
    /// The file is unreadable: it is left alone and nothing is written over it.
    damaged: bool,
    waiting: Vec<Input>,
    /// Generation of the newest state handed to the writer, and of the newest on disk.
    generation: u64,
    saved_generation: u64,
    last_written: Arc<tokio::sync::Mutex<u64>>,
    in_flight: bool,
    failures: u32,
    not_before: Option<Instant>,
    player: Option<String>,
    client: Option<EntitlementsClient>,
}

impl MomentsOutbox {
    pub(crate) fn new(config: &RewardsConfig) -> Self {
        let url = config.moments_url.as_deref().unwrap_or(&config.entitlements_url);
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
            client: EntitlementsClient::new(url, config.request_timeout, config.max_response_bytes, 1).ok(),
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
        runtime.spawn(async move {
            let result = tokio::task::spawn_blocking(move || {
                let Some(path) = path else { return Ok(SavedMoments::default()) };
                match std::fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice::<SavedMoments>(&bytes)
                        .map_err(|e| format!("{} is damaged ({e}); it is left untouched", path.display())),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(SavedMoments::default()),
                    Err(error) => Err(format!("cannot read {}: {error}", path.display())),
                }
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            BackgroundResult::Moments(MomentsUpdate::Loaded(result))
        });
    }

    /// Hands the current state to the writer; writes land in generation order and stale ones are skipped.
    fn save(&mut self, config: &RewardsConfig, runtime: &RewardsRuntime) {
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
        runtime.spawn(async move {
            let mut written = last_written.lock().await;
            if *written >= generation {
                return BackgroundResult::Moments(MomentsUpdate::Saved { generation, result: Ok(()) });
            }
            let result = tokio::task::spawn_blocking(move || crate::storage::write_private(&path, &bytes))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            if result.is_ok() {
                *written = generation;
            }
            BackgroundResult::Moments(MomentsUpdate::Saved { generation, result })
        });
    }

    fn unlocked(&self, id: &str) -> bool {
        self.saved.unlocked.iter().any(|u| u == id)
    }

    /// Applies one input; returns the unlock it caused.
    fn apply(&mut self, input: Input, catalog: &AchievementCatalog) -> Result<Option<AchievementUnlocked>, String> {
        let id = match &input {
            Input::Progress(p) => p.achievement.clone(),
            Input::Unlock(u) => u.achievement.clone(),
        };
        let id = id.as_str();
        let definition = catalog.get(id).ok_or_else(|| format!("unknown achievement {id:?}"))?.clone();
        if self.unlocked(id) {
            return Ok(None);
        }
        let count = self.saved.progress.get(id).copied().unwrap_or(0);
        let (count, reached) = match (input, definition.rule) {
            (Input::Unlock(_), ProgressRule::Counter { threshold }) => (count.max(threshold), true),
            (Input::Unlock(_), ProgressRule::Flag) => (1, true),
            (Input::Progress(p), ProgressRule::Counter { threshold }) => {
                let count = match p.change {
                    ProgressChange::Add(n) => count.saturating_add(n),
                    ProgressChange::AtLeast(n) => count.max(n),
                };
                (count, count >= threshold)
            }
            (Input::Progress(_), ProgressRule::Flag) => {
                return Err(format!("achievement {id:?} is a flag: send UnlockAchievement"));
            }
        };
        self.saved.progress.insert(definition.id.clone(), count);
        if !reached {
            return Ok(None);
        }
        self.saved.unlocked.push(definition.id.clone());
        if let Some(moment) = &definition.moment {
            self.saved.outbox.push(OutboxEntry {
                moment: moment.clone(),
                achievement: definition.id.clone(),
                player: self.player.clone(),
                generation: self.generation + 1,
            });
        }
        Ok(Some(AchievementUnlocked {
            achievement: definition.id.clone(),
            title: definition.title.clone(),
            moment: definition.moment.clone(),
        }))
    }

    /// Drops `player`'s entry for `moment` once the backend has answered for it.
    fn delivered(&mut self, moment: &str, player: &str) {
        let ours = |e: &OutboxEntry| e.moment == moment && e.player.as_deref().is_none_or(|p| p == player);
        if let Some(index) = self.saved.outbox.iter().position(ours) {
            self.saved.outbox.remove(index);
        }
    }

    fn record_reward(&mut self, reward: Reward, player: &str) -> bool {
        if self.saved.rewards.iter().any(|r| r.reward.reward_id == reward.reward_id) {
            return false;
        }
        self.saved.rewards.push(EarnedReward { reward, claim_opened: false, player: Some(player.to_owned()) });
        true
    }

    /// The rewards the signed-in player earned (and those saved before rewards named their player).
    fn own_rewards(&self) -> Vec<EarnedReward> {
        let mine = |r: &&EarnedReward| r.player.is_none() || r.player == self.player;
        self.saved.rewards.iter().filter(mine).cloned().collect()
    }

    /// The next moment due for `player`: durable, and theirs (or nobody's yet).
    fn next_due(&self, player: &str) -> Option<usize> {
        self.saved.outbox.iter().position(|e| {
            e.generation <= self.saved_generation && e.player.as_deref().is_none_or(|owner| owner == player)
        })
    }
}

fn achievements_view(catalog: &AchievementCatalog, saved: &SavedMoments) -> Achievements {
    Achievements {
        list: catalog
            .achievements
            .iter()
            .map(|definition| AchievementStatus {
                count: saved.progress.get(&definition.id).copied().unwrap_or(0),
                unlocked: saved.unlocked.contains(&definition.id),
                definition: definition.clone(),
            })
            .collect(),
    }
}

/// What the receive system needs for moments.
#[derive(SystemParam)]
pub(crate) struct MomentsResults<'w> {
    outbox: ResMut<'w, MomentsOutbox>,
    status: ResMut<'w, MomentsStatus>,
    events: MessageWriter<'w, MomentEvent>,
    config: Res<'w, RewardsConfig>,
    runtime: Res<'w, RewardsRuntime>,
}

impl MomentsResults<'_> {
    pub(crate) fn apply(&mut self, update: MomentsUpdate, errors: &mut MessageWriter<RewardsError>) {
        let outbox = &mut *self.outbox;
        match update {
            MomentsUpdate::Loaded(result) => {
                outbox.loading = false;
                self.status.loaded = true;
                match result {
                    Ok(saved) => {
                        outbox.saved = saved;
                        // What was on disk is durable: generation 0.
                        for entry in &mut outbox.saved.outbox {
                            entry.generation = 0;
                        }
                    }
                    Err(error) => {
                        outbox.damaged = true;
                        errors.write(RewardsError::Storage(error));
                    }
                }
                self.status.rewards = outbox.own_rewards();
            }
            MomentsUpdate::Saved { generation, result } => match result {
                Ok(()) => outbox.saved_generation = outbox.saved_generation.max(generation),
                Err(error) => {
                    errors.write(RewardsError::Storage(format!("cannot save achievements: {error}")));
                    // Written again with the next change, or now if nothing else changes.
                    if generation == outbox.generation {
                        outbox.save(&self.config, &self.runtime);
                    }
                }
            },
            MomentsUpdate::Delivered { moment, player, result } => {
                outbox.in_flight = false;
                self.status.delivering = false;
                match result {
                    Ok(answer) => {
                        outbox.failures = 0;
                        outbox.not_before = None;
                        self.status.last_error = None;
                        outbox.delivered(&moment, &player);
                        match answer {
                            MomentAnswer::Rewarded { reward } => {
                                if outbox.record_reward(reward.clone(), &player) {
                                    self.events.write(MomentEvent::Rewarded(reward));
                                }
                            }
                            MomentAnswer::NotRewarded { moment, reason } => {
                                self.events.write(MomentEvent::NotRewarded { moment, reason });
                            }
                        }
                        outbox.save(&self.config, &self.runtime);
                    }
                    Err(ApiError::Status { status: 404, .. }) => {
                        // The backend does not reward this moment: delivering it again cannot help.
                        outbox.delivered(&moment, &player);
                        outbox.save(&self.config, &self.runtime);
                        self.events.write(MomentEvent::NotRewarded { moment, reason: "unknown_moment".into() });
                    }
                    Err(error) => {
                        outbox.failures += 1;
                        let delay = backoff_delay(&self.config.pacing, outbox.failures, random_jitter())
                            .max(error.retry_after().unwrap_or_default());
                        outbox.not_before = Instant::now().checked_add(delay);
                        warn!("moment {moment} not delivered ({error}); next attempt in {delay:?}");
                        self.status.last_error = Some(error.to_string());
                        self.events.write(MomentEvent::Delayed { moment, error, retry_in: delay });
                    }
                }
                self.status.rewards = outbox.own_rewards();
            }
            MomentsUpdate::Challenges(Ok(challenges)) => {
                self.status.challenges = challenges.clone();
                self.events.write(MomentEvent::Challenges(challenges));
            }
            MomentsUpdate::Challenges(Err(error)) => debug!("challenges unavailable: {error}"),
        }
        self.status.pending = outbox.saved.outbox.len();
    }
}

/// What the send system needs for moments.
#[derive(SystemParam)]
pub(crate) struct MomentsRequests<'w, 's> {
    outbox: ResMut<'w, MomentsOutbox>,
    status: ResMut<'w, MomentsStatus>,
    achievements: ResMut<'w, Achievements>,
    progress: MessageReader<'w, 's, AchievementProgress>,
    unlocks: MessageReader<'w, 's, UnlockAchievement>,
    claims: MessageReader<'w, 's, ClaimReward>,
    challenges: MessageReader<'w, 's, RefreshChallenges>,
    unlocked: MessageWriter<'w, AchievementUnlocked>,
    catalog_handle: Option<Res<'w, AchievementCatalogHandle>>,
    catalogs: Res<'w, Assets<AchievementCatalog>>,
}

impl MomentsRequests<'_, '_> {
    /// Applies progress, opens claimed rewards, and starts due deliveries. Called from the plugin's send
    /// system.
    pub(crate) fn send(
        &mut self,
        session: Option<&PlayerSession>,
        runtime: &RewardsRuntime,
        config: &RewardsConfig,
        errors: &mut MessageWriter<RewardsError>,
    ) {
        if self.catalog_handle.is_none() {
            return;
        }
        let outbox = &mut *self.outbox;
        for progress in self.progress.read() {
            outbox.waiting.push(Input::Progress(progress.clone()));
        }
        for unlock in self.unlocks.read() {
            outbox.waiting.push(Input::Unlock(unlock.clone()));
        }
        let catalog = self.catalog_handle.as_ref().and_then(|h| self.catalogs.get(&h.0));
        if let Some(catalog) = catalog
            && self.status.loaded
        {
            let fresh = self.achievements.list.is_empty() && !catalog.achievements.is_empty();
            if !outbox.waiting.is_empty() || fresh || self.catalogs.is_changed() {
                let mut changed = false;
                for input in std::mem::take(&mut outbox.waiting) {
                    match outbox.apply(input, catalog) {
                        Ok(Some(unlocked)) => {
                            changed = true;
                            self.unlocked.write(unlocked);
                        }
                        Ok(None) => changed = true,
                        Err(error) => {
                            warn!("{error}");
                            errors.write(RewardsError::Achievement(error));
                        }
                    }
                }
                if changed {
                    outbox.save(config, runtime);
                }
                let view = achievements_view(catalog, &outbox.saved);
                if *self.achievements != view {
                    *self.achievements = view;
                }
                self.status.pending = outbox.saved.outbox.len();
            }
        }
        for claim in self.claims.read() {
            let Some(earned) = outbox.saved.rewards.iter_mut().find(|r| r.reward.reward_id == claim.reward_id) else {
                warn!("ClaimReward: no reward {}", claim.reward_id);
                continue;
            };
            let url = earned.reward.reward_url.clone();
            if !is_openable_reward_url(&url) {
                warn!(
                    "ClaimReward: reward {} has a URL that is not https (or http on loopback); not opened",
                    claim.reward_id
                );
                continue;
            }
            if !earned.claim_opened {
                earned.claim_opened = true;
                self.status.rewards = outbox.own_rewards();
                outbox.save(config, runtime);
            }
            let open = config.login.open_browser.clone();
            runtime.spawn_detached(async move {
                if let Ok(Err(error)) = tokio::task::spawn_blocking(move || open(&url)).await {
                    warn!("cannot open the reward page: {error}");
                }
            });
        }
        if !outbox.loading && !self.status.loaded {
            outbox.load(config, runtime);
        }
        let Some(session) = session else {
            if outbox.player.take().is_some() {
                self.status.rewards = outbox.own_rewards();
            }
            return;
        };
        let Some(client) = outbox.client.clone() else { return };
        let signed_in_now = outbox.player.as_deref() != Some(session.player_id());
        if signed_in_now {
            outbox.player = Some(session.player_id().to_owned());
            outbox.not_before = None;
            outbox.failures = 0;
            self.status.rewards = outbox.own_rewards();
        }
        if signed_in_now || self.challenges.read().count() > 0 {
            let token = session.access_token().secret().to_owned();
            let client = client.clone();
            runtime.spawn(async move {
                let request = client
                    .http()
                    .get(format!("{}{CHALLENGES_PATH}", client.base_url()))
                    .header(ACCESS_TOKEN_HEADER, token);
                BackgroundResult::Moments(MomentsUpdate::Challenges(client.exchange(request).await))
            });
        }
        let player = session.player_id().to_owned();
        let due = !outbox.in_flight && outbox.not_before.is_none_or(|t| Instant::now() >= t);
        let Some(index) = due.then(|| outbox.next_due(&player)).flatten() else {
            return;
        };
        // A moment reached while nobody was signed in becomes this player's.
        outbox.saved.outbox[index].player.get_or_insert_with(|| player.clone());
        let entry = outbox.saved.outbox[index].clone();
        outbox.in_flight = true;
        self.status.delivering = true;
        let token = session.access_token().secret().to_owned();
        runtime.spawn(async move {
            let body = MomentRequest { moment: entry.moment.clone(), achievement: entry.achievement };
            let request = client
                .http()
                .post(format!("{}{MOMENT_PATH}", client.base_url()))
                .header(ACCESS_TOKEN_HEADER, token)
                .json(&body);
            let result = client.exchange::<MomentAnswer>(request).await;
            BackgroundResult::Moments(MomentsUpdate::Delivered { moment: entry.moment, player, result })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> AchievementCatalog {
        serde_json::from_str(
            r#"{"achievements": [
                {"id": "five_deposits", "title": "Make 5 deposits", "moment": "five-deposits", "rule": {"counter": {"threshold": 5}}},
                {"id": "level_3", "title": "Reach level 3", "rule": {"counter": {"threshold": 3}}},
                {"id": "first_claim", "title": "First claim", "moment": "first-claim", "rule": "flag"}
            ]}"#,
        )
        .unwrap()
    }

    fn outbox() -> MomentsOutbox {
        MomentsOutbox::new(&RewardsConfig::default())
    }

    #[test]
    fn a_counter_unlocks_once_at_its_threshold_and_queues_its_moment() {
        let (catalog, mut outbox) = (catalog(), outbox());
        for _ in 0..4 {
            let unlocked = outbox.apply(Input::Progress(AchievementProgress::add("five_deposits", 1)), &catalog);
            assert_eq!(unlocked, Ok(None));
        }
        let unlocked = outbox.apply(Input::Progress(AchievementProgress::add("five_deposits", 1)), &catalog).unwrap();
        assert_eq!(unlocked.unwrap().moment.as_deref(), Some("five-deposits"));
        let again = outbox.apply(Input::Progress(AchievementProgress::add("five_deposits", 1)), &catalog);
        assert_eq!(again, Ok(None), "unlocked once, ever");
        assert_eq!(outbox.saved.outbox.len(), 1);
        assert_eq!(outbox.saved.progress["five_deposits"], 5);
    }

    #[test]
    fn at_least_never_lowers_and_flags_need_an_unlock() {
        let (catalog, mut outbox) = (catalog(), outbox());
        outbox.apply(Input::Progress(AchievementProgress::at_least("level_3", 2)), &catalog).unwrap();
        outbox.apply(Input::Progress(AchievementProgress::at_least("level_3", 1)), &catalog).unwrap();
        assert_eq!(outbox.saved.progress["level_3"], 2);
        let unlocked = outbox.apply(Input::Progress(AchievementProgress::at_least("level_3", 3)), &catalog).unwrap();
        assert!(unlocked.is_some_and(|u| u.moment.is_none()), "no moment: nothing queued");
        assert!(outbox.saved.outbox.is_empty());
        assert!(outbox.apply(Input::Progress(AchievementProgress::add("first_claim", 1)), &catalog).is_err());
        let flag = outbox.apply(Input::Unlock(UnlockAchievement { achievement: "first_claim".into() }), &catalog);
        assert!(flag.unwrap().is_some());
        assert!(outbox.apply(Input::Progress(AchievementProgress::add("nope", 1)), &catalog).is_err());
    }

    #[test]
    fn catalogs_are_validated() {
        let mut bad = catalog();
        bad.achievements.push(bad.achievements[0].clone());
        assert!(bad.validate().unwrap_err().contains("twice"));
        let mut bad = catalog();
        bad.achievements[0].rule = ProgressRule::Counter { threshold: 0 };
        assert!(bad.validate().is_err());
        let mut bad = catalog();
        bad.achievements[0].moment = Some("no spaces".into());
        assert!(bad.validate().is_err());
        assert!(catalog().validate().is_ok());
    }

    #[test]
    fn a_reward_is_recorded_once() {
        let mut outbox = outbox();
        let reward = Reward {
            reward_id: "r1".into(),
            moment: "m".into(),
            reward_url: "http://x".into(),
            title: "t".into(),
            description: "d".into(),
            image_url: "i".into(),
        };
        assert!(outbox.record_reward(reward.clone(), "amzn1.account.A"));
        assert!(!outbox.record_reward(reward, "amzn1.account.A"));
    }

    /// The hardening review: the outbox was per installation, so player A's moment was delivered under B's
    /// token. Now each moment belongs to the player who reached it, and rewards show to their own player.
    #[test]
    fn moments_and_rewards_belong_to_the_player_who_earned_them() {
        let (catalog, mut outbox) = (catalog(), outbox());
        outbox.player = Some("amzn1.account.A".into());
        outbox.apply(Input::Unlock(UnlockAchievement { achievement: "first_claim".into() }), &catalog).unwrap();
        outbox.player = None;
        for _ in 0..5 {
            outbox.apply(Input::Progress(AchievementProgress::add("five_deposits", 1)), &catalog).unwrap();
        }
        outbox.saved_generation = u64::MAX;
        assert_eq!(outbox.next_due("amzn1.account.B"), Some(1), "B gets only the moment nobody owned");
        assert_eq!(outbox.next_due("amzn1.account.A"), Some(0));
        outbox.delivered("first-claim", "amzn1.account.B");
        assert_eq!(outbox.saved.outbox.len(), 2, "B's answer cannot take A's moment");
        outbox.delivered("first-claim", "amzn1.account.A");
        assert_eq!(outbox.saved.outbox.len(), 1);
        let reward = |id: &str| Reward {
            reward_id: id.into(),
            moment: "m".into(),
            reward_url: "https://x".into(),
            title: "t".into(),
            description: "d".into(),
            image_url: "i".into(),
        };
        outbox.record_reward(reward("for-a"), "amzn1.account.A");
        outbox.record_reward(reward("for-b"), "amzn1.account.B");
        outbox.player = Some("amzn1.account.B".into());
        let shown: Vec<String> = outbox.own_rewards().into_iter().map(|r| r.reward.reward_id).collect();
        assert_eq!(shown, ["for-b"]);
    }
}

/// Whether a server-supplied reward URL may be handed to the system browser: `https`, or `http` to a loopback
/// host (the sandbox). Anything else (`file:`, `javascript:`, a custom scheme that starts a program) is not.
pub(crate) fn is_openable_reward_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => !name.is_empty(),
        "http" => name.eq_ignore_ascii_case("localhost") || name == "::1" || name.starts_with("127."),
        _ => false,
    }
}

#[cfg(test)]
mod reward_url_tests {
    use super::is_openable_reward_url;

    #[test]
    fn only_https_or_loopback_http_is_opened() {
        for good in ["https://www.amazon.com/rewards/x", "http://127.0.0.1:8787/moments/reward/1", "http://localhost/r"]
        {
            assert!(is_openable_reward_url(good), "{good}");
        }
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http://evil.example/r",
            "http://127.0.0.1.evil.example@evil.example/",
            "steam://run/1",
            "https://",
            "",
        ] {
            assert!(!is_openable_reward_url(bad), "{bad}");
        }
    }
}
