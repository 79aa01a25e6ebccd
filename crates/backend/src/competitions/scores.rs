//! Scores (the `competition_scores`, `competition_submissions` and `competition_refusals` tables, whose SQL lives
//! here): each player's best score per competition, when they first reached it (ties go to whoever reached a
//! score first) and whether it came from the studio's game server; every submission's first answer under its
//! key, so a retry from any process gets the same answer; and how many submissions were refused, by reason.

use amazon_rewards_protocol::competitions::{MAX_SCORE_KEY_LEN, ScoreAccepted, Scoring, refusal};
use sqlx::{AnyConnection, AnyPool};

use super::table::StoredCompetition;

/// Who submits a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitter {
    /// The studio's game server (or the studio's own code): trusted.
    Server,
    /// The game client: untrusted, within the competition's bounds.
    Client,
}

/// A submission the competition refuses before anything is stored (a reason of
/// [`refusal`](amazon_rewards_protocol::competitions::refusal)).
pub fn check(
    competition: &StoredCompetition,
    submitter: Submitter,
    key: &str,
    score: i64,
    now: i64,
) -> Result<(), &'static str> {
    let definition = &competition.definition;
    if key.is_empty() || key.len() > MAX_SCORE_KEY_LEN || key.chars().any(char::is_control) {
        return Err(refusal::BAD_KEY);
    }
    if now < definition.starts_at {
        return Err(refusal::NOT_STARTED);
    }
    if now >= definition.ends_at || competition.closed_at.is_some() {
        return Err(refusal::ENDED);
    }
    if submitter == Submitter::Client {
        let Some(client) = &definition.client_scores else { return Err(refusal::CLIENT_SCORES_NOT_ALLOWED) };
        if !(0..=client.max_score).contains(&score) {
            return Err(refusal::SCORE_OUT_OF_RANGE);
        }
    }
    Ok(())
}

/// Counts a refusal.
pub async fn count_refusal(pool: &AnyPool, competition_id: &str, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO competition_refusals (competition_id, reason, refused) VALUES ($1, $2, 1)
         ON CONFLICT (competition_id, reason) DO UPDATE SET refused = competition_refusals.refused + 1",
    )
    .bind(competition_id)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// The refusals of a competition, by reason.
pub async fn refusals(pool: &AnyPool, competition_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT reason, refused FROM competition_refusals WHERE competition_id = $1 ORDER BY reason")
        .bind(competition_id)
        .fetch_all(pool)
        .await
}

async fn stored_answer(
    connection: &mut AnyConnection,
    competition_id: &str,
    user_id: &str,
    key: &str,
) -> Result<Option<Result<ScoreAccepted, String>>, sqlx::Error> {
    let answer: Option<String> = sqlx::query_scalar(
        "SELECT answer FROM competition_submissions WHERE competition_id = $1 AND user_id = $2 AND submission_key = $3",
    )
    .bind(competition_id)
    .bind(user_id)
    .bind(key)
    .fetch_optional(connection)
    .await?;
    Ok(answer.map(|text| match serde_json::from_str::<ScoreAccepted>(&text) {
        Ok(accepted) => Ok(accepted),
        Err(_) => Err(text),
    }))
}

/// What a submission came to: accepted (first answer for a repeated key), or refused with a reason.
pub type Submitted = Result<ScoreAccepted, String>;

/// Records `score` for `user_id` once per `key`: the player's best changes only if it beats it. A client's
/// submission also waits the competition's minimum interval after their last accepted one. The caller has
/// [`check`]ed it.
pub async fn submit(
    pool: &AnyPool,
    competition: &StoredCompetition,
    user_id: &str,
    submitter: Submitter,
    key: &str,
    score: i64,
) -> Result<Submitted, sqlx::Error> {
    let id = &competition.definition.id;
    if let Some(first) = stored_answer(&mut *pool.acquire().await?, id, user_id, key).await? {
        return Ok(first);
    }
    let mut tx = pool.begin().await?;
    let answer = match record_score(&mut tx, competition, user_id, submitter, score).await? {
        Ok(accepted) => accepted,
        Err(reason) => {
            drop(tx);
            count_refusal(pool, id, reason).await?;
            return Ok(Err(reason.to_owned()));
        }
    };
    let stored = sqlx::query(
        "INSERT INTO competition_submissions (competition_id, user_id, submission_key, answer, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user_id)
    .bind(key)
    .bind(serde_json::to_string(&answer).expect("an answer serializes"))
    .bind(crate::now_secs())
    .execute(&mut *tx)
    .await;
    match stored {
        // The same key, submitted at the same moment through another process: its answer stands.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            drop(tx);
            let first = stored_answer(&mut *pool.acquire().await?, id, user_id, key).await?;
            Ok(first.unwrap_or(Ok(answer)))
        }
        Err(error) => Err(error),
        Ok(_) => {
            tx.commit().await?;
            Ok(Ok(answer))
        }
    }
}

/// Now, in microseconds: when a score was reached, to break ties.
fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Marks a client submission of `user_id` at `now` if the competition's minimum interval has passed since their
/// last accepted one; whether it had.
async fn waited_long_enough(
    connection: &mut AnyConnection,
    competition: &StoredCompetition,
    user_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let Some(client) = &competition.definition.client_scores else { return Ok(true) };
    let waited = sqlx::query(
        "UPDATE competition_scores SET last_client_at = $1 WHERE competition_id = $2 AND user_id = $3
         AND (last_client_at IS NULL OR last_client_at <= $4)",
    )
    .bind(now)
    .bind(&competition.definition.id)
    .bind(user_id)
    .bind(now - client.min_interval_secs.min(i64::MAX as u64) as i64)
    .execute(connection)
    .await?;
    Ok(waited.rows_affected() == 1)
}

/// The player's score row, inside the caller's transaction.
async fn record_score(
    connection: &mut AnyConnection,
    competition: &StoredCompetition,
    user_id: &str,
    submitter: Submitter,
    score: i64,
) -> Result<Result<ScoreAccepted, &'static str>, sqlx::Error> {
    let (id, now) = (&competition.definition.id, crate::now_secs());
    let trusted = i64::from(submitter == Submitter::Server);
    let client_at = (submitter == Submitter::Client).then_some(now);
    let first = sqlx::query(
        "INSERT INTO competition_scores (competition_id, user_id, best, reached_at, trusted, last_client_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (competition_id, user_id) DO NOTHING",
    )
    .bind(id)
    .bind(user_id)
    .bind(score)
    .bind(now_micros())
    .bind(trusted)
    .bind(client_at)
    .execute(&mut *connection)
    .await?;
    if first.rows_affected() == 1 {
        return Ok(Ok(ScoreAccepted { best: score, improved: true }));
    }
    if submitter == Submitter::Client && !waited_long_enough(connection, competition, user_id, now).await? {
        return Ok(Err(refusal::TOO_SOON));
    }
    let better = match competition.definition.scoring {
        Scoring::Highest => {
            "UPDATE competition_scores SET best = $1, reached_at = $2, trusted = $3
             WHERE competition_id = $4 AND user_id = $5 AND best < $1"
        }
        Scoring::Lowest => {
            "UPDATE competition_scores SET best = $1, reached_at = $2, trusted = $3
             WHERE competition_id = $4 AND user_id = $5 AND best > $1"
        }
    };
    let improved = sqlx::query(better)
        .bind(score)
        .bind(now_micros())
        .bind(trusted)
        .bind(id)
        .bind(user_id)
        .execute(&mut *connection)
        .await?
        .rows_affected()
        == 1;
    let best: i64 =
        sqlx::query_scalar("SELECT best FROM competition_scores WHERE competition_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_one(connection)
            .await?;
    Ok(Ok(ScoreAccepted { best, improved }))
}
