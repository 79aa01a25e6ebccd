//! Game accounts: the studio's own players, which Instant Access links Amazon customers to. This module owns
//! the `accounts` table's SQL; the operator's admin call creates accounts through it.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use sqlx::AnyPool;

use crate::AppState;
use crate::error::BackendError;

/// The game account linked to `amazon_user_id`, if any.
pub async fn by_amazon_user(pool: &AnyPool, amazon_user_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM accounts WHERE amazon_user_id = $1")
        .bind(amazon_user_id)
        .fetch_optional(pool)
        .await
}

/// The account named `username` (as typed into Amazon's linking form), if any.
pub async fn by_username(pool: &AnyPool, username: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM accounts WHERE username = $1").bind(username).fetch_optional(pool).await
}

/// Whether the account `user_id` exists.
pub async fn exists(pool: &AnyPool, user_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar("SELECT user_id FROM accounts WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// The username of the account linked to `amazon_user_id`, if any.
pub async fn username_of_amazon_user(pool: &AnyPool, amazon_user_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT username FROM accounts WHERE amazon_user_id = $1")
        .bind(amazon_user_id)
        .fetch_optional(pool)
        .await
}

/// Inserts the account `user_id` named `username` linked to `amazon_user_id` (inside the caller's
/// transaction); `false` when the name is taken.
pub async fn insert_linked<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    user_id: &str,
    username: &str,
    amazon_user_id: &str,
) -> Result<bool, sqlx::Error> {
    let created = sqlx::query(
        "INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(user_id)
    .bind(username)
    .bind(amazon_user_id)
    .bind(crate::now_secs())
    .execute(executor)
    .await?;
    Ok(created.rows_affected() == 1)
}

/// Creates an account named `username` (unique), linked to `amazon_user_id` when given; `None` when the name
/// is taken.
pub async fn create(
    pool: &AnyPool,
    username: &str,
    amazon_user_id: Option<&str>,
) -> Result<Option<Account>, sqlx::Error> {
    let user_id = format!("player-{}", crate::random_hex(12));
    let inserted = sqlx::query(
        "INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(&user_id)
    .bind(username)
    .bind(amazon_user_id)
    .bind(crate::now_secs())
    .execute(pool)
    .await?;
    Ok((inserted.rows_affected() > 0).then(|| Account { user_id, username: username.to_owned() }))
}

/// `POST /admin/accounts`: create a game account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccount {
    /// What the customer types into Amazon's linking form (`infoField1`).
    pub username: String,
    /// The player's Amazon identity (LWA profile `user_id`), so the game can fetch what was bought.
    #[serde(default)]
    pub amazon_user_id: Option<String>,
}

/// A game account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The immutable user id answered to `GetUserId`.
    pub user_id: String,
    /// Its username.
    pub username: String,
}

/// Admin routes, nested under `/admin`.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/accounts", post(create_account))
}

async fn create_account(
    State(state): State<AppState>,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<Account>), BackendError> {
    let Json(request) = body.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let username = request.username.trim();
    if username.is_empty() || username.len() > 128 {
        return Err(BackendError::BadRequest("a username is 1-128 characters".into()));
    }
    match create(&state.pool, username, request.amazon_user_id.as_deref()).await? {
        Some(account) => Ok((StatusCode::CREATED, Json(account))),
        None => {
            Err(BackendError::refused(StatusCode::CONFLICT, "username_taken", &format!("username {username} is taken")))
        }
    }
}

/// SHA-256 of an Amazon user id, kept on an unlinked account so that linking the same Amazon account again
/// finds it (its purchases with it) without keeping the id itself.
fn unlinked_hash(amazon_user_id: &str) -> String {
    crate::link::sessions::token_hash(&format!("unlinked:{amazon_user_id}"))
}

/// The game account of `amazon_user_id`: the one linked to it, else the one it was unlinked from, else a new
/// one named after `name`. Safe across processes: the database's unique `amazon_user_id` decides a race.
pub(crate) async fn claim_for_amazon_user(
    pool: &AnyPool,
    amazon_user_id: &str,
    name: &str,
) -> Result<String, sqlx::Error> {
    for _ in 0..3 {
        if let Some(user_id) = by_amazon_user(pool, amazon_user_id).await? {
            return Ok(user_id);
        }
        let relinked = sqlx::query(
            "UPDATE accounts SET amazon_user_id = $1, unlinked_amazon_hash = NULL
             WHERE unlinked_amazon_hash = $2 AND amazon_user_id IS NULL",
        )
        .bind(amazon_user_id)
        .bind(unlinked_hash(amazon_user_id))
        .execute(pool)
        .await;
        if matches!(relinked, Ok(ref done) if done.rows_affected() > 0) {
            continue;
        }
        let stem: String = name.chars().filter(|c| c.is_alphanumeric()).take(24).collect();
        let username = format!("{}-{}", if stem.is_empty() { "player" } else { &stem }, crate::random_hex(3));
        sqlx::query(
            "INSERT INTO accounts (user_id, username, amazon_user_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(format!("player-{}", crate::random_hex(12)))
        .bind(username)
        .bind(amazon_user_id)
        .bind(crate::now_secs())
        .execute(pool)
        .await?;
    }
    by_amazon_user(pool, amazon_user_id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// The link works again (after linking anew).
pub(crate) async fn clear_link_broken(connection: &mut sqlx::AnyConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET link_broken_at = NULL WHERE user_id = $1")
        .bind(user_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// LWA refused the backend's refresh token for `user_id`: the link is broken until the player links again.
/// Read leases on the account are revoked first ([`crate::inventory::leases`]).
pub(crate) async fn mark_link_broken(pool: &AnyPool, user_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    crate::inventory::leases::lock_for_change(&mut tx, pool, user_id).await?;
    sqlx::query("UPDATE accounts SET link_broken_at = $1 WHERE user_id = $2 AND link_broken_at IS NULL")
        .bind(crate::now_secs())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Forgets the Amazon identity of `user_id` (keeping a hash to find the account on a later link).
pub(crate) async fn forget_amazon_user(
    connection: &mut sqlx::AnyConnection,
    user_id: &str,
    amazon_user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET amazon_user_id = NULL, unlinked_amazon_hash = $1, link_broken_at = NULL WHERE user_id = $2",
    )
    .bind(unlinked_hash(amazon_user_id))
    .bind(user_id)
    .execute(connection)
    .await?;
    Ok(())
}
