//! Each player's inventory as the database holds it (the `inventory_versions`, `inventory_items` and
//! `inventory_changes` tables, whose SQL lives here): item counts and flags (a flag may run out, at
//! `active_until`), a version bumped by every change, and the append-only history of changes. A change is one
//! transaction, and unique on (player, kind, key), so a grant, a revocation or a spend applied twice, from any
//! number of backend processes, is applied once: the version row is locked first, which serializes a player's
//! changes on PostgreSQL and SQLite alike.

use std::collections::BTreeMap;

use amazon_rewards_protocol::catalog::ItemStack;
use sqlx::{AnyConnection, AnyPool};

pub use amazon_rewards_protocol::inventory::{ChangeKind, ChangeRecord, ItemCount, Snapshot};

/// One change to apply.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// What it does.
    pub kind: ChangeKind,
    /// `PRIME_GAMING`, `INSTANT_ACCESS`, `SUBSCRIPTION`, `DEVPAY`, `GAME`.
    pub source: &'a str,
    /// What makes it unique for the player: the entitlement id, or the game's idempotency key.
    pub key: &'a str,
    /// The offer behind a grant or revocation.
    pub sku: Option<&'a str>,
    /// The items.
    pub items: &'a [ItemStack],
    /// For flags a grant sets: until when they are on (`None`: until revoked).
    pub active_until: Option<i64>,
}

/// What applying came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now, as this version.
    Done {
        /// The version this change made.
        version: i64,
    },
    /// Applied before, as this version; nothing changed now.
    Again {
        /// The version the first application made.
        version: i64,
    },
    /// A spend the player cannot afford; nothing changed.
    Insufficient {
        /// The first item short.
        item: String,
        /// How many the player holds.
        have: i64,
        /// How many the spend wanted.
        want: i64,
    },
}

/// `items` with each item once, quantities added up.
pub(crate) fn merged(items: &[ItemStack]) -> Vec<ItemStack> {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for stack in items {
        let sum = sums.entry(&stack.item).or_default();
        *sum = sum.saturating_add(stack.quantity);
    }
    sums.into_iter().map(|(item, quantity)| ItemStack { item: item.to_owned(), quantity }).collect()
}

/// Locks the player's version row (creating it) and answers the version after this change; when other
/// processes hold read leases on the player, revokes them first ([`super::leases::clear`], telling them on
/// `tell_on`).
async fn next_version(connection: &mut AnyConnection, tell_on: &AnyPool, user_id: &str) -> Result<i64, sqlx::Error> {
    let (version, leased): (i64, Option<i64>) = sqlx::query_as(
        "INSERT INTO inventory_versions (user_id, version) VALUES ($1, 1)
         ON CONFLICT (user_id) DO UPDATE SET version = inventory_versions.version + 1
         RETURNING version, leased_until",
    )
    .bind(user_id)
    .fetch_one(&mut *connection)
    .await?;
    if leased.is_some() {
        super::leases::clear(connection, tell_on, user_id).await?;
    }
    Ok(version)
}

/// What a spend came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// Spent: the snapshot it made, also stored as the answer in its history row.
    Done(Snapshot),
    /// The player cannot afford it; the caller must roll back (earlier lines were taken).
    Insufficient {
        /// The first item short.
        item: String,
        /// How many the player holds.
        have: i64,
        /// How many the spend wanted.
        want: i64,
    },
}

/// The player's stored item rows (before the zero and `active_until` filters) and the version they are at,
/// read in one statement before a spend's transaction. The spend reuses them for its answer when its own
/// version is the next one, since every write to `inventory_items` bumps the version in the same transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// The version the rows are at (0 before any change).
    pub version: i64,
    /// Item, quantity, active until.
    pub items: Vec<(String, i64, Option<i64>)>,
}

impl Holdings {
    /// These rows after `taken` (item, quantity left), as a snapshot at `version`.
    pub(crate) fn after(&self, taken: &BTreeMap<String, i64>, version: i64) -> Snapshot {
        let rows = self
            .items
            .iter()
            .map(|(item, quantity, until)| (item.clone(), taken.get(item).copied().unwrap_or(*quantity), *until));
        snapshot_of(rows, version)
    }
}

/// What a snapshot shows of a player's item rows: those held (quantity above 0) and, for flags, not yet run out
/// (`active_until` in the future), by item.
fn snapshot_of(rows: impl IntoIterator<Item = (String, i64, Option<i64>)>, version: i64) -> Snapshot {
    let now = crate::now_secs();
    let mut items: Vec<ItemCount> = rows
        .into_iter()
        .filter(|(_, quantity, until)| *quantity > 0 && until.is_none_or(|until| until > now))
        .map(|(item, quantity, active_until)| ItemCount { item, quantity: quantity as u64, active_until })
        .collect();
    items.sort_by(|a, b| a.item.cmp(&b.item));
    Snapshot { version, items }
}

/// A spend, inside the caller's transaction: each line taken only if the player holds enough (one
/// conditional update per line), then the history row with the snapshot as its answer. Its key is not checked
/// here: the spend's stored answer guards retries, and the history's unique key turns a concurrent duplicate
/// into an error that rolls it back. `before`, read just ahead of the transaction, spares the snapshot's read
/// when no other change came in between. Read leases are revoked as in [`apply_in`].
pub async fn spend_in(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    user_id: &str,
    change: &Change<'_>,
    before: Option<&Holdings>,
) -> Result<Spent, sqlx::Error> {
    let merged = merged(change.items);
    let change = &Change { items: &merged, ..change.clone() };
    let version = next_version(connection, tell_on, user_id).await?;
    let mut taken = BTreeMap::new();
    for stack in change.items {
        let want = stack.quantity.min(i64::MAX as u64) as i64;
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE inventory_items SET quantity = quantity - $1 WHERE user_id = $2 AND item = $3 AND quantity >= $1
             RETURNING quantity",
        )
        .bind(want)
        .bind(user_id)
        .bind(&stack.item)
        .fetch_optional(&mut *connection)
        .await?;
        let Some(left) = left else {
            let have = holdings(connection, user_id, std::slice::from_ref(stack)).await?[&stack.item];
            return Ok(Spent::Insufficient { item: stack.item.clone(), have, want });
        };
        taken.insert(stack.item.clone(), left);
    }
    let snapshot = match before {
        Some(before) if before.version + 1 == version => before.after(&taken, version),
        _ => items_at(connection, user_id, version).await?,
    };
    let answer = serde_json::to_string(&snapshot).expect("a snapshot serializes");
    record(connection, user_id, version, change, &[], Some(&answer)).await?;
    crate::telemetry::inventory_change(change.kind.as_str(), change.source);
    Ok(Spent::Done(snapshot))
}

/// The first answer stored for the player's spend `key`: `200` and the snapshot from its history row, or the
/// refusal kept in `inventory_spends`.
pub async fn spend_answer(
    connection: &mut AnyConnection,
    user_id: &str,
    key: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(200 AS BIGINT), answer FROM inventory_changes
         WHERE user_id = $1 AND kind = 'spend' AND change_key = $2 AND answer IS NOT NULL
         UNION ALL SELECT status, answer FROM inventory_spends WHERE user_id = $1 AND spend_key = $2 ORDER BY 1",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(connection)
    .await
}

/// Gives back the version [`next_version`] took (the row stays locked): the caller's transaction can go on.
async fn undo_version(connection: &mut AnyConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inventory_versions SET version = version - 1 WHERE user_id = $1")
        .bind(user_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// The quantities the player holds of `items`' items.
async fn holdings(
    connection: &mut AnyConnection,
    user_id: &str,
    items: &[ItemStack],
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let mut held = BTreeMap::new();
    for stack in items {
        let quantity: Option<i64> =
            sqlx::query_scalar("SELECT quantity FROM inventory_items WHERE user_id = $1 AND item = $2")
                .bind(user_id)
                .bind(&stack.item)
                .fetch_optional(&mut *connection)
                .await?;
        held.insert(stack.item.clone(), quantity.unwrap_or(0));
    }
    Ok(held)
}

/// Applies `change` to `user_id`'s inventory in one transaction of its own.
pub async fn apply(pool: &AnyPool, user_id: &str, change: Change<'_>) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let applied = apply_in(&mut tx, pool, user_id, &change).await?;
    if matches!(applied, Applied::Done { .. }) {
        tx.commit().await?;
    }
    Ok(applied)
}

/// Applies `change` inside the caller's transaction. [`Applied::Again`] leaves the transaction as it was; after
/// [`Applied::Insufficient`] the caller rolls back. Processes holding read leases on the player are told on
/// `tell_on` ([`super::leases`]).
pub async fn apply_in(
    connection: &mut AnyConnection,
    tell_on: &AnyPool,
    user_id: &str,
    change: &Change<'_>,
) -> Result<Applied, sqlx::Error> {
    if change.kind == ChangeKind::Spend {
        return Ok(match spend_in(connection, tell_on, user_id, change, None).await? {
            Spent::Done(snapshot) => Applied::Done { version: snapshot.version },
            Spent::Insufficient { item, have, want } => Applied::Insufficient { item, have, want },
        });
    }
    let merged = merged(change.items);
    let change = &Change { items: &merged, ..change.clone() };
    let version = next_version(connection, tell_on, user_id).await?;
    let before: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM inventory_changes WHERE user_id = $1 AND kind = $2 AND change_key = $3",
    )
    .bind(user_id)
    .bind(change.kind.as_str())
    .bind(change.key)
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(version) = before {
        undo_version(connection, user_id).await?;
        return Ok(Applied::Again { version });
    }
    let held = holdings(connection, user_id, change.items).await?;
    let mut debt = Vec::new();
    for stack in change.items {
        let (have, want) = (held[&stack.item], stack.quantity.min(i64::MAX as u64) as i64);
        let after = match change.kind {
            // A perk that runs out is a flag: on (1) until then, however often a period extends it.
            ChangeKind::Grant if change.active_until.is_some() => 1,
            ChangeKind::Grant => have.saturating_add(want),
            // Spends took `spend_in` above; no other kind is ever applied.
            ChangeKind::Spend | ChangeKind::Unknown => have,
            ChangeKind::Revoke => {
                if want > have {
                    debt.push(ItemStack { item: stack.item.clone(), quantity: (want - have) as u64 });
                }
                (have - want).max(0)
            }
        };
        set_quantity(connection, user_id, &stack.item, after, change).await?;
    }
    record(connection, user_id, version, change, &debt, None).await?;
    crate::telemetry::inventory_change(change.kind.as_str(), change.source);
    Ok(Applied::Done { version })
}

async fn set_quantity(
    connection: &mut AnyConnection,
    user_id: &str,
    item: &str,
    quantity: i64,
    change: &Change<'_>,
) -> Result<(), sqlx::Error> {
    let active_until = if change.kind == ChangeKind::Grant { change.active_until } else { None };
    sqlx::query(
        "INSERT INTO inventory_items (user_id, item, quantity, active_until) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, item) DO UPDATE SET quantity = EXCLUDED.quantity, active_until = EXCLUDED.active_until",
    )
    .bind(user_id)
    .bind(item)
    .bind(quantity)
    .bind(active_until)
    .execute(connection)
    .await?;
    Ok(())
}

async fn record(
    connection: &mut AnyConnection,
    user_id: &str,
    version: i64,
    change: &Change<'_>,
    debt: &[ItemStack],
    answer: Option<&str>,
) -> Result<(), sqlx::Error> {
    let debt = (!debt.is_empty()).then(|| serde_json::to_string(debt).expect("stacks serialize"));
    sqlx::query(
        "INSERT INTO inventory_changes (user_id, version, kind, source, change_key, sku, items, debt, answer,
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(user_id)
    .bind(version)
    .bind(change.kind.as_str())
    .bind(change.source)
    .bind(change.key)
    .bind(change.sku)
    .bind(serde_json::to_string(change.items).expect("stacks serialize"))
    .bind(debt)
    .bind(answer)
    .bind(crate::now_secs())
    .execute(connection)
    .await?;
    Ok(())
}

/// The player's items and the version they are at, read in one transaction (a consistent pair). Flags past
/// their `active_until` are left out.
pub async fn snapshot(pool: &AnyPool, user_id: &str) -> Result<Snapshot, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let snapshot = snapshot_in(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(snapshot)
}

/// The player's inventory version (0 before the first change).
pub async fn version(pool: &AnyPool, user_id: &str) -> Result<i64, sqlx::Error> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM inventory_versions WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(version.unwrap_or(0))
}

/// [`snapshot`] inside the caller's transaction.
pub async fn snapshot_in(connection: &mut AnyConnection, user_id: &str) -> Result<Snapshot, sqlx::Error> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM inventory_versions WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&mut *connection)
        .await?;
    items_at(connection, user_id, version.unwrap_or(0)).await
}

/// The player's items, known to be at `version` (inside the transaction that made it).
pub async fn items_at(connection: &mut AnyConnection, user_id: &str, version: i64) -> Result<Snapshot, sqlx::Error> {
    let rows: Vec<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT item, quantity, active_until FROM inventory_items WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(connection)
            .await?;
    Ok(snapshot_of(rows, version))
}

type ChangeRow = (i64, String, String, String, Option<String>, String, Option<String>, i64);

fn change_of(row: ChangeRow) -> ChangeRecord {
    let (version, kind, source, key, sku, items, debt, at) = row;
    ChangeRecord {
        version,
        kind: ChangeKind::parse(&kind),
        source,
        key,
        sku,
        items: serde_json::from_str(&items).unwrap_or_default(),
        debt: debt.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default(),
        at,
    }
}

/// Changes after `since`, oldest first, at most `limit`.
pub async fn changes_since(
    pool: &AnyPool,
    user_id: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<ChangeRecord>, sqlx::Error> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT version, kind, source, change_key, sku, items, debt, created_at FROM inventory_changes
         WHERE user_id = $1 AND version > $2 ORDER BY version LIMIT $3",
    )
    .bind(user_id)
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(change_of).collect())
}

/// History before version `before`, newest first, at most `limit`.
pub async fn history(pool: &AnyPool, user_id: &str, before: i64, limit: i64) -> Result<Vec<ChangeRecord>, sqlx::Error> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT version, kind, source, change_key, sku, items, debt, created_at FROM inventory_changes
         WHERE user_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(change_of).collect())
}

/// Every revocation that left a debt, newest first (for the operator).
pub async fn debts(pool: &AnyPool, limit: i64) -> Result<Vec<(String, ChangeRecord)>, sqlx::Error> {
    type DebtRow = (String, i64, String, String, String, Option<String>, String, Option<String>, i64);
    let rows: Vec<DebtRow> = sqlx::query_as(
        "SELECT user_id, version, kind, source, change_key, sku, items, debt, created_at FROM inventory_changes
         WHERE debt IS NOT NULL ORDER BY created_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(user, version, kind, source, key, sku, items, debt, at)| {
            (user, change_of((version, kind, source, key, sku, items, debt, at)))
        })
        .collect())
}
