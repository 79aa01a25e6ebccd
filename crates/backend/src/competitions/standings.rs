//! The standings and the results (the `competition_results` table's reads live here; `closing.rs` writes it):
//! players ranked by best score, ties to whoever reached it first, each line saying whether its score is
//! trusted; the player's own place; and, once closed, the winning places with what each earned.

use amazon_rewards_protocol::competitions::{MAX_STANDINGS, Scoring, Standing, Standings, Winner};
use amazon_rewards_protocol::moments::Reward;
use sqlx::AnyPool;

use super::table::StoredCompetition;

/// One ranked line with the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// The game account.
    pub user_id: String,
    /// Its place and score.
    pub standing: Standing,
}

fn order(scoring: Scoring) -> &'static str {
    match scoring {
        Scoring::Highest => {
            "SELECT s.user_id, a.username, s.best, s.trusted FROM competition_scores s JOIN accounts a ON a.user_id = s.user_id
             WHERE s.competition_id = $1 ORDER BY s.best DESC, s.reached_at, s.user_id LIMIT $2"
        }
        Scoring::Lowest => {
            "SELECT s.user_id, a.username, s.best, s.trusted FROM competition_scores s JOIN accounts a ON a.user_id = s.user_id
             WHERE s.competition_id = $1 ORDER BY s.best, s.reached_at, s.user_id LIMIT $2"
        }
    }
}

/// The first `limit` places.
pub async fn ranked(pool: &AnyPool, competition: &StoredCompetition, limit: u32) -> Result<Vec<Ranked>, sqlx::Error> {
    let definition = &competition.definition;
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as(order(definition.scoring)).bind(&definition.id).bind(i64::from(limit)).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .zip(1..)
        .map(|((user_id, player, score, trusted), place)| Ranked {
            user_id,
            standing: Standing { place, player, score, trusted: trusted != 0 },
        })
        .collect())
}

/// `user_id`'s own line: their place is one more than the players ahead of them.
pub async fn own_line(
    pool: &AnyPool,
    competition: &StoredCompetition,
    user_id: &str,
) -> Result<Option<Standing>, sqlx::Error> {
    let definition = &competition.definition;
    let row: Option<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.username, s.best, s.reached_at, s.trusted FROM competition_scores s
         JOIN accounts a ON a.user_id = s.user_id WHERE s.competition_id = $1 AND s.user_id = $2",
    )
    .bind(&definition.id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    let Some((player, best, reached_at, trusted)) = row else { return Ok(None) };
    let ahead_sql = match definition.scoring {
        Scoring::Highest => {
            "SELECT COUNT(*) FROM competition_scores WHERE competition_id = $1 AND (best > $2
             OR (best = $2 AND (reached_at < $3 OR (reached_at = $3 AND user_id < $4))))"
        }
        Scoring::Lowest => {
            "SELECT COUNT(*) FROM competition_scores WHERE competition_id = $1 AND (best < $2
             OR (best = $2 AND (reached_at < $3 OR (reached_at = $3 AND user_id < $4))))"
        }
    };
    let ahead: i64 = sqlx::query_scalar(ahead_sql)
        .bind(&definition.id)
        .bind(best)
        .bind(reached_at)
        .bind(user_id)
        .fetch_one(pool)
        .await?;
    let place = u32::try_from(ahead + 1).unwrap_or(u32::MAX);
    Ok(Some(Standing { place, player, score: best, trusted: trusted != 0 }))
}

type ResultRow = (i64, String, String, i64, String, Option<String>);

/// The winning places of a closed competition, with what each earned.
pub async fn results(pool: &AnyPool, competition_id: &str) -> Result<Vec<(String, Winner)>, sqlx::Error> {
    let rows: Vec<ResultRow> = sqlx::query_as(
        "SELECT r.place, r.user_id, a.username, r.score, r.status, r.reason FROM competition_results r
         JOIN accounts a ON a.user_id = r.user_id WHERE r.competition_id = $1 ORDER BY r.place",
    )
    .bind(competition_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(place, user_id, player, score, status, reason)| {
            (user_id, Winner { place: place.max(0) as u32, player, score, status, reason })
        })
        .collect())
}

/// The reward `user_id` won in `competition_id`, once paid.
pub async fn prize_of(pool: &AnyPool, competition_id: &str, user_id: &str) -> Result<Option<Reward>, sqlx::Error> {
    let row: Option<(i64, String, String, String, String, String)> = sqlx::query_as(
        "SELECT r.place, m.reward_id, m.reward_url, m.title, m.description, m.image_url
         FROM competition_results r JOIN accounts a ON a.user_id = r.user_id
         JOIN moment_rewards m ON m.amazon_user_id = a.amazon_user_id AND m.moment = $3 || CAST(r.place AS TEXT)
         WHERE r.competition_id = $1 AND r.user_id = $2 AND r.status = 'rewarded' AND m.status = 'rewarded'
         ORDER BY r.place LIMIT 1",
    )
    .bind(competition_id)
    .bind(user_id)
    .bind(super::closing::prize_key_prefix(competition_id))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(place, reward_id, reward_url, title, description, image_url)| Reward {
        reward_id,
        moment: format!("{}{place}", super::closing::prize_key_prefix(competition_id)),
        reward_url,
        title,
        description,
        image_url,
    }))
}

/// What `user_id` sees of `competition` at `now`.
pub async fn standings_for(
    pool: &AnyPool,
    competition: &StoredCompetition,
    user_id: &str,
    now: i64,
) -> Result<Standings, sqlx::Error> {
    let definition = &competition.definition;
    let top = ranked(pool, competition, MAX_STANDINGS as u32).await?.into_iter().map(|r| r.standing).collect();
    let you = own_line(pool, competition, user_id).await?;
    let closed = competition.closed_at.is_some();
    let results = if closed { results(pool, &definition.id).await? } else { Vec::new() };
    let your_prize = if closed { prize_of(pool, &definition.id, user_id).await? } else { None };
    Ok(Standings {
        id: definition.id.clone(),
        title: definition.title.clone(),
        starts_at: definition.starts_at,
        ends_at: definition.ends_at,
        state: competition.state(now),
        scoring: definition.scoring,
        untrusted: definition.client_scores.is_some(),
        winners: definition.winners,
        top,
        you,
        results: results.into_iter().map(|(_, winner)| winner).collect(),
        your_prize,
    })
}
