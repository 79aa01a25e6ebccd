//! Competitions on the studio backend (sandbox-defined: the Moments seed names "award competitions and
//! tournaments" as a scenario and leaves tracking and eligibility to the app; Amazon has no competition API).
//! The studio defines a competition; scores arrive from the studio's own game server (trusted) or, when the
//! competition allows it, from the game client (untrusted, bounded, marked so everywhere); when it ends the
//! backend closes it once and reports each winner's moment to the Rewards API.

use serde::{Deserialize, Serialize};

use crate::moments::Reward;

/// `GET`: the competitions a player can see (running, upcoming, and closed in the last day), with standings.
pub const COMPETITIONS_PATH: &str = "/api/competitions";
/// Prefix of one competition's routes: `GET {prefix}/{id}` (standings), `POST {prefix}/{id}/scores` (the
/// game client's untrusted score).
pub const COMPETITION_PREFIX: &str = "/api/competitions";
/// Prefix of the studio's game-server routes: `POST {prefix}/{id}/scores` with the server credential
/// (`Authorization: Bearer <server token>`), a [`ServerScore`].
pub const SERVER_COMPETITION_PREFIX: &str = "/server/competitions";
/// Longest score key.
pub const MAX_SCORE_KEY_LEN: usize = 128;
/// Most standing lines an answer lists (the player's own place is always added).
pub const MAX_STANDINGS: usize = 10;

/// How scores rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The highest score wins (most coins).
    Highest,
    /// The lowest score wins (fastest time).
    Lowest,
}

impl Scoring {
    /// Whether `new` beats `old` (a tie does not: whoever reached a score first keeps the place).
    pub fn beats(self, new: i64, old: i64) -> bool {
        match self {
            Scoring::Highest => new > old,
            Scoring::Lowest => new < old,
        }
    }
}

/// What pays one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prize {
    /// The place, from 1.
    pub place: u32,
    /// The moment reported for it (the backend's Moments configuration maps it to a campaign).
    pub moment: String,
}

/// Whether, and within what bounds, the game client may submit scores itself (untrusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientScores {
    /// Largest score accepted from a client.
    pub max_score: i64,
    /// Least time between two accepted submissions of one player, in seconds.
    pub min_interval_secs: u64,
}

/// A competition as the studio defines it (`POST /admin/competitions` on the operator listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompetitionDefinition {
    /// 1–64 of `A-Za-z0-9._-`.
    pub id: String,
    /// Shown to players.
    pub title: String,
    /// Scores count from (unix seconds).
    pub starts_at: i64,
    /// Scores count until (unix seconds, exclusive); the backend closes it then.
    pub ends_at: i64,
    /// How scores rank.
    pub scoring: Scoring,
    /// How many places win (1–100).
    pub winners: u32,
    /// What pays each place (places without a prize win nothing but the place).
    pub prizes: Vec<Prize>,
    /// `None`: only the studio's game server submits scores (trusted). `Some`: game clients may too, and the
    /// competition is marked untrusted everywhere.
    #[serde(default)]
    pub client_scores: Option<ClientScores>,
}

impl CompetitionDefinition {
    /// Checks the definition; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            return Err("id must be 1-64 of A-Z a-z 0-9 . _ -".into());
        }
        if self.title.trim().is_empty() || self.title.len() > 200 {
            return Err("title must be 1-200 characters".into());
        }
        if self.ends_at <= self.starts_at {
            return Err("ends_at must be after starts_at".into());
        }
        if !(1..=100).contains(&self.winners) {
            return Err("winners must be 1-100".into());
        }
        if let Some(prize) = self.prizes.iter().find(|p| p.place == 0 || p.place > self.winners) {
            return Err(format!("prize for place {} is outside the {} winning places", prize.place, self.winners));
        }
        let mut places: Vec<u32> = self.prizes.iter().map(|p| p.place).collect();
        places.sort_unstable();
        if places.windows(2).any(|w| w[0] == w[1]) {
            return Err("one prize per place".into());
        }
        match &self.client_scores {
            Some(client) if client.max_score < 0 => Err("client_scores.max_score must not be negative".into()),
            _ => Ok(()),
        }
    }
}

/// A score the game client submits (untrusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientScore {
    /// 1–128 printable characters naming this submission once: a retry answers the first answer.
    pub key: String,
    /// The score (0 or more).
    pub score: i64,
}

/// A score the studio's game server submits (trusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerScore {
    /// The player's game account (`user_id` of the backend's accounts).
    pub user_id: String,
    /// 1–128 printable characters naming this submission once.
    pub key: String,
    /// The score.
    pub score: i64,
}

/// Why a score was refused (the `error` of a `4xx` answer; each is counted per competition).
pub mod refusal {
    /// The competition takes no scores from game clients.
    pub const CLIENT_SCORES_NOT_ALLOWED: &str = "client_scores_not_allowed";
    /// Above the competition's maximum for client scores (or negative).
    pub const SCORE_OUT_OF_RANGE: &str = "score_out_of_range";
    /// Sooner than the competition's minimum interval after the player's last accepted score.
    pub const TOO_SOON: &str = "too_soon";
    /// The competition has not started.
    pub const NOT_STARTED: &str = "not_started";
    /// The competition has ended.
    pub const ENDED: &str = "competition_ended";
    /// No such competition.
    pub const UNKNOWN: &str = "unknown_competition";
    /// The key is not 1–128 printable characters.
    pub const BAD_KEY: &str = "invalid_key";
}

/// Where a competition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompetitionState {
    /// Not started.
    Upcoming,
    /// Taking scores.
    Running,
    /// Ended; winners are being decided and paid.
    Closing,
    /// Ended, winners decided.
    Closed,
}

/// One line of the standings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Standing {
    /// The place, from 1 (by score, then by who reached it first).
    pub place: u32,
    /// The player's game account name.
    pub player: String,
    /// Their best score.
    pub score: i64,
    /// Whether that score came from the studio's game server (`false`: from a game client, untrusted).
    pub trusted: bool,
}

/// What a winning place earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Winner {
    /// The place.
    pub place: u32,
    /// The player's game account name.
    pub player: String,
    /// Their score.
    pub score: i64,
    /// `rewarded`, `not_rewarded` (see `reason`), `pending` (being paid) or `no_prize`.
    pub status: String,
    /// Why not rewarded (`budget_exhausted`, `campaign_not_active`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A competition's standings, as a player sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Standings {
    /// The competition.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Start and end (unix seconds).
    pub starts_at: i64,
    /// End (unix seconds).
    pub ends_at: i64,
    /// Where it is.
    pub state: CompetitionState,
    /// How scores rank.
    pub scoring: Scoring,
    /// Game clients may submit scores: the standings are not trustworthy.
    pub untrusted: bool,
    /// How many places win.
    pub winners: u32,
    /// The top lines, at most [`MAX_STANDINGS`].
    pub top: Vec<Standing>,
    /// The asking player's own line, if they scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub you: Option<Standing>,
    /// Once closed: the winning places and what they earned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<Winner>,
    /// The asking player's prize, once paid: claim it like any Moments reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_prize: Option<Reward>,
}

/// `GET /api/competitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompetitionList {
    /// Running and upcoming competitions, and those closed in the last day.
    pub competitions: Vec<Standings>,
}

/// The answer to an accepted score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreAccepted {
    /// The player's best score now.
    pub best: i64,
    /// Whether this score became the best.
    pub improved: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn race() -> CompetitionDefinition {
        CompetitionDefinition {
            id: "coin-race".into(),
            title: "Coin race".into(),
            starts_at: 100,
            ends_at: 200,
            scoring: Scoring::Highest,
            winners: 3,
            prizes: vec![Prize { place: 1, moment: "race_winner".into() }],
            client_scores: Some(ClientScores { max_score: 1000, min_interval_secs: 1 }),
        }
    }

    #[test]
    fn definitions_are_checked() {
        race().validate().unwrap();
        let bad = [
            CompetitionDefinition { id: "a b".into(), ..race() },
            CompetitionDefinition { ends_at: 100, ..race() },
            CompetitionDefinition { winners: 0, ..race() },
            CompetitionDefinition { prizes: vec![Prize { place: 4, moment: "m".into() }], ..race() },
            CompetitionDefinition {
                prizes: vec![Prize { place: 1, moment: "m".into() }, Prize { place: 1, moment: "n".into() }],
                ..race()
            },
        ];
        for definition in bad {
            assert!(definition.validate().is_err(), "{definition:?}");
        }
    }

    #[test]
    fn a_tie_never_beats_the_first_to_reach_it() {
        assert!(Scoring::Highest.beats(5, 4) && !Scoring::Highest.beats(5, 5));
        assert!(Scoring::Lowest.beats(4, 5) && !Scoring::Lowest.beats(5, 5));
    }
}
