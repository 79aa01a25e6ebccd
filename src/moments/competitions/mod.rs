//! Competitions from the game's side: the standings the studio backend keeps ([`CompetitionStandings`],
//! refreshed on [`RefreshStandings`], after every pull or inventory sync — the same triggers — and while a
//! competition is being closed), the player's own scores ([`SubmitScore`], answered by [`ScoreAnswered`]), and
//! a prize: once the backend has paid the player's place it arrives as
//! [`MomentEvent::Rewarded`](super::MomentEvent) and is claimed with [`ClaimReward`](super::ClaimReward) like any
//! Moments reward. Deciding who won belongs to the backend (the Moments seed leaves eligibility to the app, and
//! a game client can be tampered with): a score the game sends is **untrusted**, accepted only by competitions
//! that opt in, within their bounds, and marked so in the standings; a competition's trusted scores come from
//! the studio's own game server.
//!
//! ```
//! # use bevy::prelude::*;
//! # use bevy_amazon_rewards::prelude::*;
//! fn round_over(mut scores: MessageWriter<SubmitScore>) {
//!     scores.write(SubmitScore::new("coin-race", 42));
//! }
//! fn standings_panel(standings: Res<CompetitionStandings>) {
//!     for race in &standings.competitions {
//!         let place = race.you.as_ref().map(|you| you.place);
//!         info!("{}: you are {place:?}{}", race.title, if race.untrusted { " (client scores)" } else { "" });
//!     }
//! }
//! ```

mod sync;

pub use amazon_rewards_protocol::competitions::{CompetitionState, Standing, Standings, Winner};
pub(crate) use sync::{Competitions, competitions_next_work, receive_competitions, send_competitions};

use bevy::prelude::*;

use crate::error::ApiError;

/// Submit the player's score to a competition that takes scores from game clients (untrusted).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SubmitScore {
    /// The competition.
    pub competition: String,
    /// The score.
    pub score: i64,
    /// Names this submission once (a retry answers the first answer); [`SubmitScore::new`] makes one.
    pub key: String,
}

impl SubmitScore {
    /// A submission of `score` with a fresh random key.
    pub fn new(competition: impl Into<String>, score: i64) -> Self {
        let key = format!("score-{}", oauth2::CsrfToken::new_random().secret());
        Self { competition: competition.into(), score, key }
    }
}

/// The answer to one [`SubmitScore`], as an observer event.
#[derive(Event, Debug, Clone, PartialEq)]
pub struct ScoreAnswered {
    /// The competition.
    pub competition: String,
    /// The submission's key.
    pub key: String,
    /// What became of it.
    pub outcome: ScoreOutcome,
}

/// What became of a [`SubmitScore`].
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreOutcome {
    /// Accepted: the player's best, and whether this score became it.
    Accepted {
        /// The best score now.
        best: i64,
        /// This score beat the earlier best.
        improved: bool,
    },
    /// Refused by the competition (`client_scores_not_allowed`, `score_out_of_range`, `too_soon`,
    /// `not_started`, `competition_ended`, `unknown_competition`).
    Refused(String),
    /// The backend could not be reached or failed; submitting the same key again is safe.
    Failed(ApiError),
}

/// Ask for fresh standings now.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct RefreshStandings;

/// The competitions the player can see (running, upcoming, closed in the last day), as the backend last
/// answered: the top places, the player's own, and once closed the results and the player's prize.
#[derive(Resource, Debug, Clone, Default)]
pub struct CompetitionStandings {
    /// Soonest end first.
    pub competitions: Vec<Standings>,
    /// A refresh is under way.
    pub refreshing: bool,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<ApiError>,
}

impl CompetitionStandings {
    /// The competition `id`, if the player can see it.
    pub fn get(&self, id: &str) -> Option<&Standings> {
        self.competitions.iter().find(|c| c.id == id)
    }
}
