//! The sandbox's SQLite database: opening it (WAL), and its schema migrations.
//!
//! Migrations are numbered SQL scripts applied in order inside a transaction each and recorded in
//! `schema_migrations`, so an existing database file is upgraded in place when the sandbox grows.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Ordered schema migrations: `(version, sql)`. Append only; never edit a released one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE customers (
        user_id       TEXT PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE,
        name          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE offers (
        sku        TEXT PRIMARY KEY,
        title      TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE entitlements (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        entitlement_id TEXT NOT NULL UNIQUE,
        user_id        TEXT NOT NULL REFERENCES customers(user_id),
        sku            TEXT NOT NULL REFERENCES offers(sku),
        claimed_at     INTEGER NOT NULL,
        fulfilled_at   INTEGER,
        report_count   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX entitlements_open_by_user ON entitlements(user_id, fulfilled_at, seq);
    CREATE TABLE access_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES customers(user_id),
        expires_at INTEGER NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    "#,
    ),
    (
        2,
        r#"
    CREATE TABLE oauth_clients (
        client_id     TEXT PRIMARY KEY,
        secret_hash   TEXT,
        redirect_uris TEXT NOT NULL,
        name          TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE signin_tickets (
        ticket_hash TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL REFERENCES customers(user_id),
        expires_at  INTEGER NOT NULL
    );
    CREATE TABLE auth_codes (
        code_hash      TEXT PRIMARY KEY,
        client_id      TEXT NOT NULL,
        user_id        TEXT NOT NULL REFERENCES customers(user_id),
        redirect_uri   TEXT NOT NULL,
        scope          TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        expires_at     INTEGER NOT NULL,
        used_at        INTEGER
    );
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        client_id  TEXT NOT NULL,
        user_id    TEXT NOT NULL REFERENCES customers(user_id),
        scope      TEXT NOT NULL,
        family     TEXT NOT NULL,
        used       INTEGER NOT NULL DEFAULT 0,
        revoked    INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE device_codes (
        device_code_hash TEXT PRIMARY KEY,
        user_code        TEXT NOT NULL UNIQUE,
        client_id        TEXT NOT NULL,
        scope            TEXT NOT NULL,
        expires_at       INTEGER NOT NULL,
        interval_secs    INTEGER NOT NULL,
        last_poll_ms     INTEGER,
        poll_count       INTEGER NOT NULL DEFAULT 0,
        user_id          TEXT REFERENCES customers(user_id),
        denied           INTEGER NOT NULL DEFAULT 0,
        consumed         INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE access_tokens ADD COLUMN client_id TEXT;
    ALTER TABLE access_tokens ADD COLUMN family TEXT;
    ALTER TABLE access_tokens ADD COLUMN scope TEXT;
    CREATE INDEX access_tokens_by_family ON access_tokens(family);
    CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family);
    "#,
    ),
    (
        3,
        r#"
    CREATE TABLE ia_vendor (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        linking_url     TEXT NOT NULL,
        fulfillment_url TEXT NOT NULL,
        key_id          TEXT NOT NULL,
        secret          TEXT NOT NULL,
        new_account_url TEXT
    );
    CREATE TABLE ia_products (
        product_id   TEXT PRIMARY KEY,
        title        TEXT NOT NULL,
        price_cents  INTEGER NOT NULL,
        subscription INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE ia_links (
        customer_id    TEXT PRIMARY KEY REFERENCES customers(user_id),
        vendor_user_id TEXT NOT NULL
    );
    CREATE TABLE ia_orders (
        order_key       TEXT PRIMARY KEY,
        customer_id     TEXT NOT NULL REFERENCES customers(user_id),
        vendor_user_id  TEXT NOT NULL,
        product_id      TEXT NOT NULL,
        subscription    INTEGER NOT NULL,
        purchase_token  TEXT NOT NULL UNIQUE,
        status          TEXT NOT NULL,
        created_at      INTEGER NOT NULL
    );
    CREATE TABLE ia_deliveries (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        order_key       TEXT NOT NULL REFERENCES ia_orders(order_key),
        operation       TEXT NOT NULL,
        body            TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_result     TEXT
    );
    CREATE INDEX ia_deliveries_due ON ia_deliveries(state, next_attempt_ms);
    "#,
    ),
    (
        4,
        r#"
    CREATE TABLE devpay_products (
        product_code      TEXT PRIMARY KEY,
        product_token     TEXT NOT NULL UNIQUE,
        title             TEXT NOT NULL,
        description       TEXT NOT NULL,
        signup_fee_cents  INTEGER NOT NULL,
        monthly_fee_cents INTEGER NOT NULL,
        redirect_url      TEXT NOT NULL
    );
    CREATE TABLE devpay_prices (
        product_code      TEXT NOT NULL REFERENCES devpay_products(product_code),
        from_period       INTEGER NOT NULL,
        monthly_fee_cents INTEGER NOT NULL,
        PRIMARY KEY (product_code, from_period)
    );
    CREATE TABLE devpay_clock (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        period INTEGER NOT NULL
    );
    INSERT INTO devpay_clock (id, period) VALUES (1, 0);
    CREATE TABLE devpay_subscriptions (
        activation_key       TEXT PRIMARY KEY,
        customer_id          TEXT NOT NULL REFERENCES customers(user_id),
        product_code         TEXT NOT NULL REFERENCES devpay_products(product_code),
        status               TEXT NOT NULL,
        started_period       INTEGER NOT NULL,
        paid_through_period  INTEGER NOT NULL,
        cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
        persistent_id        TEXT UNIQUE,
        user_token           TEXT UNIQUE,
        activated_at         INTEGER,
        key_expires_at       INTEGER NOT NULL
    );
    CREATE TABLE devpay_bills (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        activation_key TEXT NOT NULL REFERENCES devpay_subscriptions(activation_key),
        period         INTEGER NOT NULL,
        kind           TEXT NOT NULL,
        amount_cents   INTEGER NOT NULL,
        paid           INTEGER NOT NULL
    );
    CREATE TABLE devpay_payment_problems (
        customer_id TEXT PRIMARY KEY REFERENCES customers(user_id)
    );
    "#,
    ),
    (
        5,
        r#"
    CREATE TABLE moments_api_keys (
        key_hash   TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE moments_campaigns (
        campaign_id  TEXT PRIMARY KEY,
        key_hash     TEXT NOT NULL REFERENCES moments_api_keys(key_hash),
        name         TEXT NOT NULL,
        state        TEXT NOT NULL,
        kind         TEXT NOT NULL,
        title        TEXT NOT NULL,
        description  TEXT NOT NULL,
        image_url    TEXT NOT NULL,
        cost_cents   INTEGER NOT NULL,
        budget_cents INTEGER NOT NULL,
        spent_cents  INTEGER NOT NULL,
        inventory    INTEGER NOT NULL,
        test_token   TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL
    );
    CREATE TABLE moments_rewards (
        reward_id   TEXT PRIMARY KEY,
        campaign_id TEXT NOT NULL REFERENCES moments_campaigns(campaign_id),
        customer_id TEXT NOT NULL,
        url_token   TEXT NOT NULL UNIQUE,
        issued_at   INTEGER NOT NULL,
        redeemed_at INTEGER,
        redemption  TEXT,
        UNIQUE (campaign_id, customer_id)
    );
    "#,
    ),
    (
        6,
        r#"
    -- Databases from before this rule may hold a customer's second running subscription to one product: all
    -- but the first are cancelled at the end of their paid month.
    UPDATE devpay_subscriptions SET cancel_at_period_end = 1
    WHERE status = 'active' AND cancel_at_period_end = 0 AND rowid NOT IN (
        SELECT MIN(rowid) FROM devpay_subscriptions WHERE status = 'active' AND cancel_at_period_end = 0
        GROUP BY customer_id, product_code);
    CREATE UNIQUE INDEX devpay_one_running_subscription
        ON devpay_subscriptions(customer_id, product_code) WHERE status = 'active' AND cancel_at_period_end = 0;
    "#,
    ),
    (
        7,
        r#"
    -- Billing month 0 is the calendar month the clock started in (months counted as year * 12 + month - 1),
    -- so that "paid until" can be a date.
    ALTER TABLE devpay_clock ADD COLUMN epoch_month INTEGER NOT NULL DEFAULT 0;
    UPDATE devpay_clock
    SET epoch_month = CAST(strftime('%Y', 'now') AS INTEGER) * 12 + CAST(strftime('%m', 'now') AS INTEGER) - 1;
    "#,
    ),
    (
        8,
        r#"
    ALTER TABLE devpay_products ADD COLUMN other_redirect_urls TEXT NOT NULL DEFAULT '[]';
    "#,
    ),
    (
        9,
        r#"
    CREATE TABLE mailbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        event_key   TEXT NOT NULL UNIQUE,
        customer_id TEXT NOT NULL REFERENCES customers(user_id),
        recipient   TEXT NOT NULL,
        kind        TEXT NOT NULL,
        subject     TEXT NOT NULL,
        text_body   TEXT NOT NULL,
        html_body   TEXT NOT NULL,
        sent_at     INTEGER NOT NULL
    );
    CREATE INDEX mailbox_by_customer ON mailbox(customer_id);
    "#,
    ),
];

/// Opens (creating if needed) the database file at `path` in WAL mode and brings its schema up to date.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
    migrate(&pool).await?;
    Ok(pool)
}

async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(crate::now_secs())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Latest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}
