//! The `competitions` table, whose SQL lives here: each competition's definition (as the studio gave it), when it
//! ends, the lease of the process closing it, and when it was closed.

use amazon_rewards_protocol::competitions::{CompetitionDefinition, CompetitionState};
use sqlx::AnyPool;

/// A stored competition.
#[derive(Debug, Clone)]
pub struct StoredCompetition {
    /// What the studio defined.
    pub definition: CompetitionDefinition,
    /// When it was closed (unix seconds).
    pub closed_at: Option<i64>,
}

impl StoredCompetition {
    /// Where it is at `now`.
    pub fn state(&self, now: i64) -> CompetitionState {
        match self.closed_at {
            Some(_) => CompetitionState::Closed,
            None if now >= self.definition.ends_at => CompetitionState::Closing,
            None if now < self.definition.starts_at => CompetitionState::Upcoming,
            None => CompetitionState::Running,
        }
    }
}

/// What defining came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defined {
    /// New.
    Created,
    /// The same definition was there already.
    Unchanged,
    /// Another definition has this id.
    Conflict,
}

/// Stores `definition` (validated by the caller); defining the same one again changes nothing.
pub async fn define(pool: &AnyPool, definition: &CompetitionDefinition) -> Result<Defined, sqlx::Error> {
    let text = serde_json::to_string(definition).expect("a definition serializes");
    let inserted = sqlx::query(
        "INSERT INTO competitions (id, definition, ends_at, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&definition.id)
    .bind(&text)
    .bind(definition.ends_at)
    .bind(crate::now_secs())
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Defined::Created);
    }
    let stored = get(pool, &definition.id).await?;
    Ok(if stored.is_some_and(|s| s.definition == *definition) { Defined::Unchanged } else { Defined::Conflict })
}

fn stored((definition, closed_at): (String, Option<i64>)) -> Option<StoredCompetition> {
    let definition = serde_json::from_str(&definition).ok()?;
    Some(StoredCompetition { definition, closed_at })
}

/// The competition `id`.
pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<StoredCompetition>, sqlx::Error> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT definition, closed_at FROM competitions WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(stored))
}

/// Competitions not closed, or closed since `closed_since`, soonest end first (at most 50).
pub async fn visible(pool: &AnyPool, closed_since: i64) -> Result<Vec<StoredCompetition>, sqlx::Error> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT definition, closed_at FROM competitions WHERE closed_at IS NULL OR closed_at >= $1
         ORDER BY ends_at LIMIT 50",
    )
    .bind(closed_since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(stored).collect())
}

/// Ended competitions no process is closing now.
pub async fn due(pool: &AnyPool, now: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM competitions WHERE closed_at IS NULL AND ends_at <= $1 AND closing_until < $1 ORDER BY ends_at",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// Takes the lease to close `id` until `until`; whether this process holds it (one process at a time).
pub async fn claim(pool: &AnyPool, id: &str, now: i64, until: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE competitions SET closing_until = $1 WHERE id = $2 AND closed_at IS NULL AND closing_until < $3",
    )
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
