//! The inventory the studio backend owns (with `--catalog`): every source grants into the database — Instant
//! Access at its `Purchase`, Prime Gaming at a sync, subscriptions' perks while they last — spends are checked
//! here, and one history answers "where is my reward". The game mirrors it ([`GET /api/inventory`](sync_route),
//! answered `304` from the stored version when nothing changed); a reinstall or a second PC shows the same
//! items. Without a catalog the backend serves the entitlements feed instead, for games keeping their own ledger.

pub mod catalog;
pub mod held;
pub mod leased;
pub mod leases;
pub mod ledger;
pub mod prime;
pub mod spend;
pub mod spend_statement;
pub mod teller;
pub mod unchanged;

use std::sync::Arc;
use std::time::Duration;

use amazon_rewards_protocol::instant_access::{InstantAccessRequest, InstantAccessResponse, ResponseCode};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::AnyPool;

use self::catalog::ServerCatalog;
use self::ledger::{Change, ChangeKind};
use crate::error::BackendError;
use crate::player::{AuthenticatedPlayer, PlayerAuth};

pub use amazon_rewards_protocol::inventory::{HISTORY_PATH, INVENTORY_PATH, SPEND_PATH, SYNC_PATH};
use amazon_rewards_protocol::inventory::{HistoryPage, MAX_CHANGES_PER_ANSWER, Snapshot, SpendRefused, SyncAnswer};
use utoipa_axum::{router::OpenApiRouter, routes};

/// A step of a Prime Gaming sync, for crash tests (the same boundaries as the game's ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    /// The pull answered; nothing is granted yet.
    Pulled,
    /// The grants and their marks are committed; the report is not sent yet.
    GrantCommitted,
    /// Amazon accepted the report; the database does not know yet.
    ReportSent,
    /// The confirmation is about to be recorded.
    ReportConfirming,
}

/// Called at each [`SyncStep`].
pub type SyncObserver = Arc<dyn Fn(SyncStep) + Send + Sync>;

/// The inventory's settings.
#[derive(Clone)]
pub struct InventoryConfig {
    /// What each SKU grants (the game's catalog file).
    pub catalog: Arc<ServerCatalog>,
    /// Least time between two Prime Gaming pulls of one player, across processes. Default 10 s.
    pub sync_interval: Duration,
    /// How often granted-but-unconfirmed Prime Gaming entitlements are reported again. Default 30 s.
    pub re_report_every: Duration,
    /// How long a process may answer a player's unchanged sync from its memory under a read lease
    /// ([`leases`], PostgreSQL only; at most [`leases::MAX_LEASE`]). Every write revokes the player's leases
    /// before it commits (a notification and its answer: about a millisecond); a process that cannot be told
    /// (gone, or cut off from its notifications) delays such a write by [`leases::ALIVE_FOR`] at most.
    /// Default 60 s; zero: every sync reads the database.
    pub read_lease: Duration,
    /// Crash tests' hook.
    pub observer: Option<SyncObserver>,
}

impl InventoryConfig {
    /// Settings with `catalog` and the defaults.
    pub fn new(catalog: ServerCatalog) -> Self {
        Self {
            catalog: Arc::new(catalog),
            sync_interval: Duration::from_secs(10),
            re_report_every: Duration::from_secs(30),
            read_lease: Duration::from_secs(60),
            observer: None,
        }
    }
}

impl std::fmt::Debug for InventoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InventoryConfig").field("sync_interval", &self.sync_interval).finish_non_exhaustive()
    }
}

/// What the inventory routes work with.
#[derive(Clone)]
pub struct InventoryState {
    /// The database.
    pub pool: AnyPool,
    /// The catalog and pacing.
    pub config: InventoryConfig,
    /// The Prime Gaming sync, when the relay is configured.
    pub prime: Option<prime::PrimeSync>,
    /// The unchanged sync's coalesced read of `pool`.
    pub reads: unchanged::UnchangedReads,
}

impl FromRef<InventoryState> for PlayerAuth {
    fn from_ref(state: &InventoryState) -> Self {
        PlayerAuth { pool: state.pool.clone() }
    }
}

/// The game's inventory routes, with their state.
pub fn router(state: InventoryState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(sync_route))
        .routes(routes!(spend_route))
        .routes(routes!(pull_route))
        .routes(routes!(history_route))
        .with_state(state)
}

/// `?since=N`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// The version the game last saw.
    pub since: Option<i64>,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&amazon_rewards_protocol::inventory::etag(version)).expect("digits")
}

/// The changes after `since` when the game is behind `version`.
async fn changes_for(
    pool: &AnyPool,
    user_id: &str,
    since: Option<i64>,
    version: i64,
) -> Result<Vec<ledger::ChangeRecord>, sqlx::Error> {
    match since {
        Some(since) if since < version => {
            ledger::changes_since(pool, user_id, since.max(0), MAX_CHANGES_PER_ANSWER as i64).await
        }
        _ => Ok(Vec::new()),
    }
}

/// `GET /api/inventory[?since=N]`: the snapshot (and the changes after version `N`), or `304` when the
/// game's `If-None-Match` names the stored version.
#[utoipa::path(get, path = INVENTORY_PATH, tag = "inventory", security(("session" = [])), params(SinceQuery,
    ("If-None-Match" = Option<String>, Header, description = "The ETag of the version the game holds")),
    responses((status = 200, body = SyncAnswer, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the version named", headers(("ETag" = String)))))]
pub async fn sync_route(
    State(state): State<InventoryState>,
    query: Result<Query<SinceQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, BackendError> {
    // The session and the stored version in one read, shared with concurrent syncs: an unchanged player
    // costs a share of one query.
    let (player, version) = crate::player::with_inventory_version(&state.reads, &headers).await?;
    let Query(query) = query.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let user_id = player.account()?;
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tag| *tag == etag(version)) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(version))]).into_response());
    }
    let snapshot = ledger::snapshot(&state.pool, user_id).await?;
    let changes = changes_for(&state.pool, user_id, query.since, snapshot.version).await?;
    let body =
        SyncAnswer { version: snapshot.version, items: snapshot.items, changes, pulled: false, relay_error: None };
    Ok(([(header::ETAG, etag(body.version))], Json(body)).into_response())
}

/// `POST /api/inventory/spend`: the session and the key's stored answer are read together (one query for a
/// retry; the first spend of a key goes on to its transaction).
#[utoipa::path(post, path = SPEND_PATH, tag = "inventory", security(("session" = [])),
    request_body = amazon_rewards_protocol::inventory::SpendRequest,
    responses((status = 200, description = "Spent (or this key's first answer)", body = Snapshot),
        (status = 409, description = "The player cannot afford it; nothing was spent", body = SpendRefused)))]
async fn spend_route(
    State(state): State<InventoryState>,
    headers: HeaderMap,
    body: Result<Json<amazon_rewards_protocol::inventory::SpendRequest>, JsonRejection>,
) -> Result<Response, BackendError> {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            // Who asks is answered before what is wrong with the request, as on every other route.
            crate::player::with_inventory_version(&state.reads, &headers).await?;
            return Err(BackendError::BadRequest(rejection.body_text()));
        }
    };
    // One connection for the request: sqlx tests each connection given back to the pool with a round trip.
    let mut connection = state.pool.acquire().await?;
    let (player, prior) = crate::player::with_stored_spend(&mut connection, &headers, &request.key).await?;
    let catalog = &state.config.catalog;
    let (status, answer) =
        spend::spend(&mut connection, &state.pool, catalog, player.account()?, &request, prior).await?;
    Ok((status, Json(answer)).into_response())
}

/// `POST /api/inventory/sync[?since=N]`: pulls Prime Gaming for the player (at most once per `sync_interval`,
/// whichever process is asked), then answers the snapshot and the changes after `N` (`pulled` says whether this
/// call pulled), or `304` when the game's `If-None-Match` names the version and the pull, if any, went well.
#[utoipa::path(post, path = SYNC_PATH, tag = "inventory", security(("session" = [])), params(SinceQuery,
    ("If-None-Match" = Option<String>, Header, description = "The ETag of the version the game holds")),
    responses((status = 200, body = SyncAnswer, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the version named", headers(("ETag" = String)))))]
async fn pull_route(
    State(state): State<InventoryState>,
    player: AuthenticatedPlayer,
    query: Result<Query<SinceQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, BackendError> {
    let user_id = player.account()?;
    let Query(query) = query.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let mut pulled = false;
    let mut relay_error = None;
    if let Some(prime) = &state.prime
        && claim_sync(&state.pool, user_id, state.config.sync_interval).await?
    {
        pulled = true;
        if let Err(error) = prime.sync(user_id).await {
            tracing::warn!(user_id, %error, "Prime Gaming sync failed; granted items stay, the rest waits");
            relay_error = Some(error);
        }
    }
    if relay_error.is_none()
        && let Some(tag) = headers.get(header::IF_NONE_MATCH)
    {
        let version = ledger::version(&state.pool, user_id).await?;
        if *tag == etag(version) {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(version))]).into_response());
        }
    }
    let snapshot = ledger::snapshot(&state.pool, user_id).await?;
    let changes = changes_for(&state.pool, user_id, query.since, snapshot.version).await?;
    let body = SyncAnswer { version: snapshot.version, items: snapshot.items, changes, pulled, relay_error };
    Ok(([(header::ETAG, etag(body.version))], Json(body)).into_response())
}

/// Claims the player's next pull: one per `interval` across every process.
async fn claim_sync(pool: &AnyPool, user_id: &str, interval: Duration) -> Result<bool, sqlx::Error> {
    sqlx::query("INSERT INTO inventory_versions (user_id, version) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING")
        .bind(user_id)
        .execute(pool)
        .await?;
    let now = crate::now_secs();
    let claimed =
        sqlx::query("UPDATE inventory_versions SET last_sync_at = $1 WHERE user_id = $2 AND last_sync_at <= $3")
            .bind(now)
            .bind(user_id)
            .bind(now - interval.as_secs() as i64)
            .execute(pool)
            .await?;
    Ok(claimed.rows_affected() == 1)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Changes older than this version (from the last page's `next_before`).
    before: Option<i64>,
    /// Page size, 1–200 (default 50).
    limit: Option<i64>,
}

/// `GET /api/inventory/history[?before=V&limit=N]`: newest first; `next_before` pages on.
#[utoipa::path(get, path = HISTORY_PATH, tag = "inventory", security(("session" = [])), params(HistoryQuery),
    responses((status = 200, body = HistoryPage)))]
async fn history_route(
    State(state): State<InventoryState>,
    player: AuthenticatedPlayer,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, BackendError> {
    let Query(query) = query.map_err(|e| BackendError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let before = query.before.unwrap_or(i64::MAX);
    let changes = ledger::history(&state.pool, player.account()?, before, limit).await?;
    let next_before = (changes.len() as i64 == limit).then(|| changes.last().map(|c| c.version)).flatten();
    Ok(Json(HistoryPage { changes, next_before }))
}

/// What Instant Access did to the inventory: a `Purchase` answered `OK` grants its product's items (once per
/// purchase token), a `Revoke` takes them back (never below zero; what was spent becomes a debt); a
/// subscription's activation grants its perks and its deactivation takes them back.
pub async fn after_instant_access(
    pool: &AnyPool,
    config: &InventoryConfig,
    request: &InstantAccessRequest,
    response: &InstantAccessResponse,
) -> Result<(), sqlx::Error> {
    if response.response != ResponseCode::Ok {
        return Ok(());
    }
    use InstantAccessRequest::*;
    let (kind, source, user_id, product_id, key) = match request {
        Purchase { product_id, user_id, purchase_token, .. } => {
            (ChangeKind::Grant, "INSTANT_ACCESS", user_id.clone(), product_id.clone(), format!("ia:{purchase_token}"))
        }
        Revoke { product_id, user_id, purchase_token, .. } => {
            (ChangeKind::Revoke, "INSTANT_ACCESS", user_id.clone(), product_id.clone(), format!("ia:{purchase_token}"))
        }
        SubscriptionActivate { subscription_id, product_id, user_id, .. } => {
            (ChangeKind::Grant, "SUBSCRIPTION", user_id.clone(), product_id.clone(), format!("sub:{subscription_id}"))
        }
        SubscriptionDeactivate { subscription_id, .. } => {
            let Some((user_id, product_id)) = crate::instant_access::subscription_owner(pool, subscription_id).await?
            else {
                return Ok(());
            };
            (ChangeKind::Revoke, "SUBSCRIPTION", user_id, product_id, format!("sub:{subscription_id}"))
        }
        _ => return Ok(()),
    };
    let Some(items) = config.catalog.offer(&product_id) else {
        let mut connection = pool.acquire().await?;
        return held::hold(&mut connection, &user_id, &key, source, &product_id).await;
    };
    let sku = Some(product_id.as_str());
    ledger::apply(pool, &user_id, Change { kind, source, key: &key, sku, items, active_until: None }).await?;
    Ok(())
}

/// A DevPay subscription's perks as flags: while it is paid for, its product's items are on until the end of
/// the paid-through day (each verified period extends them, once per period); once it ends or is suspended they
/// are taken back. Unknown products are held.
pub async fn devpay_perks(
    pool: &AnyPool,
    catalog: &ServerCatalog,
    user_id: &str,
    persistent_id: &str,
    sku: &str,
    active: bool,
    paid_until: Option<&str>,
) -> Result<(), sqlx::Error> {
    let key = format!("devpay:{persistent_id}");
    let Some(items) = catalog.offer(sku) else {
        return held::hold(&mut *pool.acquire().await?, user_id, &key, "DEVPAY", sku).await;
    };
    let until = paid_until.and_then(amazon_rewards_protocol::dta1::days_since_epoch).map(|day| (day + 1) * 86_400);
    let period = paid_until.unwrap_or("none");
    let change = match (active, until) {
        (true, Some(until)) => {
            let key = format!("{key}:{period}");
            ledger::apply(
                pool,
                user_id,
                Change {
                    kind: ChangeKind::Grant,
                    source: "DEVPAY",
                    key: &key,
                    sku: Some(sku),
                    items,
                    active_until: Some(until),
                },
            )
            .await?;
            return Ok(());
        }
        _ => format!("{key}:ended:{period}"),
    };
    let held_now = ledger::snapshot(pool, user_id).await?;
    if items.iter().any(|stack| held_now.items.iter().any(|held| held.item == stack.item)) {
        ledger::apply(
            pool,
            user_id,
            Change {
                kind: ChangeKind::Revoke,
                source: "DEVPAY",
                key: &change,
                sku: Some(sku),
                items,
                active_until: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// The operator's inventory routes, nested under `/admin`: a player's snapshot and history, every held
/// entitlement, every debt.
pub fn admin_router() -> Router<crate::AppState> {
    Router::new()
        .route("/inventory/held", get(held_route))
        .route("/inventory/debts", get(debts_route))
        .route("/inventory/{user_id}", get(player_route))
}

async fn held_route(State(state): State<crate::AppState>) -> Result<Json<serde_json::Value>, BackendError> {
    Ok(Json(json!({"held": held::list(&state.pool, 1000).await?})))
}

async fn debts_route(State(state): State<crate::AppState>) -> Result<Json<serde_json::Value>, BackendError> {
    let debts = ledger::debts(&state.pool, 1000).await?;
    let debts: Vec<_> =
        debts.into_iter().map(|(user_id, change)| json!({"user_id": user_id, "change": change})).collect();
    Ok(Json(json!({"debts": debts})))
}

async fn player_route(
    State(state): State<crate::AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, BackendError> {
    let snapshot = ledger::snapshot(&state.pool, &user_id).await?;
    let history = ledger::history(&state.pool, &user_id, i64::MAX, 200).await?;
    Ok(Json(json!({"snapshot": snapshot, "history": history})))
}
