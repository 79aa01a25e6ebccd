//! Spending from the game (`POST /api/inventory/spend`), checked on the server: the player's session, an
//! idempotency key the game chose and persisted before sending, and the items. The answer is stored with the
//! key, so a retry, from any process, gets the first answer and spends nothing more: the new snapshot in the
//! spend's own history row (written by the statement that records the spend), or `409` with what was short in
//! the `inventory_spends` table, whose SQL lives here.

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool};

use super::catalog::ServerCatalog;
use super::ledger::{self, Change, ChangeKind, Holdings, Spent};
use super::spend_statement::spend_if_current;
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

/// What was read with the session, just ahead of a spend: the key's first answer, if any (status, body), and
/// the player's holdings then.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// The answer already stored for the key.
    pub first: Option<(i64, String)>,
    /// The player's items and version when the session was read.
    pub before: Holdings,
    /// Whether a process held a read lease on the player then: the one-statement spend refuses itself while
    /// one does, so the spend goes straight to the transaction, which revokes it.
    pub leased: bool,
}

/// A stored answer (status, body) as the route answers it.
fn answer((status, body): (i64, String)) -> (StatusCode, Value) {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok());
    (status.unwrap_or(StatusCode::OK), serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The first answer of the key, spent at the same time by another request, which committed first.
async fn first_answer(
    connection: &mut AnyConnection,
    user_id: &str,
    request: &SpendRequest,
) -> Result<(StatusCode, Value), BackendError> {
    let first = ledger::spend_answer(connection, user_id, &request.key).await?;
    Ok(first.map(answer).unwrap_or((StatusCode::OK, Value::Null)))
}

/// Spends `request` from `user_id`'s inventory, once per key: `(200, snapshot)` or `(409, what was short)`.
/// `prior` is what the caller read with the session, on the same `connection`: one connection for the whole
/// request, since sqlx tests each connection given back to the pool with a round trip of its own.
pub async fn spend(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    catalog: &ServerCatalog,
    user_id: &str,
    request: &SpendRequest,
    prior: Prior,
) -> Result<(StatusCode, Value), BackendError> {
    well_formed(catalog, request)?;
    if let Some(first) = prior.first {
        return Ok(answer(first));
    }
    let change = Change {
        kind: ChangeKind::Spend,
        source: "GAME",
        key: &request.key,
        sku: None,
        items: &request.items,
        active_until: None,
    };
    let at_once =
        if prior.leased { Ok(None) } else { spend_if_current(connection, user_id, &change, &prior.before).await };
    match at_once {
        Ok(Some(snapshot)) => {
            return Ok((StatusCode::OK, serde_json::to_value(snapshot).expect("a snapshot serializes")));
        }
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            return first_answer(connection, user_id, request).await;
        }
        other => drop(other?),
    }
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    let spent = match ledger::spend_in(&mut tx, tell_on, user_id, &change, Some(&prior.before)).await {
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => None,
        other => Some(other?),
    };
    match spent {
        Some(Spent::Done(snapshot)) => {
            tx.commit().await?;
            Ok((StatusCode::OK, serde_json::to_value(snapshot).expect("a snapshot serializes")))
        }
        // The same key, spent at the same time by another request, which committed first.
        None => {
            drop(tx);
            first_answer(connection, user_id, request).await
        }
        Some(Spent::Insufficient { item, have, want }) => {
            drop(tx);
            let error_description = format!("{have} {item} held, {want} to spend");
            let refused = SpendRefused { error: "insufficient".into(), error_description, item, have, want };
            let body = serde_json::to_value(refused).expect("a refusal serializes");
            store(connection, user_id, &request.key, 409, &body).await?;
            let first = ledger::spend_answer(connection, user_id, &request.key).await?;
            Ok(first.map(answer).unwrap_or((StatusCode::CONFLICT, body)))
        }
    }
}

#[cfg(test)]
mod tests {
    use amazon_rewards_protocol::catalog::ItemStack;

    use sqlx::AnyPool;

    use super::*;
    use crate::link::sessions;

    fn catalog() -> ServerCatalog {
        ServerCatalog::parse(include_bytes!("../../../../assets/rewards.catalog.json")).unwrap()
    }

    fn stacks(items: &[(&str, u64)]) -> Vec<ItemStack> {
        items.iter().map(|(item, quantity)| ItemStack { item: (*item).into(), quantity: *quantity }).collect()
    }

    async fn grant(pool: &AnyPool, user_id: &str, key: &str, items: &[(&str, u64)], active_until: Option<i64>) {
        let items = stacks(items);
        let change = Change { kind: ChangeKind::Grant, source: "TEST", key, sku: None, items: &items, active_until };
        ledger::apply(pool, user_id, change).await.unwrap();
    }

    /// A player with a session holding gold, gems, an expired flag and a live one: their user id and token.
    async fn player(pool: &AnyPool) -> (String, String) {
        let session = crate::link::session_without_link(pool, "amzn1.account.SPENDER", "game").await.unwrap();
        let user_id = session.user_id;
        grant(pool, &user_id, "coins", &[("gold", 5), ("gem", 10), ("outfit", 1)], None).await;
        grant(pool, &user_id, "old-pass", &[("season_badge", 1)], Some(crate::now_secs() - 60)).await;
        grant(pool, &user_id, "pass", &[("double_coins", 1)], Some(crate::now_secs() + 3600)).await;
        (user_id, session.tokens.access_token)
    }

    async fn prior(pool: &AnyPool, token: &str, key: &str) -> Prior {
        sessions::holder_and_spend(pool, token, key).await.unwrap().unwrap().1
    }

    fn request(key: &str, items: &[(&str, u64)]) -> SpendRequest {
        SpendRequest { key: key.into(), items: stacks(items) }
    }

    #[tokio::test]
    async fn an_answer_made_from_the_rows_read_with_the_session_matches_the_stored_inventory() {
        let (_dir, pool) = crate::db::test_database().await;
        let (user_id, token) = player(&pool).await;
        let fresh = prior(&pool, &token, "all-the-outfits").await;
        assert_eq!((fresh.first.as_ref(), fresh.before.version, fresh.before.items.len()), (None, 3, 5));
        // The outfit goes to 0 and the expired pass is out: the answer leaves both out, as a read would.
        let spent = spend(
            &mut pool.acquire().await.unwrap(),
            &pool,
            &catalog(),
            &user_id,
            &request("all-the-outfits", &[("outfit", 1)]),
            fresh,
        )
        .await;
        let stored = serde_json::to_value(ledger::snapshot(&pool, &user_id).await.unwrap()).unwrap();
        assert_eq!(spent.unwrap(), (StatusCode::OK, stored.clone()));
        assert_eq!(stored["items"].as_array().unwrap().len(), 3, "double_coins, gem, gold: {stored}");

        // Read, then a grant from elsewhere: those rows are one version behind, so the spend reads its answer.
        let stale = prior(&pool, &token, "a-gem").await;
        grant(&pool, &user_id, "more-gold", &[("gold", 7)], None).await;
        let (status, answer) = spend(
            &mut pool.acquire().await.unwrap(),
            &pool,
            &catalog(),
            &user_id,
            &request("a-gem", &[("gem", 1)]),
            stale,
        )
        .await
        .unwrap();
        let stored = serde_json::to_value(ledger::snapshot(&pool, &user_id).await.unwrap()).unwrap();
        assert_eq!((status, &answer), (StatusCode::OK, &stored));
        assert_eq!((answer["version"].as_i64(), answer["items"][2]["quantity"].as_u64()), (Some(6), Some(12)));

        // The retry reads the first answer with the session, from the spend's history row.
        let (status, first) = prior(&pool, &token, "a-gem").await.first.unwrap();
        assert_eq!((status, serde_json::from_str::<Value>(&first).unwrap()), (200, answer));
    }

    #[tokio::test]
    async fn a_key_spent_again_before_its_answer_was_read_answers_the_first_and_spends_once() {
        let (_dir, pool) = crate::db::test_database().await;
        let (user_id, token) = player(&pool).await;
        let twice = request("twice", &[("gem", 4)]);
        let first = spend(&mut pool.acquire().await.unwrap(), &pool, &catalog(), &user_id, &twice, Prior::default())
            .await
            .unwrap();
        // As a concurrent request of the same key does: no stored answer seen, so the history's key refuses it.
        let second = spend(&mut pool.acquire().await.unwrap(), &pool, &catalog(), &user_id, &twice, Prior::default())
            .await
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(first.1["version"].as_i64(), Some(4), "{first:?}");
        let short = request("short", &[("gem", 7)]);
        let refused = spend(&mut pool.acquire().await.unwrap(), &pool, &catalog(), &user_id, &short, Prior::default())
            .await
            .unwrap();
        assert_eq!((refused.0, refused.1["have"].as_i64()), (StatusCode::CONFLICT, Some(6)));
        grant(&pool, &user_id, "rich", &[("gem", 100)], None).await;
        let later = spend(
            &mut pool.acquire().await.unwrap(),
            &pool,
            &catalog(),
            &user_id,
            &short,
            prior(&pool, &token, "short").await,
        )
        .await
        .unwrap();
        assert_eq!(later, refused, "a refused key stays refused");
        assert_eq!(ledger::snapshot(&pool, &user_id).await.unwrap().version, 5);
    }
}
