//! Read leases, the `inventory_leases` table and the `leased_until` column of `inventory_versions` (PostgreSQL
//! only): the cross-process protocol that lets a backend process answer a player's unchanged sync from its
//! memory ([`super::leased`]) and still never answer from a memory another process's write made stale.
//!
//! - **A reader** takes a lease in one transaction: it locks the player's version row (setting `leased_until`),
//!   then, after the lock, reads the session and the version and records its lease (holder, end). It keeps
//!   the answer only until its own clock, started before the transaction, says the lease is over.
//! - **A writer** locks the same row first (every change to what a sync answers does: the inventory's version,
//!   a session's end, a broken link), and before it commits, [`clear`]s: it tells every holder through
//!   `NOTIFY`, waits until each has forgotten the player (deleting its lease row) or its lease has run out,
//!   then resets `leased_until`. While it holds the lock no new lease can be taken, so once it commits no
//!   memory anywhere holds what it changed.
//!
//! - **A holder is alive** while its pings come back: every [`PING_EVERY`] it sends one on [`PINGS`], and when
//!   its listener receives it (so every notification sent before has arrived too) it renews `lease_holders`
//!   through that same connection for [`ALIVE_FOR`], and only then extends its own deadline, started when the
//!   ping was sent. A lease counts only while its holder is alive: a process gone or cut off from its
//!   notifications delays a writer by [`ALIVE_FOR`] at most, however long its leases.
//!
//! Times are the database's clock (milliseconds), so processes on several machines compare one clock; each
//! holder's own deadlines are taken by its clock before the database's, and end a tenth early.

use std::time::Duration;

use sqlx::{AnyConnection, AnyPool};

use crate::link::sessions::SessionHolder;

/// The `NOTIFY` channel writers tell holders on; the payload is the player's game account.
pub const CHANNEL: &str = "amazon_rewards_read_leases";

/// The channel holders ping themselves on; the payload is the holder and the ping's number.
pub const PINGS: &str = "amazon_rewards_read_lease_pings";

/// How often a holder pings itself.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// How long a returned ping keeps a holder alive.
pub const ALIVE_FOR: Duration = Duration::from_secs(3);

/// Longest lease a process may take.
pub const MAX_LEASE: Duration = Duration::from_secs(60);

/// The database's clock in milliseconds.
const NOW_MS: &str = "CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)";

/// How often a writer waiting for holders to forget tells them again.
const TELL_AGAIN_EVERY: Duration = Duration::from_millis(100);

/// Whether `connection` takes part (PostgreSQL; SQLite's processes keep no memory of answers).
fn applies(connection: &AnyConnection) -> bool {
    crate::db::is_postgres(connection)
}

/// For a writer about to change what `user_id`'s sync answers (a session's end, the link) outside the
/// inventory's own changes: locks the player's version row in the caller's transaction and [`clear`]s its
/// leases. The caller commits its change in the same transaction.
pub(crate) async fn lock_for_change(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    if !applies(connection) {
        return Ok(());
    }
    let leased: Option<i64> = sqlx::query_scalar(
        "INSERT INTO inventory_versions (user_id, version) VALUES ($1, 0)
         ON CONFLICT (user_id) DO UPDATE SET leased_until = inventory_versions.leased_until RETURNING leased_until",
    )
    .bind(user_id)
    .fetch_one(&mut *connection)
    .await?;
    if leased.is_some() { clear(connection, tell_on, user_id).await } else { Ok(()) }
}

/// Revokes every lease on `user_id`: the caller's transaction holds the player's version row locked (and saw
/// `leased_until` set on it). Tells the holders, waits until none is left unexpired, and resets `leased_until`
/// so that the next writer need not ask.
pub(crate) async fn clear(connection: &mut AnyConnection, tell_on: &AnyPool, user_id: &str) -> Result<(), sqlx::Error> {
    if !applies(connection) {
        return Ok(());
    }
    if live_leases(connection, user_id).await? > 0 {
        tell(tell_on, user_id).await;
        wait_released(connection, tell_on, user_id).await?;
    }
    sqlx::query(
        "WITH gone AS (DELETE FROM inventory_leases WHERE user_id = $1)
         UPDATE inventory_versions SET leased_until = NULL WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn live_leases(connection: &mut AnyConnection, user_id: &str) -> Result<i64, sqlx::Error> {
    let statement = format!(
        "SELECT count(*) FROM inventory_leases l JOIN lease_holders h ON h.holder = l.holder
         WHERE l.user_id = $1 AND l.expires_at > {NOW_MS} AND h.alive_until > {NOW_MS}"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(statement)).bind(user_id).fetch_one(&mut *connection).await
}

/// `NOTIFY` through the [`super::teller`]'s connection: a notification sent in the writer's transaction would
/// only go out at its commit, too late, and a second pooled connection may never come while writers hold
/// them all. Best effort: a holder not told is told again, or waited out.
async fn tell(tell_on: &AnyPool, user_id: &str) {
    if !super::teller::tell(tell_on, CHANNEL, user_id).await {
        tracing::debug!("could not tell the holders of a read lease; telling again or waiting their leases out");
    }
}

/// Polls until no live lease on `user_id` is left (released by its holder, run out, or its holder dead),
/// telling the holders again every [`TELL_AGAIN_EVERY`] (a notification that could not go out).
async fn wait_released(connection: &mut AnyConnection, tell_on: &AnyPool, user_id: &str) -> Result<(), sqlx::Error> {
    let started = tokio::time::Instant::now();
    let mut told = started;
    // A live holder answers within a round trip or two: short pauses first, longer ones for a holder gone.
    let mut pause = Duration::from_micros(250);
    while live_leases(connection, user_id).await? > 0 {
        if started.elapsed() > ALIVE_FOR + Duration::from_secs(5) {
            return Err(sqlx::Error::Protocol("a read lease outlived the longest lease".into()));
        }
        if told.elapsed() >= TELL_AGAIN_EVERY {
            tell(tell_on, user_id).await;
            told = tokio::time::Instant::now();
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(10));
    }
    crate::telemetry::read_leases_revoked(started.elapsed());
    Ok(())
}

/// What a lease was taken with: the session's holder and version, and when the access token expires (seconds).
pub(crate) type LeasedRead = (SessionHolder, i64, i64);

/// Leases one [`release`] gives back at most.
pub(crate) const MAX_RELEASED: usize = 256;

/// Leases one [`acquire`] takes at most.
pub(crate) const MAX_ACQUIRED: usize = 64;

/// Takes (or renews) `holder`'s leases of `lease` on each `(user_id, token_hash)` of `wanted` (at most
/// [`MAX_ACQUIRED`]), in one transaction, and reads after the locks what each lease covers: the session of the
/// token hash, if it is still live and that player's, by token hash. See the module's protocol.
pub(crate) async fn acquire(
    pool: &AnyPool,
    holder: &str,
    lease: Duration,
    wanted: &[(String, String)],
) -> Result<Vec<(String, LeasedRead)>, sqlx::Error> {
    if wanted.is_empty() || wanted.len() > MAX_ACQUIRED {
        return Err(sqlx::Error::Protocol(format!("{} leases in one transaction", wanted.len())));
    }
    let rows: Vec<serde_json::Value> = wanted
        .iter()
        .map(|(user_id, token_hash)| serde_json::json!({ "user_id": user_id, "token_hash": token_hash }))
        .collect();
    let wanted = serde_json::Value::Array(rows).to_string();
    let mut tx = pool.begin().await?;
    // The rows in one order, so that two processes taking leases at once cannot deadlock.
    let lock = format!(
        "INSERT INTO inventory_versions (user_id, version, leased_until)
         SELECT DISTINCT w.user_id, 0, {NOW_MS} + $2 FROM json_to_recordset(CAST($1 AS json)) AS w(user_id text)
         ORDER BY 1
         ON CONFLICT (user_id) DO UPDATE
         SET leased_until = GREATEST(COALESCE(inventory_versions.leased_until, 0), EXCLUDED.leased_until)"
    );
    let lease_ms = lease.min(MAX_LEASE).as_millis() as i64;
    sqlx::query(sqlx::AssertSqlSafe(lock)).bind(&wanted).bind(lease_ms).execute(&mut *tx).await?;
    type Row = (String, String, Option<String>, Option<i64>, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH wanted AS (
             SELECT * FROM json_to_recordset(CAST($1 AS json)) AS w(user_id text, token_hash text)
         ), lease AS (
             INSERT INTO inventory_leases (user_id, holder, expires_at)
             SELECT user_id, $2, leased_until FROM inventory_versions
             WHERE user_id IN (SELECT user_id FROM wanted)
             ON CONFLICT (user_id, holder) DO UPDATE SET expires_at = EXCLUDED.expires_at
         )
         SELECT t.token_hash, a.user_id, a.amazon_user_id, a.link_broken_at, v.version, t.expires_at
         FROM wanted w JOIN session_tokens t ON t.token_hash = w.token_hash
         JOIN studio_sessions s ON s.family_id = t.family_id
         JOIN accounts a ON a.user_id = s.user_id AND a.user_id = w.user_id
         JOIN inventory_versions v ON v.user_id = a.user_id
         WHERE t.kind = 'access' AND t.expires_at > $3 AND s.revoked_at IS NULL",
    )
    .bind(&wanted)
    .bind(holder)
    .bind(crate::now_secs())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(token_hash, user_id, amazon_user_id, broken, version, expires_at)| {
            let holder = SessionHolder { user_id, amazon_user_id, link_broken: broken.is_some() };
            (token_hash, (holder, version, expires_at))
        })
        .collect())
}

/// The holder's answer to writers: it forgot each of `user_ids` (the notifications that had arrived together),
/// so their lease rows go, in one statement run on the listener's own connection, which a pool full of waiting
/// writers cannot starve.
pub(crate) async fn release<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    holder: &str,
    user_ids: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM inventory_leases WHERE holder = $1 AND user_id = ANY($2)")
        .bind(holder)
        .bind(user_ids)
        .execute(executor)
        .await?;
    Ok(())
}

/// Every lease `holder` holds goes (its memory was lost: the listener reconnected, or the process stops).
pub(crate) async fn release_all<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM inventory_leases WHERE holder = $1").bind(holder).execute(executor).await?;
    Ok(())
}

/// Deletes leases and holders that ran out more than a minute ago (of processes gone, which no writer came to).
pub(crate) async fn sweep(pool: &AnyPool) -> Result<(), sqlx::Error> {
    for table in ["inventory_leases WHERE expires_at", "lease_holders WHERE alive_until"] {
        let statement = format!("DELETE FROM {table} < {NOW_MS} - 60000");
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(pool).await?;
    }
    Ok(())
}

/// Sends `holder`'s ping number `number` on [`PINGS`].
pub(crate) async fn ping(pool: &AnyPool, holder: &str, number: u64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT count(*) FROM (SELECT pg_notify($1, $2)) AS pinged")
        .bind(PINGS)
        .bind(format!("{holder} {number}"))
        .execute(pool)
        .await?;
    Ok(())
}

/// `holder`'s ping came back: it is alive for [`ALIVE_FOR`] (run on the listener's connection).
pub(crate) async fn alive<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    holder: &str,
) -> Result<(), sqlx::Error> {
    let statement = format!(
        "INSERT INTO lease_holders (holder, alive_until) VALUES ($1, {NOW_MS} + $2)
         ON CONFLICT (holder) DO UPDATE SET alive_until = EXCLUDED.alive_until"
    );
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(holder)
        .bind(ALIVE_FOR.as_millis() as i64)
        .execute(executor)
        .await?;
    Ok(())
}
