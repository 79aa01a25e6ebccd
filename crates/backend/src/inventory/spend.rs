//! Spending from the game (`POST /api/inventory/spend`), checked on the server: the player's session, an
//! idempotency key the game chose and persisted before sending, and the items. The answer — the new snapshot, or
//! `409` with what was short — is stored with the key (the `inventory_spends` table, whose SQL lives here) in the
//! same transaction as the spend, so a retry, from any process, gets the first answer and spends nothing more.

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool};

use super::catalog::ServerCatalog;
use super::ledger::{self, Applied, Change, ChangeKind};
use crate::error::BackendError;

pub use amazon_rewards_protocol::inventory::SpendRequest;
use amazon_rewards_protocol::inventory::{MAX_SPEND_KEY_LEN, MAX_SPEND_LINES, SpendRefused};

fn well_formed(catalog: &ServerCatalog, request: &SpendRequest) -> Result<(), BackendError> {
    let bad = |why: &str| Err(BackendError::BadRequest(why.into()));
    if request.key.is_empty() || request.key.len() > MAX_SPEND_KEY_LEN || request.key.chars().any(char::is_control) {
        return bad("key must be 1-128 printable characters");
    }
    if request.items.is_empty() || request.items.len() > MAX_SPEND_LINES {
        return bad("a spend names 1-100 items");
    }
    if let Some(stack) = request.items.iter().find(|s| s.quantity == 0 || s.quantity > i64::MAX as u64) {
        return bad(&format!("cannot spend {} of {:?}", stack.quantity, stack.item));
    }
    match request.items.iter().find(|s| !catalog.has_item(&s.item)) {
        Some(stack) => bad(&format!("unknown item {:?}", stack.item)),
        None => Ok(()),
    }
}

async fn stored(connection: &mut AnyConnection, user_id: &str, key: &str) -> Result<Option<(u16, Value)>, sqlx::Error> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT status, answer FROM inventory_spends WHERE user_id = $1 AND spend_key = $2")
            .bind(user_id)
            .bind(key)
            .fetch_optional(connection)
            .await?;
    Ok(row.map(|(status, answer)| (status as u16, serde_json::from_str(&answer).unwrap_or(Value::Null))))
}

async fn store(
    connection: &mut AnyConnection,
    user_id: &str,
    key: &str,
    status: u16,
    answer: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_spends (user_id, spend_key, status, answer, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, spend_key) DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(i64::from(status))
    .bind(answer.to_string())
    .bind(crate::now_secs())
    .execute(connection)
    .await?;
    Ok(())
}

/// Spends `request` from `user_id`'s inventory, once per key: `(200, snapshot)` or `(409, what was short)`.
/// `first` is the answer already stored for the key, when the caller read it with the session.
pub async fn spend(
    pool: &AnyPool,
    catalog: &ServerCatalog,
    user_id: &str,
    request: &SpendRequest,
    first: Option<(i64, String)>,
) -> Result<(StatusCode, Value), BackendError> {
    well_formed(catalog, request)?;
    let answer = |(status, body): (u16, Value)| (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
    if let Some((status, body)) = first {
        return Ok(answer((status as u16, serde_json::from_str(&body).unwrap_or(Value::Null))));
    }
    let change = Change {
        kind: ChangeKind::Spend,
        source: "GAME",
        key: &request.key,
        sku: None,
        items: &request.items,
        active_until: None,
    };
    let mut tx = pool.begin().await?;
    let applied = match ledger::apply_in(&mut tx, user_id, &change).await {
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Applied::Again { version: 0 },
        other => other?,
    };
    match applied {
        Applied::Done { version } => {
            // The version this spend made, read back with the items in the same transaction.
            let body = serde_json::to_value(ledger::items_at(&mut tx, user_id, version).await?)
                .expect("a snapshot serializes");
            store(&mut tx, user_id, &request.key, 200, &body).await?;
            tx.commit().await?;
            Ok((StatusCode::OK, body))
        }
        Applied::Again { .. } => {
            drop(tx);
            let first = stored(&mut *pool.acquire().await?, user_id, &request.key).await?;
            Ok(answer(first.unwrap_or((200, Value::Null))))
        }
        Applied::Insufficient { item, have, want } => {
            drop(tx);
            let error_description = format!("{have} {item} held, {want} to spend");
            let refused = SpendRefused { error: "insufficient".into(), error_description, item, have, want };
            let body = serde_json::to_value(refused).expect("a refusal serializes");
            let mut connection = pool.acquire().await?;
            store(&mut connection, user_id, &request.key, 409, &body).await?;
            let first = stored(&mut connection, user_id, &request.key).await?;
            Ok(answer(first.unwrap_or((409, body))))
        }
    }
}
