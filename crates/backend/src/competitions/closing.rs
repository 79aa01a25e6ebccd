//! Closing ended competitions exactly once, across any number of backend processes, and paying their prizes
//! (the `competition_results` table's writes live here). A process takes a lease on an ended competition; in
//! one transaction it records the winning places and marks the competition closed (a second process finds it
//! closed, or its own insert refused). Each place with a prize is then paid through Moments — its campaign's
//! budget, one reward per winner per place, recorded with the reward URL — under a short lease per place, and
//! retried while the Rewards API is unavailable.

use std::time::Duration;

use sqlx::AnyPool;

use super::standings::ranked;
use super::table::{self, StoredCompetition};
use crate::moments::{MomentsState, PrizeOutcome, pay_prize};

/// How long a process may take to close one competition or pay one place before another may.
const LEASE_SECS: i64 = 60;

/// The Moments key of a competition's prizes: `competition/{id}/` and the place.
pub(crate) fn prize_key_prefix(competition_id: &str) -> String {
    format!("competition/{competition_id}/")
}

/// Records the winners of `competition` and marks it closed, in one transaction; `false` if another process
/// closed it first.
pub async fn close(pool: &AnyPool, competition: &StoredCompetition) -> Result<bool, sqlx::Error> {
    let definition = &competition.definition;
    let winners = ranked(pool, competition, definition.winners).await?;
    let mut tx = pool.begin().await?;
    let closed = sqlx::query("UPDATE competitions SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL")
        .bind(crate::now_secs())
        .bind(&definition.id)
        .execute(&mut *tx)
        .await?;
    if closed.rows_affected() == 0 {
        return Ok(false);
    }
    for winner in winners {
        let place = winner.standing.place;
        let moment = definition.prizes.iter().find(|p| p.place == place).map(|p| p.moment.clone());
        let status = if moment.is_some() { "pending" } else { "no_prize" };
        sqlx::query(
            "INSERT INTO competition_results (competition_id, place, user_id, score, trusted, moment, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&definition.id)
        .bind(i64::from(place))
        .bind(&winner.user_id)
        .bind(winner.standing.score)
        .bind(i64::from(winner.standing.trusted))
        .bind(moment)
        .bind(status)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(competition = %definition.id, "competition closed");
    Ok(true)
}

/// Closes every ended competition this process can claim.
pub async fn close_due(pool: &AnyPool) -> Result<usize, sqlx::Error> {
    let now = crate::now_secs();
    let mut closed = 0;
    for id in table::due(pool, now).await? {
        if !table::claim(pool, &id, now, now + LEASE_SECS).await? {
            continue;
        }
        if let Some(competition) = table::get(pool, &id).await?
            && close(pool, &competition).await?
        {
            closed += 1;
        }
    }
    Ok(closed)
}

/// Pays every pending prize this process can claim; a place whose reward cannot be paid is recorded as not
/// rewarded with the reason.
pub async fn pay_due(pool: &AnyPool, moments: Option<&MomentsState>) -> Result<usize, sqlx::Error> {
    let now = crate::now_secs();
    let pending: Vec<(String, i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT r.competition_id, r.place, r.moment, COALESCE(a.amazon_user_id, ''), a.amazon_user_id
         FROM competition_results r JOIN accounts a ON a.user_id = r.user_id
         WHERE r.status = 'pending' AND r.paying_until < $1 ORDER BY r.competition_id, r.place LIMIT 100",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut paid = 0;
    for (competition_id, place, moment, amazon_user, linked) in pending {
        let claimed = sqlx::query(
            "UPDATE competition_results SET paying_until = $1 WHERE competition_id = $2 AND place = $3
             AND status = 'pending' AND paying_until < $4",
        )
        .bind(now + LEASE_SECS)
        .bind(&competition_id)
        .bind(place)
        .bind(now)
        .execute(pool)
        .await?;
        if claimed.rows_affected() == 0 {
            continue;
        }
        let key = format!("{}{place}", prize_key_prefix(&competition_id));
        let outcome = match (moments, linked) {
            (None, _) => PrizeOutcome::NotRewarded("moments_not_configured".into()),
            (Some(_), None) => PrizeOutcome::NotRewarded("not_linked_to_amazon".into()),
            (Some(moments), Some(_)) => pay_prize(moments, &moment, &key, &amazon_user).await?,
        };
        paid += usize::from(record_payment(pool, &competition_id, place, outcome).await?);
    }
    Ok(paid)
}

/// Records what paying a place came to; whether it is settled.
async fn record_payment(
    pool: &AnyPool,
    competition_id: &str,
    place: i64,
    outcome: PrizeOutcome,
) -> Result<bool, sqlx::Error> {
    let (status, reason, reward_id, reward_url) = match outcome {
        PrizeOutcome::Rewarded(reward) => ("rewarded", None, Some(reward.reward_id), Some(reward.reward_url)),
        PrizeOutcome::NotRewarded(reason) => ("not_rewarded", Some(reason), None, None),
        PrizeOutcome::Later => {
            // Released at once: the next round tries again.
            sqlx::query("UPDATE competition_results SET paying_until = 0 WHERE competition_id = $1 AND place = $2")
                .bind(competition_id)
                .bind(place)
                .execute(pool)
                .await?;
            return Ok(false);
        }
    };
    sqlx::query(
        "UPDATE competition_results SET status = $1, reason = $2, reward_id = $3, reward_url = $4
         WHERE competition_id = $5 AND place = $6 AND status = 'pending'",
    )
    .bind(status)
    .bind(reason)
    .bind(reward_id)
    .bind(reward_url)
    .bind(competition_id)
    .bind(place)
    .execute(pool)
    .await?;
    Ok(true)
}

/// The worker: every `every`, closes what ended and pays what is due.
pub async fn worker(pool: AnyPool, moments: Option<MomentsState>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = close_due(&pool).await {
            tracing::warn!(%error, "closing competitions failed; retrying");
        }
        if let Err(error) = pay_due(&pool, moments.as_ref()).await {
            tracing::warn!(%error, "paying competition prizes failed; retrying");
        }
    }
}
