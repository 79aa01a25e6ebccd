//! The backend's database through sqlx's `Any` driver: a SQLite file by default (WAL), PostgreSQL when the
//! URL says so. The SQL is written once, portably (`$n` placeholders in order, `ON CONFLICT`, `BIGINT`
//! seconds), and migrations are numbered scripts recorded in `schema_migrations`.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Ordered schema migrations, portable between SQLite and PostgreSQL: the numbered files in `migrations/`,
/// compiled in. Append only; a file once released never changes.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_accounts_and_instant_access.sql")),
    (2, include_str!("../migrations/0002_fulfilment_marks.sql")),
    (3, include_str!("../migrations/0003_signups_and_lwa_tokens.sql")),
    (4, include_str!("../migrations/0004_devpay_subscriptions.sql")),
    (5, include_str!("../migrations/0005_moment_rewards.sql")),
    (6, include_str!("../migrations/0006_devpay_paid_until.sql")),
    (7, include_str!("../migrations/0007_devpay_signups.sql")),
    (8, include_str!("../migrations/0008_subscription_licenses.sql")),
    (9, include_str!("../migrations/0009_relay_lease_and_moment_budgets.sql")),
    (10, include_str!("../migrations/0010_studio_sessions_and_links.sql")),
    (11, include_str!("../migrations/0011_server_inventory.sql")),
    (12, include_str!("../migrations/0012_inventory_change_sku.sql")),
    (13, include_str!("../migrations/0013_competitions.sql")),
    (14, include_str!("../migrations/0014_spend_answer_in_history.sql")),
    (15, include_str!("../migrations/0015_read_leases.sql")),
];

/// The newest migration's number: a database at it is up to date.
pub fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Whether `url` names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Whether `connection` is to PostgreSQL (the other backend being SQLite).
pub(crate) fn is_postgres(connection: &sqlx::AnyConnection) -> bool {
    connection.backend_name().eq_ignore_ascii_case("postgresql")
}

/// Connects (creating a SQLite file if needed) and brings the schema up to date.
pub async fn open(url: &str) -> Result<AnyPool, sqlx::Error> {
    install_default_drivers();
    let sqlite = is_sqlite(url);
    let url = if sqlite && !url.contains("mode=") {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 8 } else { 16 })
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if sqlite {
                    // Writers wait for each other instead of failing; WAL lets readers run meanwhile.
                    connection.execute("PRAGMA busy_timeout = 10000").await?;
                    connection.execute("PRAGMA foreign_keys = ON").await?;
                    connection.execute("PRAGMA synchronous = NORMAL").await?;
                }
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(30))
        // No ping before every acquire (a round trip per request on PostgreSQL): a connection the server
        // dropped fails its next query, is closed by the pool, and the request answers 500 once.
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    // Two processes opening one fresh SQLite file at once can meet SQLITE_BUSY outside the busy handler (the
    // journal-mode switch, a read lock upgraded to a write lock): a few short retries settle it.
    for attempt in 1.. {
        let opened = async {
            if sqlite {
                pool.execute("PRAGMA journal_mode = WAL").await?;
            }
            migrate(&pool).await
        };
        match opened.await {
            Err(sqlx::Error::Database(error)) if sqlite && attempt < 5 && error.code().as_deref() == Some("5") => {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            other => return other.map(|()| pool),
        }
    }
    unreachable!("the loop returns")
}

/// Arbitrary key of the advisory lock that serializes migrations across backend processes on PostgreSQL.
const MIGRATION_LOCK: i64 = 7_212_001;

async fn migrate(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let postgres = is_postgres(&connection);
    if postgres {
        // `CREATE TABLE IF NOT EXISTS` races between processes on PostgreSQL: migrate one process at a time.
        // (The subquery gives the `void` result a type the Any driver can carry.)
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS locked")
            .bind(MIGRATION_LOCK)
            .fetch_one(&mut *connection)
            .await?;
    }
    let migrated = apply_migrations(&mut connection).await;
    if postgres {
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS unlocked")
            .bind(MIGRATION_LOCK)
            .fetch_one(&mut *connection)
            .await?;
    }
    migrated
}

async fn apply_migrations(connection: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    connection
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = connection.begin().await?;
        // Claiming the version in the same transaction makes each migration apply once, even on SQLite where
        // several processes may share the file.
        let claimed = sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
        )
        .bind(*version)
        .bind(crate::now_secs())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            continue;
        }
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            (&mut *tx).execute(statement).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// A fresh SQLite database in a directory of its own, for unit tests (the directory goes with the guard).
#[cfg(test)]
pub(crate) async fn test_database() -> (tempfile::TempDir, AnyPool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pool = open(&format!("sqlite://{}", dir.path().join("test.db").display())).await.expect("a SQLite database");
    (dir, pool)
}
