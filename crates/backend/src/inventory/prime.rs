//! Prime Gaming on the server: a sync pulls the player's entitlements through the relay (the link's tokens),
//! grants every new one in one transaction together with a mark per entitlement (the `prime_grants` table,
//! whose SQL lives here), then reports them fulfilled and records the confirmation. A crash between any two
//! steps loses nothing and grants nothing twice: an entitlement granted but not confirmed is reported again (at
//! the next sync, and by the [`re_report`] worker), an entitlement pulled but not granted is pulled again, and
//! the grant's unique key makes a second grant of it a no-op. Unknown SKUs are held, never reported.

use std::sync::Arc;

use amazon_rewards_protocol::prime_gaming::{
    DEFAULT_FULFILLMENT_ADDRESS, Entitlement, FulfillRequest, FulfillResult, FulfillmentStatusUpdate, LastInstruction,
    NextInstruction,
};
use sqlx::AnyPool;

use super::catalog::ServerCatalog;
use super::ledger::{self, Change, ChangeKind};
use super::{SyncObserver, SyncStep};
use crate::prime_relay::{ID_PREFIX, PrimeRelay};

/// Source name of Prime Gaming grants.
pub const SOURCE: &str = "PRIME_GAMING";
/// Most entitlements reported in one Fulfill call.
const MAX_REPORT_BATCH: usize = 100;

/// What a sync needs.
#[derive(Clone)]
pub struct PrimeSync {
    /// The database.
    pub pool: AnyPool,
    /// The relay, with the link's tokens.
    pub relay: Arc<PrimeRelay>,
    /// What each SKU grants.
    pub catalog: Arc<ServerCatalog>,
    /// Crash tests' hook.
    pub observer: Option<SyncObserver>,
}

impl PrimeSync {
    /// A sync through `relay` by `config`'s catalog.
    pub fn new(pool: AnyPool, relay: Arc<PrimeRelay>, config: &super::InventoryConfig) -> Self {
        Self { pool, relay, catalog: config.catalog.clone(), observer: config.observer.clone() }
    }

    fn reached(&self, step: SyncStep) {
        if let Some(observer) = &self.observer {
            observer(step);
        }
    }

    /// Pulls, grants and reports for `user_id`. `Err` says why the relay failed; what was granted stays.
    pub async fn sync(&self, user_id: &str) -> Result<(), String> {
        let pulled = self.relay.entitlements(&self.pool, user_id).await?;
        self.reached(SyncStep::Pulled);
        self.grant(user_id, &pulled).await.map_err(|e| e.to_string())?;
        self.reached(SyncStep::GrantCommitted);
        self.report(user_id).await
    }

    /// Grants (or takes back) every entitlement not granted yet, and marks each, in one transaction.
    async fn grant(&self, user_id: &str, pulled: &[Entitlement]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for entitlement in pulled {
            let kind = match entitlement.next_instruction {
                NextInstruction::Fulfill => ChangeKind::Grant,
                NextInstruction::Revoke => ChangeKind::Revoke,
                NextInstruction::Noop | NextInstruction::Unknown => continue,
            };
            let Some(items) = self.catalog.offer(&entitlement.vendor_product_id) else {
                let (id, sku) = (&entitlement.entitlement_id, &entitlement.vendor_product_id);
                super::held::hold(&mut tx, user_id, id, SOURCE, sku).await?;
                continue;
            };
            let change = Change {
                kind,
                source: SOURCE,
                key: &entitlement.entitlement_id,
                sku: Some(&entitlement.vendor_product_id),
                items,
                active_until: None,
            };
            ledger::apply_in(&mut tx, &self.pool, user_id, &change).await?;
            let instruction = if kind == ChangeKind::Grant { "FULFILL" } else { "REVOKE" };
            sqlx::query(
                "INSERT INTO prime_grants (entitlement_id, user_id, instruction, granted_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (entitlement_id) DO NOTHING",
            )
            .bind(&entitlement.entitlement_id)
            .bind(user_id)
            .bind(instruction)
            .bind(crate::now_secs())
            .execute(&mut *tx)
            .await?;
            super::held::release(&mut tx, &entitlement.entitlement_id).await?;
        }
        tx.commit().await
    }

    /// Reports what is granted but not confirmed, and records each confirmation.
    pub async fn report(&self, user_id: &str) -> Result<(), String> {
        let unreported: Vec<(String, String)> = sqlx::query_as(
            "SELECT entitlement_id, instruction FROM prime_grants WHERE user_id = $1 AND reported_at IS NULL
             ORDER BY granted_at LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_REPORT_BATCH as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| e.to_string())?;
        if unreported.is_empty() {
            return Ok(());
        }
        let updates = unreported
            .iter()
            .map(|(id, instruction)| FulfillmentStatusUpdate {
                entitlement_id: id.strip_prefix(ID_PREFIX).unwrap_or(id).to_owned(),
                last_instruction: if instruction == "REVOKE" {
                    LastInstruction::Revoke
                } else {
                    LastInstruction::Fulfill
                },
                fulfillment_address: DEFAULT_FULFILLMENT_ADDRESS.into(),
            })
            .collect();
        let answer =
            self.relay.fulfill(&self.pool, user_id, &FulfillRequest { fulfillment_status_updates: updates }).await?;
        self.reached(SyncStep::ReportSent);
        self.reached(SyncStep::ReportConfirming);
        for line in answer.fulfillment_status_updates.iter().filter(|l| l.result == FulfillResult::Success) {
            sqlx::query("UPDATE prime_grants SET reported_at = $1 WHERE entitlement_id = $2 AND reported_at IS NULL")
                .bind(crate::now_secs())
                .bind(format!("{ID_PREFIX}{}", line.entitlement_id))
                .execute(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Every few seconds, reports again what some player was granted but Amazon has not confirmed (a crash or an
/// outage between the grant and the confirmation), oldest first.
pub async fn re_report(sync: PrimeSync, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        let players: Result<Vec<String>, _> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM prime_grants WHERE reported_at IS NULL AND granted_at < $1 LIMIT 100",
        )
        .bind(crate::now_secs() - every.as_secs() as i64)
        .fetch_all(&sync.pool)
        .await;
        for user_id in players.unwrap_or_default() {
            if let Err(error) = sync.report(&user_id).await {
                tracing::warn!(user_id, %error, "re-reporting Prime Gaming grants failed; trying again later");
            }
        }
    }
}
