//! A spend as one PostgreSQL statement, for the common case: the player's holdings read with the session
//! ([`Holdings`]) are still current and cover the spend. The answer is then known before the statement is sent
//! (those rows, less what is spent, at the next version), so one statement, atomic on its own, bumps the
//! version, takes each line and records the history row with that answer: two round trips per spend (the
//! session read and this) instead of six.
//!
//! The statement applies nothing unless the version is still the one read and no process holds a read lease
//! on the player (which only the transaction revokes, [`super::leases`]): the version upsert is conditional
//! on both, checked on the row it locks, and every other part runs from the upsert's returned row. A version that moved means some change came
//! in between; the statement then changes nothing, `None` is answered, and the caller spends through the
//! transaction of [`super::ledger::spend_in`], which reads afresh. The statement also fails (division by zero,
//! which rolls it back) if any line was not taken or the version is not the next one, which the condition rules
//! out; the caller falls back then too. SQLite has no data-modifying `WITH`, so it always takes the transaction.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::ledger::{Change, Holdings, Snapshot, merged};

/// PostgreSQL's name for a division by zero, the statement's own refusal.
const REFUSED: &str = "22012";

const SPEND: &str = "WITH want AS (
        SELECT item, quantity FROM json_to_recordset(CAST($2 AS json)) AS w(item text, quantity bigint)
    ), bumped AS (
        INSERT INTO inventory_versions (user_id, version) VALUES ($1, 1)
        ON CONFLICT (user_id) DO UPDATE SET version = inventory_versions.version + 1
        WHERE inventory_versions.version = CAST($3 AS BIGINT) AND inventory_versions.leased_until IS NULL
        RETURNING version
    ), taken AS (
        UPDATE inventory_items i SET quantity = i.quantity - w.quantity FROM want w, bumped
        WHERE i.user_id = $1 AND i.item = w.item AND i.quantity >= w.quantity RETURNING i.item
    ), recorded AS (
        INSERT INTO inventory_changes (user_id, version, kind, source, change_key, sku, items, debt, answer,
            created_at)
        SELECT $1, version, 'spend', $4, $5, NULL, $2, NULL, $6, CAST($7 AS BIGINT) FROM bumped RETURNING version
    )
    SELECT CAST((SELECT count(*) FROM recorded) AS BIGINT),
        1 / CASE WHEN NOT EXISTS (SELECT 1 FROM bumped)
            OR ((SELECT version FROM bumped) = CAST($3 AS BIGINT) + 1 AND (SELECT count(*) FROM taken) = $8)
            THEN 1 ELSE 0 END";

/// What `before` holds after `change` (its items merged, each item once), if it covers every line: item,
/// quantity left.
fn left_after(before: &Holdings, change: &Change<'_>) -> Option<BTreeMap<String, i64>> {
    let mut left = BTreeMap::new();
    for stack in change.items {
        let want = i64::try_from(stack.quantity).ok()?;
        let held = before.items.iter().find(|(item, ..)| *item == stack.item).map(|(_, quantity, _)| *quantity)?;
        left.insert(stack.item.clone(), held.checked_sub(want).filter(|left| *left >= 0)?);
    }
    Some(left)
}

/// Spends `change` (a spend) from `user_id` in one statement if `before` is current and covers it: the
/// snapshot it made, or `None` when nothing was applied (always on SQLite, without touching the database) and
/// the caller must spend through the transaction. A unique violation (the key spent meanwhile) is returned as
/// the error it is.
pub async fn spend_if_current(
    connection: &mut AnyConnection,
    user_id: &str,
    change: &Change<'_>,
    before: &Holdings,
) -> Result<Option<Snapshot>, sqlx::Error> {
    if !crate::db::is_postgres(connection) {
        return Ok(None);
    }
    let items = merged(change.items);
    let change = &Change { items: &items, ..change.clone() };
    let Some(left) = left_after(before, change) else { return Ok(None) };
    let snapshot = before.after(&left, before.version + 1);
    let answer = serde_json::to_string(&snapshot).expect("a snapshot serializes");
    let items = serde_json::to_string(change.items).expect("stacks serialize");
    let applied: Result<(i64, i32), sqlx::Error> = sqlx::query_as(SPEND)
        .bind(user_id)
        .bind(items)
        .bind(before.version)
        .bind(change.source)
        .bind(change.key)
        .bind(answer)
        .bind(crate::now_secs())
        .bind(change.items.len() as i64)
        .fetch_one(connection)
        .await;
    match applied {
        Ok((1, _)) => {
            crate::telemetry::inventory_change(change.kind.as_str(), change.source);
            Ok(Some(snapshot))
        }
        Ok(_) => Ok(None),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(REFUSED) => {
            tracing::warn!(user_id, "the one-statement spend refused itself; spending through the transaction");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use amazon_rewards_protocol::catalog::ItemStack;
    use sqlx::AnyPool;

    use super::*;
    use crate::inventory::ledger::{self, ChangeKind};

    fn stacks(items: &[(&str, u64)]) -> Vec<ItemStack> {
        items.iter().map(|(item, quantity)| ItemStack { item: (*item).into(), quantity: *quantity }).collect()
    }

    fn change<'a>(kind: ChangeKind, key: &'a str, items: &'a [ItemStack]) -> Change<'a> {
        Change { kind, source: "TEST", key, sku: None, items, active_until: None }
    }

    async fn holdings(pool: &AnyPool, user_id: &str) -> Holdings {
        let snapshot = ledger::snapshot(pool, user_id).await.unwrap();
        let items = snapshot.items.into_iter().map(|c| (c.item, c.quantity as i64, c.active_until)).collect();
        Holdings { version: snapshot.version, items }
    }

    async fn spend(
        pool: &AnyPool,
        user_id: &str,
        key: &str,
        items: &[ItemStack],
        before: &Holdings,
    ) -> Option<Snapshot> {
        let spend = change(ChangeKind::Spend, key, items);
        spend_if_current(&mut pool.acquire().await.unwrap(), user_id, &spend, before).await.unwrap()
    }

    #[tokio::test]
    async fn one_statement_spends_from_current_holdings_and_applies_nothing_from_stale_or_short_ones() {
        let server = test_postgres::TestPostgres::start();
        let pool = crate::db::open(&server.fresh_database()).await.unwrap();
        let user_id = crate::link::session_without_link(&pool, "amzn1.account.ONCE", "game").await.unwrap().user_id;
        let coins = stacks(&[("gold", 5), ("gem", 10)]);
        ledger::apply(&pool, &user_id, change(ChangeKind::Grant, "coins", &coins)).await.unwrap();

        // Current and covering: applied, and the answer is what the database then holds, in its history row.
        let read = holdings(&pool, &user_id).await;
        let spent = spend(&pool, &user_id, "a", &stacks(&[("gem", 3), ("gold", 5)]), &read).await.unwrap();
        assert_eq!(spent, ledger::snapshot(&pool, &user_id).await.unwrap());
        assert_eq!((spent.version, spent.items.len(), spent.items[0].quantity), (2, 1, 7), "{spent:?}");
        let stored = ledger::spend_answer(&mut pool.acquire().await.unwrap(), &user_id, "a").await.unwrap();
        assert_eq!(stored, Some((200, serde_json::to_string(&spent).unwrap())));

        // Stale (a grant came in between), short, or claiming rows the player does not hold: nothing applied.
        let stale = holdings(&pool, &user_id).await;
        ledger::apply(&pool, &user_id, change(ChangeKind::Grant, "more", &stacks(&[("gem", 1)]))).await.unwrap();
        assert_eq!(spend(&pool, &user_id, "b", &stacks(&[("gem", 1)]), &stale).await, None);
        let current = holdings(&pool, &user_id).await;
        assert_eq!(spend(&pool, &user_id, "c", &stacks(&[("gem", 9)]), &current).await, None, "8 held");
        let mut forged = current.clone();
        forged.items[0].1 = 100;
        assert_eq!(spend(&pool, &user_id, "d", &stacks(&[("gem", 50)]), &forged).await, None, "refused itself");
        assert_eq!(holdings(&pool, &user_id).await, current, "nothing changed");
        let history = ledger::history(&pool, &user_id, i64::MAX, 10).await.unwrap();
        assert_eq!(history.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["more", "a", "coins"]);

        // The key again, from current holdings: the history's unique key refuses it, as the caller expects.
        let one_gem = stacks(&[("gem", 1)]);
        let again = change(ChangeKind::Spend, "a", &one_gem);
        let refused = spend_if_current(&mut pool.acquire().await.unwrap(), &user_id, &again, &current).await;
        assert!(matches!(refused, Err(sqlx::Error::Database(e)) if e.is_unique_violation()));
        assert_eq!(holdings(&pool, &user_id).await, current, "rolled back");
    }
}
