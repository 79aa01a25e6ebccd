//! The moments' send system: applies progress, opens claimed rewards, loads the saved state once, follows the
//! signed-in player, fetches challenges, and delivers the next due moment of the outbox, one at a time, with
//! backoff after failures.

use std::time::Instant;

use amazon_rewards_protocol::moments::{CHALLENGES_PATH, MOMENT_PATH, MomentAnswer, MomentRequest};
use amazon_rewards_protocol::prime_gaming::ACCESS_TOKEN_HEADER;
use bevy::prelude::*;

use super::claims::open_claims;
use super::outbox::MomentsOutbox;
use super::progress::ProgressInputs;
use super::receive::MomentsUpdate;
use super::{ClaimReward, MomentsStatus, RefreshChallenges};
use crate::auth::PlayerSession;
use crate::config::RewardsConfig;
use crate::core::bridge::RewardsRuntime;

impl MomentsOutbox {
    fn player_changed(&self, session: Option<&PlayerSession>) -> bool {
        session.map(|s| s.player_id()) != self.player.as_deref()
    }

    fn delivery_due(&self, session: Option<&PlayerSession>) -> bool {
        self.next_delivery(session).is_some_and(|due| Instant::now() >= due)
    }

    /// When the next moment may be delivered for the signed-in player.
    fn next_delivery(&self, session: Option<&PlayerSession>) -> Option<Instant> {
        let session = session?;
        (!self.in_flight && self.next_due(session.player_id()).is_some())
            .then(|| self.not_before.unwrap_or_else(Instant::now))
    }
}

/// When the moments next have work, for the send set's one condition: now if the saved state is not loaded yet,
/// progress waits, the achievements view is stale or the player changed; else when a moment is due.
pub(crate) fn moments_next_work(world: &World) -> Option<Instant> {
    let (outbox, status) = (world.get_resource::<MomentsOutbox>()?, world.get_resource::<MomentsStatus>()?);
    let session = world.get_resource::<PlayerSession>();
    let now = (!outbox.loading && !status.loaded)
        || (status.loaded && outbox.catalog_ready && (!outbox.waiting.is_empty() || !outbox.view_current))
        || outbox.player_changed(session);
    if now { Some(Instant::now()) } else { outbox.next_delivery(session) }
}

/// Runs in [`RewardsSend`](crate::RewardsSend), woken when [`moments_next_work`] says or the Moments messages.
#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters are what it reads and writes")]
pub(crate) fn send_moments(
    mut commands: Commands,
    mut outbox: ResMut<MomentsOutbox>,
    mut status: ResMut<MomentsStatus>,
    mut inputs: ProgressInputs,
    mut claims: MessageReader<ClaimReward>,
    mut challenges: MessageReader<RefreshChallenges>,
    session: Option<Res<PlayerSession>>,
    runtime: Res<RewardsRuntime>,
    config: Res<RewardsConfig>,
) {
    let (outbox, status) = (&mut *outbox, &mut *status);
    inputs.apply(outbox, status, &config, &runtime);
    open_claims(&mut commands, &mut claims, outbox, status, &config, &runtime);
    if !outbox.loading && !status.loaded {
        outbox.load(&config, &runtime);
    }
    let Some(session) = session else {
        if outbox.player.take().is_some() {
            status.rewards = outbox.own_rewards();
        }
        return;
    };
    let signed_in_now = outbox.player_changed(Some(&session));
    if signed_in_now {
        outbox.player = Some(session.player_id().to_owned());
        outbox.not_before = None;
        outbox.failures = 0;
        status.rewards = outbox.own_rewards();
    }
    if challenges.read().count() > 0 || signed_in_now {
        outbox.fetch_challenges(&runtime, &session);
    }
    if outbox.delivery_due(Some(&session)) {
        outbox.deliver_next(&runtime, &session);
        status.delivering = true;
    }
}

impl MomentsOutbox {
    fn fetch_challenges(&self, runtime: &RewardsRuntime, session: &PlayerSession) {
        let request = self
            .api
            .http()
            .get(format!("{}{CHALLENGES_PATH}", self.base_url))
            .header(ACCESS_TOKEN_HEADER, session.access_token().secret());
        let api = self.api.clone();
        runtime
            .spawn(&self.updates, async move { MomentsUpdate::Challenges(api.exchange_with_backend(request).await) });
    }

    /// Sends the next due moment; a moment reached while nobody was signed in becomes this player's.
    fn deliver_next(&mut self, runtime: &RewardsRuntime, session: &PlayerSession) {
        let player = session.player_id().to_owned();
        let Some(index) = self.next_due(&player) else { return };
        self.saved.outbox[index].player.get_or_insert_with(|| player.clone());
        let entry = self.saved.outbox[index].clone();
        self.in_flight = true;
        let body = MomentRequest { moment: entry.moment.clone(), achievement: entry.achievement };
        let request = self
            .api
            .http()
            .post(format!("{}{MOMENT_PATH}", self.base_url))
            .header(ACCESS_TOKEN_HEADER, session.access_token().secret())
            .json(&body);
        let api = self.api.clone();
        runtime.spawn(&self.updates, async move {
            let result = api.exchange_with_backend::<MomentAnswer>(request).await;
            MomentsUpdate::Delivered { moment: entry.moment, player, result }
        });
    }
}
