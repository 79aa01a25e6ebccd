//! The competitions' state and systems: follows the signed-in player, sends [`SubmitScore`]s, refreshes the
//! standings when asked, after each pull, once a competition's end has passed and while it is being closed, and
//! hands a paid prize to the Moments rewards (saved, claimable).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amazon_rewards_protocol::competitions::{COMPETITIONS_PATH, CompetitionList, CompetitionState, ScoreAccepted};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use reqwest::header::AUTHORIZATION;

use super::{CompetitionStandings, RefreshStandings, ScoreAnswered, ScoreOutcome, SubmitScore};
use crate::auth::PlayerSession;
use crate::config::RewardsConfig;
use crate::core::bridge::{Inbox, Outbox, RewardsRuntime};
use crate::core::http::{ApiClient, BackendAnswer};
use crate::entitlements::PullCompleted;
use crate::error::ApiError;
use crate::moments::outbox::MomentsOutbox;
use crate::moments::{MomentEvent, MomentsStatus};

/// How often standings are asked again while a competition that ended is being closed and paid.
const CLOSING_POLL: Duration = Duration::from_secs(3);

/// What background work sends back.
pub(crate) enum CompetitionsUpdate {
    Standings { session: u64, result: Result<CompetitionList, ApiError> },
    Score { competition: String, key: String, outcome: ScoreOutcome },
}

/// The competitions' state for the signed-in player.
#[derive(Resource)]
pub(crate) struct Competitions {
    api: ApiClient,
    base_url: String,
    outbox: Outbox<CompetitionsUpdate>,
    session: u64,
    player: Option<(String, String)>,
    refresh_wanted: bool,
    in_flight: bool,
    next_poll: Option<Instant>,
}

impl Competitions {
    pub(crate) fn new(config: &RewardsConfig, api: ApiClient, outbox: Outbox<CompetitionsUpdate>) -> Self {
        let base = config.moments.moments_url.as_deref().unwrap_or(&config.entitlements_url);
        let base_url = base.trim_end_matches('/').to_owned();
        Self {
            api,
            base_url,
            outbox,
            session: 0,
            player: None,
            refresh_wanted: false,
            in_flight: false,
            next_poll: None,
        }
    }

    fn follows(&self, session: Option<&PlayerSession>) -> bool {
        let current = session.map(|s| (s.player_id(), s.access_token().secret()));
        current == self.player.as_ref().map(|(p, t)| (p.as_str(), t.as_str()))
    }
}

/// When the competitions next have work: now for a new session or a wanted refresh; else the next poll.
pub(crate) fn competitions_next_work(world: &World) -> Option<Instant> {
    let competitions = world.get_resource::<Competitions>()?;
    if !competitions.follows(world.get_resource::<PlayerSession>()) {
        return Some(Instant::now());
    }
    competitions.player.as_ref()?;
    if competitions.refresh_wanted && !competitions.in_flight {
        return Some(Instant::now());
    }
    competitions.next_poll
}

/// What sending reads.
#[derive(SystemParam)]
pub(crate) struct CompetitionInputs<'w, 's> {
    scores: MessageReader<'w, 's, SubmitScore>,
    refreshes: MessageReader<'w, 's, RefreshStandings>,
    pulls: MessageReader<'w, 's, PullCompleted>,
}

/// Runs in [`RewardsSend`](crate::RewardsSend).
pub(crate) fn send_competitions(
    mut competitions: ResMut<Competitions>,
    mut standings: ResMut<CompetitionStandings>,
    mut inputs: CompetitionInputs,
    session: Option<Res<PlayerSession>>,
    runtime: Res<RewardsRuntime>,
    mut commands: Commands,
) {
    let competitions = &mut *competitions;
    if !competitions.follows(session.as_deref()) {
        let same_player =
            session.as_ref().map(|s| s.player_id()) == competitions.player.as_ref().map(|(p, _)| p.as_str());
        competitions.player =
            session.as_ref().map(|s| (s.player_id().to_owned(), s.access_token().secret().to_owned()));
        if !same_player {
            competitions.session += 1;
            competitions.in_flight = false;
            *standings = CompetitionStandings::default();
        }
        competitions.refresh_wanted = competitions.player.is_some();
    }
    let asked = inputs.refreshes.read().count() + inputs.pulls.read().count() > 0;
    competitions.refresh_wanted |= asked;
    if competitions.next_poll.is_some_and(|at| Instant::now() >= at) {
        competitions.next_poll = None;
        competitions.refresh_wanted = true;
    }
    let submissions: Vec<SubmitScore> = inputs.scores.read().cloned().collect();
    let Some((_, token)) = competitions.player.clone() else {
        for score in submissions {
            let outcome = ScoreOutcome::Refused("not_signed_in".into());
            commands.trigger(ScoreAnswered { competition: score.competition, key: score.key, outcome });
        }
        return;
    };
    for score in submissions {
        competitions.start_score(&runtime, &token, score);
    }
    if competitions.refresh_wanted && !competitions.in_flight {
        competitions.refresh_wanted = false;
        competitions.in_flight = true;
        standings.refreshing = true;
        competitions.start_refresh(&runtime, &token);
    }
}

impl Competitions {
    fn start_refresh(&self, runtime: &RewardsRuntime, token: &str) {
        let request = self.api.http().get(format!("{}{COMPETITIONS_PATH}", self.base_url));
        let request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        let (api, session) = (self.api.clone(), self.session);
        runtime.spawn(&self.outbox, async move {
            CompetitionsUpdate::Standings { session, result: api.exchange_with_backend(request).await }
        });
    }

    fn start_score(&self, runtime: &RewardsRuntime, token: &str, score: SubmitScore) {
        let url = format!("{}{COMPETITIONS_PATH}/{}/scores", self.base_url, score.competition);
        let body = serde_json::json!({"key": score.key, "score": score.score});
        let request = self.api.http().post(url).header(AUTHORIZATION, format!("Bearer {token}")).json(&body);
        let api = self.api.clone();
        runtime.spawn(&self.outbox, async move {
            let outcome = match api.exchange_with_backend_or::<ScoreAccepted, ScoreAccepted>(request, 0).await {
                Ok(BackendAnswer::Success(accepted)) => {
                    ScoreOutcome::Accepted { best: accepted.best, improved: accepted.improved }
                }
                Ok(_) => ScoreOutcome::Failed(ApiError::Malformed("unexpected answer".into())),
                Err(ApiError::Refused { error, .. }) => ScoreOutcome::Refused(error),
                Err(ApiError::Status { status: 404, .. }) => ScoreOutcome::Refused("unknown_competition".into()),
                Err(error) => ScoreOutcome::Failed(error),
            };
            CompetitionsUpdate::Score { competition: score.competition, key: score.key, outcome }
        });
    }
}

/// What receiving writes.
#[derive(SystemParam)]
pub(crate) struct CompetitionResults<'w, 's> {
    competitions: ResMut<'w, Competitions>,
    standings: ResMut<'w, CompetitionStandings>,
    moments: Option<ResMut<'w, MomentsOutbox>>,
    moments_status: ResMut<'w, MomentsStatus>,
    events: MessageWriter<'w, MomentEvent>,
    config: Res<'w, RewardsConfig>,
    runtime: Res<'w, RewardsRuntime>,
    commands: Commands<'w, 's>,
}

/// Runs in [`RewardsReceive`](crate::RewardsReceive).
pub(crate) fn receive_competitions(mut inbox: ResMut<Inbox<CompetitionsUpdate>>, mut results: CompetitionResults) {
    while let Some(update) = inbox.next() {
        match update {
            CompetitionsUpdate::Standings { session, result } if session == results.competitions.session => {
                results.refreshed(result);
            }
            CompetitionsUpdate::Standings { .. } => {}
            CompetitionsUpdate::Score { competition, key, outcome } => {
                if matches!(outcome, ScoreOutcome::Accepted { .. }) {
                    results.competitions.refresh_wanted = true;
                }
                results.commands.trigger(ScoreAnswered { competition, key, outcome });
            }
        }
    }
}

impl CompetitionResults<'_, '_> {
    fn refreshed(&mut self, result: Result<CompetitionList, ApiError>) {
        self.competitions.in_flight = false;
        self.standings.refreshing = false;
        let list = match result {
            Ok(list) => list,
            Err(error) => {
                warn!("refreshing the competition standings failed: {error}");
                self.standings.last_error = Some(error);
                return;
            }
        };
        self.competitions.next_poll = next_poll(&list);
        for prize in list.competitions.iter().filter_map(|c| c.your_prize.clone()) {
            self.prize(prize);
        }
        self.standings.competitions = list.competitions;
        self.standings.last_error = None;
    }

    /// A paid prize joins the player's Moments rewards, once.
    fn prize(&mut self, reward: amazon_rewards_protocol::moments::Reward) {
        let Some(player) = self.competitions.player.as_ref().map(|(p, _)| p.clone()) else { return };
        match self.moments.as_deref_mut() {
            Some(outbox) => {
                if outbox.record_reward(reward.clone(), &player) {
                    outbox.save(&self.config, &self.runtime);
                    self.moments_status.rewards = outbox.own_rewards();
                    self.events.write(MomentEvent::Rewarded(reward));
                }
            }
            None => {
                if !self.moments_status.rewards.iter().any(|r| r.reward.reward_id == reward.reward_id) {
                    let earned = super::super::EarnedReward {
                        reward: reward.clone(),
                        claim_opened: false,
                        player: Some(player),
                    };
                    self.moments_status.rewards.push(earned);
                    self.events.write(MomentEvent::Rewarded(reward));
                }
            }
        }
    }
}

/// When to ask again unasked: soon while a competition is being closed; just after the next running one ends.
fn next_poll(list: &CompetitionList) -> Option<Instant> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let closing = list.competitions.iter().any(|c| c.state == CompetitionState::Closing);
    let ends = list
        .competitions
        .iter()
        .filter(|c| matches!(c.state, CompetitionState::Running | CompetitionState::Upcoming))
        .map(|c| c.ends_at)
        .min()
        .map(|ends_at| Instant::now() + Duration::from_secs(ends_at.saturating_sub(now).clamp(0, 86_400) as u64 + 1));
    let closing = closing.then(|| Instant::now() + CLOSING_POLL);
    [closing, ends].into_iter().flatten().min()
}
