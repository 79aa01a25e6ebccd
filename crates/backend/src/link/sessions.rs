//! Studio sessions (the `studio_sessions` and `session_tokens` tables, whose SQL lives here): what the backend
//! issues a game once its player is linked, instead of any Login with Amazon token. A session is a family: one
//! access token (an hour) and one refresh token at a time, each stored only as its SHA-256. A refresh rotates
//! both; a refresh token presented twice (stolen, or replayed) ends the whole family, as OAuth 2.0 Security
//! BCP §4.14 recommends; sign-out, unlink and the operator end families too.

use crate::inventory::ledger::Holdings;
use crate::inventory::spend::Prior;
use amazon_rewards_protocol::lwa::TokenResponse;
use amazon_rewards_protocol::studio::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use sqlx::{AnyConnection, AnyPool};

/// Seconds an access token lives.
pub const ACCESS_LIFETIME: i64 = 3600;
/// Seconds a refresh token lives without being used (each refresh issues a new one).
pub const REFRESH_LIFETIME: i64 = 90 * 24 * 3600;

/// SHA-256 of a token, hex: what the database keeps.
pub(crate) fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A freshly issued token pair.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub access_token: String,
    pub refresh_token: String,
}

impl Issued {
    /// The token endpoint's answer (LWA's and RFC 6749's shape).
    pub(crate) fn answer(self) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: "bearer".into(),
            expires_in: ACCESS_LIFETIME as u64,
            refresh_token: Some(self.refresh_token),
            scope: None,
        }
    }
}

/// Starts a session family for `user_id` (inside the caller's transaction).
pub(crate) async fn start(
    connection: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
) -> Result<Issued, sqlx::Error> {
    let family = format!("family-{}", crate::random_hex(16));
    sqlx::query("INSERT INTO studio_sessions (family_id, user_id, client_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&family)
        .bind(user_id)
        .bind(client_id)
        .bind(crate::now_secs())
        .execute(&mut *connection)
        .await?;
    issue_pair(connection, &family).await
}

async fn issue_pair(connection: &mut AnyConnection, family: &str) -> Result<Issued, sqlx::Error> {
    let issued = Issued {
        access_token: format!("{ACCESS_TOKEN_PREFIX}{}", crate::random_hex(32)),
        refresh_token: format!("{REFRESH_TOKEN_PREFIX}{}", crate::random_hex(32)),
    };
    let now = crate::now_secs();
    for (token, kind, lifetime) in
        [(&issued.access_token, "access", ACCESS_LIFETIME), (&issued.refresh_token, "refresh", REFRESH_LIFETIME)]
    {
        sqlx::query("INSERT INTO session_tokens (token_hash, family_id, kind, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash(token))
            .bind(family)
            .bind(kind)
            .bind(now + lifetime)
            .execute(&mut *connection)
            .await?;
    }
    Ok(issued)
}

/// What a refresh came to.
#[derive(Debug)]
pub(crate) enum Refreshed {
    /// A new pair; the presented refresh token is spent.
    Issued(Issued),
    /// Not a live refresh token of this client (unknown, expired, or its family ended).
    Refused,
    /// The token was already spent: its family is ended now.
    Reused,
    /// The account's Amazon link is broken: only linking again helps.
    LinkBroken,
}

/// Family, kind, expiry, spent at, family revoked at, client, link broken at.
type TokenRow = (String, String, i64, Option<i64>, Option<i64>, String, Option<i64>);

/// Trades `refresh_token` (of `client_id`) for a new pair, in one transaction.
pub(crate) async fn refresh(pool: &AnyPool, refresh_token: &str, client_id: &str) -> Result<Refreshed, sqlx::Error> {
    let hash = token_hash(refresh_token);
    let mut tx = pool.begin().await?;
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT t.family_id, t.kind, t.expires_at, t.used_at, s.revoked_at, s.client_id, a.link_broken_at
         FROM session_tokens t JOIN studio_sessions s ON s.family_id = t.family_id
         JOIN accounts a ON a.user_id = s.user_id WHERE t.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((family, kind, expires_at, used_at, revoked_at, owner, broken)) = row else {
        return Ok(Refreshed::Refused);
    };
    if kind != "refresh" || revoked_at.is_some() || owner != client_id || expires_at <= crate::now_secs() {
        return Ok(Refreshed::Refused);
    }
    if broken.is_some() {
        return Ok(Refreshed::LinkBroken);
    }
    let spent = sqlx::query("UPDATE session_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
        .bind(crate::now_secs())
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    if used_at.is_some() || spent.rows_affected() != 1 {
        end_family(&mut tx, pool, &family, "refresh_token_reused").await?;
        tx.commit().await?;
        tracing::warn!(family, "a spent refresh token was presented again: session family ended");
        return Ok(Refreshed::Reused);
    }
    let issued = issue_pair(&mut tx, &family).await?;
    tx.commit().await?;
    Ok(Refreshed::Issued(issued))
}

/// Ends `family`, inside the caller's transaction; read leases on its holder are revoked first (told on
/// `tell_on`, [`crate::inventory::leases`]).
async fn end_family(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    family: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let holder: Option<String> = sqlx::query_scalar("SELECT user_id FROM studio_sessions WHERE family_id = $1")
        .bind(family)
        .fetch_optional(&mut *connection)
        .await?;
    if let Some(user_id) = holder {
        crate::inventory::leases::lock_for_change(connection, tell_on, &user_id).await?;
    }
    sqlx::query(
        "UPDATE studio_sessions SET revoked_at = $1, revoke_reason = $2 WHERE family_id = $3 AND revoked_at IS NULL",
    )
    .bind(crate::now_secs())
    .bind(reason)
    .bind(family)
    .execute(connection)
    .await?;
    Ok(())
}

/// Who holds a live access token.
#[derive(Debug, Clone)]
pub(crate) struct SessionHolder {
    pub user_id: String,
    pub amazon_user_id: Option<String>,
    pub link_broken: bool,
}

/// The holder of `access_token`, when it is a live studio access token.
pub(crate) async fn holder(pool: &AnyPool, access_token: &str) -> Result<Option<SessionHolder>, sqlx::Error> {
    Ok(holder_and_version(pool, access_token).await?.map(|(holder, _)| holder))
}

/// A session's holder columns (user id, Amazon user id, link broken at) and the inventory version.
type HolderVersionRow = (String, Option<String>, Option<i64>, Option<i64>);
/// The token hash, then [`HolderVersionRow`].
type HashHolderVersionRow = (String, String, Option<String>, Option<i64>, Option<i64>);
/// The holder columns, the spend's stored answers (history row's; status and refusal), the version, the read
/// lease's end, and one item row (item, quantity, active until).
type HolderSpendRow = (
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// [`holder`] and the holder's inventory version (0 before any change), in one query.
pub(crate) async fn holder_and_version(
    pool: &AnyPool,
    access_token: &str,
) -> Result<Option<(SessionHolder, i64)>, sqlx::Error> {
    let row: Option<HolderVersionRow> = sqlx::query_as(
        "SELECT a.user_id, a.amazon_user_id, a.link_broken_at, v.version
         FROM session_tokens t JOIN studio_sessions s ON s.family_id = t.family_id
         JOIN accounts a ON a.user_id = s.user_id LEFT JOIN inventory_versions v ON v.user_id = a.user_id
         WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > $2 AND s.revoked_at IS NULL",
    )
    .bind(token_hash(access_token))
    .bind(crate::now_secs())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user_id, amazon_user_id, broken, version)| {
        (SessionHolder { user_id, amazon_user_id, link_broken: broken.is_some() }, version.unwrap_or(0))
    }))
}

/// How many tokens one [`holders_and_versions`] query carries: a batch is padded up to the next size, so four
/// statement texts, each prepared once per connection, serve every batch.
pub(crate) const HOLDER_BATCH_SIZES: [usize; 4] = [1, 4, 16, 64];

/// The statement for each of [`HOLDER_BATCH_SIZES`]: `$1` is the time, `$2…` the token hashes.
static HOLDERS_AND_VERSIONS: std::sync::LazyLock<Vec<std::sync::Arc<str>>> = std::sync::LazyLock::new(|| {
    HOLDER_BATCH_SIZES
        .iter()
        .map(|&size| {
            let placeholders: Vec<String> = (2..size + 2).map(|n| format!("${n}")).collect();
            format!(
                "SELECT t.token_hash, a.user_id, a.amazon_user_id, a.link_broken_at, v.version
                 FROM session_tokens t JOIN studio_sessions s ON s.family_id = t.family_id
                 JOIN accounts a ON a.user_id = s.user_id LEFT JOIN inventory_versions v ON v.user_id = a.user_id
                 WHERE t.token_hash IN ({}) AND t.kind = 'access' AND t.expires_at > $1 AND s.revoked_at IS NULL",
                placeholders.join(", ")
            )
            .into()
        })
        .collect()
});

/// [`holder_and_version`] for several token hashes in one query (at most the largest of
/// [`HOLDER_BATCH_SIZES`]): each live one's holder and version, by hash.
pub(crate) async fn holders_and_versions<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    hashes: &[String],
) -> Result<std::collections::HashMap<String, (SessionHolder, i64)>, sqlx::Error> {
    if hashes.is_empty() {
        return Ok(Default::default());
    }
    let Some(size) = HOLDER_BATCH_SIZES.iter().position(|&size| size >= hashes.len()) else {
        return Err(sqlx::Error::Protocol(format!("{} tokens in one batch", hashes.len())));
    };
    let statement = HOLDERS_AND_VERSIONS[size].clone();
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(statement)).bind(crate::now_secs());
    // Padding repeats the first hash: the same row, found once.
    for n in 0..HOLDER_BATCH_SIZES[size] {
        query = query.bind(hashes.get(n).unwrap_or(&hashes[0]).clone());
    }
    let rows: Vec<HashHolderVersionRow> = query.fetch_all(executor).await?;
    Ok(rows
        .into_iter()
        .map(|(hash, user_id, amazon_user_id, broken, version)| {
            (hash, (SessionHolder { user_id, amazon_user_id, link_broken: broken.is_some() }, version.unwrap_or(0)))
        })
        .collect())
}

/// [`holder`], the first answer stored for the holder's spend `key` (a `200` in the spend's history row, a `409`
/// in `inventory_spends`), and the holder's item rows and version, in one query: a spend then costs no separate
/// read for the retry check, nor, when nothing changes in between, for its answer.
pub(crate) async fn holder_and_spend<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    access_token: &str,
    key: &str,
) -> Result<Option<(SessionHolder, Prior)>, sqlx::Error> {
    let rows: Vec<HolderSpendRow> = sqlx::query_as(
        "SELECT a.user_id, a.amazon_user_id, a.link_broken_at, c.answer, p.status, p.answer, v.version,
                v.leased_until, i.item, i.quantity, i.active_until
         FROM session_tokens t JOIN studio_sessions s ON s.family_id = t.family_id
         JOIN accounts a ON a.user_id = s.user_id
         LEFT JOIN inventory_changes c ON c.user_id = a.user_id AND c.kind = 'spend' AND c.change_key = $3
         LEFT JOIN inventory_spends p ON p.user_id = a.user_id AND p.spend_key = $3
         LEFT JOIN inventory_versions v ON v.user_id = a.user_id
         LEFT JOIN inventory_items i ON i.user_id = a.user_id
         WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > $2 AND s.revoked_at IS NULL",
    )
    .bind(token_hash(access_token))
    .bind(crate::now_secs())
    .bind(key)
    .fetch_all(executor)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let (user_id, amazon_user_id, broken, spent, status, refused, version, leased_until, ..) = first.clone();
    let holder = SessionHolder { user_id, amazon_user_id, link_broken: broken.is_some() };
    let first = spent.map(|answer| (200, answer)).or(status.zip(refused));
    let items = rows.into_iter().filter_map(|row| Some((row.8?, row.9?, row.10))).collect();
    let before = Holdings { version: version.unwrap_or(0), items };
    Ok(Some((holder, Prior { first, before, leased: leased_until.is_some() })))
}

/// Sign-out: ends the family `token` (access or refresh) belongs to. Unknown tokens are no error (RFC 7009).
pub(crate) async fn sign_out(pool: &AnyPool, token: &str) -> Result<(), sqlx::Error> {
    let family: Option<String> = sqlx::query_scalar("SELECT family_id FROM session_tokens WHERE token_hash = $1")
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await?;
    if let Some(family) = family {
        let mut tx = pool.begin().await?;
        end_family(&mut tx, pool, &family, "signed_out").await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Ends every session of `user_id`, inside the caller's transaction (read leases revoked first, as in
/// [`end_family`]); how many were live.
pub(crate) async fn end_all(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    user_id: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    crate::inventory::leases::lock_for_change(connection, tell_on, user_id).await?;
    let ended = sqlx::query(
        "UPDATE studio_sessions SET revoked_at = $1, revoke_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL",
    )
    .bind(crate::now_secs())
    .bind(reason)
    .bind(user_id)
    .execute(connection)
    .await?;
    Ok(ended.rows_affected())
}
