//! Entitlements held back (the `held_entitlements` table): their SKU is not in the server's catalog, so they
//! are neither granted nor reported — Amazon keeps offering them, and once the catalog names the SKU they are
//! granted at the next sync. The operator lists them.

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};

/// One held entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The entitlement (`pg:…`, `ia:…`).
    pub entitlement_id: String,
    /// The game account.
    pub user_id: String,
    /// Where it comes from.
    pub source: String,
    /// The SKU the catalog lacks.
    pub sku: String,
    /// When it was first held (unix seconds).
    pub held_at: i64,
}

/// Records that `entitlement_id` is held (once).
pub async fn hold(
    connection: &mut AnyConnection,
    user_id: &str,
    entitlement_id: &str,
    source: &str,
    sku: &str,
) -> Result<(), sqlx::Error> {
    let held = sqlx::query(
        "INSERT INTO held_entitlements (entitlement_id, user_id, source, sku, held_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (entitlement_id) DO NOTHING",
    )
    .bind(entitlement_id)
    .bind(user_id)
    .bind(source)
    .bind(sku)
    .bind(crate::now_secs())
    .execute(connection)
    .await?;
    if held.rows_affected() == 1 {
        tracing::warn!(entitlement_id, sku, "entitlement held: its SKU is not in the catalog");
    }
    Ok(())
}

/// It is granted now (the catalog names its SKU): no longer held.
pub async fn release(connection: &mut AnyConnection, entitlement_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM held_entitlements WHERE entitlement_id = $1")
        .bind(entitlement_id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Every held entitlement, oldest first.
pub async fn list(pool: &AnyPool, limit: i64) -> Result<Vec<Held>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT entitlement_id, user_id, source, sku, held_at FROM held_entitlements ORDER BY held_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entitlement_id, user_id, source, sku, held_at)| Held { entitlement_id, user_id, source, sku, held_at })
        .collect())
}
