//! Achievement progress: the game's [`AchievementProgress`] and [`UnlockAchievement`] applied to the saved
//! counts once the catalog and the saved state are loaded, unlocking each achievement once, ever, and queueing
//! its moment in the outbox; and the [`Achievements`] view of where each stands.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::outbox::{MomentsOutbox, OutboxEntry, SavedMoments};
use super::{
    AchievementCatalog, AchievementProgress, AchievementStatus, AchievementUnlocked, Achievements, MomentsStatus,
    ProgressChange, ProgressRule, UnlockAchievement,
};
use crate::config::RewardsConfig;
use crate::core::bridge::RewardsRuntime;
use crate::error::RewardsError;

/// Input that waits for the catalog and the saved state.
pub(crate) enum Input {
    Progress(AchievementProgress),
    Unlock(UnlockAchievement),
}

impl MomentsOutbox {
    /// Applies one input; returns the unlock it caused.
    pub(super) fn apply(
        &mut self,
        input: Input,
        catalog: &AchievementCatalog,
    ) -> Result<Option<AchievementUnlocked>, RewardsError> {
        let id = match &input {
            Input::Progress(p) => p.achievement.clone(),
            Input::Unlock(u) => u.achievement.clone(),
        };
        let id = id.as_str();
        let definition =
            catalog.get(id).ok_or_else(|| RewardsError::Achievement(format!("unknown achievement {id:?}")))?.clone();
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
                return Err(RewardsError::Achievement(format!("achievement {id:?} is a flag: send UnlockAchievement")));
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
}

pub(super) fn achievements_view(catalog: &AchievementCatalog, saved: &SavedMoments) -> Achievements {
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

/// What applying progress works with.
#[derive(SystemParam)]
pub(crate) struct ProgressInputs<'w, 's> {
    progress: MessageReader<'w, 's, AchievementProgress>,
    unlocks: MessageReader<'w, 's, UnlockAchievement>,
    unlocked: MessageWriter<'w, AchievementUnlocked>,
    errors: MessageWriter<'w, RewardsError>,
    achievements: ResMut<'w, Achievements>,
    catalog: Option<Res<'w, AchievementCatalog>>,
}

impl ProgressInputs<'_, '_> {
    /// Queues the game's progress, and applies what waits once the catalog and the saved state are loaded.
    pub(super) fn apply(
        &mut self,
        outbox: &mut MomentsOutbox,
        status: &mut MomentsStatus,
        config: &RewardsConfig,
        runtime: &RewardsRuntime,
    ) {
        outbox.waiting.extend(self.progress.read().cloned().map(Input::Progress));
        outbox.waiting.extend(self.unlocks.read().cloned().map(Input::Unlock));
        let Some(catalog) = self.catalog.as_deref().filter(|_| status.loaded) else {
            return;
        };
        if outbox.waiting.is_empty() && outbox.view_current {
            return;
        }
        let mut changed = false;
        for input in std::mem::take(&mut outbox.waiting) {
            match outbox.apply(input, catalog) {
                Ok(unlocked) => {
                    changed = true;
                    if let Some(unlocked) = unlocked {
                        self.unlocked.write(unlocked);
                    }
                }
                Err(error) => {
                    warn!("{error}");
                    self.errors.write(error);
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
        outbox.view_current = true;
        status.pending = outbox.saved.outbox.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RewardsConfig;
    use crate::moments::{ProgressRule, Reward};

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
        let runtime = crate::core::bridge::RewardsRuntime::new().unwrap();
        let (updates, _) = runtime.channel();
        let api = crate::core::http::ApiClient::new(std::time::Duration::from_secs(1), 1024).unwrap();
        MomentsOutbox::new(&RewardsConfig::default(), api, updates, None)
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
        assert!(bad.validate().unwrap_err().to_string().contains("twice"));
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
