//! The backend's database through sqlx's `Any` driver: a SQLite file by default (WAL), PostgreSQL when the
//! URL says so. The SQL is written once, portably (`$n` placeholders in order, `ON CONFLICT`, `BIGINT`
//! seconds), and migrations are numbered scripts recorded in `schema_migrations`.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Ordered schema migrations, portable between SQLite and PostgreSQL. Append only.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE accounts (
        user_id        TEXT PRIMARY KEY,
        username       TEXT NOT NULL UNIQUE,
        amazon_user_id TEXT UNIQUE,
        created_at     BIGINT NOT NULL
    );
    CREATE TABLE ia_purchases (
        purchase_token TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL REFERENCES accounts(user_id),
        product_id     TEXT NOT NULL,
        revoked        BIGINT NOT NULL DEFAULT 0,
        revoke_reason  TEXT,
        created_at     BIGINT NOT NULL,
        revoked_at     BIGINT
    );
    CREATE INDEX ia_purchases_by_user ON ia_purchases(user_id);
    CREATE TABLE ia_subscriptions (
        subscription_id   TEXT PRIMARY KEY,
        user_id           TEXT NOT NULL REFERENCES accounts(user_id),
        product_id        TEXT NOT NULL,
        active            BIGINT NOT NULL,
        deactivate_reason TEXT,
        period            TEXT,
        activated_at      BIGINT NOT NULL,
        deactivated_at    BIGINT
    );
    CREATE INDEX ia_subscriptions_by_user ON ia_subscriptions(user_id);
    "#,
    ),
    (
        2,
        r#"
    ALTER TABLE ia_purchases ADD COLUMN fulfilled_at BIGINT;
    ALTER TABLE ia_purchases ADD COLUMN revoke_reported_at BIGINT;
    ALTER TABLE ia_subscriptions ADD COLUMN fulfilled_at BIGINT;
    ALTER TABLE ia_subscriptions ADD COLUMN revoke_reported_at BIGINT;
    CREATE INDEX accounts_by_amazon_user ON accounts(amazon_user_id);
    "#,
    ),
    (
        3,
        r#"
    CREATE TABLE account_signups (
        state         TEXT PRIMARY KEY,
        username      TEXT NOT NULL,
        return_url    TEXT NOT NULL,
        pkce_verifier TEXT NOT NULL,
        created_at    BIGINT NOT NULL
    );
    CREATE TABLE lwa_tokens (
        user_id       TEXT PRIMARY KEY REFERENCES accounts(user_id),
        refresh_token TEXT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    "#,
    ),
    (
        4,
        r#"
    CREATE TABLE devpay_subscriptions (
        persistent_id          TEXT PRIMARY KEY,
        user_id                TEXT NOT NULL REFERENCES accounts(user_id),
        product_code           TEXT NOT NULL,
        subscribed             BIGINT NOT NULL,
        status                 TEXT NOT NULL,
        paid_through_period    BIGINT NOT NULL,
        current_period         BIGINT NOT NULL,
        monthly_fee_cents      BIGINT NOT NULL,
        next_monthly_fee_cents BIGINT NOT NULL,
        cancel_at_period_end   BIGINT NOT NULL,
        verified_at            BIGINT NOT NULL,
        fulfilled_at           BIGINT,
        revoke_reported_at     BIGINT
    );
    CREATE INDEX devpay_subscriptions_by_user ON devpay_subscriptions(user_id);
    "#,
    ),
    (
        5,
        r#"
    CREATE TABLE moment_rewards (
        amazon_user_id TEXT NOT NULL,
        moment         TEXT NOT NULL,
        achievement    TEXT NOT NULL,
        campaign_id    TEXT NOT NULL,
        status         TEXT NOT NULL,
        reason         TEXT,
        reward_id      TEXT,
        reward_url     TEXT,
        title          TEXT,
        description    TEXT,
        image_url      TEXT,
        cost_cents     BIGINT NOT NULL,
        test           BIGINT NOT NULL,
        created_at     BIGINT NOT NULL,
        rewarded_at    BIGINT,
        redeemed_at    BIGINT,
        PRIMARY KEY (amazon_user_id, moment)
    );
    CREATE INDEX moment_rewards_by_campaign ON moment_rewards(campaign_id, status);
    "#,
    ),
    (
        6,
        r#"
    ALTER TABLE devpay_subscriptions ADD COLUMN paid_until TEXT;
    "#,
    ),
    (
        7,
        r#"
    CREATE TABLE devpay_signups (
        state          TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL REFERENCES accounts(user_id),
        amazon_user_id TEXT NOT NULL,
        product_code   TEXT NOT NULL,
        created_at     BIGINT NOT NULL,
        used_at        BIGINT
    );
    "#,
    ),
    (
        8,
        r#"
    ALTER TABLE ia_subscriptions ADD COLUMN licenses BIGINT;
    "#,
    ),
    (
        9,
        r#"
    ALTER TABLE lwa_tokens ADD COLUMN refreshing_until BIGINT;
    ALTER TABLE lwa_tokens ADD COLUMN access_token TEXT;
    ALTER TABLE lwa_tokens ADD COLUMN access_expires_at BIGINT;
    ALTER TABLE moment_rewards ADD COLUMN reserved_cents BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE account_signups ADD COLUMN browser_hash TEXT;
    CREATE TABLE moment_budgets (
        campaign_id    TEXT PRIMARY KEY,
        reserved_cents BIGINT NOT NULL
    );
    "#,
    ),
];

/// Whether `url` names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
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
        .connect(&url)
        .await?;
    if sqlite {
        pool.execute("PRAGMA journal_mode = WAL").await?;
    }
    migrate(&pool).await?;
    Ok(pool)
}

/// Arbitrary key of the advisory lock that serializes migrations across backend processes on PostgreSQL.
const MIGRATION_LOCK: i64 = 7_212_001;

async fn migrate(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let postgres = connection.backend_name().eq_ignore_ascii_case("postgresql");
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
