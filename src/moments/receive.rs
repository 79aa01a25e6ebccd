//! The moments' receive system: the saved state loaded or saved, a moment's delivery answered, the challenges
//! fetched; applied to [`MomentsOutbox`] and [`MomentsStatus`] and reported as [`MomentEvent`]s.

use std::time::Instant;

use amazon_rewards_protocol::moments::{Challenge, MomentAnswer};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::outbox::{MomentsOutbox, SavedMoments};
use super::{AchievementCatalog, MomentEvent, MomentsStatus};
use crate::config::RewardsConfig;
use crate::core::TokenRefused;
use crate::core::bridge::{Inbox, RewardsRuntime};
use crate::entitlements::pacing_backoff;
use crate::error::{ApiError, RewardsError};

/// Background results for moments.
pub(crate) enum MomentsUpdate {
    Loaded { catalog: Result<AchievementCatalog, RewardsError>, saved: Result<SavedMoments, RewardsError> },
    Saved { generation: u64, result: Result<(), RewardsError> },
    Delivered { moment: String, player: String, result: Result<MomentAnswer, ApiError> },
    Challenges(Result<Vec<Challenge>, ApiError>),
}

/// What receiving works with.
#[derive(SystemParam)]
pub(crate) struct MomentsResults<'w, 's> {
    commands: Commands<'w, 's>,
    outbox: ResMut<'w, MomentsOutbox>,
    status: ResMut<'w, MomentsStatus>,
    events: MessageWriter<'w, MomentEvent>,
    errors: MessageWriter<'w, RewardsError>,
    refusals: MessageWriter<'w, TokenRefused>,
    config: Res<'w, RewardsConfig>,
    runtime: Res<'w, RewardsRuntime>,
}

/// Drains the moments' inbox. Runs in [`AmazonRewardsSystems::Receive`](crate::AmazonRewardsSystems::Receive).
pub(crate) fn receive_moments(mut inbox: ResMut<Inbox<MomentsUpdate>>, mut results: MomentsResults) {
    while let Some(update) = inbox.next() {
        match update {
            MomentsUpdate::Loaded { catalog, saved } => results.loaded(catalog, saved),
            MomentsUpdate::Saved { generation, result } => results.saved(generation, result),
            MomentsUpdate::Delivered { moment, player, result } => results.delivered(moment, player, result),
            MomentsUpdate::Challenges(Ok(challenges)) => {
                results.status.challenges = challenges.clone();
                results.events.write(MomentEvent::Challenges(challenges));
            }
            MomentsUpdate::Challenges(Err(error)) => debug!("challenges unavailable: {error}"),
        }
        results.status.pending = results.outbox.saved.outbox.len();
    }
}

impl MomentsResults<'_, '_> {
    fn loaded(&mut self, catalog: Result<AchievementCatalog, RewardsError>, saved: Result<SavedMoments, RewardsError>) {
        let outbox = &mut *self.outbox;
        outbox.loading = false;
        self.status.loaded = true;
        match catalog {
            Ok(catalog) => {
                outbox.catalog_ready = true;
                self.commands.insert_resource(catalog);
            }
            Err(error) => {
                warn!("{error}");
                self.errors.write(error);
            }
        }
        match saved {
            Ok(saved) => {
                outbox.saved = saved;
                // What was on disk is durable: generation 0.
                for entry in &mut outbox.saved.outbox {
                    entry.generation = 0;
                }
            }
            Err(error) => {
                outbox.damaged = true;
                self.errors.write(error);
            }
        }
        self.status.rewards = outbox.own_rewards();
    }

    fn saved(&mut self, generation: u64, result: Result<(), RewardsError>) {
        let outbox = &mut *self.outbox;
        match result {
            Ok(()) => outbox.saved_generation = outbox.saved_generation.max(generation),
            Err(error) => {
                self.errors.write(error);
                // Written again with the next change, or now if nothing else changes.
                if generation == outbox.generation {
                    outbox.save(&self.config, &self.runtime);
                }
            }
        }
    }

    fn delivered(&mut self, moment: String, player: String, result: Result<MomentAnswer, ApiError>) {
        let outbox = &mut *self.outbox;
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
            Err(error) => self.delivery_failed(moment, error),
        }
        self.status.rewards = self.outbox.own_rewards();
    }

    /// The moment stays queued; the next attempt backs off (at least the server's `Retry-After`).
    fn delivery_failed(&mut self, moment: String, error: ApiError) {
        if error.needs_new_token() {
            self.refusals.write(TokenRefused);
        }
        let outbox = &mut *self.outbox;
        outbox.failures += 1;
        let delay = pacing_backoff(&self.config.entitlements.pacing, outbox.failures)
            .max(error.retry_after().unwrap_or_default());
        outbox.not_before = Instant::now().checked_add(delay);
        warn!("moment {moment} not delivered ({error}); next attempt in {delay:?}");
        self.status.last_error = Some(error.to_string());
        self.events.write(MomentEvent::Delayed { moment, error, retry_in: delay });
    }
}
